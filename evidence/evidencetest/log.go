// Package evidencetest is an in-memory transparency log for tests: it holds
// entries in a Merkle tree, signs C2SP checkpoints with a log key, cosigns
// them with witness keys, and makes tlog-proofs, consistency proofs and
// tlog-policy text. It is not durable and not safe for concurrent use; it
// panics on internal errors, which only a broken test can cause.
package evidencetest

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/evidence/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

// Witness is a test witness key.
type Witness struct {
	Name   string
	SKey   string
	VKey   string // Ed25519 note vkey (0x01)
	Signer note.Signer
}

// Log is an in-memory log.
type Log struct {
	Origin    string
	SKey      string
	VKey      string
	Signer    note.Signer
	Witnesses []Witness
	tree      *testonly.Tree
}

// NewLog returns an empty log named origin with n witnesses named w0…w(n-1).
func NewLog(origin string, n int) *Log {
	skey, vkey, err := notekey.GenerateLog(rand.Reader, origin)
	must(err)
	s, err := notekey.NewLogSigner(skey)
	must(err)
	l := &Log{Origin: origin, SKey: skey, VKey: vkey, Signer: s, tree: testonly.New(rfc6962.DefaultHasher)}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("w%d.example", i)
		wskey, wvkey, _, err := notekey.GenerateWitness(rand.Reader, name)
		must(err)
		ws, err := notekey.NewWitnessSigner(wskey)
		must(err)
		l.Witnesses = append(l.Witnesses, Witness{Name: name, SKey: wskey, VKey: wvkey, Signer: ws})
	}
	return l
}

func must(err error) {
	if err != nil {
		panic("evidencetest: " + err.Error())
	}
}

// Append adds an encoded entry and returns its index.
func (l *Log) Append(entry []byte) uint64 {
	l.tree.AppendData(entry)
	return l.tree.Size() - 1
}

// AppendLeafHashes adds many leaves by their leaf hashes (fast bulk growth).
func (l *Log) AppendLeafHashes(hashes ...[]byte) { l.tree.Append(hashes...) }

// Size returns the number of entries.
func (l *Log) Size() uint64 { return l.tree.Size() }

// Body returns the checkpoint body at size.
func (l *Log) Body(size uint64) checkpoint.Checkpoint {
	return checkpoint.Checkpoint{Origin: l.Origin, Size: size, Hash: [sha256.Size]byte(l.tree.HashAt(size))}
}

// CheckpointAt returns the checkpoint at size signed by the log and cosigned
// by the witnesses with the given indexes.
func (l *Log) CheckpointAt(size uint64, cosigners ...int) []byte {
	msg, err := checkpoint.Sign(l.Body(size), l.Signer)
	must(err)
	text := l.Body(size).Format()
	for _, i := range cosigners {
		sig, err := checkpoint.Cosign(text, l.Witnesses[i].Signer)
		must(err)
		msg = checkpoint.AddSignatures(msg, sig)
	}
	return msg
}

// Checkpoint is CheckpointAt the current size.
func (l *Log) Checkpoint(cosigners ...int) []byte { return l.CheckpointAt(l.Size(), cosigners...) }

// Proof returns a tlog-proof of entry index under the checkpoint at the
// current size, cosigned by the given witnesses.
func (l *Log) Proof(index uint64, cosigners ...int) []byte {
	return l.ProofAt(index, l.Size(), cosigners...)
}

// ProofAt returns a tlog-proof of entry index under the checkpoint at size.
func (l *Log) ProofAt(index, size uint64, cosigners ...int) []byte {
	hs, err := l.tree.InclusionProof(index, size)
	must(err)
	p := proof.Proof{Index: index, Checkpoint: l.CheckpointAt(size, cosigners...)}
	for _, h := range hs {
		p.Hashes = append(p.Hashes, [sha256.Size]byte(h))
	}
	return p.Format()
}

// Consistency returns the consistency proof between two sizes.
func (l *Log) Consistency(size1, size2 uint64) [][sha256.Size]byte {
	hs, err := l.tree.ConsistencyProof(size1, size2)
	must(err)
	out := make([][sha256.Size]byte, len(hs))
	for i, h := range hs {
		out[i] = [sha256.Size]byte(h)
	}
	return out
}

// Policy returns tlog-policy text naming this log and all its witnesses,
// with a quorum of k of them ("quorum none" when k is 0).
func (l *Log) Policy(k int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "log %s\n", l.VKey)
	var names []string
	for i, w := range l.Witnesses {
		name := fmt.Sprintf("w%d", i)
		names = append(names, name)
		fmt.Fprintf(&b, "witness %s %s\n", name, w.VKey)
	}
	if k == 0 {
		b.WriteString("quorum none\n")
		return []byte(b.String())
	}
	fmt.Fprintf(&b, "group q %d %s\nquorum q\n", k, strings.Join(names, " "))
	return []byte(b.String())
}

// NewLogWithKey returns an empty log with l's keys but another origin, to
// make checkpoints that l's key signed for a different log.
func NewLogWithKey(l *Log, origin string) *Log {
	return &Log{Origin: origin, SKey: l.SKey, VKey: l.VKey, Signer: l.Signer, Witnesses: l.Witnesses, tree: testonly.New(rfc6962.DefaultHasher)}
}
