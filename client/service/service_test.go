package service_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/client/service"
	"github.com/shiplog/shiplog/internal/harness"
)

func setup(t *testing.T) (*harness.RawRepo, *device.Device, *service.Service) {
	r := harness.NewRawRepo(t)
	r.AddTarget("targets", "fw/image.bin", []byte("firmware v1"), nil)
	r.Publish()
	dir := filepath.Join(t.TempDir(), "device")
	cfg := device.Config{Repository: r.ID, RepositoryURL: "http://127.0.0.1:1", Approval: "auto"}
	if err := device.Init(dir, cfg, r.RootBytes(1), r.PolicyText(2)); err != nil {
		t.Fatal(err)
	}
	d, err := device.Open(dir, device.Options{Time: harness.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return r, d, &service.Service{Dir: dir, Device: d}
}

func want(t *testing.T, s *service.Service, st service.State, res service.Result) {
	t.Helper()
	got := s.Status()
	if got.State != st || got.Result != res {
		t.Fatalf("status %+v, want %s/%q", got, st, res)
	}
}

func TestBundledUpdate(t *testing.T) {
	r, _, s := setup(t)
	b := r.Bundle("fw/image.bin")
	ctx := context.Background()
	want(t, s, service.Inactive, service.None)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	want(t, s, service.Transferring, service.None)
	if _, err := s.Transfer(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if got := s.Status().Written; got != int64(len(b)) {
		t.Errorf("progress %d of %d", got, len(b))
	}
	if err := s.SetTransferred(); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	want(t, s, service.Verified, service.None)
	if sum := s.Status().Summary; sum == nil || len(sum.Changes) != 1 {
		t.Errorf("summary %+v", sum)
	}
	if err := s.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	want(t, s, service.Finished, service.Success)
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	want(t, s, service.Inactive, service.None)
}

// TestOutOfOrderCalls: every call not allowed in a state is refused with
// ErrWrongState and the session goes on.
func TestOutOfOrderCalls(t *testing.T) {
	r, _, s := setup(t)
	ctx := context.Background()
	wrong := func(err error) {
		t.Helper()
		if !errors.Is(err, service.ErrWrongState) {
			t.Fatalf("got %v, want ErrWrongState", err)
		}
	}
	wrong(s.Verify(ctx))
	wrong(s.Apply(ctx))
	wrong(s.SetTransferred())
	wrong(s.Abort())
	wrong(s.Reset())
	_, err := s.Write([]byte("x"))
	wrong(err)
	want(t, s, service.Inactive, service.None)

	s.Start()
	wrong(s.Start())
	wrong(s.Verify(ctx))
	wrong(s.Apply(ctx))
	s.Transfer(bytes.NewReader(r.Bundle("fw/image.bin")))
	s.SetTransferred()
	wrong(s.SetTransferred())
	wrong(s.Apply(ctx))
	_, err = s.Write([]byte("x"))
	wrong(err)
	want(t, s, service.Transferred, service.None)
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	wrong(s.Verify(ctx))
	wrong(s.Start())
	if err := s.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	wrong(s.Apply(ctx))
	wrong(s.Abort())
	want(t, s, service.Finished, service.Success)
}

func TestAbort(t *testing.T) {
	r, _, s := setup(t)
	s.Start()
	s.Write(r.Bundle("fw/image.bin")[:100])
	if err := s.Abort(); err != nil {
		t.Fatal(err)
	}
	want(t, s, service.Finished, service.Aborted)
	if _, err := os.Stat(filepath.Join(s.Dir, "bundle.transfer")); err == nil {
		t.Error("transfer file left behind")
	}
	s.Reset()
	// Abort after verification: nothing is installed.
	path := filepath.Join(t.TempDir(), "b")
	os.WriteFile(path, r.Bundle("fw/image.bin"), 0o644)
	s.StartWithFile(path)
	if err := s.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Abort()
	want(t, s, service.Finished, service.Aborted)
}

func TestAttackTamperedBundleInService(t *testing.T) {
	r, d, s := setup(t)
	b := r.Bundle("fw/image.bin")
	b[len(b)-1] ^= 1 // the payload
	before, _ := d.Status()
	s.Start()
	s.Transfer(bytes.NewReader(b))
	s.SetTransferred()
	if err := s.Verify(context.Background()); err == nil {
		t.Fatal("tampered bundle verified")
	}
	want(t, s, service.Finished, service.Failed)
	if s.Status().Error == "" {
		t.Error("no failure reason")
	}
	after, _ := d.Status()
	if after.Installed != nil || before.Installed != nil {
		t.Error("installed something")
	}
}

// TestAbortDuringVerify races Abort and Status against Verify: whichever
// wins, the session ends aborted and nothing is installed.
func TestAbortDuringVerify(t *testing.T) {
	r, d, s := setup(t)
	path := filepath.Join(t.TempDir(), "b")
	os.WriteFile(path, r.Bundle("fw/image.bin"), 0o644)
	s.StartWithFile(path)
	done := make(chan error)
	go func() { done <- s.Verify(context.Background()) }()
	for s.Status().State == service.Transferred {
	}
	s.Abort()
	<-done
	want(t, s, service.Finished, service.Aborted)
	if st, _ := d.Status(); st.Installed != nil {
		t.Error("installed after abort")
	}
}

// TestYoungBundleHeldInService: a bundle whose release is inside the
// device's publicity window verifies, but applying it fails with
// device.ErrHeld and installs nothing.
func TestYoungBundleHeldInService(t *testing.T) {
	r := harness.NewRawRepo(t)
	r.CosignedAt = harness.Now.Add(-time.Hour)
	r.Reprove()
	r.AddTarget("targets", "fw/image.bin", []byte("firmware v1"), nil)
	r.Publish()
	dir := filepath.Join(t.TempDir(), "device")
	cfg := device.Config{Repository: r.ID, RepositoryURL: "http://127.0.0.1:1", Approval: "auto",
		MinPublicAge: device.Duration(24 * time.Hour), MinPublicAgeSecurity: device.Duration(24 * time.Hour)}
	if err := device.Init(dir, cfg, r.RootBytes(1), r.PolicyText(2)); err != nil {
		t.Fatal(err)
	}
	d, err := device.Open(dir, device.Options{Time: harness.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := &service.Service{Dir: dir, Device: d}
	ctx := context.Background()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Transfer(bytes.NewReader(r.Bundle("fw/image.bin"))); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTransferred(); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx); !errors.Is(err, device.ErrHeld) {
		t.Fatalf("Apply = %v, want ErrHeld", err)
	}
	want(t, s, service.Finished, service.Failed)
	if st, err := d.Status(); err != nil || st.Installed != nil {
		t.Errorf("a held bundle installed something: %+v, %v", st, err)
	}
}
