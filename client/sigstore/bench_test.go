package sigstore_test

import (
	"testing"

	"github.com/shiplog/shiplog/client/sigstore"
	"github.com/shiplog/shiplog/client/sigstore/sigstoretest"
	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/evidence/evidencetest"
)

// Side by side: what a device spends to check one role's evidence, as a
// Sigstore bundle (Rekor v1 / v2, ECDSA or Ed25519ph entry) and as a
// shiplog tlog-proof, each in a log of 100,000 entries with 2 cosignatures
// required (Rekor v1: none, as Rekor v1 has no witnesses).
func benchLog(b *testing.B, l *sigstoretest.Log, ed bool, cosign bool) {
	k := newRoleKey(b, ed)
	for i := 0; i < 1000; i++ {
		l.AddBody([]byte{byte(i), byte(i >> 8)})
	}
	i := l.Add(metadataBytes, k.signer)
	for l.Size() < 100_000 {
		l.AddBody([]byte{byte(l.Size()), byte(l.Size() >> 8), byte(l.Size() >> 16)})
	}
	quorum, cs := 0, []int{}
	if cosign {
		quorum, cs = 2, []int{0, 1}
	}
	bundle := l.Bundle(i, k.id, cs...)
	p := mustPolicy(b, string(l.Policy(quorum)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := sigstore.Verify(bundle, metadataBytes, k.keys, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyRekorV1ECDSA(b *testing.B) {
	benchLog(b, sigstoretest.NewV1("rekor.example", 1, 0), false, false)
}

func BenchmarkVerifyRekorV2ECDSA(b *testing.B) {
	benchLog(b, sigstoretest.NewV2("log.rekor.example", 2), false, true)
}

func BenchmarkVerifyRekorV2Ed25519ph(b *testing.B) {
	benchLog(b, sigstoretest.NewV2("log.rekor.example", 2), true, true)
}

func BenchmarkVerifyTlogProof(b *testing.B) {
	l := evidencetest.NewLog("log.example", 2)
	for l.Size() < 1000 {
		l.Append([]byte{byte(l.Size()), byte(l.Size() >> 8)})
	}
	e, err := entry.New("example.com/fw", "targets", 7, metadataBytes)
	if err != nil {
		b.Fatal(err)
	}
	i := l.Append(e.Format())
	for l.Size() < 100_000 {
		l.Append([]byte{byte(l.Size()), byte(l.Size() >> 8), byte(l.Size() >> 16)})
	}
	pr := l.Proof(i, 0, 1)
	p := mustPolicy(b, string(l.Policy(2)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := evidence.VerifyEntry("example.com/fw", "targets", 7, metadataBytes, pr, p); err != nil {
			b.Fatal(err)
		}
	}
}
