package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/shiplog/shiplog/log/server"
	ledgerv1 "github.com/shiplog/shiplog/proto/ledger/v1"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// attester is a rebuilder's or reviewer's key.
type attester struct {
	vkey   string
	signer note.Signer
	id     signoff.KeyID
}

func newAttester(t *testing.T, name string) attester {
	t.Helper()
	skey, vkey, err := notekey.GenerateLog(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := notekey.NewLogSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	a, err := signoff.ParseAttester(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return attester{vkey, s, a.ID}
}

var (
	firmware = []byte("firmware 1.0 bytes")
	subject  = sha256.Sum256(firmware)
)

// statement returns a valid statement with verdict about the firmware in repo.
func statement(verdict, repo string) *signoff.Statement {
	s := &signoff.Statement{SubjectName: "app.bin", Subject: subject, Verdict: verdict, Repository: repo, Target: "app.bin",
		TargetsRole: "targets", TargetsVersion: 3, Time: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	if verdict != signoff.Reviewed {
		s.Built, s.Provenance = subject, []byte(`{"source":{"uri":"file:///src"},"revision":"v1","build":{"command":"make"}}`)
	}
	if verdict == signoff.Mismatch {
		s.Built[0] ^= 1
	}
	return s
}

func (a attester) sign(t *testing.T, s *signoff.Statement) []byte {
	t.Helper()
	env, err := signoff.Sign(s, a.signer, a.vkey)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func (n *testNode) attest(repo string, env []byte, wait string) (receipt, response) {
	n.t.Helper()
	r := n.do("POST", "/v1/attest?repo="+repo+"&wait="+wait, env)
	var rc receipt
	if r.code == 200 {
		if err := json.Unmarshal(r.body, &rc); err != nil {
			n.t.Fatal(err)
		}
	}
	return rc, r
}

func (n *testNode) attestations(query string) (*signoff.Evidence, response) {
	n.t.Helper()
	r := n.do("GET", "/v1/attestations?"+query, nil)
	if r.code != 200 {
		return nil, r
	}
	ev, err := signoff.ParseEvidence(r.body)
	if err != nil {
		n.t.Fatalf("GET /v1/attestations: %v\n%s", err, r.body)
	}
	return ev, r
}

// TestAttestHTTP: two rebuilders attest over HTTP; their statements come
// back from GET /v1/attestations with proofs a device's Check accepts, the
// envelopes are served by /metadata/<sha256> and in the metadata bundle,
// and the same envelope again is a duplicate.
func TestAttestHTTP(t *testing.T) {
	f := newFixture(t)
	a, b, c := newAttester(t, "rebuilder-a.example"), newAttester(t, "rebuilder-b.example"), newAttester(t, "stranger.example")
	var envs [][]byte
	for _, x := range []attester{a, c, b} {
		env := x.sign(t, statement(signoff.Reproduced, fw))
		rc, r := f.attest(fw, env, "10s")
		if r.code != 200 || rc.Proof == "" || rc.Duplicate {
			t.Fatalf("attest: %d %s", r.code, r.body)
		}
		e, err := signoff.ParseEntry([]byte(rc.Entry))
		if err != nil || e.Key != x.id || e.Subject != subject || e.SHA256 != sha256.Sum256(env) {
			t.Fatalf("entry %q: %v", rc.Entry, err)
		}
		if _, err := evidence.VerifyInclusion([]byte(rc.Entry), []byte(rc.Proof), f.policy); err != nil {
			t.Fatalf("receipt proof: %v", err)
		}
		if m := f.do("GET", "/metadata/"+hex.EncodeToString(e.SHA256[:]), nil); m.code != 200 || !bytes.Equal(m.body, env) {
			t.Errorf("GET /metadata/<envelope sha256>: %d", m.code)
		}
		envs = append(envs, env)
	}
	again, r := f.attest(fw, envs[0], "0")
	if r.code != 200 || !again.Duplicate {
		t.Errorf("the same envelope again: %d %s", r.code, r.body)
	}

	ev, r := f.attestations("repo=" + fw + "&subject=" + hex.EncodeToString(subject[:]))
	if ev == nil || len(ev.Attestations) != 3 || ev.Truncated || ev.Subject != subject {
		t.Fatalf("attestations: %d %s", r.code, r.body)
	}
	for i := range envs {
		if !bytes.Equal(ev.Attestations[i].Envelope, envs[i]) {
			t.Errorf("attestation %d is not in log order", i)
		}
	}
	keys := func(xs ...attester) []*signoff.Attester {
		var out []*signoff.Attester
		for _, x := range xs {
			p, _ := signoff.ParseAttester(x.vkey)
			out = append(out, p)
		}
		return out
	}
	req := []signoff.Requirement{{Verdict: signoff.Reproduced, K: 2, Keys: keys(a, b)}}
	if _, err := signoff.Check(req, fw, subject, ev.Attestations, signoff.PolicyProof(f.policy)); err != nil {
		t.Errorf("Check of the ledger's evidence: %v", err)
	}
	only, _ := f.attestations("repo=" + fw + "&subject=" + hex.EncodeToString(subject[:]) + "&key=" + b.id.String() + "&key=" + a.id.String())
	if only == nil || len(only.Attestations) != 2 || !bytes.Equal(only.Attestations[1].Envelope, envs[2]) {
		t.Errorf("key= filter: %+v", only)
	}
	other := sha256.Sum256([]byte("other"))
	if none, _ := f.attestations("repo=" + fw + "&subject=" + hex.EncodeToString(other[:])); none == nil || len(none.Attestations) != 0 {
		t.Errorf("another subject: %+v", none)
	}

	// The metadata bundle carries the envelopes beside the metadata files.
	size := f.size()
	mb := f.do("GET", fmt.Sprintf("/metadata/bundle/000.p/%d", size), nil)
	eb := f.do("GET", fmt.Sprintf("/tile/entries/000.p/%d", size), nil)
	metas, entries := splitBundle(t, mb.body, 4), splitBundle(t, eb.body, 2)
	if len(metas) != int(size) || len(entries) != int(size) {
		t.Fatalf("bundles: %d metadata, %d entries, size %d", len(metas), len(entries), size)
	}
	for i, e := range entries {
		if entry.Kind(e) == entry.AttestationHeader {
			pe, _ := signoff.ParseEntry(e)
			if sha256.Sum256(metas[i]) != pe.SHA256 {
				t.Errorf("metadata bundle %d: not the envelope", i)
			}
		}
	}
}

// TestAttestGRPC: Attest and Attestations over gRPC answer as over HTTP.
func TestAttestGRPC(t *testing.T) {
	f := newFixture(t)
	a := newAttester(t, "reviewer.example")
	env := a.sign(t, statement(signoff.Reviewed, fw))
	wait := uint32(10000)
	ctx := context.Background()
	resp, err := f.grpc.Attest(ctx, &ledgerv1.AttestRequest{Repo: fw, Envelope: env, WaitMs: &wait})
	if err != nil || len(resp.Proof) == 0 {
		t.Fatalf("Attest: %v", err)
	}
	if _, err := evidence.VerifyInclusion(resp.Entry, resp.Proof, f.policy); err != nil {
		t.Fatal(err)
	}
	again, err := f.grpc.Attest(ctx, &ledgerv1.AttestRequest{Repo: fw, Envelope: env})
	if err != nil || !again.Duplicate || again.Index != resp.Index {
		t.Errorf("duplicate: %v %+v", err, again)
	}
	out, err := f.grpc.Attestations(ctx, &ledgerv1.AttestationsRequest{Repo: fw, Subject: subject[:], Keys: [][]byte{a.id[:]}})
	if err != nil || len(out.Attestations) != 1 || !bytes.Equal(out.Attestations[0].Envelope, env) || !bytes.Equal(out.Subject, subject[:]) {
		t.Fatalf("Attestations: %v %+v", err, out)
	}
	for _, bad := range []*ledgerv1.AttestationsRequest{
		{Repo: fw, Subject: subject[:10]},
		{Repo: fw, Subject: subject[:], Keys: [][]byte{{1, 2}}},
		{Repo: fw, Subject: subject[:], Keys: make([][]byte, 33)},
		{Repo: "has space", Subject: subject[:]},
	} {
		if _, err := f.grpc.Attestations(ctx, bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("Attestations(%v): %v, want InvalidArgument", bad, err)
		}
	}
	if _, err := f.grpc.Attestations(ctx, &ledgerv1.AttestationsRequest{Repo: "example.com/nobody", Subject: subject[:]}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown repository: %v", err)
	}
}

// signPayload signs any payload as a DSSE envelope of key, bypassing the
// statement checks of signoff.Sign (an attacker's envelope).
func signPayload(t *testing.T, payload []byte) []byte {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	vkey, err := note.NewEd25519VerifierKey("attacker.example", pub)
	if err != nil {
		t.Fatal(err)
	}
	sig := ed25519.Sign(priv, signoff.PAE(signoff.PayloadType, payload))
	return []byte(fmt.Sprintf(`{"payloadType":%q,"payload":%q,"signatures":[{"keyid":%q,"sig":%q}]}`,
		signoff.PayloadType, base64.StdEncoding.EncodeToString(payload), vkey, base64.StdEncoding.EncodeToString(sig)))
}

// TestAttackAttestRefused: each forged, misdirected or malformed
// submission is refused with its status over HTTP and gRPC, and logs
// nothing.
func TestAttackAttestRefused(t *testing.T) {
	f := newFixture(t)
	a := newAttester(t, "rebuilder-a.example")
	valid := a.sign(t, statement(signoff.Reproduced, fw))
	u, _ := signoff.ParseEnvelope(valid)
	forged := bytes.Replace(valid, []byte(base64.StdEncoding.EncodeToString(u.Sig)), []byte(base64.StdEncoding.EncodeToString(make([]byte, 64))), 1)
	otherKey := bytes.Replace(valid, []byte(a.vkey), []byte(newAttester(t, "rebuilder-a.example").vkey), 1)
	notAStatement := signPayload(t, []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x","predicate":{}}`))
	for _, tc := range []struct {
		name     string
		repo     string
		body     []byte
		httpCode int
		grpcCode codes.Code
	}{
		{"forged-signature", fw, forged, 403, codes.PermissionDenied},
		{"signature-by-another-key", fw, otherKey, 403, codes.PermissionDenied},
		{"statement-for-another-repository", fw, a.sign(t, statement(signoff.Reproduced, "example.com/other")), 400, codes.InvalidArgument},
		{"oversize-body", fw, bytes.Repeat([]byte(" "), signoff.MaxEnvelopeSize+1), 413, codes.ResourceExhausted},
		{"malformed-envelope", fw, []byte(`{"payloadType":"application/vnd.in-toto+json"}`), 400, codes.InvalidArgument},
		{"malformed-statement", fw, notAStatement, 400, codes.InvalidArgument},
		{"empty-body", fw, nil, 400, codes.InvalidArgument},
		{"unknown-repository", "example.com/nobody", a.sign(t, statement(signoff.Reproduced, "example.com/nobody")), 404, codes.NotFound},
		{"bad-repository-id", "has%20space", valid, 400, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.size()
			if _, r := f.attest(tc.repo, tc.body, "0"); r.code != tc.httpCode {
				t.Errorf("HTTP: %d %s, want %d", r.code, r.body, tc.httpCode)
			}
			repo := strings.ReplaceAll(tc.repo, "%20", " ")
			if _, err := f.grpc.Attest(context.Background(), &ledgerv1.AttestRequest{Repo: repo, Envelope: tc.body}); status.Code(err) != tc.grpcCode {
				t.Errorf("gRPC: %v, want %v", err, tc.grpcCode)
			}
			if after := f.size(); after != before {
				t.Errorf("the log grew from %d to %d", before, after)
			}
		})
	}
}

func TestAttestationsBadQueries(t *testing.T) {
	f := newFixture(t)
	s := hex.EncodeToString(subject[:])
	for q, code := range map[string]int{
		"repo=" + fw: 400,
		"repo=" + fw + "&subject=" + strings.ToUpper(s):                400,
		"repo=" + fw + "&subject=" + s + "&key=00":                     400,
		"repo=" + fw + "&subject=" + s + "&subject=" + s:               400,
		"repo=" + fw + "&subject=" + s + "&other=1":                    400,
		"repo=" + fw + "&subject=" + s + strings.Repeat("&key="+s, 33): 400,
		"repo=example.com/nobody&subject=" + s:                         404,
		"repo=" + fw + "&subject=" + s:                                 200,
	} {
		if _, r := f.attestations(q); r.code != code {
			t.Errorf("GET /v1/attestations?%.80s: %d %s, want %d", q, r.code, r.body, code)
		}
	}
}

// TestAttestationsSurviveIndexLoss: a restart with the index deleted
// replays the log, attestation entries included.
func TestAttestationsSurviveIndexLoss(t *testing.T) {
	f := newFixture(t)
	a := newAttester(t, "rebuilder-a.example")
	env := a.sign(t, statement(signoff.Reproduced, fw))
	if _, r := f.attest(fw, env, "10s"); r.code != 200 {
		t.Fatalf("attest: %d %s", r.code, r.body)
	}
	f.stop()
	if err := os.Remove(filepath.Join(f.dir, server.IndexFile)); err != nil {
		t.Fatal(err)
	}
	n := serveNode(t, f.dir)
	q := "repo=" + fw + "&subject=" + hex.EncodeToString(subject[:])
	deadline := time.Now().Add(60 * time.Second)
	for {
		ev, r := n.attestations(q)
		if ev != nil && len(ev.Attestations) == 1 && bytes.Equal(ev.Attestations[0].Envelope, env) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the replay: %d %s", r.code, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if rc, r := n.attest(fw, env, "0"); r.code != 200 || !rc.Duplicate {
		t.Errorf("after the replay the envelope is not a duplicate: %d %s", r.code, r.body)
	}
}
