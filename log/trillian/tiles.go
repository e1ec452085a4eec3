package trillian

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/google/trillian"
	ledger "github.com/shiplog/shiplog/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// leaf is a sequenced leaf read from Trillian and checked.
type leaf struct {
	hash  [sha256.Size]byte
	value []byte
}

// leaves reads up to count sequenced leaves from index start. It returns
// fewer (possibly none) when the tree is smaller. Each leaf is checked:
// its index, its size, and that its Merkle leaf hash is the RFC 6962 hash
// of its value.
func (s *Storage) leaves(ctx context.Context, start, count uint64) ([]leaf, error) {
	if count == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	resp, err := s.client.GetLeavesByRange(ctx, &trillian.GetLeavesByRangeRequest{LogId: s.tree, StartIndex: int64(start), Count: int64(count)})
	if status.Code(err) == codes.OutOfRange {
		return nil, nil
	}
	if err != nil {
		return nil, s.unavailable("read leaves", err)
	}
	ls := resp.GetLeaves()
	if uint64(len(ls)) > count {
		return nil, errors.New("trillian returned more leaves than asked for")
	}
	out := make([]leaf, len(ls))
	for i, l := range ls {
		v := l.GetLeafValue()
		h := rfc6962.DefaultHasher.HashLeaf(v)
		if l.GetLeafIndex() != int64(start)+int64(i) || len(v) > MaxEntrySize || !bytes.Equal(h, l.GetMerkleLeafHash()) {
			return nil, fmt.Errorf("trillian returned a malformed leaf at index %d", start+uint64(i))
		}
		out[i] = leaf{[sha256.Size]byte(h), v}
	}
	return out, nil
}

// ReadTile returns the hash tile (level, index) of the given width (0 for a
// full tile), built from Trillian's leaves: a level-0 tile holds leaf
// hashes, a level-L tile the root hashes of full level-(L-1) tiles. Full
// tiles are cached. It returns log.ErrNotFound (wrapped) while the tree is
// too small for the tile.
func (s *Storage) ReadTile(ctx context.Context, level, index uint64, width uint8) ([]byte, error) {
	if level > 7 || index > 1<<40 {
		return nil, fmt.Errorf("tile %d/%d: %w", level, index, ledger.ErrNotFound)
	}
	if width == 0 {
		return s.fullTile(ctx, level, index)
	}
	if t, err := s.cache.Tile(ctx, level, index); err == nil && t != nil {
		return t[:int(width)*sha256.Size], nil
	}
	return s.buildTile(ctx, level, index, uint64(width))
}

// fullTile returns a full hash tile from the cache or builds and caches it.
func (s *Storage) fullTile(ctx context.Context, level, index uint64) ([]byte, error) {
	t, err := s.cache.Tile(ctx, level, index)
	if err != nil {
		s.log.Warn("tile cache read failed; rebuilding", "level", level, "index", index, "err", err)
	} else if t != nil {
		if len(t) != 256*sha256.Size {
			return nil, fmt.Errorf("cached tile %d/%d is corrupt", level, index)
		}
		return t, nil
	}
	if level == 0 {
		t, _, err := s.fullLevel0(ctx, index)
		return t, err
	}
	t, err = s.buildTile(ctx, level, index, 256)
	if err != nil {
		return nil, err
	}
	if err := s.cache.PutTile(ctx, level, index, t); err != nil {
		s.log.Warn("couldn't cache a tile", "level", level, "index", index, "err", err)
	}
	return t, nil
}

// fullLevel0 builds level-0 tile index and entry bundle index together
// from the same 256 leaves and caches both.
func (s *Storage) fullLevel0(ctx context.Context, index uint64) (tile, bundle []byte, err error) {
	ls, err := s.leaves(ctx, index*256, 256)
	if err != nil {
		return nil, nil, err
	}
	if len(ls) < 256 {
		return nil, nil, fmt.Errorf("tile 0/%d: %w", index, ledger.ErrNotFound)
	}
	tile, bundle = hashTile(ls), entryBundle(ls)
	if err := s.cache.PutTile(ctx, 0, index, tile); err != nil {
		s.log.Warn("couldn't cache a tile", "level", 0, "index", index, "err", err)
	}
	if err := s.cache.PutBundle(ctx, index, bundle); err != nil {
		s.log.Warn("couldn't cache an entry bundle", "index", index, "err", err)
	}
	return tile, bundle, nil
}

// buildTile builds the first width hashes of tile (level, index).
func (s *Storage) buildTile(ctx context.Context, level, index, width uint64) ([]byte, error) {
	if level == 0 {
		ls, err := s.leaves(ctx, index*256, width)
		if err != nil {
			return nil, err
		}
		if uint64(len(ls)) < width {
			return nil, fmt.Errorf("tile 0/%d.p/%d: %w", index, width, ledger.ErrNotFound)
		}
		return hashTile(ls), nil
	}
	out := make([]byte, 0, width*sha256.Size)
	for k := uint64(0); k < width; k++ {
		child, err := s.fullTile(ctx, level-1, index*256+k)
		if err != nil {
			return nil, err
		}
		r := tileRoot(child)
		out = append(out, r[:]...)
	}
	return out, nil
}

// ReadEntryBundle returns entry bundle index of the given width (0: full),
// built from Trillian's leaves; full bundles are cached.
func (s *Storage) ReadEntryBundle(ctx context.Context, index uint64, width uint8) ([]byte, error) {
	if index > 1<<40 {
		return nil, fmt.Errorf("entry bundle %d: %w", index, ledger.ErrNotFound)
	}
	b, err := s.cache.Bundle(ctx, index)
	if err != nil {
		s.log.Warn("entry bundle cache read failed; rebuilding", "index", index, "err", err)
	} else if b != nil {
		return truncateBundle(b, width)
	}
	if width == 0 {
		_, b, err := s.fullLevel0(ctx, index)
		return b, err
	}
	ls, err := s.leaves(ctx, index*256, uint64(width))
	if err != nil {
		return nil, err
	}
	if len(ls) < int(width) {
		return nil, fmt.Errorf("entry bundle %d.p/%d: %w", index, width, ledger.ErrNotFound)
	}
	return entryBundle(ls), nil
}

// truncateBundle returns the first width entries of a full bundle (0: all).
func truncateBundle(b []byte, width uint8) ([]byte, error) {
	entries, err := ledger.ParseBundle(b)
	if err != nil || len(entries) != 256 {
		return nil, errors.New("cached entry bundle is corrupt")
	}
	if width == 0 {
		return b, nil
	}
	end := 0
	for _, e := range entries[:width] {
		end += 2 + len(e)
	}
	return b[:end], nil
}

func hashTile(ls []leaf) []byte {
	out := make([]byte, 0, len(ls)*sha256.Size)
	for _, l := range ls {
		out = append(out, l.hash[:]...)
	}
	return out
}

// entryBundle encodes a tlog-tiles entry bundle: uint16 big-endian length
// and the entry, for each leaf.
func entryBundle(ls []leaf) []byte {
	var b []byte
	for _, l := range ls {
		b = append(b, byte(len(l.value)>>8), byte(len(l.value)))
		b = append(b, l.value...)
	}
	return b
}

// tileRoot returns the root hash of a full tile's 256 hashes (a complete
// subtree, so pairwise RFC 6962 interior hashing).
func tileRoot(t []byte) [sha256.Size]byte {
	level := make([][]byte, 256)
	for i := range level {
		level[i] = t[i*sha256.Size : (i+1)*sha256.Size]
	}
	for len(level) > 1 {
		next := make([][]byte, len(level)/2)
		for i := range next {
			next[i] = rfc6962.DefaultHasher.HashChildren(level[2*i], level[2*i+1])
		}
		level = next
	}
	return [sha256.Size]byte(level[0])
}
