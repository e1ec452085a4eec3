package repo

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shiplog/shiplog/repo/keys"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// unchanged fails the test if the repository's files differ from before.
func unchanged(t *testing.T, dir string, before map[string]string) {
	t.Helper()
	if diff := cmp.Diff(before, snapshotDir(t, dir)); diff != "" {
		t.Fatalf("a refused command changed the repository (-before +after):\n%s", diff)
	}
}

func wantErr(t *testing.T, err error, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", substr)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q does not contain %q", err, substr)
	}
}

func TestSignWithKeyOfWrongRoleRefused(t *testing.T) {
	f := newFixture(t)
	f.add(map[string]string{"a.bin": "a"})
	before := snapshotDir(t, f.dir)
	r := f.open()
	defer r.Close()
	_, err := r.Sign(f.keys["timestamp"], []string{"targets"})
	wantErr(t, err, "is not a key of targets")
	_, err = r.Sign(f.keys["timestamp"], nil)
	wantErr(t, err, "is not a key of targets")
	unchanged(t, f.dir, before)
}

func TestThresholdThatCannotBeMetRefused(t *testing.T) {
	k := genKey(t, keys.Ed25519)
	ks := map[string][]*metadata.Key{}
	for _, role := range TopLevelRoles {
		ks[role] = []*metadata.Key{k.Public}
	}
	dir := filepath.Join(t.TempDir(), "repo")
	err := Init(dir, InitOptions{Repository: "example.com/fw", Keys: ks, Thresholds: map[string]int{"root": 2}})
	wantErr(t, err, "threshold 2 of role root cannot be met")
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("refused init left %s behind", dir)
	}

	f := newFixture(t)
	before := snapshotDir(t, f.dir)
	r := f.open()
	_, err = r.Rotate(RotateOptions{Role: "targets", Threshold: 3})
	wantErr(t, err, "threshold 3 cannot be met")
	_, err = r.Rotate(RotateOptions{Role: "root", Remove: []string{f.keys["root"].ID}})
	wantErr(t, err, "remove every key")
	_, err = r.Delegate(DelegateOptions{Name: "x", Paths: []string{"x/*"}, Keys: []*metadata.Key{k.Public}, Threshold: 2})
	wantErr(t, err, "cannot be met")
	r.Close()
	unchanged(t, f.dir, before)
}

func TestDuplicateTargetPathRefused(t *testing.T) {
	f := newFixture(t)
	f.add(map[string]string{"fw/a.bin": "one"})
	f.sign(f.keys["targets"])
	f.publish(true)
	before := snapshotDir(t, f.dir)
	r := f.open()
	defer r.Close()
	src := filepath.Join(t.TempDir(), "a.bin")
	os.WriteFile(src, []byte("two"), 0o644)
	_, err := r.Add(AddOptions{Targets: []TargetInput{{Path: "fw/a.bin", File: src}}})
	wantErr(t, err, "already exists")
	_, err = r.Add(AddOptions{Targets: []TargetInput{{Path: "fw/b.bin", File: src}, {Path: "fw/b.bin", File: src}}})
	wantErr(t, err, "given twice")
	for _, bad := range []string{"", "/abs", "a/../b", "a//b", "a\\b", "./a", "a/"} {
		_, err = r.Add(AddOptions{Targets: []TargetInput{{Path: bad, File: src}}})
		wantErr(t, err, "invalid target path")
	}
	_, err = r.Add(AddOptions{Targets: []TargetInput{{Path: "c.bin", File: src, Custom: []byte(`[1]`)}}})
	wantErr(t, err, "custom must be a JSON object")
	// Capabilities devices would refuse are refused here first.
	_, err = r.Add(AddOptions{Targets: []TargetInput{{Path: "c.bin", File: src, Capabilities: []string{"teleport"}}}})
	wantErr(t, err, "malformed capability")
	_, err = r.Add(AddOptions{Targets: []TargetInput{{Path: "c.bin", File: src, Custom: []byte(`{"capabilities":["radio","camera"]}`)}}})
	wantErr(t, err, "not sorted")
	// A provenance rebuilders would refuse (docs/spec/provenance.md) is refused here first.
	_, err = r.Add(AddOptions{Targets: []TargetInput{{Path: "c.bin", File: src, Custom: []byte(`{"provenance":{"source":{"uri":"https://example.com/a.tar"},"build":{"command":"make"}}}`)}}})
	wantErr(t, err, "archive source needs digest")
	unchanged(t, f.dir, before)
	// With --replace the new file is staged, and the old one stays served.
	if _, err := r.Add(AddOptions{Targets: []TargetInput{{Path: "fw/a.bin", File: src}}, Replace: true}); err != nil {
		t.Fatal(err)
	}
}

func TestExpiredRoleRefused(t *testing.T) {
	f := newFixture(t)
	f.add(map[string]string{"a.bin": "a"})
	later := time.Now().Add(200 * 24 * time.Hour) // targets expire after 90 days
	r, err := open(f.dir, func() time.Time { return later })
	if err != nil {
		t.Fatal(err)
	}
	before := snapshotDir(t, f.dir)
	_, err = r.Sign(f.keys["targets"], nil)
	wantErr(t, err, "expired")
	r.Close()
	unchanged(t, f.dir, before)
	f.sign(f.keys["targets"])
	before = snapshotDir(t, f.dir)
	o := f.opts(true)
	o.Now = func() time.Time { return later }
	_, err = Publish(context.Background(), f.dir, o)
	wantErr(t, err, "expired")
	unchanged(t, f.dir, before)
}

// TestRootNotSignedByOldKeysRefused: an attacker (or a mistake) replaces
// all root keys and signs the new root only with the new key. Publishing it
// would cut off every device: it is refused before the ledger sees it.
func TestRootNotSignedByOldKeysRefused(t *testing.T) {
	f := newFixture(t)
	evil := genKey(t, keys.Ed25519)
	r := f.open()
	if _, err := r.Rotate(RotateOptions{Role: "root", Add: []*metadata.Key{evil.Public}, Remove: []string{f.keys["root"].ID}}); err != nil {
		t.Fatal(err)
	}
	r.Close()
	f.sign(evil, "root")
	before, size := snapshotDir(t, f.dir), f.ledger.Size()
	res, err := Publish(context.Background(), f.dir, f.opts(true))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Logged) != 0 || len(res.Pending) != 1 || !strings.Contains(res.Pending[0], "root v1") {
		t.Fatalf("publish = %+v, want root v2 pending on root v1's signatures", res)
	}
	unchanged(t, f.dir, before)
	if f.ledger.Size() != size {
		t.Fatal("the ledger was sent a root the old keys did not sign")
	}
	// Even a root signed by hand past our checks is refused by the check
	// that publishing runs against the resulting repository.
	r = f.open()
	defer r.Close()
	ready := map[string]bool{"root": true}
	err = r.checkView(view{r, func(role string) bool { return ready[role] }})
	wantErr(t, err, "not signed by the threshold of root v1")
}

// TestRotationWithoutNewTargetsSignatureRefused: publishing a root that
// rotates the targets key while targets is still signed by the old key
// would break every client; nothing is published.
func TestRotationWithoutNewTargetsSignatureRefused(t *testing.T) {
	f := newFixture(t)
	k2 := genKey(t, keys.Ed25519)
	r := f.open()
	if _, err := r.Rotate(RotateOptions{Role: "targets", Add: []*metadata.Key{k2.Public}, Remove: []string{f.keys["targets"].ID}}); err != nil {
		t.Fatal(err)
	}
	r.Close()
	f.sign(f.keys["root"], "root")
	before, size := snapshotDir(t, f.dir), f.ledger.Size()
	_, err := Publish(context.Background(), f.dir, f.opts(true))
	wantErr(t, err, "refusing to publish")
	unchanged(t, f.dir, before)
	if f.ledger.Size() != size {
		t.Fatal("logged part of an inconsistent rotation")
	}
}

// TestUnloggedReleaseNeverExposed: a targets version whose proof is missing
// (never logged) or does not verify is never listed in a snapshot.
func TestUnloggedReleaseNeverExposed(t *testing.T) {
	f := newFixture(t)
	f.add(map[string]string{"a.bin": "a"})
	f.sign(f.keys["targets"])
	res := f.publish(false)
	if res.Exposed != nil || len(res.Logged) != 1 {
		t.Fatalf("publish without keys: %+v", res)
	}
	proofFile := res.Logged[0].ProofFile
	pr, _ := os.ReadFile(proofFile)
	os.Remove(proofFile)
	before := snapshotDir(t, f.dir)
	_, err := Publish(context.Background(), f.dir, f.opts(true))
	var ue *UnloggedError
	if !errors.As(err, &ue) || ue.Role != "targets" || ue.Version != 2 {
		t.Fatalf("got %v, want UnloggedError for targets v2", err)
	}
	unchanged(t, f.dir, before)
	// A proof for other bytes (here: of the previous version) is refused too.
	prev, _ := os.ReadFile(f.open2(t).proofPath(1, "targets"))
	os.WriteFile(proofFile, prev, 0o644)
	_, err = Publish(context.Background(), f.dir, f.opts(true))
	wantErr(t, err, "does not verify")
	os.WriteFile(proofFile, pr, 0o644)
	if res := f.publish(true); res.Exposed == nil || res.Exposed.Snapshot != 2 {
		t.Fatalf("publish with the proof back: %+v", res)
	}
}

// open2 opens and immediately closes the repository, for path helpers.
func (f *fixture) open2(t *testing.T) *Repo {
	r := f.open()
	r.Close()
	return r
}

// TestTamperedProofNotWritten: a proof from the ledger that does not verify
// under the policy is never written, and nothing is committed.
func TestTamperedProofNotWritten(t *testing.T) {
	f := newFixture(t)
	f.add(map[string]string{"a.bin": "a"})
	f.sign(f.keys["targets"])
	before := snapshotDir(t, f.dir)
	f.ledger.TamperProof = true
	_, err := Publish(context.Background(), f.dir, f.opts(true))
	wantErr(t, err, "does not verify under the policy, not written")
	unchanged(t, f.dir, before)
	f.ledger.TamperProof = false
	if res := f.publish(true); len(res.Logged) != 1 || !res.Logged[0].Duplicate {
		t.Fatalf("republish after the fault: %+v", res)
	}
}

// TestTamperedMetadataNotExposed: bytes in DIR/metadata edited after they
// were logged no longer match their proof, so they are never exposed.
func TestTamperedMetadataNotExposed(t *testing.T) {
	f := newFixture(t)
	f.add(map[string]string{"a.bin": "a"})
	f.sign(f.keys["targets"])
	f.publish(false)
	path := filepath.Join(f.dir, "metadata", "2.targets.json")
	b, _ := os.ReadFile(path)
	os.WriteFile(path, append(b, ' '), 0o644)
	_, err := Publish(context.Background(), f.dir, f.opts(true))
	wantErr(t, err, "does not verify")
}

func TestLedgerErrors(t *testing.T) {
	t.Run("unknown repository", func(t *testing.T) {
		f := newFixture(t)
		other := newRepo(t, keys.Ed25519) // a ledger that never saw f's repository
		f.add(map[string]string{"a.bin": "a"})
		f.sign(f.keys["targets"])
		o := f.opts(true)
		o.Ledger = other.ledger.URL
		o.Policy = other.policy
		_, err := Publish(context.Background(), f.dir, o)
		wantErr(t, err, "register the repository")
	})
	t.Run("busy then ok", func(t *testing.T) {
		f := newFixture(t)
		f.add(map[string]string{"a.bin": "a"})
		f.sign(f.keys["targets"])
		f.ledger.FailStatus, f.ledger.FailCount = http.StatusServiceUnavailable, 2
		if res := f.publish(true); len(res.Logged) != 1 {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("always busy", func(t *testing.T) {
		f := newFixture(t)
		f.add(map[string]string{"a.bin": "a"})
		f.sign(f.keys["targets"])
		before := snapshotDir(t, f.dir)
		f.ledger.FailStatus, f.ledger.FailCount = http.StatusTooManyRequests, 100
		_, err := Publish(context.Background(), f.dir, f.opts(true))
		var le *LedgerError
		if !errors.As(err, &le) || le.Status != http.StatusTooManyRequests {
			t.Fatalf("got %v", err)
		}
		unchanged(t, f.dir, before)
	})
	t.Run("conflict", func(t *testing.T) {
		f := newFixture(t)
		f.add(map[string]string{"a.bin": "a"})
		f.sign(f.keys["targets"])
		f.ledger.FailStatus, f.ledger.FailCount = http.StatusConflict, 1
		_, err := Publish(context.Background(), f.dir, f.opts(true))
		wantErr(t, err, "409")
		wantErr(t, err, "stage a new version")
	})
	t.Run("bad token", func(t *testing.T) {
		f := newRepo(t, keys.Ed25519)
		f.sign(f.keys["root"], "root")
		o := f.opts(false)
		o.Token = "wrong"
		_, err := Register(context.Background(), f.dir, o)
		wantErr(t, err, "401")
	})
	t.Run("unsigned root not registered", func(t *testing.T) {
		f := newRepo(t, keys.Ed25519)
		_, err := Register(context.Background(), f.dir, f.opts(false))
		wantErr(t, err, "not signed by its threshold")
		if f.ledger.Size() != 0 {
			t.Fatal("sent an unsigned root")
		}
	})
}

func TestProofFetchedWhenNotInResponse(t *testing.T) {
	f := newFixture(t)
	f.ledger.ProofLater = true
	f.add(map[string]string{"a.bin": "a"})
	f.sign(f.keys["targets"])
	if res := f.publish(true); len(res.Logged) != 1 || res.Exposed == nil {
		t.Fatalf("%+v", res)
	}
	if f.ledger.Requests["/v1/proof"] == 0 {
		t.Fatal("proof was not fetched")
	}
}

// TestPublishResumesAfterCrash: a crash after the metadata file was written
// but before staging was updated is finished by the next publish.
func TestPublishResumesAfterCrash(t *testing.T) {
	f := newFixture(t)
	f.add(map[string]string{"a.bin": "a"})
	f.sign(f.keys["targets"])
	staging, _ := os.ReadFile(filepath.Join(f.dir, StagingFile))
	f.publish(false)
	os.WriteFile(filepath.Join(f.dir, StagingFile), staging, 0o644) // as if the crash lost the staging update
	res := f.publish(true)
	if res.Exposed == nil || res.Exposed.Snapshot != 2 {
		t.Fatalf("%+v", res)
	}
	if _, err := os.Stat(filepath.Join(f.dir, StagingFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("staging not cleared")
	}
}

func TestConcurrentCommandsRefused(t *testing.T) {
	f := newFixture(t)
	r := f.open()
	defer r.Close()
	_, err := Open(f.dir)
	wantErr(t, err, "in use by another shiplog command")
}

func TestWrongOnlineKeyRefused(t *testing.T) {
	f := newFixture(t)
	r := f.open()
	defer r.Close()
	before := snapshotDir(t, f.dir)
	_, err := r.Timestamp(f.keys["snapshot"])
	wantErr(t, err, "is not a timestamp key")
	unchanged(t, f.dir, before)
	e, err := r.Timestamp(f.keys["timestamp"])
	if err != nil || e.Timestamp != 2 || e.Snapshot != 1 {
		t.Fatalf("timestamp refresh: %+v, %v", e, err)
	}
}

func TestStatusShowsSafeOrder(t *testing.T) {
	f := newFixture(t)
	f.add(map[string]string{"a.bin": "a"})
	r := f.open()
	s, err := r.Status()
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Staged) != 1 || s.Staged[0].Ready || !strings.Contains(strings.Join(s.Next, "\n"), "sign") {
		t.Fatalf("staged: %+v next: %v", s.Staged, s.Next)
	}
	f.sign(f.keys["targets"])
	f.publish(false)
	r = f.open()
	s, _ = r.Status()
	r.Close()
	if len(s.Unexposed) != 1 || s.Unexposed[0] != "targets v2" || !strings.Contains(strings.Join(s.Next, "\n"), "expose") {
		t.Fatalf("unexposed: %v next: %v", s.Unexposed, s.Next)
	}
}

// TestPublishNothingLoggedIsAnError: a staged release that lacks its
// signatures is reported as pending and publish fails (the command exits
// non-zero), so `shiplog publish && announce` does not announce a release
// that nobody can install.
func TestPublishNothingLoggedIsAnError(t *testing.T) {
	f := newFixture(t)
	f.add(map[string]string{"fw.bin": "v2"})
	res := f.publish(true)
	err := res.NothingLogged()
	if !errors.Is(err, ErrNothingLogged) || !strings.Contains(err.Error(), "targets v2 (needs") {
		t.Fatalf("publish = %+v, NothingLogged() = %v", res, err)
	}
	f.sign(f.keys["targets"], "targets")
	if res := f.publish(true); res.NothingLogged() != nil {
		t.Errorf("signed: %v", res.NothingLogged())
	}
	if res := f.publish(true); res.NothingLogged() != nil { // nothing staged: not an error
		t.Errorf("nothing staged: %v", res.NothingLogged())
	}
}

// TestPublishWaitReportsWitnessesAndUnmetQuorum: while publish waits for a
// cosigned checkpoint it reports which witnesses cosigned and which did
// not; when it gives up it says the quorum was not met and by whom, not
// only that no checkpoint came.
func TestPublishWaitReportsWitnessesAndUnmetQuorum(t *testing.T) {
	f := newFixture(t)
	f.add(map[string]string{"fw.bin": "v2"})
	f.sign(f.keys["targets"], "targets")
	f.ledger.WitnessDown = true
	var progress bytes.Buffer
	o := f.opts(true)
	o.Wait, o.Progress = time.Second, &progress
	_, err := Publish(context.Background(), f.dir, o)
	if err == nil {
		t.Fatal("published without a cosigned checkpoint")
	}
	for _, want := range []string{"quorum was not met", "cosigned: none", "not cosigned: w1 (dial tcp 127.0.0.1:9: connection refused)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\ndoes not say %q", err, want)
		}
	}
	if !strings.Contains(progress.String(), "waiting for a cosigned checkpoint covering targets v2") || !strings.Contains(progress.String(), "not yet: w1") {
		t.Errorf("progress: %q", progress.String())
	}
	f.ledger.WitnessDown = false
	if res := f.publish(true); len(res.Logged) != 1 {
		t.Errorf("after the witness came back: %+v", res)
	}
}
