package pgstore

import (
	"bytes"
	"context"
	"fmt"

	ledger "github.com/shiplog/shiplog/log"
)

// CheckpointState keeps every checkpoint the ledger signed and every one
// its witnesses cosigned, keyed by (kind, tree size). Saving is
// insert-if-absent and compares on conflict: a second signed checkpoint of
// a size must be the same bytes, a second cosigned one the same checkpoint
// body (its cosignatures may differ), else Save fails with
// ErrConflictingCheckpoint — so replicas can never sign two different
// checkpoints for one size, even if two of them briefly both lead.
type CheckpointState struct{ s *Store }

// CheckpointState returns the store's checkpoint state.
func (s *Store) CheckpointState() *CheckpointState { return &CheckpointState{s} }

var _ ledger.CheckpointState = (*CheckpointState)(nil)

// ErrConflictingCheckpoint means another checkpoint of the same size was
// saved before.
var ErrConflictingCheckpoint = fmt.Errorf("a different checkpoint of this size was already saved")

// Load returns the saved checkpoint of kind with the largest size, or nil.
func (c *CheckpointState) Load(ctx context.Context, kind ledger.CheckpointKind) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.s.timeout)
	defer cancel()
	var note []byte
	err := c.s.pool.QueryRow(ctx, c.s.q(`SELECT note FROM {s}.checkpoints WHERE kind = $1 ORDER BY size DESC LIMIT 1`), string(kind)).Scan(&note)
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, c.s.unavailable("read the checkpoint state", err)
	}
	return note, nil
}

// Save records note, a checkpoint of size, as kind.
func (c *CheckpointState) Save(ctx context.Context, kind ledger.CheckpointKind, size uint64, note []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.s.timeout)
	defer cancel()
	tag, err := c.s.pool.Exec(ctx, c.s.q(`INSERT INTO {s}.checkpoints (kind, size, note) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`), string(kind), int64(size), note)
	if err != nil {
		return c.s.unavailable("save the checkpoint state", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var old []byte
	if err := c.s.pool.QueryRow(ctx, c.s.q(`SELECT note FROM {s}.checkpoints WHERE kind = $1 AND size = $2`), string(kind), int64(size)).Scan(&old); err != nil {
		return c.s.unavailable("read the checkpoint state", err)
	}
	same := bytes.Equal(old, note)
	if kind == ledger.CosignedCheckpoint {
		same = bytes.Equal(body(old), body(note))
	}
	if !same {
		return fmt.Errorf("%s checkpoint of size %d: %w", kind, size, ErrConflictingCheckpoint)
	}
	return nil
}

// body returns the checkpoint text of a signed note (before the blank line).
func body(note []byte) []byte {
	if i := bytes.Index(note, []byte("\n\n")); i >= 0 {
		return note[:i+1]
	}
	return note
}
