package evidence_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/evidence/evidencetest"
)

// BenchmarkVerifyInclusion2to20 verifies one tlog-proof in a tree of 2^20
// leaves: parse, log signature, 2-of-3 witness quorum (two cosignatures
// verified), 20-hash inclusion path. Compare with BenchmarkEd25519Verify and
// BenchmarkSHA256Of64Bytes from the same run: the floor is 3 signature
// verifications and ~21 hashes.
func BenchmarkVerifyInclusion2to20(b *testing.B) {
	l := evidencetest.NewLog("example.com/log", 3)
	e, _ := entry.New("example.com/firmware", "targets", 1, []byte("metadata"))
	leaf := e.Format()
	lh := entry.LeafHash(leaf)
	const size = 1 << 20
	const index = size / 3
	hashes := make([][]byte, 0, size)
	for i := 0; i < size; i++ {
		if i == index {
			hashes = append(hashes, lh[:])
			continue
		}
		h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
		hashes = append(hashes, h[:])
	}
	l.AppendLeafHashes(hashes...)
	pr := l.Proof(index, 0, 2)
	p := mustPolicy(b, l.Policy(2))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := evidence.VerifyInclusion(leaf, pr, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCheckpoint(b *testing.B) {
	l := evidencetest.NewLog("example.com/log", 3)
	l.Append([]byte("a"))
	msg := l.Checkpoint(0, 2)
	p := mustPolicy(b, l.Policy(2))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := evidence.VerifyCheckpoint(msg, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEd25519Verify is the raw primitive: one Ed25519 verification.
func BenchmarkEd25519Verify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := []byte("example.com/log\n1048576\nXhRA/3GRm2yqwBX/tLP1g0bU/EsFFFvhwB7zhnJ/+uU=\n")
	sig := ed25519.Sign(priv, msg)
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}

// BenchmarkSHA256Of64Bytes is the raw primitive: one SHA-256 of 64 bytes
// (an interior Merkle node is 65).
func BenchmarkSHA256Of64Bytes(b *testing.B) {
	var in [64]byte
	var sum [32]byte
	for b.Loop() {
		sum = sha256.Sum256(in[:])
		in[0] = sum[0]
	}
}

func BenchmarkParseFork(b *testing.B) {
	l := evidencetest.NewLog("example.com/log", 0)
	l.Append([]byte("a"))
	in := evidence.Fork{Old: l.Checkpoint(), New: l.Checkpoint(), Proof: l.Consistency(1, 1)}.Format()
	for b.Loop() {
		if _, err := evidence.ParseFork(in); err != nil {
			b.Fatal(err)
		}
	}
}
