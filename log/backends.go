package log

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/shiplog/shiplog/internal/durable"
)

// IndexStore is the ledger's index of its log (see Index, the bbolt
// implementation; log/pgstore keeps one in PostgreSQL for replicas).
//
// What an implementation owes: Record is durable when it returns nil,
// idempotent, and accepts records in any order; the role state only moves
// to higher versions; Leaf and Metadata return the lowest index recorded;
// Watermark is an n such that every entry below index n is recorded;
// Metadata finds release metadata and attestation envelopes alike (both
// are in the metadata store); Attestations returns the attestation
// records of (repo, subject) below an index, in log order, filtered by
// key id (none: all), at most max, with whether more matched. All methods
// are safe for concurrent use.
type IndexStore interface {
	Watermark() (uint64, error)
	Record(recs ...Record) error
	Registered(repo string) (index uint64, ok bool, err error)
	Role(repo, role string) (RoleState, bool, error)
	Leaf(h [sha256.Size]byte) (uint64, bool, error)
	Metadata(sum [sha256.Size]byte) (uint64, bool, error)
	Attestations(repo string, subject [sha256.Size]byte, keys []signoff.KeyID, below uint64, max int) ([]AttestationRecord, bool, error)
}

// MetadataStorage keeps the exact metadata bytes log entries commit to,
// content-addressed by SHA-256 (see MetadataStore, the file
// implementation). Put is durable when it returns nil; Get checks the
// bytes against sum and wraps ErrNotFound when absent. Safe for
// concurrent use.
type MetadataStorage interface {
	Put(data []byte) ([sha256.Size]byte, error)
	Get(sum [sha256.Size]byte) ([]byte, error)
}

// Lookup is what the ledger reads from the index before it checks a
// submission: whether Repo is registered, whether an entry with leaf hash
// Leaf is logged, and the latest logged state of each of Roles (at most
// MaxLookupRoles).
type Lookup struct {
	Repo  string
	Leaf  [sha256.Size]byte
	Roles []string
}

// MaxLookupRoles bounds Lookup.Roles.
const MaxLookupRoles = 8

// LookupResult answers a Lookup. Roles holds the logged roles among those
// asked for (a role not logged is absent).
type LookupResult struct {
	Registered bool
	// LeafIndex is the first index of the entry with the leaf hash, if
	// Logged.
	LeafIndex uint64
	Logged    bool
	Roles     map[string]RoleState
}

// LookupIndex is an IndexStore that answers a Lookup in one read (one
// database round trip for log/pgstore) with the same answers as its
// Registered, Leaf and Role methods. The ledger calls the three methods
// of an IndexStore that does not implement it.
type LookupIndex interface {
	IndexStore
	Lookup(q Lookup) (LookupResult, error)
}

// lookup answers q from x, in one read if x is a LookupIndex.
func lookup(x IndexStore, q Lookup) (LookupResult, error) {
	if len(q.Roles) > MaxLookupRoles {
		return LookupResult{}, fmt.Errorf("index lookup of %d roles (at most %d)", len(q.Roles), MaxLookupRoles)
	}
	if li, ok := x.(LookupIndex); ok {
		return li.Lookup(q)
	}
	var r LookupResult
	var err error
	if _, r.Registered, err = x.Registered(q.Repo); err != nil {
		return r, err
	}
	if r.LeafIndex, r.Logged, err = x.Leaf(q.Leaf); err != nil {
		return r, err
	}
	r.Roles = make(map[string]RoleState, len(q.Roles))
	for _, role := range q.Roles {
		st, ok, err := x.Role(q.Repo, role)
		if err != nil {
			return r, err
		}
		if ok {
			r.Roles[role] = st
		}
	}
	return r, nil
}

var (
	_ IndexStore      = (*Index)(nil)
	_ MetadataStorage = (*MetadataStore)(nil)
)

// CheckpointKind names a checkpoint the publisher keeps.
type CheckpointKind string

// The checkpoints of the publisher: the last log-signed checkpoint sent to
// the witnesses, and the last one published at /checkpoint.
const (
	SignedCheckpoint   CheckpointKind = "signed"
	CosignedCheckpoint CheckpointKind = "cosigned"
)

// CheckpointState keeps the publisher's checkpoints, so a restart can check
// that the log did not roll back and that every published checkpoint is
// consistent with the next.
//
// What an implementation owes: Save is durable when it returns nil, and
// Load returns the saved note of kind with the largest size (nil, nil if
// none). An implementation shared by replicas (log/pgstore) must refuse to
// save a second, different checkpoint for a size it holds.
type CheckpointState interface {
	Load(ctx context.Context, kind CheckpointKind) ([]byte, error)
	Save(ctx context.Context, kind CheckpointKind, size uint64, note []byte) error
}

// FileCheckpointState keeps the checkpoints in files of a directory
// (SignedCheckpointFile, CosignedCheckpointFile), each replaced durably:
// one ledger process owns the directory.
type FileCheckpointState struct{ Dir string }

func (f FileCheckpointState) path(kind CheckpointKind) (string, error) {
	switch kind {
	case SignedCheckpoint:
		return filepath.Join(f.Dir, SignedCheckpointFile), nil
	case CosignedCheckpoint:
		return filepath.Join(f.Dir, CosignedCheckpointFile), nil
	}
	return "", fmt.Errorf("unknown checkpoint kind %q", kind)
}

// Load reads the checkpoint file of kind (nil if absent).
func (f FileCheckpointState) Load(_ context.Context, kind CheckpointKind) ([]byte, error) {
	p, err := f.path(kind)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// Save replaces the checkpoint file of kind durably.
func (f FileCheckpointState) Save(_ context.Context, kind CheckpointKind, _ uint64, note []byte) error {
	p, err := f.path(kind)
	if err != nil {
		return err
	}
	return durable.WriteFile(p, note, 0o644)
}

// Coordinator lets several ledger replicas share one log, index, metadata
// store and checkpoint state (log/pgstore implements it on PostgreSQL; a
// single ledger process needs none).
//
// What an implementation owes:
//   - LockRepository serialises submissions for one repository across all
//     replicas, until unlock is called or the holder dies. It returns the
//     entry left appending for the repository (what Appending returns,
//     read once the lock is held), or nil. (The ledger may unlock once its
//     entry is recorded as appending and durably queued in the log, before
//     the log sequenced it: see QueueingStorage.)
//   - SetAppending durably records (or, with nil, clears) the entry a
//     replica is about to append for a repository; Appending returns it. A
//     replica that dies between the log and the index leaves it behind, and
//     the next holder of the lock finishes that append first (which needs a
//     Storage whose Append of an entry already in the log returns its index,
//     as log/trillian's does), so no replica checks a submission against a
//     history that misses a logged version.
//   - Lead reports whether this replica is the one that runs the publisher
//     (witness round trips, checkpoint publication); at most one replica
//     should lead at a time, and another must take over when it dies.
//
// All methods are safe for concurrent use.
type Coordinator interface {
	LockRepository(ctx context.Context, repo string) (unlock func(), appending []byte, err error)
	Appending(ctx context.Context, repo string) ([]byte, error)
	SetAppending(ctx context.Context, repo string, entry []byte) error
	Lead(ctx context.Context) (bool, error)
}
