package audit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/audit/attestation"
	"github.com/shiplog/shiplog/audit/store"
	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/shiplog/shiplog/internal/harness"
	"github.com/shiplog/shiplog/repo"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/mod/sumdb/note"
)

type rebuilder struct {
	vkey string
	s    note.Signer
}

func newRebuilder(t *testing.T, name string) rebuilder {
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return rebuilder{vkey, s}
}

// targetsOf returns path -> sha256 of a release's targets.
func targetsOf(t *testing.T, md []byte) map[string][sha256.Size]byte {
	m, err := metadata.Targets().FromBytes(md)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][sha256.Size]byte{}
	for p, tf := range m.Signed.Targets {
		out[p] = [sha256.Size]byte(tf.Hashes["sha256"])
	}
	return out
}

// attest logs r's statement with verdict about the target path of the
// targets version v whose digest is subject, as the ledger would: the
// attestation entry, and the envelope stored content-addressed.
func (e *env) attest(r rebuilder, verdict, path string, v uint64, subject [sha256.Size]byte) {
	e.t.Helper()
	st := &signoff.Statement{SubjectName: path, Subject: subject, Verdict: verdict, Repository: e.repo.ID,
		Target: path, TargetsRole: "targets", TargetsVersion: v, Time: time.Now().UTC().Truncate(time.Second)}
	switch verdict {
	case signoff.Reproduced:
		st.Built = subject
	case signoff.Mismatch:
		st.Built = sha256.Sum256([]byte("what the source builds"))
	}
	if verdict != signoff.Reviewed {
		st.Provenance = json.RawMessage(`{"source":"https://src.example/fw.tar.gz"}`)
	}
	env, err := signoff.Sign(st, r.s, r.vkey)
	if err != nil {
		e.t.Fatal(err)
	}
	en, err := signoff.OpenEnvelope(env)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.ledger.AppendRaw(e.ctx, en.Entry().Format(), env); err != nil {
		e.t.Fatal(err)
	}
	if err := e.ledger.Publish(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

// expectAll is vendor mode for the repository that made every release rs.
func expectAll(t *testing.T, e *env, rs []harness.Release) *Expected {
	var hashes strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&hashes, "%x\n", sha256Sum(r.Metadata))
	}
	exp, err := ParseExpectedHashes([]byte(hashes.String()), e.repo.ID)
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

// TestSignoffStatementsAreNoFinding: reproduced and reviewed statements
// about an honest release are recorded, not reported (and an attestation
// entry is not a malformed release entry).
func TestSignoffStatementsAreNoFinding(t *testing.T) {
	e := newEnv(t)
	rs := e.honest(e.ledger, 1)
	a, b := newRebuilder(t, "rebuilder-a.example"), newRebuilder(t, "auditor.example")
	for p, d := range targetsOf(t, rs[1].Metadata) {
		e.attest(a, signoff.Reproduced, p, 1, d)
		e.attest(b, signoff.Reviewed, p, 1, d)
	}
	wantNone(t, e.step(e.auditor(nil)))
	var n int
	e.db.View(func(tx *store.Tx) error {
		ss, err := tx.ReleaseStatements(e.repo.ID, "targets", 1)
		n = len(ss)
		return err
	})
	if n != 4 {
		t.Errorf("%d statements stored for targets v1, want 4", n)
	}
}

// TestSignoffMismatchReported: a rebuilder's logged mismatch is a
// warning; in vendor mode, about the vendor's own release, critical.
func TestSignoffMismatchReported(t *testing.T) {
	for _, vendor := range []bool{false, true} {
		e := newEnv(t)
		rs := e.honest(e.ledger, 1)
		d := targetsOf(t, rs[1].Metadata)["fw-0.bin"]
		e.attest(newRebuilder(t, "rebuilder-b.example"), signoff.Mismatch, "fw-0.bin", 1, d)
		a := e.auditor(func(c *Config) {
			if vendor {
				c.Vendor = expectAll(t, e, rs)
			}
		})
		f := wantFinding(t, e.step(a), alert.KindSignoffMismatch)
		want := alert.Warning
		if vendor {
			want = alert.Critical
		}
		if f.Severity != want || f.Repo != e.repo.ID || f.Version != 1 || !strings.Contains(f.Message, "rebuilder-b.example") {
			t.Errorf("vendor=%v: %+v", vendor, f)
		}
	}
}

// TestSignoffConflictReported: one rebuilder key states reproduced, then
// mismatch, about one target digest.
func TestSignoffConflictReported(t *testing.T) {
	e := newEnv(t)
	rs := e.honest(e.ledger, 1)
	d := targetsOf(t, rs[1].Metadata)["fw-0.bin"]
	r := newRebuilder(t, "rebuilder-a.example")
	e.attest(r, signoff.Reproduced, "fw-0.bin", 1, d)
	a := e.auditor(nil)
	wantNone(t, e.step(a))
	e.attest(r, signoff.Mismatch, "fw-0.bin", 1, d)
	f := wantFinding(t, e.step(a), alert.KindSignoffConflict)
	if f.Severity != alert.Warning || f.Evidence["first_verdict"] != signoff.Reproduced {
		t.Errorf("conflict: %+v", f)
	}
}

// TestSignoffMissingVendorMode: in vendor mode with a one-hour deadline, a
// release whose fw-1.bin nobody reproduced is reported after the hour,
// once; fw-0.bin, reproduced, is not named.
func TestSignoffMissingVendorMode(t *testing.T) {
	e := newEnv(t)
	rs := e.honest(e.ledger, 1)
	exp := expectAll(t, e, rs)
	now := time.Now()
	a := e.auditor(func(c *Config) {
		c.Vendor, c.SignoffDeadline = exp, time.Hour
		c.Now = func() time.Time { return now }
	})
	wantNone(t, e.step(a))
	e.attest(newRebuilder(t, "rebuilder-a.example"), signoff.Reproduced, "fw-0.bin", 1, targetsOf(t, rs[1].Metadata)["fw-0.bin"])
	wantNone(t, e.step(a))
	now = now.Add(2 * time.Hour)
	res := e.step(a)
	f := wantFinding(t, res, alert.KindSignoffMissing)
	if f.Evidence["targets"] != "fw-1.bin" || f.Version != 1 || len(res.Findings) != 1 {
		t.Errorf("signoff-missing: %+v (findings %d)", f, len(res.Findings))
	}
	now = now.Add(time.Hour)
	wantNone(t, e.step(a))
}

// attestServer is the ledger's POST /v1/attest over the test ledger: it
// logs the envelope's entry and stores the envelope, as the ledger does,
// and counts what it accepted.
func (e *env) attestServer(t *testing.T, accepted *int) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, signoff.MaxEnvelopeSize+1))
		en, err := signoff.OpenEnvelope(body)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/attest" || err != nil || r.URL.Query().Get("repo") != en.Statement.Repository {
			http.Error(w, "bad attestation", http.StatusBadRequest)
			return
		}
		lh := en.Entry().LeafHash()
		i, err := e.ledger.AppendRaw(e.ctx, en.Entry().Format(), body)
		if err == nil {
			err = e.ledger.Publish(e.ctx)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		*accepted++
		fmt.Fprintf(w, `{"index":%d,"leaf_hash":"%x","entry":"","duplicate":false,"proof":""}`, i, lh)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestAuditReviewsReleasesItPasses: an auditor with a review key logs a
// "reviewed" statement about each target of each release it passes, once;
// not about a target a rebuilder objected to, nor about a release the
// vendor did not make.
func TestAuditReviewsReleasesItPasses(t *testing.T) {
	e := newEnv(t)
	rs := e.honest(e.ledger, 1)
	objected := targetsOf(t, rs[1].Metadata)["fw-1.bin"]
	e.attest(newRebuilder(t, "rebuilder-b.example"), signoff.Mismatch, "fw-1.bin", 1, objected)
	skey, vkey, err := note.GenerateKey(rand.Reader, "auditor.example")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	var accepted int
	url := e.attestServer(t, &accepted)
	// The vendor made v1 only; v2 is a thief's.
	exp := expectAll(t, e, rs)
	a := e.auditor(func(c *Config) {
		c.Vendor = exp
		c.Reviewer = &Reviewer{Signer: s, VKey: vkey, Ledger: url}
	})
	e.step(a) // reviews fw-0.bin of v1
	if accepted != 1 {
		t.Fatalf("%d reviews logged, want 1 (fw-0.bin; fw-1.bin was objected to)", accepted)
	}
	e.honest(e.ledger, 1)
	res := e.step(a) // sees its own review; v2 is unexpected: not reviewed
	wantFinding(t, res, alert.KindUnexpected)
	e.step(a)
	if accepted != 1 {
		t.Fatalf("%d reviews logged, want still 1", accepted)
	}
	var got []attestation.Statement
	e.db.View(func(tx *store.Tx) (err error) {
		got, err = tx.ReleaseStatements(e.repo.ID, "targets", 1)
		return err
	})
	var reviewed []string
	for _, st := range got {
		if st.Verdict == signoff.Reviewed {
			reviewed = append(reviewed, st.Name+" "+st.Target)
		}
	}
	if strings.Join(reviewed, ",") != "auditor.example fw-0.bin" {
		t.Errorf("reviewed statements of v1: %v", reviewed)
	}
}

// TestSignoffAgainstTheRealLedger: the real ledger and a real witness; a
// rebuilder logs a mismatch with POST /v1/attest; the auditor, following
// the ledger's read API, fetches the envelope the ledger stored for the
// attestation entry and reports the mismatch, and nothing else.
func TestSignoffAgainstTheRealLedger(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a ledger and a witness")
	}
	h := harness.Start(t, harness.Witnesses(1))
	r := h.NewRepo(t, "example.com/firmware")
	r.Add("fw.bin", []byte("firmware"))
	r.Sign()
	r.Publish()
	rb := newRebuilder(t, "rebuilder-b.example")
	st := &signoff.Statement{SubjectName: "fw.bin", Subject: sha256.Sum256([]byte("firmware")), Verdict: signoff.Mismatch, Repository: r.ID,
		Target: "fw.bin", TargetsRole: "targets", TargetsVersion: 2, Built: sha256.Sum256([]byte("what the source builds")),
		Provenance: json.RawMessage(`{"source":"https://src.example/fw.tar.gz"}`), Time: time.Now().UTC().Truncate(time.Second)}
	env, err := signoff.Sign(st, rb.s, rb.vkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Attest(context.Background(), h.URL, nil, r.ID, env, time.Minute); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err := New(Config{Ledger: h.URL, Policy: h.Policy, State: db})
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Step(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f := wantFinding(t, res, alert.KindSignoffMismatch)
	if len(res.Findings) != 1 || f.Evidence["envelope_sha256"] != fmt.Sprintf("%x", sha256.Sum256(env)) {
		t.Errorf("findings %+v", res.Findings)
	}
}
