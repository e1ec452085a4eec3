package device_test

import (
	"errors"
	"math"
	"testing"

	"github.com/shiplog/shiplog/client/tufcheck"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// poisonDevice: a thief holding the targets, snapshot and timestamp keys
// releases targets v2^63−1, logged and exposed, and the device installs it.
func poisonDevice(t *testing.T) (e *env, stolenFile string, stolen []byte) {
	e = start(t, 2)
	e.repo.Roles["targets"].Signed.Version = math.MaxInt64 - 1
	e.repo.AddTarget("targets", "fw/image.bin", []byte("backdoor"), nil)
	e.repo.Publish()
	e.mustUpdate()
	if got := e.installed("fw/image.bin"); got != "backdoor" {
		t.Fatalf("the thief's release did not install: %q", got)
	}
	stolenFile = currentTargetsFile(e)
	return e, stolenFile, e.repo.Read(stolenFile)
}

// TestVersionPoisoningRecoveredByRotation: root v2 rotates the stolen keys,
// and the device installs a clean release with a small targets version
// although it trusted targets v2^63−1 (docs/spec/versions.md).
func TestVersionPoisoningRecoveredByRotation(t *testing.T) {
	for _, rotate := range [][]string{{"targets"}, {"targets", "snapshot", "timestamp"}} {
		t.Run(rotate[len(rotate)-1], func(t *testing.T) {
			e, _, _ := poisonDevice(t)
			e.repo.RotateRoot(rotate...)
			e.repo.Roles["targets"].Signed.Version = 2
			e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v3"), nil)
			e.repo.Publish()
			if res := e.mustUpdate(); !res.Installed || e.installed("fw/image.bin") != "firmware v3" {
				t.Fatalf("clean release v3 after the rotation: %+v", res)
			}
			// The new sequence goes on: v4 installs, and the floor is v3.
			e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v4"), nil)
			e.repo.Publish()
			if res := e.mustUpdate(); !res.Installed || e.installed("fw/image.bin") != "firmware v4" {
				t.Fatalf("v4: %+v", res)
			}
		})
	}
}

// TestReplayOfPoisonedVersionAfterRotation: after the rotation and the clean
// release, a thief who still holds the snapshot and timestamp keys exposes
// the logged targets v2^63−1 again. The device refuses it: the new root's
// targets keys do not sign it.
func TestReplayOfPoisonedVersionAfterRotation(t *testing.T) {
	e, stolenFile, stolen := poisonDevice(t)
	e.withLedger() // fresh proofs of the thief's entry, under the latest checkpoint
	e.repo.RotateRoot("targets")
	e.repo.Roles["targets"].Signed.Version = 2
	e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v3"), nil)
	e.repo.Publish()
	e.mustUpdate()
	// The snapshot names the thief's file again (still served, still logged).
	e.repo.Write(stolenFile, stolen)
	e.repo.Roles["targets"] = mustTargets(t, stolen)
	e.repo.WriteSnapshot()
	e.repo.WriteTimestamp()
	err := e.attack()
	if !errors.Is(err, &metadata.ErrUnsignedMetadata{}) {
		t.Fatalf("replayed v2^63-1: got %v, want a signature error", err)
	}
	if got := e.installed("fw/image.bin"); got != "firmware v3" {
		t.Errorf("installed %q after the replay", got)
	}
}

// TestVersionPoisoningWithoutRotationStaysRefused: without a rotation the
// stolen key's version still binds: a lower version is a rollback.
func TestVersionPoisoningWithoutRotationStaysRefused(t *testing.T) {
	e, _, _ := poisonDevice(t)
	e.repo.Roles["targets"].Signed.Version = 2
	e.repo.AddTarget("targets", "fw/image.bin", []byte("firmware v3"), nil)
	e.repo.Publish()
	err := e.attack()
	if !errors.Is(err, tufcheck.ErrVersion) && !errors.Is(err, &metadata.ErrBadVersionNumber{}) {
		t.Fatalf("targets v3 below the trusted v2^63-1: got %v, want a version error", err)
	}
}

func mustTargets(t *testing.T, b []byte) *metadata.Metadata[metadata.TargetsType] {
	t.Helper()
	m, err := metadata.Targets().FromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
