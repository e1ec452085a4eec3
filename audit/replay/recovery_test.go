package replay

import (
	"math"
	"testing"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/internal/harness/kit"
)

// poisonedLog is a log in which a thief with the targets key logged targets
// v2^63−1 after the vendor's v1, and root v2 then rotated the targets key.
func poisonedLog(t *testing.T) (l *log, r *kit.Repo, stolen []byte, stolenKeys []kit.Key) {
	l, r = newLog(t), newRepo("example.com/fw")
	l.add(r.ID, "root", 1, r.RootBytes())
	wantClean(t, l.add(r.ID, "targets", 1, r.Release(kit.Files("a", 1, 1))))
	r.SetVersion(math.MaxInt64 - 1)
	stolen = r.Release(kit.Files("evil", 1, 9))
	wantClean(t, l.add(r.ID, "targets", math.MaxInt64, stolen)) // validly signed: the vendor mode reports it
	root2, stolenKeys := r.RotateTargetsKey()
	wantClean(t, l.add(r.ID, "root", 2, root2))
	return l, r, stolen, stolenKeys
}

// TestVersionPoisoningRecoveredByRotation: after root v2 rotates the targets
// key, the clean release with a small version is valid, as the ledger and
// the device take it, and the sequence goes on from it.
func TestVersionPoisoningRecoveredByRotation(t *testing.T) {
	l, r, _, _ := poisonedLog(t)
	r.SetVersion(1)
	out := l.add(r.ID, "targets", 2, r.Release(kit.Files("a", 1, 2)))
	wantClean(t, out)
	if got := l.c.State(r.ID).Versions["targets"]; got != 2 {
		t.Errorf("targets version after the clean release: %d, want 2", got)
	}
	r.SetVersion(0)
	wantKind(t, l.add(r.ID, "targets", 1, r.Release(kit.Files("b", 1, 3))), alert.KindEquivocation, alert.Critical)
	r.SetVersion(2)
	wantClean(t, l.add(r.ID, "targets", 3, r.Release(nil)))
}

// TestReplayOfPoisonedVersionAfterRotation: the thief's version logged
// again after the rotation, as its own bytes or re-signed, is reported and
// moves nothing.
func TestReplayOfPoisonedVersionAfterRotation(t *testing.T) {
	l, r, stolen, stolenKeys := poisonedLog(t)
	r.SetVersion(1)
	wantClean(t, l.add(r.ID, "targets", 2, r.Release(nil)))
	wantKind(t, l.add(r.ID, "targets", math.MaxInt64, stolen), alert.KindDuplicate, alert.Warning)
	r.SetVersion(math.MaxInt64 - 1)
	out := l.add(r.ID, "targets", math.MaxInt64, r.Release(kit.Files("evil", 2, 9), stolenKeys...))
	wantKind(t, out, alert.KindEquivocation, alert.Critical)
	wantKind(t, out, alert.KindBadSignature, alert.Critical)
	r.SetVersion(5)
	wantKind(t, l.add(r.ID, "targets", 6, r.Release(nil, stolenKeys...)), alert.KindBadSignature, alert.Critical)
	if got := l.c.State(r.ID).Versions["targets"]; got != 2 {
		t.Errorf("targets version after the replays: %d, want 2", got)
	}
}

// TestVersionPoisoningWithoutRotationIsRollback: while the stolen key is
// still the targets key, nothing below its version is accepted.
func TestVersionPoisoningWithoutRotationIsRollback(t *testing.T) {
	l, r := newLog(t), newRepo("example.com/fw")
	l.add(r.ID, "root", 1, r.RootBytes())
	r.SetVersion(math.MaxInt64 - 1)
	l.add(r.ID, "targets", math.MaxInt64, r.Release(nil))
	r.SetVersion(1)
	wantKind(t, l.add(r.ID, "targets", 2, r.Release(nil)), alert.KindRollback, alert.Critical)
}
