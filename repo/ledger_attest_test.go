package repo

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/ledger"
	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/shiplog/shiplog/repo/keys"
)

// TestAttestToTheRealLedger: a reviewer's envelope goes through Attest into
// the real ledger and comes back from GET /v1/attestations (the device's
// client) as evidence a device's check accepts; refusals name what to do.
func TestAttestToTheRealLedger(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real ledger")
	}
	le := realLedger(t)
	f := newRepoOn(t, keys.Ed25519, le)
	f.sign(f.keys["root"], "root")
	ctx := context.Background()
	if _, err := Register(ctx, f.dir, f.opts(false)); err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := notekey.GenerateLog(rand.Reader, "rebuilder.example")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := notekey.NewLogSigner(skey)
	subject := sha256.Sum256([]byte("app.bin bytes"))
	st := func(repo string) *signoff.Statement {
		return &signoff.Statement{SubjectName: "app.bin", Subject: subject, Verdict: signoff.Reviewed, Repository: repo,
			Target: "app.bin", TargetsRole: "targets", TargetsVersion: 1, Time: time.Now().UTC().Truncate(time.Second)}
	}
	env, err := signoff.Sign(st("example.com/fw"), signer, vkey)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := Attest(ctx, le.URL, nil, "example.com/fw", env, 10*time.Second)
	if err != nil || rc.Proof == "" || rc.Duplicate {
		t.Fatalf("Attest: %v %+v", err, rc)
	}
	a, _ := signoff.ParseAttester(vkey)
	body, err := (&ledger.Client{URL: le.URL, HTTP: &http.Client{Timeout: time.Minute}}).Attestations(ctx, "example.com/fw", hex.EncodeToString(subject[:]), []string{a.ID.String()})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := signoff.ParseEvidence(body)
	if err != nil || len(ev.Attestations) != 1 {
		t.Fatalf("Attestations: %v %+v", err, ev)
	}
	req := []signoff.Requirement{{Verdict: signoff.Reviewed, K: 1, Keys: []*signoff.Attester{a}}}
	if _, err := signoff.Check(req, "example.com/fw", subject, ev.Attestations, signoff.PolicyProof(f.policy)); err != nil {
		t.Errorf("Check: %v", err)
	}

	other, _ := signoff.Sign(st("example.com/other"), signer, vkey)
	var le2 *LedgerError
	if _, err := Attest(ctx, le.URL, nil, "example.com/other", other, 0); !errors.As(err, &le2) || le2.Status != http.StatusNotFound || !strings.Contains(err.Error(), "not registered") {
		t.Errorf("unknown repository: %v", err)
	}
	if _, err := Attest(ctx, le.URL, nil, "example.com/fw", other, 0); !errors.As(err, &le2) || le2.Status != http.StatusBadRequest {
		t.Errorf("a statement about another repository: %v", err)
	}
}

// TestPullAttestationsFromTheRealLedger: statements logged in the real
// ledger are pulled beside the metadata (shiplog repo attestations pull)
// and pass a device's check, as against the test ledger.
func TestPullAttestationsFromTheRealLedger(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real ledger")
	}
	le := realLedger(t)
	f := newRepoOn(t, keys.Ed25519, le)
	f.sign(f.keys["root"], "root")
	f.sign(f.keys["targets"], "targets")
	ctx := context.Background()
	if _, err := Register(ctx, f.dir, f.opts(false)); err != nil {
		t.Fatal(err)
	}
	f.publish(true)
	f.add(map[string]string{"fw/a.bin": "firmware a"})
	f.sign(f.keys["targets"], "targets")
	f.publish(true)
	alice, bob := newTestAttester(t, "alice.example"), newTestAttester(t, "bob.example")
	for _, a := range []testAttester{alice, bob} {
		s := &signoff.Statement{SubjectName: "fw/a.bin", Subject: sha256.Sum256([]byte("firmware a")), Verdict: signoff.Reviewed,
			Repository: "example.com/fw", Target: "fw/a.bin", TargetsRole: "targets", TargetsVersion: 2, Time: time.Now().UTC().Truncate(time.Second)}
		env, err := signoff.Sign(s, a.signer, a.vkey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Attest(ctx, le.URL, nil, "example.com/fw", env, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	r := f.open()
	got, err := r.PullAttestations(ctx, PullOptions{Policy: f.policy})
	r.Close()
	if err != nil || len(got) != 1 || got[0].Attestations != 2 || !got[0].Written {
		t.Fatalf("pull: %v %+v", err, got)
	}
	b, err := os.ReadFile(filepath.Join(f.dir, "metadata", SignoffDir, sumHex("firmware a")+".json"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := signoff.ParseEvidence(b)
	if err != nil {
		t.Fatal(err)
	}
	req := []signoff.Requirement{{Verdict: signoff.Reviewed, K: 2, Keys: []*signoff.Attester{alice.a, bob.a}}}
	if _, err := signoff.Check(req, "example.com/fw", ev.Subject, ev.Attestations, signoff.PolicyProof(f.policy)); err != nil {
		t.Errorf("device check of the pulled evidence: %v", err)
	}
}
