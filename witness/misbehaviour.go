package witness

import (
	"crypto/sha256"
	"time"

	"github.com/shiplog/shiplog/evidence"
)

// Kinds of misbehaviour.
const (
	// KindFork is conclusive: two checkpoints validly signed by the log with
	// the same size and different root hashes.
	KindFork = "fork"
	// KindUnproven is a validly signed checkpoint whose consistency proof
	// from the witness's latest checkpoint did not verify. It proves nothing
	// alone (anyone can attach a bad proof to a good checkpoint), but if the
	// log cannot produce a valid proof between the two, it has forked.
	KindUnproven = "unproven"
)

// Caps on the misbehaviour kept per log and kind: a log that misbehaves once
// is caught; keeping every repeat would let it (or anyone replaying its
// checkpoints with bad proofs) fill the disk.
const (
	maxForksPerLog    = 64
	maxUnprovenPerLog = 16
)

// Misbehaviour is a record of a validly log-signed checkpoint that conflicts
// with, or could not be shown consistent with, the latest checkpoint the
// witness cosigned for that log. Evidence is the shiplog/fork/v1 encoding of
// both signed checkpoints (and the proof, for KindUnproven), which anyone can
// re-check with evidence.VerifyFork.
type Misbehaviour struct {
	Origin   string    `json:"origin"`
	Kind     string    `json:"kind"`
	Received time.Time `json:"received"`
	OldSize  uint64    `json:"old_size"`
	NewSize  uint64    `json:"new_size"`
	Evidence string    `json:"evidence"`
}

// newMisbehaviour builds a record from the stored state and the received
// log-signed note.
func newMisbehaviour(origin, kind string, latest State, received []byte, newSize uint64, proof [][sha256.Size]byte, now time.Time) Misbehaviour {
	f := evidence.Fork{Old: latest.Note, New: received, Proof: proof}
	if kind == KindFork {
		f.Proof = nil
	}
	return Misbehaviour{
		Origin:   origin,
		Kind:     kind,
		Received: now.UTC().Truncate(time.Second),
		OldSize:  latest.Size,
		NewSize:  newSize,
		Evidence: string(f.Format()),
	}
}
