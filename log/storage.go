package log

import (
	"context"
	"errors"
)

// ErrNotFound is returned by Storage reads for a tile, bundle or checkpoint
// that does not exist (yet).
var ErrNotFound = errors.New("not found")

// Storage is the log engine under the ledger: an append-only Merkle log of
// RFC 6962 leaves that signs its own checkpoints with the log's key and
// serves C2SP tlog-tiles resources.
//
// What an implementation owes:
//   - Append returns only once the entry is durable and integrated into the
//     tree: after a crash of the process or the machine, the log still
//     contains it at the returned index, and IntegratedSize exceeds it. On
//     error the entry must not appear in the log — except in a Storage whose
//     Append of an entry already in the log returns that entry's index (as
//     log/trillian's does): there an entry may appear after an error, and
//     the ledger, given a Coordinator, appends it again to learn its index.
//     Appends by concurrent callers may be integrated in any order.
//   - Checkpoint returns a checkpoint note signed by the log key. Across
//     calls and restarts, its size never decreases and checkpoints of one size
//     have one root hash. It may lag IntegratedSize.
//   - ReadTile and ReadEntryBundle return the resource for the given width
//     (0 for a full tile or bundle) exactly: for a width w > 0 that has since
//     been completed they return the first w hashes or entries of the larger
//     resource. They return ErrNotFound (wrapped) when it does not exist.
//   - Proofs are RFC 6962 inclusion and consistency proofs for any size up to
//     the size of the latest checkpoint returned.
//
// All methods are safe for concurrent use.
type Storage interface {
	// Append adds entry (at most 65,535 bytes) and returns its index.
	Append(ctx context.Context, entry []byte) (uint64, error)
	// IntegratedSize returns the number of durable, integrated entries.
	IntegratedSize(ctx context.Context) (uint64, error)
	// Checkpoint returns the latest log-signed checkpoint note.
	Checkpoint(ctx context.Context) ([]byte, error)
	// ReadTile returns hash tile (level, index) of the given width.
	ReadTile(ctx context.Context, level, index uint64, width uint8) ([]byte, error)
	// ReadEntryBundle returns entry bundle index of the given width.
	ReadEntryBundle(ctx context.Context, index uint64, width uint8) ([]byte, error)
	// InclusionProof returns the inclusion proof of leaf index in the tree of size.
	InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error)
	// ConsistencyProof returns the consistency proof between two tree sizes.
	ConsistencyProof(ctx context.Context, oldSize, newSize uint64) ([][]byte, error)
	// Close waits until every acknowledged append is integrated and covered
	// by a checkpoint, or ctx ends, then releases the storage.
	Close(ctx context.Context) error
}
