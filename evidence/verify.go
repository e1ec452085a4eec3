// Package evidence is the transparency evidence every party checks: it
// verifies that a log entry is included under a checkpoint signed by a log of
// a C2SP tlog-policy and cosigned by the policy's witness quorum
// (c2sp.org/tlog-proof, c2sp.org/tlog-checkpoint, c2sp.org/tlog-cosignature),
// and that checkpoints of one log are consistent (RFC 6962 §2.1.2), returning
// evidence a third party can re-check when they are not.
//
// It is a pure core: bytes in, verified values out; no network, no clock, no
// goroutines. Devices, witnesses, the ledger and auditors all call it.
package evidence

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/evidence/proof"
	merkleproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

var (
	// ErrUnknownLog means no log of the policy signed the checkpoint.
	ErrUnknownLog = errors.New("checkpoint not signed by a log of the policy")
	// ErrQuorum means the checkpoint's cosignatures do not meet the policy's quorum.
	ErrQuorum = errors.New("checkpoint cosignatures do not meet the policy quorum")
	// ErrNotIncluded means the inclusion proof does not bind the entry to the checkpoint.
	ErrNotIncluded = errors.New("inclusion proof does not match the checkpoint")
)

// Checkpoint is a checkpoint verified under a policy: signed by one of its
// logs and cosigned by a quorum of its witnesses.
type Checkpoint struct {
	*checkpoint.Signed
	Log *policy.Log
	// Cosigners are the policy witnesses whose cosignatures verified.
	Cosigners []*policy.Witness
}

// VerifyCheckpoint verifies a signed checkpoint note under p: the origin line
// names a policy log, that log's signature verifies over the raw bytes, and
// the verified cosignatures of distinct policy witnesses meet the quorum.
// Cosignatures by keys not in the policy are ignored. A note that no
// trusted log key signed fails with an *UntrustedError (wrapping
// ErrUnknownLog or checkpoint.ErrNoLogSig).
func VerifyCheckpoint(msg []byte, p *policy.Policy) (*Checkpoint, error) {
	if len(msg) > checkpoint.MaxNoteSize {
		return nil, errors.New("checkpoint too large")
	}
	origin, _, _ := cutLine(msg)
	log := p.Log(origin)
	if log == nil {
		return nil, Untrusted(ErrUnknownLog, msg, p)
	}
	s, err := checkpoint.Open(msg, log.Origin, log.Verifier, p.WitnessVerifiers()...)
	if err != nil {
		return nil, Untrusted(err, msg, p)
	}
	c := &Checkpoint{Signed: s, Log: log}
	cosigned := map[*policy.Witness]bool{}
	for _, w := range p.Witnesses {
		for _, cs := range s.Cosignatures {
			if cs.Name == w.Verifier.Name() && cs.KeyHash == w.Verifier.KeyHash() && !cosigned[w] {
				cosigned[w] = true
				c.Cosigners = append(c.Cosigners, w)
			}
		}
	}
	if !p.Satisfied(func(w *policy.Witness) bool { return cosigned[w] }) {
		return nil, ErrQuorum
	}
	return c, nil
}

// cutLine returns the first line of b (the origin of a checkpoint).
func cutLine(b []byte) (string, []byte, bool) {
	for i, c := range b {
		if c == '\n' {
			return string(b[:i]), b[i+1:], true
		}
	}
	return "", nil, false
}

// Inclusion is a log entry proven included under a verified checkpoint.
type Inclusion struct {
	Checkpoint *Checkpoint
	Index      uint64
	LeafHash   [sha256.Size]byte
}

// VerifyInclusion verifies a tlog-proof for the encoded log entry leaf under
// p: the checkpoint verifies as in VerifyCheckpoint and the inclusion proof
// binds leaf's RFC 6962 leaf hash at the proof's index to the checkpoint's
// root hash.
func VerifyInclusion(leaf, tlogProof []byte, p *policy.Policy) (*Inclusion, error) {
	return verifyInclusion(leaf, tlogProof, func(msg []byte) (*Checkpoint, error) { return VerifyCheckpoint(msg, p) })
}

func verifyInclusion(leaf, tlogProof []byte, verify func([]byte) (*Checkpoint, error)) (*Inclusion, error) {
	pr, err := proof.Parse(tlogProof)
	if err != nil {
		return nil, err
	}
	c, err := verify(pr.Checkpoint)
	if err != nil {
		return nil, err
	}
	lh := entry.LeafHash(leaf)
	if err := checkInclusion(pr, lh, c.Size, c.Hash); err != nil {
		return nil, err
	}
	return &Inclusion{Checkpoint: c, Index: pr.Index, LeafHash: lh}, nil
}

func checkInclusion(pr *proof.Proof, leafHash [sha256.Size]byte, size uint64, root [sha256.Size]byte) error {
	if pr.Index >= size {
		return ErrNotIncluded
	}
	hashes := make([][]byte, len(pr.Hashes))
	for i := range pr.Hashes {
		hashes[i] = pr.Hashes[i][:]
	}
	if err := merkleproof.VerifyInclusion(rfc6962.DefaultHasher, pr.Index, size, leafHash[:], hashes, root[:]); err != nil {
		return ErrNotIncluded
	}
	return nil
}

// VerifyEntry is VerifyInclusion for metadata, the exact bytes of version of
// role in repository repo: it rebuilds the shiplog/release/v1 entry from what
// the caller already holds and verifies its tlog-proof.
func VerifyEntry(repo, role string, version uint64, metadata, tlogProof []byte, p *policy.Policy) (*Inclusion, error) {
	e, err := entry.New(repo, role, version, metadata)
	if err != nil {
		return nil, fmt.Errorf("couldn't build log entry: %w", err)
	}
	return VerifyInclusion(e.Format(), tlogProof, p)
}

// LogVerifier returns the verifier of the policy log with origin, for callers
// that hold a checkpoint of a known log.
func LogVerifier(p *policy.Policy, origin string) (note.Verifier, bool) {
	l := p.Log(origin)
	if l == nil {
		return nil, false
	}
	return l.Verifier, true
}
