package notekey

import (
	"crypto/rand"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

func TestGenerateWitnessRoundTrip(t *testing.T) {
	skey, vkey, cosig, err := GenerateWitness(rand.Reader, "witness.example")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewWitnessSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := note.Sign(&note.Note{Text: "example.com/log\n1\nXhRA/3GRm2yqwBX/tLP1g0bU/EsFFFvhwB7zhnJ/+uU=\n"}, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{vkey, cosig} {
		v, err := ParseWitnessVerifier(k)
		if err != nil {
			t.Fatalf("ParseWitnessVerifier(%q): %v", k, err)
		}
		if v.KeyHash() != s.KeyHash() {
			t.Errorf("key ID %08x of %q, signer has %08x", v.KeyHash(), k, s.KeyHash())
		}
		if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
			t.Errorf("cosignature does not verify with %q: %v", k, err)
		}
		// The ecosystem's verifier agrees.
		fv, _ := fnote.NewVerifierForCosignatureV1(k)
		if _, err := note.Open(msg, note.VerifierList(fv)); err != nil {
			t.Errorf("formats verifier refuses our cosignature: %v", err)
		}
	}
	if got, _ := CosignatureVKey(vkey); got != cosig {
		t.Errorf("CosignatureVKey = %q, want %q", got, cosig)
	}
	if got, _ := VerifierKey(skey); got != vkey {
		t.Errorf("VerifierKey = %q, want %q", got, vkey)
	}
}

func TestParseRejects(t *testing.T) {
	_, vkey, cosig, _ := GenerateWitness(rand.Reader, "w.example")
	badID := strings.Replace(vkey, "+", "+0", 1)[:0] + "w.example+00000000+" + strings.SplitN(vkey, "+", 3)[2]
	for _, tc := range []struct{ name, key string }{
		{"empty", ""},
		{"no key", "w.example+12345678"},
		{"wrong key ID", badID},
		{"uppercase key ID", strings.ToUpper(strings.SplitN(vkey, "+", 3)[1])},
		{"space in name", "w example+" + strings.SplitN(vkey, "+", 2)[1]},
		{"truncated key", vkey[:len(vkey)-4]},
		{"too long", vkey + strings.Repeat("A", 2000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseWitnessVerifier(tc.key); err == nil {
				t.Error("ParseWitnessVerifier accepted")
			}
			if _, err := ParseLogVerifier(tc.key); err == nil {
				t.Error("ParseLogVerifier accepted")
			}
		})
	}
	// A cosignature/v1 key is not a log key.
	if _, err := ParseLogVerifier(cosig); err == nil {
		t.Error("ParseLogVerifier accepted a cosignature/v1 key")
	}
}

func FuzzParseVerifier(f *testing.F) {
	_, vkey, cosig, _ := GenerateWitness(rand.Reader, "w.example")
	f.Add(vkey)
	f.Add(cosig)
	f.Add("pixel_transparency_log+72c878db+AjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABFPN7lzVIk2BOd3Nk33VpqqVttGwV8uChH+RX/HVfBiypVQFyh8o8Ny6fSdxNMgkSf9/VynrgADBeys0r4Q9uPA=")
	f.Fuzz(func(t *testing.T, k string) {
		_, _ = ParseLogVerifier(k)
		_, _ = ParseWitnessVerifier(k)
		_, _ = CosignatureVKey(k)
	})
}
