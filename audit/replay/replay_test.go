package replay

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// memHistory is an in-memory History that asserts it is never asked to
// record a repository, role and version twice.
type memHistory struct {
	t    *testing.T
	byID map[string]Release
}

func key(repo, role string, v uint64) string { return fmt.Sprintf("%s\x00%s\x00%d", repo, role, v) }

func (h *memHistory) Release(repo, role string, v uint64) (Release, bool, error) {
	r, ok := h.byID[key(repo, role, v)]
	return r, ok, nil
}

// log replays metadata files as consecutive log entries and returns every
// finding and release.
type log struct {
	t     *testing.T
	c     *Checker
	h     *memHistory
	index uint64
	// ins and outs are every entry checked and what Check said.
	ins  []Input
	outs []Output
}

// newLog returns an empty log. When the test ends, it replays the log's
// entries again with CheckAll, in batches of several sizes, and fails
// unless every output equals Check's.
func newLog(t *testing.T) *log {
	l := &log{t: t, c: NewChecker("example.com/log"), h: &memHistory{t: t, byID: map[string]Release{}}}
	t.Cleanup(func() {
		if !t.Failed() {
			checkAllAsCheck(t, l.ins, l.outs)
		}
	})
	return l
}

// checkAllAsCheck replays ins with CheckAll in batches of 1, 2, 3, 5 and
// all entries, and fails unless the outputs are want.
func checkAllAsCheck(t *testing.T, ins []Input, want []Output) {
	t.Helper()
	for _, size := range []int{1, 2, 3, 5, len(ins)} {
		if size == 0 {
			continue
		}
		c, h := NewChecker("example.com/log"), &memHistory{t: t, byID: map[string]Release{}}
		var got []Output
		for lo := 0; lo < len(ins); lo += size {
			outs, err := c.CheckAll(h, ins[lo:min(lo+size, len(ins))])
			if err != nil {
				t.Fatal(err)
			}
			for _, out := range outs {
				if out.Record {
					h.byID[key(out.Release.Repo, out.Release.Role, out.Release.Version)] = *out.Release
				}
			}
			got = append(got, outs...)
		}
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("CheckAll in batches of %d, entry %d:\n got %+v\nwant %+v", size, i, got[i], want[i])
			}
		}
	}
}

func (l *log) add(repo, role string, version uint64, md []byte) Output {
	l.t.Helper()
	e, err := entry.New(repo, role, version, md)
	if err != nil {
		l.t.Fatal(err)
	}
	return l.addRaw(e.Format(), md)
}

func (l *log) addRaw(entryBytes, md []byte) Output {
	l.t.Helper()
	in := Input{Index: l.index, Entry: entryBytes, Metadata: md, LoggedBy: now}
	out, err := l.c.Check(l.h, in)
	if err != nil {
		l.t.Fatal(err)
	}
	l.ins, l.outs = append(l.ins, in), append(l.outs, out)
	if out.Record {
		k := key(out.Release.Repo, out.Release.Role, out.Release.Version)
		if _, dup := l.h.byID[k]; dup {
			l.t.Fatalf("Record set twice for %s", k)
		}
		l.h.byID[k] = *out.Release
	}
	l.index++
	return out
}

func kinds(fs []alert.Finding) []alert.Kind {
	var ks []alert.Kind
	for _, f := range fs {
		ks = append(ks, f.Kind)
	}
	return ks
}

func wantKind(t *testing.T, out Output, k alert.Kind, sev alert.Severity) {
	t.Helper()
	for _, f := range out.Findings {
		if f.Kind == k {
			if f.Severity != sev {
				t.Errorf("finding %s has severity %s, want %s", k, f.Severity, sev)
			}
			return
		}
	}
	t.Errorf("findings %v, want %s", kinds(out.Findings), k)
}

func wantClean(t *testing.T, out Output) {
	t.Helper()
	if len(out.Findings) != 0 {
		t.Errorf("honest release: findings %v (%+v)", kinds(out.Findings), out.Findings)
	}
	if out.Release == nil || !out.Release.Valid {
		t.Errorf("honest release not valid: %+v", out.Release)
	}
}

func newRepo(id string) *kit.Repo { return kit.NewRepo(id, now.Add(365*24*time.Hour)) }

func TestHonestHistoryHasNoFindings(t *testing.T) {
	l := newLog(t)
	r := newRepo("example.com/fw")
	wantClean(t, l.add(r.ID, "root", 1, r.RootBytes()))
	wantClean(t, l.add(r.ID, "targets", 1, r.Release(kit.Files("a", 2, 1))))
	r.Delegate("apps")
	wantClean(t, l.add(r.ID, "targets", 2, r.Release(nil)))
	wantClean(t, l.add(r.ID, "apps", 1, r.ReleaseDelegated("apps", kit.Files("apps/x", 1, 2))))
	root2, _ := r.RotateTargetsKey()
	wantClean(t, l.add(r.ID, "root", 2, root2))
	out := l.add(r.ID, "targets", 3, r.Release(kit.Files("a", 3, 3)))
	wantClean(t, out)
	if got := out.Release.Changed; len(got) != 3 || got[0] != "+a-2.bin" || got[1] != "~a-0.bin" {
		t.Errorf("Changed = %v, want [+a-2.bin ~a-0.bin ~a-1.bin]", got)
	}
	// A second repository interleaved with the first.
	r2 := newRepo("example.com/other")
	wantClean(t, l.add(r2.ID, "root", 1, r2.RootBytes()))
	wantClean(t, l.add(r2.ID, "targets", 1, r2.Release(nil)))
	wantClean(t, l.add(r.ID, "apps", 2, r.ReleaseDelegated("apps", nil)))
}

func TestAttackReleaseSignedByRevokedKey(t *testing.T) {
	l := newLog(t)
	r := newRepo("example.com/fw")
	l.add(r.ID, "root", 1, r.RootBytes())
	l.add(r.ID, "targets", 1, r.Release(nil))
	root2, revoked := r.RotateTargetsKey()
	wantClean(t, l.add(r.ID, "root", 2, root2))
	// The thief holds the old targets key and the ledger logs what it signs.
	out := l.add(r.ID, "targets", 2, r.Release(kit.Files("evil", 1, 9), revoked...))
	wantKind(t, out, alert.KindBadSignature, alert.Critical)
	if out.Release.Valid {
		t.Error("release signed by a revoked key marked valid")
	}
	// The state did not move: the vendor's next release, version 3, is fine.
	wantClean(t, l.add(r.ID, "targets", 3, r.Release(nil)))
}

func TestAttackEquivocation(t *testing.T) {
	l := newLog(t)
	r := newRepo("example.com/fw")
	l.add(r.ID, "root", 1, r.RootBytes())
	wantClean(t, l.add(r.ID, "targets", 1, r.Release(kit.Files("a", 1, 1))))
	r.SetVersion(0)
	out := l.add(r.ID, "targets", 1, r.Release(kit.Files("b", 1, 1)))
	wantKind(t, out, alert.KindEquivocation, alert.Critical)
	if out.Record {
		t.Error("second file of one version recorded in history")
	}
}

func TestAttackReplayOfSameRelease(t *testing.T) {
	l := newLog(t)
	r := newRepo("example.com/fw")
	l.add(r.ID, "root", 1, r.RootBytes())
	md := r.Release(nil)
	l.add(r.ID, "targets", 1, md)
	out := l.add(r.ID, "targets", 1, md)
	wantKind(t, out, alert.KindDuplicate, alert.Warning)
	if len(out.Findings) != 1 {
		t.Errorf("findings %v, want only duplicate", kinds(out.Findings))
	}
}

func TestAttackRollback(t *testing.T) {
	l := newLog(t)
	r := newRepo("example.com/fw")
	l.add(r.ID, "root", 1, r.RootBytes())
	r.SetVersion(4)
	l.add(r.ID, "targets", 5, r.Release(nil))
	r.SetVersion(2)
	wantKind(t, l.add(r.ID, "targets", 3, r.Release(nil)), alert.KindRollback, alert.Critical)
}

func TestAttackUnloggedRootRotation(t *testing.T) {
	l := newLog(t)
	r := newRepo("example.com/fw")
	l.add(r.ID, "root", 1, r.RootBytes())
	r.RotateTargetsKey()          // v2, never logged
	v3, _ := r.RotateTargetsKey() // v3
	wantKind(t, l.add(r.ID, "root", 3, v3), alert.KindRootGap, alert.Critical)
	// Targets signed by the v3 targets key do not verify under logged v1.
	wantKind(t, l.add(r.ID, "targets", 1, r.Release(nil)), alert.KindBadSignature, alert.Critical)
}

func TestAttackRootRotationByNewKeysOnly(t *testing.T) {
	l := newLog(t)
	r := newRepo("example.com/fw")
	l.add(r.ID, "root", 1, r.RootBytes())
	evil := kit.SeededKey("evil root")
	r.Root.Signed.Version = 2
	r.Root.Signed.Roles["root"].KeyIDs = nil
	if err := r.Root.Signed.AddKey(evil.Pub, "root"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, l.add(r.ID, "root", 2, r.RootBytes(evil)), alert.KindBadSignature, alert.Critical)
}

func TestAttackReleaseOfUnknownRepository(t *testing.T) {
	l := newLog(t)
	r := newRepo("example.com/fw")
	wantKind(t, l.add(r.ID, "targets", 1, r.Release(nil)), alert.KindUnknownRepo, alert.Critical)
}

func TestAttackMetadataNotMatchingEntry(t *testing.T) {
	l := newLog(t)
	r := newRepo("example.com/fw")
	root := r.RootBytes()
	e, _ := entry.New(r.ID, "root", 1, root)
	wantKind(t, l.addRaw(e.Format(), append([]byte{' '}, root...)), alert.KindMetadataMismatch, alert.Critical)
	wantKind(t, l.addRaw(e.Format(), nil), alert.KindMetadataMissing, alert.Critical)
}

func TestAttackUndelegatedRole(t *testing.T) {
	l := newLog(t)
	r := newRepo("example.com/fw")
	l.add(r.ID, "root", 1, r.RootBytes())
	l.add(r.ID, "targets", 1, r.Release(nil))
	r.Delegate("apps") // not released: the logged targets v1 delegates nothing
	wantKind(t, l.add(r.ID, "apps", 1, r.ReleaseDelegated("apps", nil)), alert.KindNotDelegated, alert.Critical)
	l.add(r.ID, "targets", 2, r.Release(nil))
	// Delegated role signed by the top-level targets key instead of its own.
	wantKind(t, l.add(r.ID, "apps", 2, r.ReleaseDelegated("apps", nil, r.TargetsKeys...)), alert.KindBadSignature, alert.Critical)
	wantClean(t, l.add(r.ID, "apps", 3, r.ReleaseDelegated("apps", nil)))
}

func TestAttackWrongRoleAndVersion(t *testing.T) {
	l := newLog(t)
	r := newRepo("example.com/fw")
	l.add(r.ID, "root", 1, r.RootBytes())
	wantKind(t, l.add(r.ID, "targets", 2, r.RootBytes()), alert.KindWrongRole, alert.Critical)
	wantKind(t, l.add(r.ID, "snapshot", 1, r.Release(nil)), alert.KindWrongRole, alert.Critical)
	wantKind(t, l.add(r.ID, "targets", 7, r.Release(nil)), alert.KindVersionMismatch, alert.Critical)
	wantKind(t, l.add(r.ID, "targets", 3, []byte("{not json")), alert.KindMalformedMeta, alert.Critical)
	wantKind(t, l.addRaw([]byte("shiplog/release/v1\nrepo x\n"), nil), alert.KindMalformedEntry, alert.Critical)
}

func TestExpiry(t *testing.T) {
	c := NewChecker("example.com/log")
	h := &memHistory{t: t, byID: map[string]Release{}}
	r := kit.NewRepo("example.com/fw", now.Add(-time.Hour))
	root := r.RootBytes()
	e, _ := entry.New(r.ID, "root", 1, root)
	tests := []struct {
		name        string
		after, by   time.Time
		kind        alert.Kind
		sev         alert.Severity
		maxValidity time.Duration
	}{
		{"expired before previous checkpoint", now.Add(-30 * time.Minute), now, alert.KindExpiredWhenSeen, alert.Warning, 0},
		{"catch-up, expired before first seen", time.Time{}, now, alert.KindExpiredWhenSeen, alert.Info, 0},
		{"too far ahead", time.Time{}, now.Add(-2 * time.Hour), alert.KindExpiryTooFar, alert.Warning, time.Minute},
		{"fine", now.Add(-3 * time.Hour), now.Add(-2 * time.Hour), "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.repos = map[string]*repo{}
			c.MaxValidity = tt.maxValidity
			out, err := c.Check(h, Input{Entry: e.Format(), Metadata: root, LoggedBy: tt.by, LoggedAfter: tt.after})
			if err != nil {
				t.Fatal(err)
			}
			if tt.kind == "" {
				wantClean(t, out)
				return
			}
			wantKind(t, out, tt.kind, tt.sev)
			if !out.Release.Valid {
				t.Error("expiry finding made the release invalid")
			}
		})
	}
}

func TestStateRoundTrip(t *testing.T) {
	l := newLog(t)
	r := newRepo("example.com/fw")
	l.add(r.ID, "root", 1, r.RootBytes())
	r.Delegate("apps")
	l.add(r.ID, "targets", 1, r.Release(nil))
	l.add(r.ID, "apps", 1, r.ReleaseDelegated("apps", nil))
	if got := l.c.Dirty(); len(got) != 1 || got[0] != r.ID {
		t.Fatalf("Dirty = %v", got)
	}
	b, err := MarshalRepoState(l.c.State(r.ID))
	if err != nil {
		t.Fatal(err)
	}
	s, err := UnmarshalRepoState(b)
	if err != nil {
		t.Fatal(err)
	}
	// A new checker restored from the state continues the replay.
	l.c = NewChecker("example.com/log")
	if err := l.c.Load(r.ID, s); err != nil {
		t.Fatal(err)
	}
	wantClean(t, l.add(r.ID, "apps", 2, r.ReleaseDelegated("apps", nil)))
	wantClean(t, l.add(r.ID, "targets", 2, r.Release(nil)))
	r.SetVersion(0)
	out := l.add(r.ID, "targets", 1, r.Release(kit.Files("late", 1, 1)))
	wantKind(t, out, alert.KindRollback, alert.Critical)
	wantKind(t, out, alert.KindEquivocation, alert.Critical)
}

func TestRefusedReleaseShowsWhatItChanged(t *testing.T) {
	l := newLog(t)
	r := newRepo("example.com/fw")
	l.add(r.ID, "root", 1, r.RootBytes())
	l.add(r.ID, "targets", 1, r.Release(kit.Files("fw", 1, 1)))
	root2, revoked := r.RotateTargetsKey()
	l.add(r.ID, "root", 2, root2)
	out := l.add(r.ID, "targets", 2, r.Release(kit.Files("backdoor", 1, 2), revoked...))
	wantKind(t, out, alert.KindBadSignature, alert.Critical)
	if got := out.Release.Changed; len(got) != 1 || got[0] != "+backdoor-0.bin" {
		t.Errorf("Changed of the refused release = %v, want [+backdoor-0.bin]", got)
	}
	if got := out.Findings[0].Evidence["targets_changed"]; got != "+backdoor-0.bin" {
		t.Errorf("finding evidence targets_changed = %q", got)
	}
}

func setCaps(r *kit.Repo, name string, custom string) {
	if r.Top.Signed.Targets[name] == nil {
		tf, err := metadata.TargetFile().FromBytes(name, []byte(name), "sha256")
		if err != nil {
			panic(err)
		}
		r.Top.Signed.Targets[name] = tf
	}
	c := json.RawMessage(custom)
	r.Top.Signed.Targets[name].Custom = &c
}

// TestCapabilityEscalationIsPublic: a valid release that widens what a
// target may do is reported to everyone (info), not only to the devices
// that prompt; a release that narrows it, or keeps it, is not.
func TestCapabilityEscalationIsPublic(t *testing.T) {
	l := newLog(t)
	r := newRepo("example.com/fw")
	wantClean(t, l.add(r.ID, "root", 1, r.RootBytes()))
	wantClean(t, l.add(r.ID, "targets", 1, r.Release(nil)))
	setCaps(r, "cam.bin", `{"capabilities":["network"]}`)
	wantKind(t, l.add(r.ID, "targets", 2, r.Release(nil)), alert.KindCapabilityEscalation, alert.Info) // a new target gains what it declares
	setCaps(r, "cam.bin", `{"capabilities":["camera","network"]}`)
	out := l.add(r.ID, "targets", 3, r.Release(nil))
	wantKind(t, out, alert.KindCapabilityEscalation, alert.Info)
	if f := out.Findings[0]; f.Evidence["gained"] != "camera" || f.Evidence["target"] != "cam.bin" {
		t.Errorf("finding evidence %v", f.Evidence)
	}
	setCaps(r, "cam.bin", `{"capabilities":["camera"]}`)
	wantClean(t, l.add(r.ID, "targets", 4, r.Release(nil)))
	setCaps(r, "cam.bin", `{"capabilities":["teleport"]}`)
	wantKind(t, l.add(r.ID, "targets", 5, r.Release(nil)), alert.KindMalformedCapabilities, alert.Warning)
}
