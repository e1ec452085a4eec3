package repo

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/repo/keys"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TestAttackDelegationThroughRotatedOutTargetsRepo (vendor tools): a thief
// with the targets key logs, from a copy of the repository, a targets v2
// that delegates "evil" to the thief's key, and evil v1. The vendor rotates
// the targets key and adds its own delegation in one staging; publish logs
// root v2, then the clean targets, then the new delegated role: the order
// in which the ledger counts the vendor's delegation (before the clean
// targets, the thief's targets is the latest logged one, and the ledger
// refuses delegated roles until a targets the new root accepts is logged).
// The thief's next evil version is refused.
func TestAttackDelegationThroughRotatedOutTargetsRepo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real ledger")
	}
	f := newRepoOn(t, keys.Ed25519, realLedger(t))
	f.sign(f.keys["root"], "root")
	f.sign(f.keys["targets"], "targets")
	if _, err := Register(context.Background(), f.dir, f.opts(false)); err != nil {
		t.Fatal(err)
	}
	f.publish(true)

	thief := &fixture{t: t, dir: filepath.Join(t.TempDir(), "stolen"), token: f.token, policy: f.policy, keys: f.keys}
	copyDir(t, f.dir, thief.dir)
	thiefKey := genKey(t, keys.Ed25519)
	r := thief.open()
	if _, err := r.Delegate(DelegateOptions{Name: "evil", Paths: []string{"evil/*"}, Keys: []*metadata.Key{thiefKey.Public}}); err != nil {
		t.Fatal(err)
	}
	r.Close()
	thief.sign(f.keys["targets"], "targets")
	thief.sign(thiefKey, "evil")
	if res := thief.publish(false); len(res.Logged) != 2 {
		t.Fatalf("the thief's targets and evil: %+v", res.Logged)
	}

	fresh, appsKey := genKey(t, keys.Ed25519), genKey(t, keys.Ed25519)
	err := f.stage(0, func(r *Repo) error {
		if _, err := r.Rotate(RotateOptions{Role: "targets", Add: []*metadata.Key{fresh.Public}, Remove: []string{f.keys["targets"].ID}}); err != nil {
			return err
		}
		_, err := r.Delegate(DelegateOptions{Name: "apps", Paths: []string{"apps/*"}, Keys: []*metadata.Key{appsKey.Public}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	f.sign(f.keys["root"], "root")
	f.sign(fresh, "targets")
	f.sign(appsKey, "apps")
	res := f.publish(true)
	var got []string
	for _, l := range res.Logged {
		got = append(got, l.Role)
	}
	if strings.Join(got, " ") != "root targets apps" {
		t.Fatalf("logged %v, want root, targets, apps", got)
	}

	r = thief.open()
	if _, _, err := r.Renew("evil"); err != nil {
		t.Fatal(err)
	}
	r.Close()
	thief.sign(thiefKey, "evil")
	_, err = Publish(context.Background(), thief.dir, thief.opts(false))
	var le *LedgerError
	if !errors.As(err, &le) || le.Status != 403 || !strings.Contains(le.Message, `delegates "evil"`) || !strings.Contains(err.Error(), "publish the delegating role") {
		t.Fatalf("the thief's evil v2 after the rotation: %v, want 403, not delegated, with the hint", err)
	}
}
