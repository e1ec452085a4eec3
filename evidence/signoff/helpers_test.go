package signoff

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence/notekey"
	"golang.org/x/mod/sumdb/note"
)

// testKey is an attester's signing side.
type testKey struct {
	signer note.Signer
	vkey   string
	att    *Attester
}

// newKey returns a fresh attester key named name.
func newKey(t testing.TB, name string) testKey {
	t.Helper()
	skey, vkey, err := notekey.GenerateLog(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return keyFrom(t, skey, vkey)
}

// seededKey returns the attester key named name with an Ed25519 seed.
func seededKey(t testing.TB, name string, seed []byte) testKey {
	t.Helper()
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	typed := append([]byte{notekey.TypeEd25519}, pub...)
	skey := fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, notekey.KeyID(name, typed), base64.StdEncoding.EncodeToString(append([]byte{notekey.TypeEd25519}, seed...)))
	return keyFrom(t, skey, vkey)
}

func keyFrom(t testing.TB, skey, vkey string) testKey {
	t.Helper()
	s, err := notekey.NewLogSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseAttester(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{signer: s, vkey: vkey, att: a}
}

var (
	testRepo    = "example.com/firmware"
	testTarget  = []byte("firmware 1.4.0 bytes")
	testSubject = sha256.Sum256(testTarget)
	testTime    = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	testProv    = []byte(`{"source":{"uri":"https://example.com/src/fw-1.4.0.tar.gz","digest":{"sha256":"1c5b5a3b1f2a7c1e0b7a3c63e7e5b4c2a4c1b0f1d9e8e7d6c5b4a39281706f5e"}},"revision":"v1.4.0","build":{"command":"go build -trimpath -o app.bin ./cmd/fw","toolchain":"go1.26","output":"app.bin"}}`)
)

// statement returns a valid statement with verdict about subject in repo.
func statement(verdict, repo string, subject [sha256.Size]byte) *Statement {
	s := &Statement{SubjectName: "app.bin", Subject: subject, Verdict: verdict, Repository: repo,
		Target: "app.bin", TargetsRole: "targets", TargetsVersion: 3, Time: testTime}
	switch verdict {
	case Reproduced:
		s.Built, s.Provenance = subject, testProv
	case Mismatch:
		s.Built, s.Provenance = sha256.Sum256([]byte("other bytes")), testProv
	}
	return s
}

// sign returns the envelope of s signed by k.
func (k testKey) sign(t testing.TB, s *Statement) []byte {
	t.Helper()
	env, err := Sign(s, k.signer, k.vkey)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func encodeSig(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
