package trillian

import (
	"context"
	"sync"
)

// Cache keeps full hash tiles and full entry bundles, which never change
// once the tree has grown past them. Storage only ever puts full
// resources of a tree it has read; a Cache shared by replicas of one tree
// (log/pgstore's, in PostgreSQL) sees the same bytes from each of them.
//
// What an implementation owes: Tile and Bundle return nil, nil for an
// absent resource and exactly the bytes put otherwise; Put of an existing
// key may be ignored. All methods are safe for concurrent use. Errors are
// not fatal: Storage logs them and rebuilds the resource from Trillian.
type Cache interface {
	Tile(ctx context.Context, level, index uint64) ([]byte, error)
	PutTile(ctx context.Context, level, index uint64, data []byte) error
	Bundle(ctx context.Context, index uint64) ([]byte, error)
	PutBundle(ctx context.Context, index uint64, data []byte) error
}

// MemoryCache is a Cache in memory holding at most max tiles and max
// bundles (it forgets an arbitrary one when full). Safe for concurrent use.
type MemoryCache struct {
	mu      sync.Mutex
	max     int
	tiles   map[[2]uint64][]byte
	bundles map[uint64][]byte
}

// NewMemoryCache returns an empty MemoryCache of max entries of each kind
// (at least 1).
func NewMemoryCache(n int) *MemoryCache {
	return &MemoryCache{max: max(n, 1), tiles: map[[2]uint64][]byte{}, bundles: map[uint64][]byte{}}
}

// Tile returns a cached tile or nil.
func (c *MemoryCache) Tile(_ context.Context, level, index uint64) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tiles[[2]uint64{level, index}], nil
}

// PutTile caches a full tile.
func (c *MemoryCache) PutTile(_ context.Context, level, index uint64, data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	putBounded(c.tiles, [2]uint64{level, index}, data, c.max)
	return nil
}

// Bundle returns a cached entry bundle or nil.
func (c *MemoryCache) Bundle(_ context.Context, index uint64) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bundles[index], nil
}

// PutBundle caches a full entry bundle.
func (c *MemoryCache) PutBundle(_ context.Context, index uint64, data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	putBounded(c.bundles, index, data, c.max)
	return nil
}

func putBounded[K comparable](m map[K][]byte, k K, v []byte, max int) {
	if _, ok := m[k]; !ok && len(m) >= max {
		for old := range m {
			delete(m, old)
			break
		}
	}
	m[k] = v
}

// tiered is a small MemoryCache in front of a shared Cache.
type tiered struct {
	mem  *MemoryCache
	next Cache
}

func (t tiered) Tile(ctx context.Context, level, index uint64) ([]byte, error) {
	if b, _ := t.mem.Tile(ctx, level, index); b != nil {
		return b, nil
	}
	b, err := t.next.Tile(ctx, level, index)
	if b != nil && err == nil {
		t.mem.PutTile(ctx, level, index, b)
	}
	return b, err
}

func (t tiered) PutTile(ctx context.Context, level, index uint64, data []byte) error {
	t.mem.PutTile(ctx, level, index, data)
	return t.next.PutTile(ctx, level, index, data)
}

func (t tiered) Bundle(ctx context.Context, index uint64) ([]byte, error) {
	if b, _ := t.mem.Bundle(ctx, index); b != nil {
		return b, nil
	}
	b, err := t.next.Bundle(ctx, index)
	if b != nil && err == nil {
		t.mem.PutBundle(ctx, index, b)
	}
	return b, err
}

func (t tiered) PutBundle(ctx context.Context, index uint64, data []byte) error {
	t.mem.PutBundle(ctx, index, data)
	return t.next.PutBundle(ctx, index, data)
}
