package repo

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
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
