package signoff

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/evidencetest"
	"github.com/shiplog/shiplog/evidence/policy"
)

// ledger is an in-memory log with a 2-of-3 witness policy that logs
// envelopes as the ledger does and hands out their evidence.
type ledger struct {
	t       testing.TB
	log     *evidencetest.Log
	policy  *policy.Policy
	indexes []uint64
	envs    [][]byte
}

func newLedger(t testing.TB) *ledger {
	l := evidencetest.NewLog("example.com/log", 3)
	p, err := policy.Parse(l.Policy(2))
	if err != nil {
		t.Fatal(err)
	}
	return &ledger{t: t, log: l, policy: p}
}

// attest logs env (as the ledger does after OpenEnvelope) and keeps it.
func (l *ledger) attest(env []byte) {
	e, err := OpenEnvelope(env)
	if err != nil {
		l.t.Fatal(err)
	}
	l.indexes = append(l.indexes, l.log.Append(e.Entry().Format()))
	l.envs = append(l.envs, env)
}

// evidence returns every logged envelope with its tlog-proof under the
// current checkpoint, cosigned by the given witnesses (0 and 1 meet the
// quorum).
func (l *ledger) evidence(cosigners ...int) []Attestation {
	if cosigners == nil {
		cosigners = []int{0, 1}
	}
	var atts []Attestation
	for i, env := range l.envs {
		atts = append(atts, Attestation{Envelope: env, Proof: l.log.Proof(l.indexes[i], cosigners...)})
	}
	return atts
}

func (l *ledger) verify() VerifyProof { return PolicyProof(l.policy) }

func require(verdict string, k int, keys ...testKey) Requirement {
	r := Requirement{Verdict: verdict, K: k}
	for _, key := range keys {
		r.Keys = append(r.Keys, key.att)
	}
	return r
}

// refusal asserts that err is a *RefusedError for reason.
func refusal(t *testing.T, err, reason error) *RefusedError {
	t.Helper()
	var re *RefusedError
	if !errors.As(err, &re) || !errors.Is(err, reason) {
		t.Fatalf("Check: %v, want a refusal for %v", err, reason)
	}
	return re
}

func TestSignoffAccepts2of2(t *testing.T) {
	l := newLedger(t)
	a, b, r := newKey(t, "rebuilder-a.example"), newKey(t, "rebuilder-b.example"), newKey(t, "reviewer.example")
	l.attest(a.sign(t, statement(Reproduced, testRepo, testSubject)))
	l.attest(newKey(t, "stranger.example").sign(t, statement(Mismatch, testRepo, testSubject)))
	l.attest(b.sign(t, statement(Reproduced, testRepo, testSubject)))
	l.attest(r.sign(t, statement(Reviewed, testRepo, testSubject)))
	reqs := []Requirement{require(Reproduced, 2, a, b), require(Reviewed, 1, r)}
	res, err := Check(reqs, testRepo, testSubject, l.evidence(), l.verify())
	if err != nil {
		t.Fatal(err)
	}
	if names(res.Counted[0]) != "rebuilder-a.example, rebuilder-b.example" || names(res.Counted[1]) != "reviewer.example" {
		t.Errorf("Counted = %v / %v", names(res.Counted[0]), names(res.Counted[1]))
	}
	if len(res.Ignored) != 1 || !errors.Is(res.Ignored[0].Err, ErrUntrusted) {
		t.Errorf("Ignored = %+v, want the stranger's mismatch, untrusted", res.Ignored)
	}
	if res, err := Check(nil, testRepo, testSubject, nil, l.verify()); err != nil || len(res.Proven) != 0 {
		t.Errorf("no requirement: %v, %+v", err, res)
	}
}

// TestSignoffCountsALocalSourceAndSaysSo: rebuilder B built from a local
// copy of the source ("source_local"); its statement counts as A's does,
// and the Result names B (and only B) as having built from a local copy,
// for reproduced and for mismatch statements alike.
func TestSignoffCountsALocalSourceAndSaysSo(t *testing.T) {
	l := newLedger(t)
	a, b, c := newKey(t, "rebuilder-a.example"), newKey(t, "rebuilder-b.example"), newKey(t, "rebuilder-c.example")
	l.attest(a.sign(t, statement(Reproduced, testRepo, testSubject)))
	local := statement(Reproduced, testRepo, testSubject)
	local.SourceLocal = true
	l.attest(b.sign(t, local))
	res, err := Check([]Requirement{require(Reproduced, 2, a, b)}, testRepo, testSubject, l.evidence(), l.verify())
	if err != nil {
		t.Fatalf("a statement from a local copy must count: %v", err)
	}
	if names(res.Counted[0]) != "rebuilder-a.example, rebuilder-b.example" {
		t.Errorf("Counted = %v", names(res.Counted[0]))
	}
	if got := names(res.SourceLocal[Reproduced]); got != "rebuilder-b.example" {
		t.Errorf("SourceLocal[reproduced] = %q, want rebuilder-b.example", got)
	}
	m := statement(Mismatch, testRepo, testSubject)
	m.SourceLocal = true
	l.attest(c.sign(t, m))
	res, err = Check([]Requirement{require(Reproduced, 2, a, b, c)}, testRepo, testSubject, l.evidence(), l.verify())
	refusal(t, err, ErrMismatch)
	if got := names(res.SourceLocal[Mismatch]); got != "rebuilder-c.example" {
		t.Errorf("SourceLocal[mismatch] = %q, want rebuilder-c.example", got)
	}
}

func TestSignoffRefusesTooFewStatements(t *testing.T) {
	l := newLedger(t)
	a, b := newKey(t, "rebuilder-a.example"), newKey(t, "rebuilder-b.example")
	l.attest(a.sign(t, statement(Reproduced, testRepo, testSubject)))
	_, err := Check([]Requirement{require(Reproduced, 2, a, b)}, testRepo, testSubject, l.evidence(), l.verify())
	re := refusal(t, err, ErrTooFew)
	if want := "sign-off: 1 of 2 required reproduced statements (rebuilder-a.example); none from rebuilder-b.example"; re.Error() != want {
		t.Errorf("message %q, want %q", re.Error(), want)
	}
	_, err = Check([]Requirement{require(Reproduced, 1, a, b)}, testRepo, testSubject, nil, l.verify())
	if re := refusal(t, err, ErrTooFew); !strings.HasPrefix(re.Error(), "sign-off: 0 of 1 required reproduced statements; none from ") {
		t.Errorf("no evidence: %q", re.Error())
	}
}

// TestSignoffRefusesOneKeyCountedTwice: the same key under two names, with
// two different statements, counts once.
func TestSignoffRefusesOneKeyCountedTwice(t *testing.T) {
	l := newLedger(t)
	seed := make([]byte, 32)
	seed[0] = 9
	a, alias, b := seededKey(t, "rebuilder-a.example", seed), seededKey(t, "rebuilder-c.example", seed), newKey(t, "rebuilder-b.example")
	l.attest(a.sign(t, statement(Reproduced, testRepo, testSubject)))
	s := statement(Reproduced, testRepo, testSubject)
	s.Time = s.Time.Add(1e9)
	l.attest(alias.sign(t, s))
	res, err := Check([]Requirement{require(Reproduced, 2, a, b)}, testRepo, testSubject, l.evidence(), l.verify())
	refusal(t, err, ErrTooFew)
	if len(res.Ignored) != 1 || !errors.Is(res.Ignored[0].Err, ErrRepeated) {
		t.Errorf("Ignored = %+v, want the second statement repeated", res.Ignored)
	}
	// A requirement listing one key twice is not a 2-of-2.
	if _, err := Check([]Requirement{require(Reproduced, 2, a, alias)}, testRepo, testSubject, l.evidence(), l.verify()); err == nil || errors.As(err, new(*RefusedError)) {
		t.Errorf("a requirement with one key twice: %v, want invalid", err)
	}
}

func TestSignoffRefusesAStatementAboutAnotherDigest(t *testing.T) {
	l := newLedger(t)
	a := newKey(t, "rebuilder-a.example")
	l.attest(a.sign(t, statement(Reproduced, testRepo, sha256.Sum256([]byte("other release")))))
	res, err := Check([]Requirement{require(Reproduced, 1, a)}, testRepo, testSubject, l.evidence(), l.verify())
	refusal(t, err, ErrTooFew)
	if len(res.Ignored) != 1 || !errors.Is(res.Ignored[0].Err, ErrOtherSubject) {
		t.Errorf("Ignored = %+v", res.Ignored)
	}
}

// TestSignoffRefusesAStatementNotInTheLog: a signed statement whose proof
// belongs to another entry (the statement was never logged).
func TestSignoffRefusesAStatementNotInTheLog(t *testing.T) {
	l := newLedger(t)
	a := newKey(t, "rebuilder-a.example")
	l.attest(a.sign(t, statement(Reviewed, testRepo, testSubject)))
	atts := l.evidence()
	atts[0].Envelope = a.sign(t, statement(Reproduced, testRepo, testSubject)) // signed, never logged
	res, err := Check([]Requirement{require(Reproduced, 1, a)}, testRepo, testSubject, atts, l.verify())
	refusal(t, err, ErrTooFew)
	if len(res.Ignored) != 1 || !errors.Is(res.Ignored[0].Err, ErrNotLogged) || !errors.Is(res.Ignored[0].Err, evidence.ErrNotIncluded) {
		t.Errorf("Ignored = %+v, want not logged", res.Ignored)
	}
}

func TestSignoffRefusesACheckpointWithoutQuorum(t *testing.T) {
	l := newLedger(t)
	a := newKey(t, "rebuilder-a.example")
	l.attest(a.sign(t, statement(Reproduced, testRepo, testSubject)))
	res, err := Check([]Requirement{require(Reproduced, 1, a)}, testRepo, testSubject, l.evidence(0), l.verify())
	refusal(t, err, ErrTooFew)
	if len(res.Ignored) != 1 || !errors.Is(res.Ignored[0].Err, evidence.ErrQuorum) {
		t.Errorf("Ignored = %+v, want no quorum", res.Ignored)
	}
}

func TestSignoffRefusesATrustedMismatch(t *testing.T) {
	l := newLedger(t)
	a, b, c := newKey(t, "rebuilder-a.example"), newKey(t, "rebuilder-b.example"), newKey(t, "rebuilder-c.example")
	l.attest(a.sign(t, statement(Reproduced, testRepo, testSubject)))
	l.attest(b.sign(t, statement(Reproduced, testRepo, testSubject)))
	l.attest(c.sign(t, statement(Mismatch, testRepo, testSubject)))
	// 2 of 3 are met, but the third trusted rebuilder objects.
	_, err := Check([]Requirement{require(Reproduced, 2, a, b, c)}, testRepo, testSubject, l.evidence(), l.verify())
	if re := refusal(t, err, ErrMismatch); names(re.Found) != "rebuilder-c.example" {
		t.Errorf("Found = %s", names(re.Found))
	}
	// A mismatch that is not proven in the log refuses nothing.
	atts := l.evidence()
	atts[2].Proof = atts[0].Proof
	if _, err := Check([]Requirement{require(Reproduced, 2, a, b, c)}, testRepo, testSubject, atts, l.verify()); err != nil {
		t.Errorf("an unlogged mismatch: %v", err)
	}
}

func TestSignoffRefusesAKeyStatingBoth(t *testing.T) {
	l := newLedger(t)
	a, r := newKey(t, "rebuilder-a.example"), newKey(t, "reviewer.example")
	l.attest(r.sign(t, statement(Reviewed, testRepo, testSubject)))
	l.attest(r.sign(t, statement(Reproduced, testRepo, testSubject)))
	l.attest(r.sign(t, statement(Mismatch, testRepo, testSubject)))
	l.attest(a.sign(t, statement(Reproduced, testRepo, testSubject)))
	// r is trusted only to review, yet its two contradicting statements refuse.
	_, err := Check([]Requirement{require(Reproduced, 1, a), require(Reviewed, 1, r)}, testRepo, testSubject, l.evidence(), l.verify())
	if re := refusal(t, err, ErrConflict); re.Error() != "sign-off: reviewer.example stated both reproduced and mismatch" {
		t.Errorf("message %q", re.Error())
	}
}

func TestSignoffRefusesAWrongRepository(t *testing.T) {
	l := newLedger(t)
	a := newKey(t, "rebuilder-a.example")
	l.attest(a.sign(t, statement(Reproduced, "example.com/other", testSubject)))
	res, err := Check([]Requirement{require(Reproduced, 1, a)}, testRepo, testSubject, l.evidence(), l.verify())
	refusal(t, err, ErrTooFew)
	if len(res.Ignored) != 1 || !errors.Is(res.Ignored[0].Err, ErrOtherRepository) {
		t.Errorf("Ignored = %+v", res.Ignored)
	}
}

func TestSignoffRefusesAWrongVerdict(t *testing.T) {
	l := newLedger(t)
	a := newKey(t, "rebuilder-a.example")
	l.attest(a.sign(t, statement(Reviewed, testRepo, testSubject)))
	res, err := Check([]Requirement{require(Reproduced, 1, a)}, testRepo, testSubject, l.evidence(), l.verify())
	refusal(t, err, ErrTooFew)
	if len(res.Proven[Reviewed]) != 1 {
		t.Errorf("Proven = %v: the review is proven, it just is not a reproduction", res.Proven)
	}
}

func TestSignoffRefusesAForgedSignature(t *testing.T) {
	l := newLedger(t)
	a := newKey(t, "rebuilder-a.example")
	l.attest(a.sign(t, statement(Reproduced, testRepo, testSubject)))
	atts := l.evidence()
	u, _ := ParseEnvelope(atts[0].Envelope)
	forged := strings.Replace(string(atts[0].Envelope), encodeSig(u.Sig), encodeSig(make([]byte, 64)), 1)
	atts[0].Envelope = []byte(forged)
	res, err := Check([]Requirement{require(Reproduced, 1, a)}, testRepo, testSubject, atts, l.verify())
	refusal(t, err, ErrTooFew)
	if len(res.Ignored) != 1 || !errors.Is(res.Ignored[0].Err, ErrBadSignature) {
		t.Errorf("Ignored = %+v", res.Ignored)
	}
}

func TestRequirementValidate(t *testing.T) {
	a := newKey(t, "a.example")
	for _, r := range []Requirement{
		require(Mismatch, 1, a),
		require(Reproduced, 0, a),
		require(Reproduced, 2, a),
		{Verdict: Reviewed, K: 1},
	} {
		if err := r.Validate(); err == nil {
			t.Errorf("Validate(%+v) succeeded", r)
		}
	}
}
