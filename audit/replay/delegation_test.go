package replay

import (
	"strings"
	"testing"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TestAttackDelegationThroughRotatedOutTargets: a thief with the targets
// key logs a targets that delegates "evil" to the thief's key; root v2
// rotates the stolen key out. From then on, until the vendor's next
// targets, the thief's targets delegates nothing: the thief's delegated
// releases are reported (not-delegated) and move nothing, as the ledger
// refuses them, also for an auditor restored from its state. After the
// vendor's clean targets, the vendor's delegations count again.
func TestAttackDelegationThroughRotatedOutTargets(t *testing.T) {
	l, r := newLog(t), newRepo("example.com/fw")
	l.add(r.ID, "root", 1, r.RootBytes())
	wantClean(t, l.add(r.ID, "targets", 1, r.Release(nil)))
	r.Delegate("evil")
	wantClean(t, l.add(r.ID, "targets", 2, r.Release(nil))) // the thief's, validly signed
	wantClean(t, l.add(r.ID, "evil", 1, r.ReleaseDelegated("evil", kit.Files("evil/x", 1, 1))))
	root2, _ := r.RotateTargetsKey()
	wantClean(t, l.add(r.ID, "root", 2, root2))

	out := l.add(r.ID, "evil", 2, r.ReleaseDelegated("evil", kit.Files("evil/x", 1, 2)))
	wantKind(t, out, alert.KindNotDelegated, alert.Critical)
	if out.Release.Valid || !strings.Contains(out.Findings[0].Message, "no current targets role delegates") {
		t.Errorf("the thief's delegated release after the rotation: %+v", out)
	}
	restore(t, l, r.ID)
	r.Delegated["evil"].Signed.Version = 1 << 62 // the thief raising the role's floor
	wantKind(t, l.add(r.ID, "evil", 1<<62+1, r.ReleaseDelegated("evil", nil)), alert.KindNotDelegated, alert.Critical)
	if got := l.c.State(r.ID).Versions["evil"]; got != 1 {
		t.Errorf("evil's version after the refused releases: %d, want 1", got)
	}

	r.Top.Signed.Delegations = nil
	r.Delegate("apps")
	wantClean(t, l.add(r.ID, "targets", 3, r.Release(nil)))
	wantClean(t, l.add(r.ID, "apps", 1, r.ReleaseDelegated("apps", nil)))
	wantKind(t, l.add(r.ID, "evil", 1<<62+2, r.ReleaseDelegated("evil", nil)), alert.KindNotDelegated, alert.Critical)
}

// TestAttackDelegationThroughRotatedOutDelegator is the same attack one
// level down: a thief with the key of "apps" logs an apps that delegates
// "sub" to the thief's key; the vendor's targets v2 rotates the apps key.
// Until a new apps under the new key, the thief's apps delegates nothing.
func TestAttackDelegationThroughRotatedOutDelegator(t *testing.T) {
	l, r := newLog(t), newRepo("example.com/fw")
	l.add(r.ID, "root", 1, r.RootBytes())
	r.Delegate("apps")
	wantClean(t, l.add(r.ID, "targets", 1, r.Release(nil)))
	thiefKey := kit.NewKey()
	delegateSub(r.Delegated["apps"], thiefKey)
	wantClean(t, l.add(r.ID, "apps", 1, r.ReleaseDelegated("apps", nil))) // the thief's, with the stolen apps key
	sub := metadata.Targets(r.Expires)
	wantClean(t, l.add(r.ID, "sub", 1, signedAt(sub, 1, thiefKey)))
	r.RotateDelegatedKey("apps")
	wantClean(t, l.add(r.ID, "targets", 2, r.Release(nil)))

	wantKind(t, l.add(r.ID, "sub", 2, signedAt(sub, 2, thiefKey)), alert.KindNotDelegated, alert.Critical)
	restore(t, l, r.ID)
	wantKind(t, l.add(r.ID, "sub", 3, signedAt(sub, 3, thiefKey)), alert.KindNotDelegated, alert.Critical)

	vendorKey := kit.NewKey()
	delegateSub(r.Delegated["apps"], vendorKey)
	wantClean(t, l.add(r.ID, "apps", 2, r.ReleaseDelegated("apps", nil)))
	wantKind(t, l.add(r.ID, "sub", 4, signedAt(sub, 4, thiefKey)), alert.KindBadSignature, alert.Critical)
	wantClean(t, l.add(r.ID, "sub", 5, signedAt(sub, 5, vendorKey)))
}

// delegateSub makes t delegate role "sub" to key alone.
func delegateSub(t *metadata.Metadata[metadata.TargetsType], key kit.Key) {
	t.Signed.Delegations = &metadata.Delegations{
		Keys:  map[string]*metadata.Key{key.ID(): key.Pub},
		Roles: []metadata.DelegatedRole{{Name: "sub", KeyIDs: []string{key.ID()}, Threshold: 1, Paths: []string{"sub/*"}}},
	}
}

// signedAt returns m at version, signed by key.
func signedAt(m *metadata.Metadata[metadata.TargetsType], version int64, key kit.Key) []byte {
	m.Signed.Version = version
	return kit.Sign(m, key)
}

// restore replaces l's checker by one restored from the state of repo id,
// as an auditor that restarts does: no role remembers what it was
// verified under.
func restore(t *testing.T, l *log, id string) {
	t.Helper()
	b, err := MarshalRepoState(l.c.State(id))
	if err != nil {
		t.Fatal(err)
	}
	s, err := UnmarshalRepoState(b)
	if err != nil {
		t.Fatal(err)
	}
	l.c = NewChecker("example.com/log")
	if err := l.c.Load(id, s); err != nil {
		t.Fatal(err)
	}
}
