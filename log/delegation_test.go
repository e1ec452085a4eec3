package log

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/tufcheck"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

const delegRepo = "example.com/fw"

// parsedTargets parses logged targets bytes as the ledger's History does.
func parsedTargets(t *testing.T, b []byte) *tufcheck.Targets {
	t.Helper()
	m, err := metadata.Targets().FromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// recordingMemo is a fakeHistory with a thresholdMemo that remembers what
// the checks tell it, by identity, as the ledger's does.
type recordingMemo struct {
	*fakeHistory
	met map[verifiedKey]*tufcheck.Targets
}

func (h *recordingMemo) metThreshold(delegator any, role string, latest *tufcheck.Targets) bool {
	return h.met[verifiedKey{delegator, role}] == latest
}

func (h *recordingMemo) rememberThreshold(delegator any, role string, latest *tufcheck.Targets) {
	h.met[verifiedKey{delegator, role}] = latest
}

// stolenTargets is a repository whose vendor logged root v1 and targets
// v1; a thief holding the targets key then logged targets v2 delegating
// role "evil" to the thief's own key. It returns the history as the
// ledger sees it then, the thief's delegated key and the root v2 bytes
// that rotate the stolen targets key out (not logged yet).
func stolenTargets(t *testing.T, now time.Time) (h *fakeHistory, repo *kit.Repo, evilKey kit.Key, root2 []byte) {
	t.Helper()
	repo = kit.NewRandomRepo(now.Add(time.Hour))
	root, err := tufcheck.InitialRoot(repo.RootBytes(), now)
	if err != nil {
		t.Fatal(err)
	}
	evilKey = repo.Delegate("evil")
	thiefTop := parsedTargets(t, repo.Targets(2)) // signed with the stolen targets key
	h = &fakeHistory{root: root, targets: map[string]*tufcheck.Targets{"targets": thiefTop}, version: map[string]uint64{"root": 1, "targets": 2}}
	root2, _ = repo.RotateTargetsKey()
	return h, repo, evilKey, root2
}

// TestAttackDelegationThroughRotatedOutTargets: a thief with the targets
// key logs a targets that delegates a role to the thief's key; root v2
// then rotates the stolen targets key out. Until the vendor logs a clean
// targets, the thief's targets delegates nothing: the thief's delegated
// metadata is refused (403, ErrNoDelegation) with a message that says to
// publish a new targets, and does not raise the role's floor. After the
// vendor's targets (which does not delegate "evil"), it stays refused,
// and the vendor's own delegation counts again.
func TestAttackDelegationThroughRotatedOutTargets(t *testing.T) {
	now := time.Now()
	h, repo, evilKey, root2 := stolenTargets(t, now)
	evil := repo.DelegatedTargets("evil", 1<<62, evilKey)
	if _, err := CheckSubmission(h, delegRepo, "evil", evil, now); err != nil {
		t.Fatalf("before the rotation the thief's delegation counts (its targets is signed by the targets key): %v", err)
	}
	r2, err := tufcheck.NextRoot(h.root, root2, now)
	if err != nil {
		t.Fatal(err)
	}
	h.root, h.version["root"] = r2, 2
	_, err = CheckSubmission(h, delegRepo, "evil", evil, now)
	if !errors.Is(err, tufcheck.ErrNoDelegation) || HTTPStatus(err) != http.StatusForbidden {
		t.Fatalf("the thief's delegated role after the rotation: %v (HTTP %d), want ErrNoDelegation, 403", err, HTTPStatus(err))
	}
	if msg := err.Error(); !strings.Contains(msg, "publish a new targets") || !strings.Contains(msg, "targets (v2)") || !strings.Contains(msg, "root (v2)") {
		t.Errorf("error does not say what to do: %q", msg)
	}
	// The memo of a ledger holds the thief's targets as current under root
	// v1 only: under root v2 it is verified again, and refused.
	m := &recordingMemo{h, map[verifiedKey]*tufcheck.Targets{}}
	if _, err := CheckSubmission(m, delegRepo, "evil", evil, now); !errors.Is(err, tufcheck.ErrNoDelegation) {
		t.Errorf("with a memo: %v, want ErrNoDelegation", err)
	}
	if len(m.met) != 0 {
		t.Errorf("a targets that no longer verifies was remembered: %v", m.met)
	}

	// The vendor's clean targets v3 under the new key, delegating "apps"
	// and no longer "evil".
	repo.Top.Signed.Delegations = nil
	appsKey := repo.Delegate("apps")
	clean, err := CheckSubmission(h, delegRepo, "targets", repo.Targets(3), now)
	if err != nil {
		t.Fatalf("the vendor's clean targets: %v", err)
	}
	h.targets["targets"], h.version["targets"] = clean.Targets, 3
	if _, err := CheckSubmission(h, delegRepo, "evil", evil, now); !errors.Is(err, tufcheck.ErrNoDelegation) || strings.Contains(err.Error(), "publish a new") {
		t.Errorf("the thief's role after the clean targets: %v, want plain ErrNoDelegation", err)
	}
	if _, err := CheckSubmission(h, delegRepo, "apps", repo.DelegatedTargets("apps", 1, appsKey), now); err != nil {
		t.Errorf("the vendor's delegated role after the clean targets: %v", err)
	}
}

// TestAttackDelegationThroughRotatedOutDelegator is the same attack one
// level down: a thief with the key of delegated role "apps" logs an apps
// that delegates "sub" to the thief's key; the vendor's targets v3 then
// rotates the apps key. Until a new apps is logged under the new key, the
// thief's apps delegates nothing, and the error names apps. A delegation
// from a current apps counts.
func TestAttackDelegationThroughRotatedOutDelegator(t *testing.T) {
	now := time.Now()
	repo := kit.NewRandomRepo(now.Add(time.Hour))
	root, err := tufcheck.InitialRoot(repo.RootBytes(), now)
	if err != nil {
		t.Fatal(err)
	}
	stolen := repo.Delegate("apps")
	top2 := parsedTargets(t, repo.Targets(2))
	thiefKey := kit.NewKey()
	h := &fakeHistory{root: root, targets: map[string]*tufcheck.Targets{"targets": top2}, version: map[string]uint64{"root": 1, "targets": 2}}
	h.targets["apps"], h.version["apps"] = parsedTargets(t, delegating(now, 7, "sub", thiefKey, stolen)), 7
	sub := repo.DelegatedTargets("sub", 1, thiefKey)
	if _, err := CheckSubmission(h, delegRepo, "sub", sub, now); err != nil {
		t.Fatalf("before the rotation: %v", err)
	}
	repo.RotateDelegatedKey("apps")
	h.targets["targets"], h.version["targets"] = parsedTargets(t, repo.Targets(3)), 3
	_, err = CheckSubmission(h, delegRepo, "sub", sub, now)
	if !errors.Is(err, tufcheck.ErrNoDelegation) || !strings.Contains(err.Error(), "publish a new apps") {
		t.Fatalf("through the rotated-out apps: %v, want ErrNoDelegation naming apps", err)
	}
	vendorKey := kit.NewKey()
	h.targets["apps"], h.version["apps"] = parsedTargets(t, delegating(now, 1, "sub", vendorKey, repo.DelegatedKeys["apps"][0])), 1
	if _, err := CheckSubmission(h, delegRepo, "sub", sub, now); !errors.Is(err, tufcheck.ErrThreshold) {
		t.Errorf("the thief's sub under the vendor's new apps: %v, want ErrThreshold", err)
	}
	if _, err := CheckSubmission(h, delegRepo, "sub", repo.DelegatedTargets("sub", 1, vendorKey), now); err != nil {
		t.Errorf("the vendor's sub under its new apps: %v", err)
	}
}

// delegating returns targets metadata of version that delegates role name
// (paths "name/*") to key alone, signed by signer.
func delegating(now time.Time, version int64, name string, key, signer kit.Key) []byte {
	m := metadata.Targets(now.Add(time.Hour))
	m.Signed.Version = version
	m.Signed.Delegations = &metadata.Delegations{
		Keys:  map[string]*metadata.Key{key.ID(): key.Pub},
		Roles: []metadata.DelegatedRole{{Name: name, KeyIDs: []string{key.ID()}, Threshold: 1, Paths: []string{name + "/*"}}},
	}
	return kit.Sign(m, signer)
}

// TestFindDelegatorRemembersCurrentDelegators: the search verifies each
// delegator on the way once and remembers it; the next submission takes
// the remembered verdict for the same objects and verifies none of the
// chain again (here: its signatures, removed after the first check, would
// no longer verify).
func TestFindDelegatorRemembersCurrentDelegators(t *testing.T) {
	now := time.Now()
	repo := kit.NewRandomRepo(now.Add(time.Hour))
	root, err := tufcheck.InitialRoot(repo.RootBytes(), now)
	if err != nil {
		t.Fatal(err)
	}
	appsKey := repo.Delegate("apps")
	top := parsedTargets(t, repo.Targets(1))
	subKey := kit.NewKey()
	apps := parsedTargets(t, delegating(now, 1, "sub", subKey, appsKey))
	h := &recordingMemo{&fakeHistory{root: root, targets: map[string]*tufcheck.Targets{"targets": top, "apps": apps}, version: map[string]uint64{"root": 1, "targets": 1, "apps": 1}}, map[verifiedKey]*tufcheck.Targets{}}
	if _, err := CheckSubmission(h, delegRepo, "sub", repo.DelegatedTargets("sub", 1, subKey), now); err != nil {
		t.Fatal(err)
	}
	if h.met[verifiedKey{root, "targets"}] != top || h.met[verifiedKey{top, "apps"}] != apps {
		t.Fatalf("the chain was not remembered: %v", h.met)
	}
	top.Signatures, apps.Signatures = nil, nil
	if _, err := CheckSubmission(h, delegRepo, "sub", repo.DelegatedTargets("sub", 2, subKey), now); err != nil {
		t.Errorf("the next submission verified the chain again: %v", err)
	}
	if _, err := CheckSubmission(h.fakeHistory, delegRepo, "sub", repo.DelegatedTargets("sub", 2, subKey), now); !errors.Is(err, tufcheck.ErrNoDelegation) {
		t.Errorf("without the memo, an unsigned targets delegated: %v", err)
	}
}
