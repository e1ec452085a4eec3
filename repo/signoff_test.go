package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/shiplog/shiplog/repo/keys"
	"golang.org/x/mod/sumdb/note"
)

type testAttester struct {
	signer note.Signer
	vkey   string
	a      *signoff.Attester
}

func newTestAttester(t *testing.T, name string) testAttester {
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	a, err := signoff.ParseAttester(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return testAttester{s, vkey, a}
}

// review signs and logs a "reviewed" statement about content at target.
func (f *fixture) review(a testAttester, target, content string) {
	f.t.Helper()
	s := &signoff.Statement{SubjectName: target, Subject: sha256.Sum256([]byte(content)), Verdict: signoff.Reviewed,
		Repository: "example.com/fw", Target: target, TargetsRole: "targets", TargetsVersion: 2,
		Time: time.Now().UTC().Truncate(time.Second)}
	env, err := signoff.Sign(s, a.signer, a.vkey)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := Attest(context.Background(), f.ledger.URL, nil, "example.com/fw", env, 5*time.Second); err != nil {
		f.t.Fatal(err)
	}
}

func sumHex(s string) string {
	b := sha256.Sum256([]byte(s))
	return hex.EncodeToString(b[:])
}

func TestPullAttestations(t *testing.T) {
	f := newFixture(t)
	f.add(map[string]string{"fw/a.bin": "firmware a", "fw/b.bin": "firmware b"})
	f.sign(f.keys["targets"], "targets")
	f.publish(true)
	alice, bob := newTestAttester(t, "alice.example"), newTestAttester(t, "bob.example")
	f.review(alice, "fw/a.bin", "firmware a")
	f.review(bob, "fw/a.bin", "firmware a")
	f.review(alice, "fw/other.bin", "not a target of the repository")

	pull := func(o PullOptions) []PulledEvidence {
		t.Helper()
		r := f.open()
		defer r.Close()
		o.Policy = f.policy
		got, err := r.PullAttestations(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := pull(PullOptions{})
	if len(got) != 2 {
		t.Fatalf("pulled %+v, want the two target digests", got)
	}
	byDigest := map[string]PulledEvidence{}
	for _, p := range got {
		byDigest[p.SHA256] = p
	}
	if a := byDigest[sumHex("firmware a")]; a.Attestations != 2 || !a.Written || a.Targets[0] != "fw/a.bin" {
		t.Errorf("fw/a.bin: %+v", a)
	}
	if b := byDigest[sumHex("firmware b")]; b.Attestations != 0 || b.Written {
		t.Errorf("fw/b.bin: %+v", b)
	}
	file := filepath.Join(f.dir, "metadata", "signoff", sumHex("firmware a")+".json")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	e, err := signoff.ParseEvidence(b)
	if err != nil || len(e.Attestations) != 2 {
		t.Fatalf("written evidence: %+v %v", e, err)
	}
	// What a device checks passes on what was written.
	req := signoff.Requirement{Verdict: signoff.Reviewed, K: 2, Keys: []*signoff.Attester{alice.a, bob.a}}
	if _, err := signoff.Check([]signoff.Requirement{req}, "example.com/fw", e.Subject, e.Attestations, signoff.PolicyProof(f.policy)); err != nil {
		t.Errorf("device check of the pulled evidence: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "metadata", "signoff", sumHex("firmware b")+".json")); err == nil {
		t.Error("wrote a file for a digest without statements")
	}
	if again := pull(PullOptions{}); again[0].Written || again[1].Written {
		t.Errorf("unchanged evidence rewritten: %+v", again)
	}

	// Only the keys asked for.
	os.Remove(file)
	got = pull(PullOptions{Keys: []*signoff.Attester{bob.a}})
	if a := got[0]; a.SHA256 == sumHex("firmware a") && a.Attestations != 1 {
		t.Errorf("with --keys bob: %+v", a)
	}
}

// TestAttackPullTamperedProofs: proofs that do not verify are dropped and
// nothing unverified is written.
func TestAttackPullTamperedProofs(t *testing.T) {
	f := newFixture(t)
	f.add(map[string]string{"fw/a.bin": "firmware a"})
	f.sign(f.keys["targets"], "targets")
	f.publish(true)
	f.review(newTestAttester(t, "alice.example"), "fw/a.bin", "firmware a")
	f.ledger.TamperProof = true
	r := f.open()
	defer r.Close()
	got, err := r.PullAttestations(context.Background(), PullOptions{Policy: f.policy})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Attestations != 0 || got[0].Dropped != 1 || got[0].Written {
		t.Errorf("got %+v", got)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "metadata", "signoff")); err == nil {
		t.Error("wrote evidence that did not verify")
	}
}

// TestRefreshLoopPullsAttestations: with Attestations set, each round of
// the refresh job also brings the statements logged since the release.
func TestRefreshLoopPullsAttestations(t *testing.T) {
	f := newFixture(t)
	f.add(map[string]string{"fw/a.bin": "firmware a"})
	f.sign(f.keys["targets"], "targets")
	f.publish(true)
	f.review(newTestAttester(t, "alice.example"), "fw/a.bin", "firmware a")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := RefreshLoop(ctx, f.dir, RefreshLoopOptions{
		RefreshOptions: RefreshOptions{TimestampKeys: []*keys.Private{f.keys["timestamp"]}},
		Every:          time.Hour, Attestations: &PullOptions{Policy: f.policy},
		Done: func(*Refreshed, error) { cancel() },
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(f.dir, "metadata", "signoff", sumHex("firmware a")+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if e, err := signoff.ParseEvidence(b); err != nil || len(e.Attestations) != 1 {
		t.Errorf("pulled %+v %v", e, err)
	}
}

// TestRefreshWithoutPolicySkipsThePull: the deployment's refresh unit
// passes --pull-attestations to every vendor; a repository that configures
// no tlog-policy (or no ledger) is still refreshed, and the pull is skipped
// with a log line instead of failing the job. `repo attestations pull`
// itself still refuses (ErrPullNotConfigured).
func TestRefreshWithoutPolicySkipsThePull(t *testing.T) {
	f := newFixture(t)
	r := f.open()
	_, err := r.PullAttestations(context.Background(), PullOptions{})
	r.Close()
	if !errors.Is(err, ErrPullNotConfigured) {
		t.Fatalf("pull without a policy: %v, want ErrPullNotConfigured", err)
	}
	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var refreshErr error
	err = RefreshLoop(ctx, f.dir, RefreshLoopOptions{
		RefreshOptions: RefreshOptions{TimestampKeys: []*keys.Private{f.keys["timestamp"]}},
		Every:          time.Hour, Attestations: &PullOptions{},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Done:   func(_ *Refreshed, err error) { refreshErr = err; cancel() },
	})
	if !errors.Is(err, context.Canceled) || refreshErr != nil {
		t.Fatalf("loop: %v, refresh: %v", err, refreshErr)
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"attestations not pulled: the repository configures no ledger or tlog-policy\"") ||
		strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("logs:\n%s", logs.String())
	}
}
