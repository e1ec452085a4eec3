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
	if !errors.As(err, &exp) || exp.Role != "timestamp" || !strings.Contains(err.Error(), "shiplog repo timestamp") {
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
