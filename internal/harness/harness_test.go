package harness_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/internal/harness"
)

// TestReadmeFlow is the README's story on the real parts: a ledger with
// three witnesses, a vendor repository published with the vendor's code,
// and a device that installs the release once and then finds nothing new.
func TestReadmeFlow(t *testing.T) {
	h := harness.Start(t, harness.Witnesses(3))
	r := h.NewRepo(t, "example.com/fw")
	r.Add("fw/image.bin", []byte("firmware v1"))
	r.Sign()
	if res := r.Publish(); len(res.Logged) == 0 {
		t.Fatal("publish logged nothing")
	}
	dev := h.Device(t, r)
	res, err := dev.Update(context.Background())
	if err != nil || !res.Installed {
		t.Fatalf("first update: %+v, %v", res, err)
	}
	res, err = dev.Update(context.Background())
	if err != nil || res.Installed {
		t.Fatalf("second update: %+v, %v", res, err)
	}
}

// TestAttackSwappedPayload: the web server serving the repository replaces
// a published target's bytes; the device refuses to install them.
func TestAttackSwappedPayload(t *testing.T) {
	h := harness.Start(t, harness.Witnesses(1))
	r := h.NewRepo(t, "example.com/fw")
	r.Add("fw/image.bin", []byte("firmware v1"))
	r.Sign()
	r.Publish()
	matches, err := filepath.Glob(filepath.Join(r.Dir, "targets", "fw", "*.image.bin"))
	if err != nil || len(matches) != 1 {
		t.Fatalf("published payload: %v %v", matches, err)
	}
	if err := os.WriteFile(matches[0], []byte("firmware vX"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := h.Device(t, r).Update(context.Background())
	if err == nil || res != nil && res.Installed {
		t.Fatalf("update of a swapped payload: %+v, %v", res, err)
	}
	if !strings.Contains(err.Error(), "hash") && !strings.Contains(err.Error(), "sha256") && !strings.Contains(err.Error(), "length") {
		t.Fatalf("refused for another reason: %v", err)
	}
}
