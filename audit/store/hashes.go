package store

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// Tree hashes are stored in chunks of hashesPerChunk consecutive stored
// hashes (tlog's stored-hash order), one bbolt value each: chunk number
// (8 bytes BE) -> up to hashesPerChunk × 32 bytes. 126 hashes (4,032
// bytes) is the most that, with bbolt's page and element headers and the
// key, fits one 4 KiB page, so the tree costs ≈ 32.5 bytes per stored
// hash (about two per entry) instead of a key and an element header per
// hash.
const hashesPerChunk = 126

var bucketHashChunks = []byte("hashchunks")

// hashChunks reads and appends stored hashes in one transaction.
type hashChunks struct {
	tx *Tx
	// cur is the chunk appended to last, with room for a full chunk so
	// that appending never moves the bytes bbolt was given by Put.
	curN   uint64
	cur    []byte
	hasCur bool
}

func chunkKey(n uint64) []byte { return u64(n) }

// hash returns stored hash x.
func (h *hashChunks) hash(x int64) (tlog.Hash, error) {
	n, off := uint64(x)/hashesPerChunk, int(uint64(x)%hashesPerChunk)*tlog.HashSize
	var v []byte
	if h.hasCur && h.curN == n {
		v = h.cur
	} else {
		v = h.tx.tx.Bucket(bucketHashChunks).Get(chunkKey(n))
	}
	if len(v) < off+tlog.HashSize {
		return tlog.Hash{}, fmt.Errorf("%w: tree hash %d missing", ErrCorrupt, x)
	}
	return tlog.Hash(v[off : off+tlog.HashSize]), nil
}

// put stores hash x, which must be the next stored hash (the tree has
// exactly x stored hashes); a chunk holding more (a step that did not
// commit cannot leave any, but a migration that stopped half way can) is
// cut back first.
func (h *hashChunks) put(x int64, hash tlog.Hash) error {
	n, off := uint64(x)/hashesPerChunk, int(uint64(x)%hashesPerChunk)*tlog.HashSize
	if !h.hasCur || h.curN != n {
		buf := make([]byte, 0, hashesPerChunk*tlog.HashSize)
		if off > 0 {
			old := h.tx.tx.Bucket(bucketHashChunks).Get(chunkKey(n))
			if len(old) < off {
				return fmt.Errorf("%w: tree hash %d missing", ErrCorrupt, x-1)
			}
			buf = append(buf, old[:off]...)
		}
		h.curN, h.cur, h.hasCur = n, buf, true
	}
	if len(h.cur) != off {
		// Cut back: copy, so that the value bbolt holds is not changed under it.
		h.cur = append(make([]byte, 0, hashesPerChunk*tlog.HashSize), h.cur[:off]...)
	}
	h.cur = append(h.cur, hash[:]...)
	b := h.tx.tx.Bucket(bucketHashChunks)
	b.FillPercent = 1.0 // keys only ever grow: pack the pages
	return b.Put(chunkKey(n), h.cur)
}
