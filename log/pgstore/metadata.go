package pgstore

import (
	"crypto/sha256"
	"errors"
	"fmt"

	ledger "github.com/shiplog/shiplog/log"
)

var errCorrupt = errors.New("postgres holds a malformed index row")

// MetadataStore keeps the exact metadata bytes that log entries commit to,
// content-addressed by SHA-256, in PostgreSQL (the same contract as
// log.MetadataStore).
type MetadataStore struct{ s *Store }

// MetadataStore returns the store's metadata store.
func (s *Store) MetadataStore() *MetadataStore { return &MetadataStore{s} }

var _ ledger.MetadataStorage = (*MetadataStore)(nil)

// Put stores data (at most log.MaxMetadataSize bytes) and returns its
// SHA-256 once committed. Storing bytes already present is a no-op.
// Concurrent calls (and Coordinator.SetAppending calls) of this process
// are committed together, in one round trip.
func (m *MetadataStore) Put(data []byte) ([sha256.Size]byte, error) {
	sum := sha256.Sum256(data)
	if len(data) > ledger.MaxMetadataSize {
		return sum, ledger.ErrTooLarge
	}
	ctx, cancel := m.s.ctx()
	defer cancel()
	if err := m.s.w.write(ctx, write{op: writeMetadata, sum: sum, data: data}); err != nil {
		return sum, m.s.unavailable("store metadata", err)
	}
	return sum, nil
}

// Get returns the metadata with hash sum, checking that the bytes match
// it, or log.ErrNotFound (wrapped).
func (m *MetadataStore) Get(sum [sha256.Size]byte) ([]byte, error) {
	ctx, cancel := m.s.ctx()
	defer cancel()
	var b []byte
	err := m.s.pool.QueryRow(ctx, m.s.q(`SELECT data FROM {s}.metadata WHERE sha256 = $1`), sum[:]).Scan(&b)
	if isNoRows(err) {
		return nil, fmt.Errorf("metadata %x: %w", sum[:], ledger.ErrNotFound)
	}
	if err != nil {
		return nil, m.s.unavailable("read metadata", err)
	}
	if len(b) > ledger.MaxMetadataSize || sha256.Sum256(b) != sum {
		return nil, fmt.Errorf("metadata %x: stored bytes do not match their hash", sum[:])
	}
	return b, nil
}
