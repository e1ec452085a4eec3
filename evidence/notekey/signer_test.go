package notekey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

const testCheckpoint = "example.com/log\n1\nXhRA/3GRm2yqwBX/tLP1g0bU/EsFFFvhwB7zhnJ/+uU=\n"

func TestLogSignerFromVerifies(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, k := range map[string]crypto.Signer{"ed25519": edKey, "ecdsa-p256": ecKey} {
		t.Run(name, func(t *testing.T) {
			s, vkey, err := NewLogSignerFrom("example.com/log", k)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := note.Sign(&note.Note{Text: testCheckpoint}, s)
			if err != nil {
				t.Fatal(err)
			}
			v, err := ParseLogVerifier(vkey)
			if err != nil {
				t.Fatalf("ParseLogVerifier(%q): %v", vkey, err)
			}
			if v.KeyHash() != s.KeyHash() {
				t.Errorf("verifier key ID %08x, signer %08x", v.KeyHash(), s.KeyHash())
			}
			if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
				t.Errorf("note does not verify: %v", err)
			}
			fv, err := fnote.NewVerifier(vkey)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := note.Open(msg, note.VerifierList(fv)); err != nil {
				t.Errorf("formats verifier refuses our signature: %v", err)
			}
		})
	}
}

func TestLogSignerFromMatchesFileKey(t *testing.T) {
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	priv := ed25519.NewKeyFromSeed(seed)
	s, vkey, err := NewLogSignerFrom("example.com/log", priv)
	if err != nil {
		t.Fatal(err)
	}
	want, err := note.NewEd25519VerifierKey("example.com/log", priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if vkey != want {
		t.Errorf("vkey %q, want %q", vkey, want)
	}
	v, _ := note.NewVerifier(want)
	if s.KeyHash() != v.KeyHash() {
		t.Errorf("key ID %08x, want %08x", s.KeyHash(), v.KeyHash())
	}
}

func TestWitnessSignerFrom(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, vkey, cosig, err := NewWitnessSignerFrom("witness.example", priv)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: testCheckpoint}, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{vkey, cosig} {
		v, err := ParseWitnessVerifier(k)
		if err != nil {
			t.Fatal(err)
		}
		if v.KeyHash() != s.KeyHash() {
			t.Errorf("key ID %08x of %q, signer has %08x", v.KeyHash(), k, s.KeyHash())
		}
		if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
			t.Errorf("cosignature does not verify with %q: %v", k, err)
		}
	}
}

func TestWitnessSignerFromRefusesECDSA(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, _, _, err := NewWitnessSignerFrom("witness.example", k); !errors.Is(err, ErrCosignatureNeedsEd25519) {
		t.Fatalf("err = %v, want ErrCosignatureNeedsEd25519", err)
	}
}
