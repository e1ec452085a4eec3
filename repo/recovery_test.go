package repo

import (
	"context"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/repo/keys"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// copyDir copies a repository directory (the thief's copy).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if d.Name() == ".lock" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// theft makes a repository on the real ledger with targets v1 logged, and
// lets a thief with the targets key log targets version v from a copy.
func theft(t *testing.T, v int64) *fixture {
	t.Helper()
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
	r := thief.open()
	r.Version = v
	if _, _, err := r.Renew("targets"); err != nil {
		t.Fatal(err)
	}
	r.Close()
	thief.sign(f.keys["targets"], "targets")
	thief.publish(false)
	return f
}

// stage runs fn on the vendor's repository, asking the ledger.
func (f *fixture) stage(version int64, fn func(r *Repo) error) error {
	f.t.Helper()
	r := f.open()
	defer r.Close()
	if err := r.AskLedger("", nil); err != nil {
		f.t.Fatal(err)
	}
	r.Version = version
	return fn(r)
}

func renewTargets(r *Repo) error { _, _, err := r.Renew("targets"); return err }

// TestStagingAboveTheThiefsVersion: after a thief logged targets v2 from a
// copy of the repository, the vendor's next staged version is v3 (asked of
// the ledger), not a v2 the ledger refuses; --version at or below the
// logged version is refused with a clear message.
func TestStagingAboveTheThiefsVersion(t *testing.T) {
	f := theft(t, 2)
	err := f.stage(2, renewTargets)
	if err == nil || !strings.Contains(err.Error(), "not above targets v2, the latest version the ledger logged") {
		t.Fatalf("--version 2 after the thief's v2: %v", err)
	}
	if err := f.stage(0, renewTargets); err != nil {
		t.Fatal(err)
	}
	r := f.open()
	if v := r.staged.Targets["targets"].Signed.Version; v != 3 {
		t.Errorf("staged targets v%d, want v3", v)
	}
	r.Close()
	f.sign(f.keys["targets"], "targets")
	if res := f.publish(true); len(res.Logged) != 1 || res.Logged[0].Version != 3 {
		t.Fatalf("published %+v, want targets v3", res.Logged)
	}
}

// TestVersionPoisoningRecoveredByRotationRepo (vendor tools): after a thief
// logged targets v2^63−1, staging cannot go above it and says to rotate;
// once the targets key rotation is staged, the ledger's version no longer
// binds, a small version is staged, and root v2 and the clean targets are
// logged.
func TestVersionPoisoningRecoveredByRotationRepo(t *testing.T) {
	f := theft(t, math.MaxInt64)
	if err := f.stage(0, renewTargets); err == nil || !strings.Contains(err.Error(), "rotate the role's keys") {
		t.Fatalf("renew after the poisoned version: %v", err)
	}
	fresh := genKey(t, keys.Ed25519)
	err := f.stage(0, func(r *Repo) error {
		_, err := r.Rotate(RotateOptions{Role: "targets", Add: nil, Remove: []string{f.keys["targets"].ID}})
		return err
	})
	if err == nil {
		t.Fatal("rotation removing the only targets key accepted")
	}
	rotate := func(r *Repo) error {
		_, err := r.Rotate(RotateOptions{Role: "targets", Add: []*metadata.Key{fresh.Public}, Remove: []string{f.keys["targets"].ID}})
		return err
	}
	// The ledger names only its latest version: the new sequence's first
	// version is the vendor's to choose.
	if err := f.stage(0, rotate); err == nil || !strings.Contains(err.Error(), "choose its first version with --version N") {
		t.Fatalf("rotation without --version: %v", err)
	}
	if err := f.stage(1, rotate); err == nil || !strings.Contains(err.Error(), "not above targets v1, committed") {
		t.Fatalf("--version 1: %v", err)
	}
	if err := f.stage(2, rotate); err != nil {
		t.Fatal(err)
	}
	// Later staging keeps the chosen version.
	if err := f.stage(0, renewTargets); err != nil {
		t.Fatal(err)
	}
	r := f.open()
	if v := r.staged.Targets["targets"].Signed.Version; v != 2 {
		t.Errorf("staged targets v%d after the rotation, want v2", v)
	}
	r.Close()
	f.sign(f.keys["root"], "root")
	f.keys["targets"] = fresh
	f.sign(fresh, "targets")
	res := f.publish(true)
	if len(res.Logged) != 2 || res.Logged[0].Role != "root" || res.Logged[1].Version != 2 {
		t.Fatalf("published %+v, want root v2 then targets v2", res.Logged)
	}
}

// TestDiscardStagedChanges: discard drops every staged role, or the named
// ones, back to the committed versions.
func TestDiscardStagedChanges(t *testing.T) {
	f := newFixture(t)
	f.add(map[string]string{"app.bin": "v2"})
	r := f.open()
	if _, _, err := r.Renew("root"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Discard([]string{"snapshot"}); err == nil {
		t.Error("discarding a role that is not staged accepted")
	}
	got, err := r.Discard([]string{"root"})
	if err != nil || len(got) != 1 || r.staged.Root != nil || r.staged.Targets["targets"] == nil {
		t.Fatalf("discard root: %v %v", got, err)
	}
	r.Close()
	r = f.open()
	if got, err := r.Discard(nil); err != nil || len(got) != 1 || got[0] != "targets" {
		t.Fatalf("discard all: %v %v", got, err)
	}
	r.Close()
	if _, err := os.Stat(filepath.Join(f.dir, StagingFile)); !os.IsNotExist(err) {
		t.Errorf("staging file after discarding everything: %v", err)
	}
	r = f.open()
	defer r.Close()
	if len(r.staged.Targets) != 0 || r.staged.Root != nil {
		t.Errorf("staged after discard: %+v", r.staged)
	}
}
