package client

import (
	"bytes"
	"crypto/rand"
	"os"
	"testing"

	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/notekey"
)

// FuzzVerifiedLines feeds arbitrary witness responses to the parser of
// cosignature lines: it must never panic, and whatever it keeps must be
// lines by the witness's key that verify.
func FuzzVerifiedLines(f *testing.F) {
	skey, _, cosig, err := notekey.GenerateWitness(rand.Reader, "w.example")
	if err != nil {
		f.Fatal(err)
	}
	signer, _ := notekey.NewWitnessSigner(skey)
	v, err := notekey.ParseWitnessVerifier(cosig)
	if err != nil {
		f.Fatal(err)
	}
	text := []byte("example.com/log\n1\nKgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
	good, _ := checkpoint.Cosign(text, signer)
	f.Add(good)
	if spec, err := os.ReadFile("../../testdata/witness/c2sp-example-response.txt"); err == nil {
		f.Add(spec)
		f.Add(append(spec, good...))
	}
	f.Add([]byte("— w.example AAAA\n"))
	f.Fuzz(func(t *testing.T, resp []byte) {
		out, err := verifiedLines(text, resp, v)
		if err != nil {
			return
		}
		for _, line := range bytes.SplitAfter(out, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			name, sig, ok := parseSigLine(line)
			if !ok || name != v.Name() || !v.Verify(text, sig[4:]) {
				t.Fatalf("kept a line that does not verify: %q", line)
			}
		}
	})
}
