// Package sigstoretest is an in-memory Rekor log for tests: a Merkle tree
// of hashedrekord entries whose checkpoints are signed the way Rekor v1
// (ECDSA P-256, origin "<host> - <tree id>", key hash SHA-256(SPKI)[:4]) or
// Rekor v2 (Ed25519 C2SP note, origin = key name) signs them, optionally
// cosigned by witnesses, and which writes Sigstore bundles and tlog-policy
// text. It is not durable and not safe for concurrent use; it panics on
// internal errors, which only a broken test can cause.
package sigstoretest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/shiplog/shiplog/client/sigstore"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/evidencetest"
	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

// Log is an in-memory Rekor log.
type Log struct {
	// V1 is true for a Rekor v1 log, false for Rekor v2.
	V1 bool
	// Origin is the checkpoints' origin line; VKey the policy's vkey.
	Origin    string
	VKey      string
	Witnesses []evidencetest.Witness
	// Extension, if set, is added to every checkpoint body (Rekor v1
	// writes "Timestamp: <ns>").
	Extension string

	signer note.Signer
	logID  []byte
	tree   *testonly.Tree
	bodies [][]byte
}

// NewV2 returns an empty Rekor v2 log named origin with n witnesses.
func NewV2(origin string, n int) *Log {
	l := evidencetest.NewLog(origin, n)
	pub, _ := base64.StdEncoding.DecodeString(strings.SplitN(l.VKey, "+", 3)[2])
	id := sha256.Sum256(append([]byte(origin+"\n"), pub...))
	return &Log{Origin: origin, VKey: l.VKey, Witnesses: l.Witnesses, signer: l.Signer, logID: id[:], tree: testonly.New(rfc6962.DefaultHasher)}
}

// NewV1 returns an empty Rekor v1 log of host, tree treeID, with n
// witnesses (Rekor v1 has none in practice; they test the policy rules).
func NewV1(host string, treeID int64, n int) *Log {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	spki, err := x509.MarshalPKIXPublicKey(k.Public())
	must(err)
	id := sha256.Sum256(spki)
	s := &ecdsaSigner{name: host, hash: binary.BigEndian.Uint32(id[:4]), key: k}
	vkey := fmt.Sprintf("%s+%08x+%s", host, s.hash, base64.StdEncoding.EncodeToString(append([]byte{notekey.TypeECDSA}, spki...)))
	w := evidencetest.NewLog("unused.example", n).Witnesses
	return &Log{V1: true, Origin: fmt.Sprintf("%s - %d", host, treeID), VKey: vkey, Witnesses: w, signer: s, logID: id[:], tree: testonly.New(rfc6962.DefaultHasher)}
}

type ecdsaSigner struct {
	name string
	hash uint32
	key  *ecdsa.PrivateKey
}

func (s *ecdsaSigner) Name() string    { return s.name }
func (s *ecdsaSigner) KeyHash() uint32 { return s.hash }
func (s *ecdsaSigner) Sign(msg []byte) ([]byte, error) {
	d := sha256.Sum256(msg)
	return ecdsa.SignASN1(rand.Reader, s.key, d[:])
}

func must(err error) {
	if err != nil {
		panic("sigstoretest: " + err.Error())
	}
}

// Version is the hashedrekord version this log takes.
func (l *Log) Version() string {
	if l.V1 {
		return "0.0.1"
	}
	return "0.0.2"
}

// Add logs a hashedrekord of data signed by signer and returns its index.
func (l *Log) Add(data []byte, signer crypto.Signer) uint64 {
	h, err := sigstore.NewHashedRekord(l.Version(), data, signer)
	must(err)
	body, err := h.Format()
	must(err)
	return l.AddBody(body)
}

// AddBody logs an entry body as it is and returns its index.
func (l *Log) AddBody(body []byte) uint64 {
	l.bodies = append(l.bodies, body)
	l.tree.Append(rfc6962.DefaultHasher.HashLeaf(body))
	return uint64(len(l.bodies) - 1)
}

// Size returns the number of entries.
func (l *Log) Size() uint64 { return l.tree.Size() }

// Body returns entry i's body.
func (l *Log) Body(i uint64) []byte { return l.bodies[i] }

// Checkpoint returns the log's checkpoint at size, signed by the log and
// cosigned by the witnesses whose indexes are given.
func (l *Log) Checkpoint(size uint64, cosigners ...int) []byte {
	root := l.tree.HashAt(size)
	c := checkpoint.Checkpoint{Origin: l.Origin, Size: size, Hash: [32]byte(root)}
	if l.Extension != "" {
		c.Extensions = []string{l.Extension}
	}
	signers := []note.Signer{l.signer}
	for _, i := range cosigners {
		signers = append(signers, l.Witnesses[i].Signer)
	}
	n, err := note.Sign(&note.Note{Text: string(c.Format())}, signers...)
	must(err)
	return n
}

// Entry returns entry i as a bundle entry with an inclusion proof under the
// checkpoint of the current size.
func (l *Log) Entry(i uint64, cosigners ...int) sigstore.UnverifiedEntry {
	size := l.Size()
	root := l.tree.HashAt(size)
	hs, err := l.tree.InclusionProof(i, size)
	must(err)
	p := &sigstore.InclusionProof{Index: i, TreeSize: size, RootHash: [32]byte(root), Checkpoint: l.Checkpoint(size, cosigners...)}
	for _, h := range hs {
		p.Hashes = append(p.Hashes, [32]byte(h))
	}
	e := sigstore.UnverifiedEntry{LogIndex: int64(i), LogKeyID: l.logID, Kind: sigstore.Kind, Version: l.Version(), Body: l.bodies[i], Proof: p}
	if l.V1 {
		e.IntegratedTime = 1700000000
	}
	return e
}

// Bundle returns a Sigstore bundle for entry i (which must be a
// hashedrekord this package wrote), proven under the current checkpoint.
func (l *Log) Bundle(i uint64, keyHint string, cosigners ...int) []byte {
	h, err := sigstore.ParseHashedRekord(l.bodies[i])
	must(err)
	alg := "SHA2_256"
	if h.Hash == crypto.SHA512 {
		alg = "SHA2_512"
	}
	b := &sigstore.UnverifiedBundle{
		KeyHint: keyHint, Entries: []sigstore.UnverifiedEntry{l.Entry(i, cosigners...)},
		Signature: h.Signature, Digest: h.Digest, DigestAlgorithm: alg,
	}
	return b.Format()
}

// Policy returns tlog-policy text naming this log and its witnesses with a
// quorum of k of them ("quorum none" for k = 0).
func (l *Log) Policy(k int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "log %s\n", l.VKey)
	if k == 0 {
		b.WriteString("quorum none\n")
		return []byte(b.String())
	}
	var names []string
	for i, w := range l.Witnesses {
		fmt.Fprintf(&b, "witness w%d %s\n", i, w.VKey)
		names = append(names, fmt.Sprintf("w%d", i))
	}
	fmt.Fprintf(&b, "group g %d %s\nquorum g\n", k, strings.Join(names, " "))
	return []byte(b.String())
}

// ConsistencyProof returns the RFC 6962 consistency proof from size a to
// size b, as a Rekor v1 server's /api/v1/log/proof answers it.
func (l *Log) ConsistencyProof(a, b uint64) [][]byte {
	p, err := l.tree.ConsistencyProof(a, b)
	must(err)
	return p
}
