package witness

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/shiplog/shiplog/evidence/checkpoint"
	merkleproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// State is what the witness keeps for one log: the latest checkpoint it
// cosigned. A log it never cosigned for has size 0 and the empty tree's root.
type State struct {
	Size uint64
	Hash [sha256.Size]byte
	// Note is the cosigned checkpoint as the monitoring endpoint serves it:
	// the body, the log's verified signature lines and the witness's
	// cosignature. Nil for a log never cosigned.
	Note []byte
}

// emptyRoot is the RFC 6962 root hash of the empty tree, SHA-256("").
var emptyRoot = sha256.Sum256(nil)

// initialState is the State of a log the witness never cosigned for.
func initialState() State { return State{Hash: emptyRoot} }

// Errors of add-checkpoint, each mapped to one status code of
// c2sp.org/tlog-witness by the HTTP handler.
var (
	// ErrBadRequest is a malformed request, or an old size larger than the
	// checkpoint's (400).
	ErrBadRequest = errors.New("bad add-checkpoint request")
	// ErrUnknownLog means the checkpoint's origin is not a configured log (404).
	ErrUnknownLog = errors.New("unknown log origin")
	// ErrForbidden means no signature by a configured key of the log verified (403).
	ErrForbidden = errors.New("checkpoint not signed by the log's key")
	// ErrBadProof means the consistency proof from the witness's latest
	// checkpoint does not verify (422).
	ErrBadProof = errors.New("consistency proof does not verify")
	// ErrFork means the checkpoint has the size of the witness's latest one
	// but a different root hash: conclusive evidence of a fork (422).
	ErrFork = errors.New("checkpoint has the latest cosigned size but a different root hash")
	// ErrUnavailable means the state store cannot commit (503).
	ErrUnavailable = errors.New("witness state store unavailable")
)

// ConflictError reports that the request's old size is not the size of the
// latest checkpoint the witness cosigned for the log (409). Size is that size.
type ConflictError struct {
	Size uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("old size does not match the witness's latest cosigned size %d", e.Size)
}

// RateLimitError reports that the log is over its requests-per-day quota
// (429). RetryAfter is when the next request would be allowed.
type RateLimitError struct {
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("log over its request quota; retry after %v", e.RetryAfter)
}

// Check decides whether the witness may move a log from latest to the
// checkpoint cp, given the request's old size and consistency proof. It is
// the pure core of add-checkpoint (c2sp.org/tlog-witness), applied in the
// spec's order; cp's log signature must already be verified. It returns nil,
// ErrBadRequest, *ConflictError, ErrFork or ErrBadProof.
func Check(latest State, oldSize uint64, proof [][sha256.Size]byte, cp checkpoint.Checkpoint) error {
	if oldSize > cp.Size {
		return fmt.Errorf("%w: old size larger than the checkpoint size", ErrBadRequest) // spec: 400
	}
	if oldSize != latest.Size {
		return &ConflictError{Size: latest.Size} // spec: 409 with the latest size
	}
	if oldSize == cp.Size {
		if cp.Hash != latest.Hash {
			return ErrFork // spec: same size, roots differ
		}
		if len(proof) != 0 {
			return ErrBadProof // the proof between equal trees is empty
		}
		return nil
	}
	if oldSize == 0 {
		if len(proof) != 0 {
			return ErrBadProof // spec: "The proof MUST be empty if the old size is zero"
		}
		return nil
	}
	hashes := make([][]byte, len(proof))
	for i := range proof {
		hashes[i] = proof[i][:]
	}
	if err := merkleproof.VerifyConsistency(rfc6962.DefaultHasher, oldSize, cp.Size, hashes, latest.Hash[:], cp.Hash[:]); err != nil {
		return ErrBadProof // spec: 422
	}
	return nil
}
