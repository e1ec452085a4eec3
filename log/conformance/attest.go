package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/evidence/signoff"
	ledgerv1 "github.com/shiplog/shiplog/proto/ledger/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// attestations logs a review over HTTP and a reproduction over gRPC
// (docs/spec/signoff.md) through two replicas, resubmits one to every
// replica (a duplicate), submits refused envelopes to every replica, and
// reads the evidence back from every replica over HTTP and gRPC: proofs
// under the cosigned checkpoint that signoff.Check accepts.
func (s *suite) attestations(t *testing.T) {
	skey, vkey, err := notekey.GenerateLog(rand.Reader, "rebuilder.example")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := notekey.NewLogSigner(skey)
	attester, _ := signoff.ParseAttester(vkey)
	subject := sha256.Sum256([]byte("conformance firmware"))
	statement := func(verdict, repo string) *signoff.Statement {
		st := &signoff.Statement{SubjectName: "fw.bin", Subject: subject, Verdict: verdict, Repository: repo, Target: "fw.bin",
			TargetsRole: "targets", TargetsVersion: 3, Time: time.Now().UTC().Truncate(time.Second)}
		if verdict != signoff.Reviewed {
			st.Built, st.Provenance = subject, []byte(`{"source":{"uri":"file:///src"},"build":{"command":"make"}}`)
		}
		return st
	}
	sign := func(st *signoff.Statement) []byte {
		env, err := signoff.Sign(st, signer, vkey)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	review, repro := sign(statement(signoff.Reviewed, fw)), sign(statement(signoff.Reproduced, fw))

	r := do(t, "POST", s.l.replica(0)+"/v1/attest?repo="+url.QueryEscape(fw)+"&wait=20s", review)
	rc := decode(t, r)
	if r.code != 200 || rc.Index != s.last+1 || rc.Proof == "" {
		t.Fatalf("attest over HTTP: %d %s (want index %d)", r.code, r.body, s.last+1)
	}
	if _, err := evidence.VerifyInclusion([]byte(rc.Entry), []byte(rc.Proof), s.l.Policy); err != nil {
		t.Fatalf("attest over HTTP: %v", err)
	}
	s.last = rc.Index
	wait := uint32(20000)
	g, err := s.grpcClient(t, 1).Attest(context.Background(), &ledgerv1.AttestRequest{Repo: fw, Envelope: repro, WaitMs: &wait})
	if err != nil || g.Index != s.last+1 || len(g.Proof) == 0 {
		t.Fatalf("attest over gRPC: %v %+v (want index %d)", err, g, s.last+1)
	}
	if _, err := evidence.VerifyInclusion(g.Entry, g.Proof, s.l.Policy); err != nil {
		t.Fatalf("attest over gRPC: %v", err)
	}
	s.last = g.Index

	u, _ := signoff.ParseEnvelope(review)
	forged := bytes.Replace(review, []byte(base64.StdEncoding.EncodeToString(u.Sig)), []byte(base64.StdEncoding.EncodeToString(make([]byte, 64))), 1)
	refused := []struct {
		name, repo string
		body       []byte
		code       int
	}{
		{"forged-signature", fw, forged, 403},
		{"statement-for-another-repository", fw, sign(statement(signoff.Reviewed, "example.com/other")), 400},
		{"oversize-body", fw, bytes.Repeat([]byte(" "), signoff.MaxEnvelopeSize+1), 413},
		{"malformed-envelope", fw, []byte("{}"), 400},
		{"unknown-repository", "example.com/nobody", sign(statement(signoff.Reviewed, "example.com/nobody")), 404},
	}
	q := "/v1/attestations?repo=" + url.QueryEscape(fw) + "&subject=" + hex.EncodeToString(subject[:])
	for i, base := range s.l.URLs {
		if r := do(t, "POST", base+"/v1/attest?repo="+url.QueryEscape(fw)+"&wait=0s", review); r.code != 200 || !decode(t, r).Duplicate || decode(t, r).Index != s.last-1 {
			t.Errorf("replica %d: the same envelope again: %d %s, want a duplicate of %d", i, r.code, r.body, s.last-1)
		}
		for _, c := range refused {
			if r := do(t, "POST", base+"/v1/attest?repo="+url.QueryEscape(c.repo)+"&wait=0s", c.body); r.code != c.code {
				t.Errorf("replica %d: %s: %d %s, want %d", i, c.name, r.code, r.body, c.code)
			}
		}
		ev := s.evidenceAt(t, base+q+"&key="+attester.ID.String(), 2)
		reqs := []signoff.Requirement{
			{Verdict: signoff.Reproduced, K: 1, Keys: []*signoff.Attester{attester}},
			{Verdict: signoff.Reviewed, K: 1, Keys: []*signoff.Attester{attester}},
		}
		if _, err := signoff.Check(reqs, fw, subject, ev.Attestations, signoff.PolicyProof(s.l.Policy)); err != nil {
			t.Errorf("replica %d: Check of the ledger's evidence: %v", i, err)
		}
		sum := sha256.Sum256(repro)
		if m := do(t, "GET", base+"/metadata/"+hex.EncodeToString(sum[:]), nil); m.code != 200 || !bytes.Equal(m.body, repro) {
			t.Errorf("replica %d: GET /metadata/<envelope sha256>: %d", i, m.code)
		}
	}
	for i := range s.l.GRPC {
		out, err := s.grpcClient(t, i).Attestations(context.Background(), &ledgerv1.AttestationsRequest{Repo: fw, Subject: subject[:]})
		if err != nil || len(out.Attestations) != 2 || !bytes.Equal(out.Attestations[0].Envelope, review) {
			t.Errorf("gRPC replica %d: Attestations: %v", i, err)
		}
		if _, err := s.grpcClient(t, i).Attest(context.Background(), &ledgerv1.AttestRequest{Repo: fw, Envelope: forged}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("gRPC replica %d: forged envelope: %v, want PermissionDenied", i, err)
		}
	}
}

// evidenceAt reads an evidence file until it holds want attestations (a
// replica may serve an older cosigned checkpoint for a moment).
func (s *suite) evidenceAt(t *testing.T, u string, want int) *signoff.Evidence {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := do(t, "GET", u, nil)
		if r.code == 200 {
			ev, err := signoff.ParseEvidence(r.body)
			if err != nil {
				t.Fatalf("GET %s: %v", u, err)
			}
			if len(ev.Attestations) == want {
				return ev
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %s, want %d attestations", u, r.code, r.body, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// grpcClient returns a client of replica i's gRPC listener, closed when
// the test ends.
func (s *suite) grpcClient(t *testing.T, i int) ledgerv1.LedgerClient {
	t.Helper()
	conn, err := grpc.NewClient(s.l.GRPC[i%len(s.l.GRPC)], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(fmt.Errorf("gRPC client: %w", err))
	}
	t.Cleanup(func() { conn.Close() })
	return ledgerv1.NewLedgerClient(conn)
}
