package sigstore

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	merkleproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Errors of Verify, one per reason a bundle is refused. Callers branch on
// them with errors.Is. A checkpoint of a log the policy does not name is
// evidence.ErrUnknownLog; cosignatures short of the quorum,
// evidence.ErrQuorum; a missing log signature, checkpoint.ErrNoLogSig.
var (
	ErrNoInclusionProof = errors.New("Sigstore bundle has no inclusion proof")
	ErrNoCheckpoint     = errors.New("Sigstore bundle has no checkpoint")
	// ErrOtherTree means the inclusion proof is for a tree other than the
	// one the checkpoint signs (another size or root hash).
	ErrOtherTree = errors.New("inclusion proof is not for the checkpoint's tree")
	// ErrNotIncluded means the inclusion path does not lead from the
	// entry to the checkpoint's root.
	ErrNotIncluded = evidence.ErrNotIncluded
	// ErrUnsupportedKind means the entry is not a hashedrekord 0.0.1/0.0.2.
	ErrUnsupportedKind = errors.New("unsupported Rekor entry kind")
	// ErrDigestMismatch means the entry's digest is not that of the
	// metadata bytes: the entry logs other bytes.
	ErrDigestMismatch = errors.New("Rekor entry's digest is not the digest of the metadata")
	// ErrKeyNotListed means the entry is signed by a key the TUF role does
	// not list.
	ErrKeyNotListed = errors.New("Rekor entry is signed by a key the role does not list")
	// ErrBadSignature means the entry's signature does not verify.
	ErrBadSignature = errors.New("Rekor entry's signature does not verify")
	// ErrBundleMismatch means the bundle's message signature or digest
	// differs from what its log entry holds.
	ErrBundleMismatch = errors.New("Sigstore bundle disagrees with its log entry")
)

// Evidence is a Sigstore bundle verified for one metadata file: its
// hashedrekord entry is included under a checkpoint verified under the
// policy, logs the digest of exactly those bytes, and is signed by a key of
// the TUF role.
type Evidence struct {
	// Inclusion holds the verified checkpoint (log, cosigners), the
	// leaf's index in that checkpoint's tree and its RFC 6962 leaf hash.
	evidence.Inclusion
	// LogIndex is the entry's index across the whole log (Rekor v1
	// counts across shards; it equals Index for Rekor v2).
	LogIndex int64
	Entry    *HashedRekord
	// KeyID is the TUF key ID of the role key that signed.
	KeyID string
}

// Verify checks a Sigstore bundle as the transparency evidence for
// metadata, the exact bytes of a TUF metadata file whose role lists keys
// (key ID -> key, as in root or a delegation). It is the device's rule for
// Sigstore evidence, in order, for some tlog entry of the bundle:
//
//  1. the entry has an inclusion proof with a checkpoint;
//  2. the checkpoint is signed by a log of p (evidence.ErrUnknownLog
//     otherwise; Rekor v1 origins match as policy.LogFor says), cosigned as
//     p's quorum demands (cosignatures by keys p does not list are ignored,
//     never counted);
//  3. the proof's tree size and root hash are the checkpoint's, and the
//     path binds SHA-256(0x00 || canonicalized body) at the proof's index
//     to that root (RFC 6962 §2.1.1);
//  4. only then is the body parsed: a canonical hashedrekord 0.0.1 or 0.0.2
//     whose digest is the SHA-256 (ECDSA P-256) or SHA-512 (Ed25519ph) of
//     metadata, signed by a key in keys whose signature verifies;
//  5. the bundle's own message signature and digest, if present, are the
//     entry's.
//
// Verify is pure: it uses no network, clock or randomness. It returns the
// first entry that passes, or every entry's error.
func Verify(bundle, metadataBytes []byte, keys map[string]*metadata.Key, p *policy.Policy) (*Evidence, error) {
	b, err := ParseBundle(bundle)
	if err != nil {
		return nil, err
	}
	var errs []error
	for i := range b.Entries {
		ev, err := verifyEntry(b, &b.Entries[i], metadataBytes, keys, p)
		if err == nil {
			return ev, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, errors.Join(errs...)
}

func verifyEntry(b *UnverifiedBundle, e *UnverifiedEntry, data []byte, keys map[string]*metadata.Key, p *policy.Policy) (*Evidence, error) {
	inc, err := VerifyInclusion(e, p)
	if err != nil {
		return nil, err
	}
	if e.Kind != Kind || (e.Version != "0.0.1" && e.Version != "0.0.2") {
		return nil, ErrUnsupportedKind
	}
	h, err := ParseHashedRekord(e.Body)
	if err != nil {
		return nil, err
	}
	if h.APIVersion != e.Version {
		return nil, fmt.Errorf("%w: kindVersion says %s, the body %s", ErrBundleMismatch, e.Version, h.APIVersion)
	}
	if !h.Matches(data) {
		return nil, ErrDigestMismatch
	}
	id, err := roleKey(h.PublicKey, keys)
	if err != nil {
		return nil, err
	}
	if err := h.VerifySignature(); err != nil {
		return nil, err
	}
	if b.Signature != nil && !bytes.Equal(b.Signature, h.Signature) {
		return nil, fmt.Errorf("%w: message signature", ErrBundleMismatch)
	}
	if b.Digest != nil && (!bytes.Equal(b.Digest, h.Digest) || b.DigestAlgorithm != digestName(h.Hash)) {
		return nil, fmt.Errorf("%w: message digest", ErrBundleMismatch)
	}
	return &Evidence{Inclusion: *inc, LogIndex: e.LogIndex, Entry: h, KeyID: id}, nil
}

func digestName(h crypto.Hash) string {
	if h == crypto.SHA512 {
		return "SHA2_512"
	}
	return "SHA2_256"
}

// roleKey returns the ID of the role key equal to pub.
func roleKey(pub crypto.PublicKey, keys map[string]*metadata.Key) (string, error) {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	eq, ok := pub.(equaler)
	if !ok {
		return "", ErrUnsupportedKey
	}
	for id, k := range keys {
		if k == nil {
			continue
		}
		rk, err := k.ToPublicKey()
		if err != nil {
			continue // a key type the device cannot use signs nothing here
		}
		if eq.Equal(rk) {
			return id, nil
		}
	}
	return "", ErrKeyNotListed
}

// VerifyInclusion checks steps 1-3 of Verify for one log entry of any
// kind: its checkpoint verifies under p and its inclusion proof binds the
// entry's body to the checkpoint's root. The body is not parsed.
func VerifyInclusion(e *UnverifiedEntry, p *policy.Policy) (*evidence.Inclusion, error) {
	pr := e.Proof
	if pr == nil {
		return nil, ErrNoInclusionProof
	}
	if pr.Checkpoint == nil {
		return nil, ErrNoCheckpoint
	}
	c, err := VerifyCheckpoint(pr.Checkpoint, p)
	if err != nil {
		return nil, err
	}
	if c.Size != pr.TreeSize || c.Hash != pr.RootHash {
		return nil, fmt.Errorf("%w: proof for size %d, checkpoint of size %d", ErrOtherTree, pr.TreeSize, c.Size)
	}
	leaf := LeafHash(e.Body)
	if err := CheckInclusion(pr.Index, pr.Hashes, leaf, c.Size, c.Hash); err != nil {
		return nil, err
	}
	return &evidence.Inclusion{Checkpoint: c, Index: pr.Index, LeafHash: leaf}, nil
}

// LeafHash returns the RFC 6962 leaf hash of an entry body,
// SHA-256(0x00 || body).
func LeafHash(body []byte) [sha256.Size]byte {
	return [sha256.Size]byte(rfc6962.DefaultHasher.HashLeaf(body))
}

// CheckInclusion verifies an RFC 6962 inclusion path for leaf at index in
// the tree of size with root hash root.
func CheckInclusion(index uint64, hashes [][32]byte, leaf [32]byte, size uint64, root [32]byte) error {
	if index >= size {
		return ErrNotIncluded
	}
	hs := make([][]byte, len(hashes))
	for i := range hashes {
		hs[i] = hashes[i][:]
	}
	if err := merkleproof.VerifyInclusion(rfc6962.DefaultHasher, index, size, leaf[:], hs, root[:]); err != nil {
		return ErrNotIncluded
	}
	return nil
}

// VerifyCheckpoint verifies a Rekor (v1 or v2) checkpoint note under p:
// its origin line names a policy log (policy.LogFor), that log's signature
// verifies over the raw bytes, and the verified cosignatures of distinct
// policy witnesses meet the quorum. Cosignatures by other keys are ignored.
func VerifyCheckpoint(note []byte, p *policy.Policy) (*evidence.Checkpoint, error) {
	if len(note) > checkpoint.MaxNoteSize {
		return nil, errors.New("checkpoint too large")
	}
	origin, _, ok := bytes.Cut(note, []byte("\n"))
	if !ok {
		return nil, evidence.ErrUnknownLog
	}
	l := p.LogFor(string(origin))
	if l == nil {
		return nil, evidence.Untrusted(evidence.ErrUnknownLog, note, p)
	}
	if bytes.HasSuffix(note, []byte("\n\n")) { // a body and a blank line, no signature lines
		return nil, evidence.Untrusted(checkpoint.ErrNoLogSig, note, p)
	}
	s, err := checkpoint.Open(note, string(origin), l.Verifier, p.WitnessVerifiers()...)
	if err != nil {
		return nil, evidence.Untrusted(err, note, p)
	}
	c := &evidence.Checkpoint{Signed: s, Log: l}
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
		return nil, evidence.ErrQuorum
	}
	return c, nil
}
