package device_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/approval"
	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/internal/harness"
)

// startWindow makes a device with publicity window w (and the given extra
// config) that has firmware v1 installed, released a month before
// harness.Now.
func startWindow(t *testing.T, cfg device.Config) *env {
	t.Helper()
	e := newEnv(t, 2, cfg)
	e.repo.CosignedAt = harness.Now.Add(-30 * 24 * time.Hour)
	e.repo.Reprove()
	e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v1"), nil)
	e.repo.Publish()
	if res := e.mustUpdate(); !res.Installed {
		t.Fatalf("initial install of a month-old release: %+v", res)
	}
	return e
}

func (e *env) updateAt(at time.Time, o device.Options) (*device.Result, error) {
	o.Time = at
	d := e.open(o)
	defer d.Close()
	return d.Update(context.Background())
}

// release publishes fw/image.bin with data, cosigned at at.
func (e *env) releaseAt(at time.Time, data string, custom map[string]any) {
	e.repo.CosignedAt = at
	e.repo.AddTarget("targets", "fw/image.bin", []byte(data), custom)
	e.repo.Publish()
}

// TestStolenKeyReleaseHeldByWindow: a release logged a minute ago (as one
// signed with a stolen key would be, on its way to every device) is held
// by a 24h window: not installed, not an error, no trusted state changed;
// it installs once its witnesses' timestamps are a day old.
func TestStolenKeyReleaseHeldByWindow(t *testing.T) {
	e := startWindow(t, device.Config{MinPublicAge: device.Duration(24 * time.Hour), MinPublicAgeSecurity: device.Duration(24 * time.Hour)})
	e.releaseAt(harness.Now.Add(-time.Minute), "firmware v2", nil)
	before := e.snap()
	res, err := e.updateAt(harness.Now, device.Options{})
	if err != nil {
		t.Fatalf("holding a young release is not an error: %v", err)
	}
	if res.Installed || res.Action != approval.Hold || e.installed("fw/image.bin") != "firmware v1" {
		t.Fatalf("young release: %+v, installed %q", res, e.installed("fw/image.bin"))
	}
	if after := e.snap(); !after.equal(before) {
		t.Fatal("holding a release changed the trusted state or the installed version")
	}
	want := harness.Now.Add(-time.Minute).Add(24 * time.Hour).UTC()
	if p := res.Summary.Publicity; p == nil || !p.Public || !p.EligibleAt.Equal(want) {
		t.Errorf("publicity = %+v, want eligible at %v", res.Summary.Publicity, want)
	}
	d := e.open(device.Options{})
	st, err := d.Status()
	d.Close()
	if err != nil || st.Pending == nil || st.Pending.ToVersion != res.Summary.ToVersion || !st.Pending.Publicity.EligibleAt.Equal(want) {
		t.Errorf("status does not show the pending release: %+v, %v", st.Pending, err)
	}
	res, err = e.updateAt(want, device.Options{})
	if err != nil || !res.Installed || e.installed("fw/image.bin") != "firmware v2" {
		t.Fatalf("eligible release: %+v, %v", res, err)
	}
	d = e.open(device.Options{})
	st, _ = d.Status()
	d.Close()
	if st.Pending != nil {
		t.Errorf("pending release still shown after it installed: %+v", st.Pending)
	}
}

// TestWithdrawnReleaseNeverInstalls: the vendor withdraws a held release
// (a later targets version no longer lists it); the device, checking again
// after the window, installs the later version and never the withdrawn one.
func TestWithdrawnReleaseNeverInstalls(t *testing.T) {
	e := startWindow(t, device.Config{MinPublicAge: device.Duration(time.Hour), MinPublicAgeSecurity: device.Duration(time.Hour)})
	t0 := harness.Now
	e.releaseAt(t0, "evil firmware", nil)
	if res, err := e.updateAt(t0.Add(time.Minute), device.Options{}); err != nil || res.Action != approval.Hold {
		t.Fatalf("young release: %+v, %v", res, err)
	}
	// The alarm is raised; the vendor withdraws it.
	e.repo.CosignedAt = t0.Add(10 * time.Minute)
	e.repo.RemoveTarget("targets", "fw/image.bin")
	e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v1"), nil)
	e.repo.Publish()
	for _, at := range []time.Time{t0.Add(time.Hour), t0.Add(2 * time.Hour), t0.Add(48 * time.Hour)} {
		if _, err := e.updateAt(at, device.Options{}); err != nil {
			t.Fatalf("update at %v: %v", at, err)
		}
		if got := e.installed("fw/image.bin"); got != "firmware v1" {
			t.Fatalf("at %v the device runs %q: a withdrawn release was installed", at, got)
		}
	}
}

// TestDeviceClockBehindHolds: a device whose clock is wrong (years behind)
// sees the witnesses' timestamps in its future; none counts, so the release
// is held, never installed early. (A clock ahead is bounded by TUF expiry:
// the metadata expire a year after harness.Now.)
func TestDeviceClockBehindHolds(t *testing.T) {
	e := startWindow(t, device.Config{MinPublicAge: device.Duration(time.Hour), MinPublicAgeSecurity: device.Duration(time.Hour)})
	e.releaseAt(harness.Now.Add(-48*time.Hour), "firmware v2", nil)
	res, err := e.updateAt(harness.Now.Add(-72*time.Hour), device.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Installed || res.Action != approval.Hold || res.Summary.Publicity.Public {
		t.Fatalf("device clock behind the witnesses: %+v %+v", res, res.Summary.Publicity)
	}
	if !strings.Contains(res.Message, "not yet proven public") {
		t.Errorf("message %q", res.Message)
	}
}

// TestQuorumMetOnlyByYoungCosignaturesHolds: one witness cosigned long ago,
// but the second of the 2-of-3 quorum only now: the release is young.
func TestQuorumMetOnlyByYoungCosignaturesHolds(t *testing.T) {
	e := startWindow(t, device.Config{MinPublicAge: device.Duration(24 * time.Hour), MinPublicAgeSecurity: device.Duration(24 * time.Hour)})
	e.releaseAt(harness.Now.Add(-30*24*time.Hour), "firmware v2", nil)
	// Re-cosign the targets proof: w0 a month ago, w1 a minute ago.
	name := currentTargetsFile(e)
	b := e.repo.Read(name)
	en, err := entry.New(e.repo.ID, "targets", uint64(e.repo.Roles["targets"].Signed.Version), b)
	if err != nil {
		t.Fatal(err)
	}
	lh := en.LeafHash()
	i, ok := e.repo.Log.IndexOf(lh[:])
	if !ok {
		t.Fatal("targets entry not in the log")
	}
	e.repo.Write(name+".tlog-proof", e.repo.Log.ProofAtTimes(i, e.repo.Log.Size(), map[int]time.Time{
		0: harness.Now.Add(-30 * 24 * time.Hour), 1: harness.Now.Add(-time.Minute)}))
	res, err := e.updateAt(harness.Now, device.Options{})
	if err != nil || res.Action != approval.Hold {
		t.Fatalf("quorum met only by young cosignatures: %+v, %v", res, err)
	}
}

// TestSecurityWindowNeverBelowFloor: security fixes may use a shorter
// window, and a configuration below the owner's floor is refused.
func TestSecurityWindowNeverBelowFloor(t *testing.T) {
	e := startWindow(t, device.Config{MinPublicAge: device.Duration(72 * time.Hour), MinPublicAgeSecurity: device.Duration(time.Hour), MinPublicAgeFloor: device.Duration(time.Hour)})
	e.releaseAt(harness.Now.Add(-2*time.Hour), "firmware v2", map[string]any{"security": true})
	res, err := e.updateAt(harness.Now, device.Options{})
	if err != nil || !res.Installed {
		t.Fatalf("a 2h-old security fix under a 1h security window: %+v, %v", res, err)
	}
	e.releaseAt(harness.Now.Add(-2*time.Hour), "firmware v3", nil)
	if res, err := e.updateAt(harness.Now, device.Options{}); err != nil || res.Action != approval.Hold {
		t.Fatalf("a 2h-old ordinary release under a 72h window: %+v, %v", res, err)
	}
	cfg := device.Config{Repository: "r", MinPublicAge: device.Duration(72 * time.Hour), MinPublicAgeSecurity: device.Duration(time.Minute), MinPublicAgeFloor: device.Duration(time.Hour)}
	if err := cfg.Validate(); err == nil {
		t.Error("a security window below the owner's floor was accepted")
	}
}

// TestWindowNeedsWitnessQuorum: with "quorum none" nothing proves when a
// release became public; a window is refused at init.
func TestWindowNeedsWitnessQuorum(t *testing.T) {
	r := harness.NewRawRepo(t)
	cfg := device.Config{Repository: r.ID, MinPublicAge: device.Duration(time.Hour), MinPublicAgeSecurity: device.Duration(time.Hour)}
	policy := []byte("log " + r.Log.VKey + "\nquorum none\n")
	if err := device.Init(filepath.Join(t.TempDir(), "d"), cfg, r.RootBytes(1), policy); err == nil {
		t.Error("a window under quorum none was accepted")
	}
}

// TestCapabilityEscalationNeedsConsent: in mode auto, an update whose
// target gains a capability is not installed without explicit consent;
// with it (--yes) it is; losing a capability needs none.
func TestCapabilityEscalationNeedsConsent(t *testing.T) {
	e := start(t, 2)
	e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v2"), map[string]any{"capabilities": []string{"camera", "network"}})
	e.repo.Publish()
	before := e.snap()
	res, err := e.update()
	if err != nil {
		t.Fatal(err)
	}
	if res.Installed || e.installed("fw/image.bin") != "firmware v1" {
		t.Fatalf("escalation installed without consent in mode auto: %+v", res)
	}
	if after := e.snap(); !after.equal(before) {
		t.Fatal("a declined escalation changed the device")
	}
	// status shows the update that waits for consent (a device updated by
	// a timer would otherwise never tell its owner).
	d0 := e.open(device.Options{})
	st, err := d0.Status()
	d0.Close()
	if err != nil || st.Pending == nil || !strings.Contains(st.Pending.Description, "waiting for your consent: targets version 3: fw/image.bin gains camera, network") {
		t.Fatalf("status while an escalation waits for consent: %+v, %v", st.Pending, err)
	}
	ch := res.Summary.Changes[0]
	if !slices.Equal(ch.Gained, []string{"camera", "network"}) || !strings.Contains(res.Summary.Text(), "GAINS capabilities: camera, network") {
		t.Errorf("summary does not show the gain: %+v\n%s", ch, res.Summary.Text())
	}
	var asked *approval.Summary
	d := e.open(device.Options{Prompt: func(s *approval.Summary) (bool, error) { asked = s; return true, nil }})
	res, err = d.Update(context.Background())
	d.Close()
	if err != nil || !res.Installed || asked == nil {
		t.Fatalf("consented escalation: %+v, %v (asked: %v)", res, err, asked != nil)
	}
	d0 = e.open(device.Options{})
	st, err = d0.Status()
	d0.Close()
	if err != nil || st.Pending != nil {
		t.Errorf("status after the consented install still shows pending: %+v, %v", st.Pending, err)
	}
	// Dropping a capability is no escalation: mode auto installs it.
	e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v3"), map[string]any{"capabilities": []string{"network"}})
	e.repo.Publish()
	res = e.mustUpdate()
	if !res.Installed || !slices.Equal(res.Summary.Changes[0].Lost, []string{"camera"}) {
		t.Fatalf("capability loss: %+v", res.Summary.Changes)
	}
}

// TestDeniedCapabilityRefused: a device that denies system refuses an
// update gaining it, even with consent, and changes nothing.
func TestDeniedCapabilityRefused(t *testing.T) {
	e := newEnv(t, 2, device.Config{DenyCapabilities: []string{"system", "storage"}})
	e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v1"), nil)
	e.repo.Publish()
	e.mustUpdate()
	for _, caps := range [][]string{{"system"}, {"storage:/boot"}} {
		e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware "+caps[0]), map[string]any{"capabilities": caps})
		e.repo.Publish()
		before := e.snap()
		d := e.open(device.Options{Yes: true})
		_, err := d.Update(context.Background())
		d.Close()
		if !errors.Is(err, device.ErrDenied) {
			t.Fatalf("gaining %v: err = %v, want ErrDenied", caps, err)
		}
		if after := e.snap(); !after.equal(before) {
			t.Fatal("a denied update changed the device")
		}
	}
}

// TestMalformedCapabilitiesRefused: a target whose capability list does
// not parse is refused, never read as "none".
func TestMalformedCapabilitiesRefused(t *testing.T) {
	e := start(t, 2)
	e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v2"), map[string]any{"capabilities": []string{"network", "camera"}})
	e.repo.Publish()
	if err := e.attack(); !strings.Contains(err.Error(), "capabilities") {
		t.Errorf("err = %v", err)
	}
}

// TestBundleHeldByWindow: an offline bundle carries the same proofs and is
// held the same way.
func TestBundleHeldByWindow(t *testing.T) {
	e := startWindow(t, device.Config{MinPublicAge: device.Duration(24 * time.Hour), MinPublicAgeSecurity: device.Duration(24 * time.Hour)})
	e.releaseAt(harness.Now.Add(-time.Hour), "firmware v2", nil)
	path := filepath.Join(t.TempDir(), "b.bundle")
	if err := os.WriteFile(path, e.repo.Bundle("fw/image.bin"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{{harness.Now, false}, {harness.Now.Add(24 * time.Hour), true}} {
		at, want := tc.at, tc.want
		d := e.open(device.Options{Time: at, Yes: true})
		res, err := d.InstallBundle(context.Background(), path)
		d.Close()
		if err != nil || res.Installed != want {
			t.Fatalf("bundle at %v: %+v, %v; want installed %v", at, res, err, want)
		}
	}
}

// TestFirstInstallIsTheBaselineNotAnEscalation: a device that denies
// system escalations (the high-risk profile's rule) can still be set up
// with an operating system that declares system: its first install is the
// baseline, installed only with the owner's consent; from then on a target
// gaining system, or a new target declaring it, is refused even with
// consent, and an update that keeps system is no escalation.
func TestFirstInstallIsTheBaselineNotAnEscalation(t *testing.T) {
	e := newEnv(t, 2, device.Config{DenyCapabilities: []string{"system"}})
	e.repo.AddTarget("targets", "os.bin", []byte("os v1"), map[string]any{"capabilities": []string{"system"}})
	e.repo.Publish()
	res := e.mustUpdate()
	if res.Installed || !slices.Equal(res.Summary.Changes[0].Gained, []string{"system"}) || len(res.Summary.Changes[0].Denied) != 0 {
		t.Fatalf("first install without consent: %+v", res.Summary.Changes)
	}
	d := e.open(device.Options{Yes: true})
	res, err := d.Update(context.Background())
	d.Close()
	if err != nil || !res.Installed || e.installed("os.bin") != "os v1" {
		t.Fatalf("first install with consent: %+v, %v", res, err)
	}

	// Keeping system is no gain: installed without asking.
	e.repo.AddTarget("targets", "os.bin", []byte("os v2"), map[string]any{"capabilities": []string{"system"}})
	e.repo.Publish()
	if res := e.mustUpdate(); !res.Installed || e.installed("os.bin") != "os v2" {
		t.Fatalf("an update keeping system: %+v", res)
	}

	// A new target declaring system escalates the device: refused.
	e.repo.AddTarget("targets", "helper.bin", []byte("helper"), map[string]any{"capabilities": []string{"system"}})
	e.repo.Publish()
	before := e.snap()
	d = e.open(device.Options{Yes: true})
	_, err = d.Update(context.Background())
	d.Close()
	if !errors.Is(err, device.ErrDenied) {
		t.Fatalf("a new target declaring system after the baseline: err = %v, want ErrDenied", err)
	}
	if after := e.snap(); !after.equal(before) {
		t.Fatal("a denied update changed the device")
	}
}
