package attest

import (
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/shiplog/shiplog/internal/harness"
	"golang.org/x/mod/sumdb/note"
)

func statementBy(t *testing.T, r *harness.RawRepo, name, verdict string, subject [32]byte) []byte {
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	st := &signoff.Statement{SubjectName: "fw/app.bin", Subject: subject, Verdict: verdict, Repository: r.ID,
		Target: "fw/app.bin", TargetsRole: "targets", TargetsVersion: 2, Time: harness.Now}
	if verdict != signoff.Reviewed {
		st.Built = subject
		if verdict == signoff.Mismatch {
			st.Built[0] ^= 1
		}
		st.Provenance = []byte(declared)
	}
	env, err := signoff.Sign(st, s, vkey)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestObjections: only a signed and logged mismatch objects; one whose
// proof does not verify, or a reproduced statement, does not.
func TestObjections(t *testing.T) {
	r := harness.NewRawRepo(t)
	subject := sha256.Sum256([]byte("firmware"))
	mismatch := r.LogAttestation(statementBy(t, r, "rebuilder-a.example", signoff.Mismatch, subject))
	unproven := r.LogAttestation(statementBy(t, r, "rebuilder-b.example", signoff.Mismatch, subject))
	unproven.Proof = r.Log.Proof(0, r.Cosigners...) // another entry's proof
	reproduced := r.LogAttestation(statementBy(t, r, "rebuilder-c.example", signoff.Reproduced, subject))
	ev := r.WriteSignoff(subject, mismatch, unproven, reproduced)
	got, ignored, err := Objections(ev, r.ID, subject, r.Policy(2))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "rebuilder-a.example" || ignored != 1 {
		t.Errorf("objectors %v, ignored %d", got, ignored)
	}
	none := r.WriteSignoff(subject, reproduced)
	if got, _, err := Objections(none, r.ID, subject, r.Policy(2)); err != nil || len(got) != 0 {
		t.Errorf("no mismatch: %v %v", got, err)
	}
	if _, _, err := Objections(none, r.ID, sha256.Sum256([]byte("other")), r.Policy(2)); err == nil {
		t.Error("evidence about another digest accepted")
	}
}
