package keys

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func pass(s string) func() (string, error) { return func() (string, error) { return s, nil } }

func TestRoundTripAndKeyID(t *testing.T) {
	for _, typ := range []Type{Ed25519, ECDSAP256} {
		t.Run(string(typ), func(t *testing.T) {
			k, err := GenerateDefault(typ)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "k")
			if err := WriteFiles(k, path, "correct horse", 10); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			if !Encrypted(b) || bytes.Contains(b, []byte("PRIVATE KEY")) {
				t.Fatal("private key file is not encrypted at rest")
			}
			got, err := Load(path, pass("correct horse"))
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != k.ID {
				t.Errorf("key ID %s after reload, want %s", got.ID, k.ID)
			}
			pub, id, err := LoadPublic(path) // reads path.pub
			if err != nil {
				t.Fatal(err)
			}
			if id != k.ID {
				t.Errorf("public key ID %s, want %s", id, k.ID)
			}
			// The ID is the one go-tuf's Sign puts in signatures.
			s, _ := got.Signer()
			m := metadata.Targets()
			sig, err := m.Sign(s)
			if err != nil {
				t.Fatal(err)
			}
			if sig.KeyID != id {
				t.Errorf("go-tuf signs with key ID %s, we report %s", sig.KeyID, id)
			}
			root := metadata.Root()
			root.Signed.AddKey(pub, "targets")
			if err := root.VerifyDelegate("targets", m); err != nil {
				t.Errorf("signature does not verify with the public key file: %v", err)
			}
		})
	}
}

func TestWrongPassphraseRefused(t *testing.T) {
	k, _ := GenerateDefault(Ed25519)
	b, err := k.Marshal("right", 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParsePrivate(b, pass("wrong")); !errors.Is(err, ErrPassphrase) {
		t.Fatalf("wrong passphrase: got %v, want ErrPassphrase", err)
	}
}

func TestMissingPassphraseRefused(t *testing.T) {
	k, _ := GenerateDefault(Ed25519)
	b, _ := k.Marshal("right", 10)
	if _, err := ParsePrivate(b, nil); !errors.Is(err, ErrNeedPassphrase) {
		t.Fatalf("no passphrase source: got %v", err)
	}
	if _, err := ParsePrivate(b, pass("")); !errors.Is(err, ErrNeedPassphrase) {
		t.Fatalf("empty passphrase: got %v", err)
	}
}

func TestPlaintextKeyNeedsNoPassphrase(t *testing.T) {
	k, _ := GenerateDefault(ECDSAP256)
	b, _ := k.Marshal("", 0)
	got, err := ParsePrivate(b, func() (string, error) { t.Fatal("asked for a passphrase"); return "", nil })
	if err != nil || got.ID != k.ID {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestNeverOverwritesKeyFile(t *testing.T) {
	k, _ := GenerateDefault(Ed25519)
	path := filepath.Join(t.TempDir(), "k")
	if err := WriteFiles(k, path, "", 0); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	k2, _ := GenerateDefault(Ed25519)
	if err := WriteFiles(k2, path, "", 0); err == nil {
		t.Fatal("overwrote an existing key file")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("key file changed")
	}
}

// TestMutatedKeyFilesRefused: every one-byte change of an encrypted key
// file is refused (age authenticates the whole file), never panics, and
// never yields a different key.
func TestMutatedKeyFilesRefused(t *testing.T) {
	k, _ := GenerateDefault(Ed25519)
	b, _ := k.Marshal("pw", 10)
	step := 1
	if testing.Short() {
		step = 7
	}
	for i := 0; i < len(b); i += step {
		m := bytes.Clone(b)
		m[i] ^= 0x01
		got, err := ParsePrivate(m, pass("pw"))
		if err == nil && got.ID != k.ID {
			t.Fatalf("mutation at %d gave another key", i)
		}
	}
}

func TestParsePublicRejectsForeignForms(t *testing.T) {
	for _, in := range []string{
		``,
		`{}`,
		`{"keytype":"rsa","scheme":"rsassa-pss-sha256","keyval":{"public":"x"}}`,
		`{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"00"}}`,
		`{"keytype":"ed25519","scheme":"ecdsa-sha2-nistp256","keyval":{"public":"` + string(bytes.Repeat([]byte("ab"), 32)) + `"}}`,
		`{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"` + string(bytes.Repeat([]byte("ab"), 32)) + `"},"extra":1}`,
		`{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"` + string(bytes.Repeat([]byte("AB"), 32)) + `"}}`,
	} {
		if _, _, err := ParsePublic([]byte(in)); err == nil {
			t.Errorf("accepted %s", in)
		}
	}
}

func FuzzParsePrivate(f *testing.F) {
	k, _ := GenerateDefault(Ed25519)
	enc, _ := k.Marshal("pw", 10)
	plain, _ := k.Marshal("", 0)
	f.Add(enc)
	f.Add(plain)
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePrivate(b, pass("pw"))
		if err == nil && p.ID == "" {
			t.Fatal("parsed a key without an ID")
		}
	})
}

func FuzzParsePublic(f *testing.F) {
	k, _ := GenerateDefault(Ed25519)
	e, _ := GenerateDefault(ECDSAP256)
	for _, p := range []*Private{k, e} {
		b, _ := p.MarshalPublic()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		key, id, err := ParsePublic(b)
		if err != nil {
			return
		}
		if got, _ := key.ID(); got != id {
			t.Fatalf("ID %s, key says %s", id, got)
		}
	})
}
