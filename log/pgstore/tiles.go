package pgstore

import (
	"context"
	"crypto/sha256"
	"fmt"
)

// TileCache keeps full hash tiles and entry bundles of log/trillian in
// PostgreSQL, shared by the replicas of one tree (log/trillian.Cache).
type TileCache struct{ s *Store }

// TileCache returns the store's tile cache.
func (s *Store) TileCache() *TileCache { return &TileCache{s} }

const maxBundle = 256 * (2 + 65535)

// Tile returns a cached full tile or nil.
func (t *TileCache) Tile(ctx context.Context, level, index uint64) ([]byte, error) {
	b, err := t.get(ctx, `SELECT data FROM {s}.tiles WHERE level = $1 AND idx = $2`, int32(level), int64(index))
	if b != nil && len(b) != 256*sha256.Size {
		return nil, fmt.Errorf("cached tile %d/%d has %d bytes", level, index, len(b))
	}
	return b, err
}

// PutTile caches a full tile.
func (t *TileCache) PutTile(ctx context.Context, level, index uint64, data []byte) error {
	return t.put(ctx, `INSERT INTO {s}.tiles VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, int32(level), int64(index), data)
}

// Bundle returns a cached full entry bundle or nil.
func (t *TileCache) Bundle(ctx context.Context, index uint64) ([]byte, error) {
	b, err := t.get(ctx, `SELECT data FROM {s}.bundles WHERE idx = $1`, int64(index))
	if len(b) > maxBundle {
		return nil, fmt.Errorf("cached bundle %d too large", index)
	}
	return b, err
}

// PutBundle caches a full entry bundle.
func (t *TileCache) PutBundle(ctx context.Context, index uint64, data []byte) error {
	return t.put(ctx, `INSERT INTO {s}.bundles VALUES ($1, $2) ON CONFLICT DO NOTHING`, int64(index), data)
}

func (t *TileCache) get(ctx context.Context, sql string, args ...any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, t.s.timeout)
	defer cancel()
	var b []byte
	err := t.s.pool.QueryRow(ctx, t.s.q(sql), args...).Scan(&b)
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, t.s.unavailable("read the tile cache", err)
	}
	return b, nil
}

func (t *TileCache) put(ctx context.Context, sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, t.s.timeout)
	defer cancel()
	if _, err := t.s.pool.Exec(ctx, t.s.q(sql), args...); err != nil {
		return t.s.unavailable("write the tile cache", err)
	}
	return nil
}
