package bundle_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	cbundle "github.com/shiplog/shiplog/client/bundle"
	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/internal/harness"
	"github.com/shiplog/shiplog/repo/bundle"
)

// repo publishes firmware v1 and an app in a delegated role.
func repo(t testing.TB) *harness.RawRepo {
	r := harness.NewRawRepo(t)
	r.AddTarget("targets", "fw/image.bin", []byte("firmware v1"), map[string]any{"release_notes": "first"})
	r.Delegate("targets", "apps", []string{"apps/*"}, false)
	r.AddTarget("apps", "apps/a.bin", bytes.Repeat([]byte("app "), 100), nil)
	r.Publish()
	r.RotateRoot("timestamp")
	r.WriteTimestamp()
	return r
}

func build(t testing.TB, r *harness.RawRepo, o bundle.Options) []byte {
	o.Dir = r.Dir
	o.Time = harness.Now
	if o.Targets == nil {
		o.Targets = []string{"fw/image.bin", "apps/a.bin"}
	}
	var buf bytes.Buffer
	if _, err := bundle.Build(context.Background(), o, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func verify(r *harness.RawRepo, b []byte, trusted update.Trusted) error {
	bu, err := cbundle.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return err
	}
	v, err := bu.Verify(context.Background(), trusted, cbundle.Options{Policy: r.Policy(2), Repository: r.ID, Time: harness.Now})
	if err != nil {
		return err
	}
	return v.VerifyPayloads(context.Background())
}

func TestBuildVerify(t *testing.T) {
	r := repo(t)
	b := build(t, r, bundle.Options{Policy: r.Policy(2)})
	if err := verify(r, b, update.Trusted{Root: r.RootBytes(1)}); err != nil {
		t.Fatal(err)
	}
	// A device already at root v2 uses only the rest of the chain.
	if err := verify(r, b, update.Trusted{Root: r.RootBytes(2)}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "b.bundle")
	os.WriteFile(path, b, 0o644)
	in, err := bundle.Inspect(path)
	if err != nil || len(in.Payloads) != 2 || len(in.Roots) != 2 || len(in.Roles) != 2 {
		t.Fatalf("inspect: %+v %v", in, err)
	}
}

func TestBuildRefusesUnlogged(t *testing.T) {
	r := repo(t)
	r.Remove(harness.RoleFile("apps", 1) + ".tlog-proof")
	var buf bytes.Buffer
	_, err := bundle.Build(context.Background(), bundle.Options{Dir: r.Dir, Targets: []string{"apps/a.bin"}, Time: harness.Now}, &buf)
	if err == nil {
		t.Fatal("built a bundle with an unlogged role")
	}
}

// TestAttackTamperedBundle flips every byte of a bundle in turn: each must be
// refused (by the container, the metadata, the proofs or the payload hashes).
func TestAttackTamperedBundle(t *testing.T) {
	r := repo(t)
	b := build(t, r, bundle.Options{Targets: []string{"fw/image.bin"}})
	trusted := update.Trusted{Root: r.RootBytes(1)}
	if err := verify(r, b, trusted); err != nil {
		t.Fatal(err)
	}
	step := 1
	if testing.Short() {
		step = 7
	}
	bad := make([]byte, len(b))
	for i := 0; i < len(b); i += step {
		// 0x01 changes a digit or letter, 0x20 the letter case (JSON keys
		// and hex digits decode case-insensitively in Go).
		for _, flip := range []byte{0x01, 0x20} {
			copy(bad, b)
			bad[i] ^= flip
			if err := verify(r, bad, trusted); err == nil {
				t.Errorf("byte %d of %d ^ %#x: accepted", i, len(b), flip)
			}
		}
	}
	for _, n := range []int{0, 1, len(b) / 2, len(b) - 1} {
		if err := verify(r, b[:n], trusted); err == nil {
			t.Errorf("truncated to %d bytes: accepted", n)
		}
	}
	if err := verify(r, append(append([]byte{}, b...), 0), trusted); err == nil {
		t.Error("trailing byte: accepted")
	}
}

func newDevice(t *testing.T, r *harness.RawRepo) string {
	dir := filepath.Join(t.TempDir(), "device")
	cfg := device.Config{Repository: r.ID, RepositoryURL: "http://127.0.0.1:1", Approval: "auto"}
	if err := device.Init(dir, cfg, r.RootBytes(1), r.PolicyText(2)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func installBundle(t *testing.T, dir string, b []byte) (*device.Result, error) {
	path := filepath.Join(t.TempDir(), "b.bundle")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := device.Open(dir, device.Options{Time: harness.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	return d.InstallBundle(context.Background(), path)
}

func TestDeviceInstallsBundleWithPersonalization(t *testing.T) {
	r := repo(t)
	dir := newDevice(t, r)
	res, err := installBundle(t, dir, build(t, r, bundle.Options{}))
	if err != nil || !res.Installed {
		t.Fatalf("install: %+v %v", res, err)
	}
	// Release 2 changes only the firmware; the bundle omits the app, which
	// the device holds.
	r.AddTarget("targets", "fw/image.bin", []byte("firmware v2"), nil)
	r.Publish()
	app := r.Roles["apps"].Signed.Targets["apps/a.bin"].Hashes["sha256"].String()
	b := build(t, r, bundle.Options{OmitSHA256: []string{app}})
	res, err = installBundle(t, dir, b)
	if err != nil || !res.Installed {
		t.Fatalf("personalized install: %+v %v", res, err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "install", "current", "apps", "a.bin"))
	if !bytes.Equal(got, bytes.Repeat([]byte("app "), 100)) {
		t.Errorf("app not carried over: %q", got)
	}
	// A fresh device does not hold the app: the same bundle is refused.
	fresh := newDevice(t, r)
	if _, err := installBundle(t, fresh, b); !errors.Is(err, cbundle.ErrOmitted) {
		t.Fatalf("fresh device: got %v, want ErrOmitted", err)
	}
}
