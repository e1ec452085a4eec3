package signoff

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"
)

// specExample is the worked example of docs/spec/signoff.md: a reviewed
// statement by the attester whose Ed25519 seed is the bytes 0x00 to 0x1f,
// named reviewer.example.org. Ed25519 signatures are deterministic, so
// the envelope, the entry and the leaf hash are fixed values.
func specExample(t testing.TB) (testKey, *Statement) {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	k := seededKey(t, "reviewer.example.org", seed)
	target := sha256.Sum256([]byte("app.bin v1.4.0\n"))
	s := &Statement{SubjectName: "app.bin", Subject: target, Verdict: Reviewed, Repository: "example.com/firmware",
		Target: "app.bin", TargetsRole: "targets", TargetsVersion: 3, Time: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	return k, s
}

// TestSpecExample checks the worked example of docs/spec/signoff.md against
// the code, and that the document shows exactly these values.
func TestSpecExample(t *testing.T) {
	k, s := specExample(t)
	env := k.sign(t, s)
	e, err := OpenEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	en := e.Entry()
	lh := en.LeafHash()
	values := map[string]string{
		"vkey":      k.vkey,
		"key id":    k.att.ID.String(),
		"statement": string(e.Statement.mustFormat(t)),
		"envelope":  string(env),
		"entry":     string(en.Format()),
		"leaf hash": hex.EncodeToString(lh[:]),
	}
	if testing.Verbose() {
		for k, v := range values {
			t.Logf("%s:\n%s", k, v)
		}
	}
	doc, err := os.ReadFile("../../docs/spec/signoff.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range values {
		if !bytes.Contains(doc, []byte(strings.TrimSuffix(v, "\n"))) {
			t.Errorf("docs/spec/signoff.md does not show the example's %s:\n%s", name, v)
		}
	}
}

func (s *Statement) mustFormat(t testing.TB) []byte {
	b, err := s.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
