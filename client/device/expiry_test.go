package device_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/internal/harness"
)

// TestExpiredTimestampNamedAndMarkedInStatus: a device whose vendor let the
// timestamp expire reports which role expired, when, and who must act; its
// status marks the expired role.
func TestExpiredTimestampNamedAndMarkedInStatus(t *testing.T) {
	e := newEnv(t, 2, device.Config{})
	e.repo.Expires = harness.Now.Add(time.Hour)
	e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v1"), nil)
	e.repo.Publish()
	e.mustUpdate()
	e.time = harness.Now.Add(3 * time.Hour)
	_, err := e.update()
	var exp *update.ExpiredError
	if !errors.As(err, &exp) || exp.Role != "timestamp" || !strings.Contains(err.Error(), "shiplog repo refresh") {
		t.Fatalf("got %v, want the timestamp named with the vendor's command", err)
	}
	d := e.open(device.Options{})
	defer d.Close()
	st, err := d.Status()
	if err != nil {
		t.Fatal(err)
	}
	expired := map[string]bool{}
	for _, r := range st.Roles {
		expired[r.Role] = r.Expired
	}
	if !expired["timestamp"] || !expired["targets"] || expired["root"] {
		t.Errorf("status marks %v, want timestamp and targets expired, root not", expired)
	}
}

// TestInitNeverReplacesADevice: a device initialised with a wrong
// --repo-id is told to initialise one with the right id; init on its
// directory refuses (it never replaces what a device trusts) and says how to
// start again, instead of "already holds a device …: <nil>".
func TestInitNeverReplacesADevice(t *testing.T) {
	e := newEnv(t, 2, device.Config{})
	e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v1"), nil)
	e.repo.Publish()
	e.mustUpdate()
	cfg := device.Config{Repository: e.repo.ID, RepositoryURL: e.srv.URL, Approval: "auto"}
	err := device.Init(e.dir, cfg, e.repo.RootBytes(1), e.repo.PolicyText(2))
	if err == nil || !strings.Contains(err.Error(), "already holds a device") || !strings.Contains(err.Error(), "another --data-dir") || strings.Contains(err.Error(), "<nil>") {
		t.Fatalf("init over a device: %v", err)
	}
	// The device is untouched: it still runs what it installed.
	if got := e.installed("fw/image.bin"); got != "firmware v1" {
		t.Errorf("after the refused init the device runs %q", got)
	}
	if res := e.mustUpdate(); res.Installed {
		t.Errorf("after the refused init, update installed again")
	}
}
