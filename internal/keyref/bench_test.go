package keyref

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/shiplog/shiplog/evidence/notekey"
	"golang.org/x/mod/sumdb/note"
)

// BenchmarkSignCheckpoint signs a checkpoint note with the log key held as
// a file key, in SoftHSM2 (Ed25519 and ECDSA P-256) and through sigstore's
// in-process fake KMS: what a token costs the ledger per checkpoint. Run:
//
//	go test -run XXX -bench SignCheckpoint -benchtime 2000x ./internal/keyref/
func BenchmarkSignCheckpoint(b *testing.B) {
	_, edFile, _ := ed25519.GenerateKey(rand.Reader)
	ecFile, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, c := range []struct {
		name string
		open func(testing.TB) crypto.Signer
	}{
		{"file-ed25519", func(testing.TB) crypto.Signer { return verifying{edFile} }},
		{"file-ecdsa-p256", func(testing.TB) crypto.Signer { return verifying{ecFile} }},
		{"softhsm-ed25519", func(tb testing.TB) crypto.Signer { return tokenSigner(tb, "bench-ed25519", false) }},
		{"softhsm-ecdsa-p256", func(tb testing.TB) crypto.Signer { return tokenSigner(tb, "bench-ecdsa", true) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := c.open(b)
			ns, _, err := notekey.NewLogSignerFrom("example.com/log", s)
			if err != nil {
				b.Fatal(err)
			}
			n := &note.Note{Text: "example.com/log\n1\nXhRA/3GRm2yqwBX/tLP1g0bU/EsFFFvhwB7zhnJ/+uU=\n"}
			b.ResetTimer()
			for b.Loop() {
				if _, err := note.Sign(n, ns); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
