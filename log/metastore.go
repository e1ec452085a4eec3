package log

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/shiplog/shiplog/internal/durable"
)

// The files of a MetadataStore, under its directory.
const (
	// PackFile holds the metadata records, appended in batches.
	PackFile = "metadata.pack"
	// PackIndexFile lists, for each record of the pack, the first 8 bytes
	// of its hash and its offset, so opening need not read the whole pack.
	// It is advisory: the pack alone is the truth.
	PackIndexFile = "metadata.pack.idx"
)

// A pack record is a header, recordHeaderSize bytes: packMagic, the length
// n of the data (uint32, big-endian) and the data's SHA-256; then the n
// bytes of data.
const (
	packMagic        = "slm1"
	recordHeaderSize = 4 + 4 + sha256.Size
	idxRecordSize    = 8 + 8 + 4 // hash prefix, offset, CRC-32C of the 16 bytes
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// MetadataStore keeps the exact metadata bytes that log entries commit to,
// content-addressed by SHA-256, in one append-only pack file under a
// directory (PackFile). Concurrent Puts are group-committed: while one
// batch is written and fsynced, the next accumulates, so the store costs
// one write and one fsync per batch rather than one durable file per
// release. A Put returns only after the fsync that covers its record, so
// nothing is acknowledged before it is durable.
//
// After a crash, opening the store reads the pack's tail beyond the last
// indexed record and cuts off a torn last batch (a record whose header or
// hash does not check out); such records were never acknowledged.
//
// The store finds records through an in-memory table of about 40 bytes per
// record (8 bytes of hash prefix and an offset; a full-hash table for the
// rare prefix collision), rebuilt from PackIndexFile when opening. Files of
// the earlier layout, <dir>/<first two hex digits>/<64 hex digits>, are
// still read. One process owns the directory. It is safe for concurrent
// use.
type MetadataStore struct {
	dir  string
	pack *os.File
	idx  *os.File

	mu      sync.Mutex
	cond    *sync.Cond
	prefix  map[uint64]uint64            // hash prefix -> record offset
	full    map[[sha256.Size]byte]uint64 // records whose prefix collides
	end     uint64                       // end of the records assigned (written or pending)
	durable uint64                       // end of the records fsynced
	pending map[uint64][sha256.Size]byte // offset -> hash of the records not yet durable
	buf     []byte                       // pending records not yet being written
	idxBuf  []byte                       // their index records
	writing bool                         // a goroutine is writing a batch
	err     error                        // a failed write or fsync: the store refuses further Puts
	closed  bool
}

// NewMetadataStore opens the store rooted at dir, creating dir and its
// pack if needed, and recovers from a crash (see MetadataStore).
func NewMetadataStore(dir string) (*MetadataStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("couldn't create metadata store: %w", err)
	}
	_, statErr := os.Stat(filepath.Join(dir, PackFile))
	pack, err := os.OpenFile(filepath.Join(dir, PackFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("couldn't open metadata store: %w", err)
	}
	idx, err := os.OpenFile(filepath.Join(dir, PackIndexFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		pack.Close()
		return nil, fmt.Errorf("couldn't open metadata store: %w", err)
	}
	s := &MetadataStore{dir: dir, pack: pack, idx: idx, prefix: map[uint64]uint64{}, full: map[[sha256.Size]byte]uint64{},
		pending: map[uint64][sha256.Size]byte{}}
	s.cond = sync.NewCond(&s.mu)
	if errors.Is(statErr, fs.ErrNotExist) {
		if err := durable.SyncDir(dir); err != nil {
			s.closeFiles()
			return nil, err
		}
	}
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("metadata store %s: %w", dir, err)
	}
	return s, nil
}

func (s *MetadataStore) closeFiles() {
	s.pack.Close()
	s.idx.Close()
}

// recover loads the index file, trusting each record up to the first one
// that fails its checksum or does not follow the previous one; reads the
// pack from the end of the last trusted record, indexing every whole record
// whose hash checks out; and cuts off whatever follows (a torn batch).
func (s *MetadataStore) recover() error {
	fi, err := s.pack.Stat()
	if err != nil {
		return err
	}
	packSize := uint64(fi.Size())
	ib, err := io.ReadAll(s.idx)
	if err != nil {
		return err
	}
	var next uint64 // end of the last trusted record
	trusted := 0
	for off := 0; off+idxRecordSize <= len(ib); off += idxRecordSize {
		r := ib[off : off+idxRecordSize]
		if crc32.Checksum(r[:16], crcTable) != binary.BigEndian.Uint32(r[16:]) {
			break
		}
		at := binary.BigEndian.Uint64(r[8:16])
		if at != next || at+recordHeaderSize > packSize {
			break
		}
		var h [recordHeaderSize]byte
		if _, err := s.pack.ReadAt(h[:], int64(at)); err != nil {
			return err
		}
		n, sum, ok := parseHeader(h[:])
		if !ok || at+recordHeaderSize+n > packSize || binary.BigEndian.Uint64(sum[:8]) != binary.BigEndian.Uint64(r[:8]) {
			break
		}
		s.insert(sum, at)
		next = at + recordHeaderSize + n
		trusted++
	}
	var scanned []byte
	for next < packSize {
		var h [recordHeaderSize]byte
		if _, err := s.pack.ReadAt(h[:], int64(next)); err != nil {
			break
		}
		n, sum, ok := parseHeader(h[:])
		if !ok || next+recordHeaderSize+n > packSize {
			break
		}
		data := make([]byte, n)
		if _, err := s.pack.ReadAt(data, int64(next+recordHeaderSize)); err != nil {
			return err
		}
		if sha256.Sum256(data) != sum {
			break
		}
		s.insert(sum, next)
		scanned = appendIdxRecord(scanned, sum, next)
		next += recordHeaderSize + n
	}
	if next < packSize { // a torn batch that was never acknowledged
		if err := s.pack.Truncate(int64(next)); err != nil {
			return err
		}
		if err := s.pack.Sync(); err != nil {
			return err
		}
	}
	if err := s.idx.Truncate(int64(trusted * idxRecordSize)); err != nil {
		return err
	}
	if _, err := s.idx.WriteAt(scanned, int64(trusted*idxRecordSize)); err != nil {
		return err
	}
	if _, err := s.idx.Seek(0, io.SeekEnd); err != nil {
		return err
	}
	if _, err := s.pack.Seek(int64(next), io.SeekStart); err != nil {
		return err
	}
	s.end, s.durable = next, next
	return nil
}

// parseHeader returns the data length and hash of a record header.
func parseHeader(h []byte) (n uint64, sum [sha256.Size]byte, ok bool) {
	if string(h[:4]) != packMagic {
		return 0, sum, false
	}
	n = uint64(binary.BigEndian.Uint32(h[4:8]))
	if n > MaxMetadataSize {
		return 0, sum, false
	}
	copy(sum[:], h[8:])
	return n, sum, true
}

func appendIdxRecord(b []byte, sum [sha256.Size]byte, at uint64) []byte {
	start := len(b)
	b = append(b, sum[:8]...)
	b = binary.BigEndian.AppendUint64(b, at)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], crcTable))
}

// insert records that the record with hash sum is at offset at. The caller
// holds mu or owns s exclusively; sum must not be present yet.
func (s *MetadataStore) insert(sum [sha256.Size]byte, at uint64) {
	p := binary.BigEndian.Uint64(sum[:8])
	if _, taken := s.prefix[p]; taken {
		s.full[sum] = at
		return
	}
	s.prefix[p] = at
}

// lookup returns the offset of the record with hash sum. The caller holds
// mu.
func (s *MetadataStore) lookup(sum [sha256.Size]byte) (uint64, bool, error) {
	if at, ok := s.full[sum]; ok {
		return at, true, nil
	}
	at, ok := s.prefix[binary.BigEndian.Uint64(sum[:8])]
	if !ok {
		return 0, false, nil
	}
	if at >= s.durable { // pending: not in the file yet
		return at, s.pending[at] == sum, nil
	}
	var h [recordHeaderSize]byte
	if _, err := s.pack.ReadAt(h[:], int64(at)); err != nil {
		return 0, false, err
	}
	_, got, ok := parseHeader(h[:])
	return at, ok && got == sum, nil
}

// Put stores data durably and returns its SHA-256. When it returns nil, the
// bytes survive a crash. Storing bytes already present waits until they
// are durable and writes nothing.
func (s *MetadataStore) Put(data []byte) ([sha256.Size]byte, error) {
	sum := sha256.Sum256(data)
	if len(data) > MaxMetadataSize {
		return sum, fmt.Errorf("couldn't store metadata: %d bytes is over the limit", len(data))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return sum, err
	}
	at, ok, err := s.lookup(sum)
	if err != nil {
		return sum, fmt.Errorf("couldn't store metadata: %w", err)
	}
	if !ok {
		at = s.end
		s.insert(sum, at)
		s.pending[at] = sum
		s.buf = append(s.buf, packMagic...)
		s.buf = binary.BigEndian.AppendUint32(s.buf, uint32(len(data)))
		s.buf = append(s.buf, sum[:]...)
		s.buf = append(s.buf, data...)
		s.idxBuf = appendIdxRecord(s.idxBuf, sum, at)
		s.end += recordHeaderSize + uint64(len(data))
	}
	for s.durable <= at {
		if s.err != nil {
			return sum, fmt.Errorf("couldn't store metadata: a write failed: %w", s.err)
		}
		if s.writing {
			s.cond.Wait()
			continue
		}
		s.writeBatches()
	}
	return sum, nil
}

func (s *MetadataStore) usable() error {
	if s.err != nil {
		return fmt.Errorf("couldn't store metadata: an earlier write failed: %w", s.err)
	}
	if s.closed {
		return errors.New("couldn't store metadata: the store is closed")
	}
	return nil
}

// writeBatches writes and fsyncs the pending records, batch after batch,
// until none are pending; the caller holds mu, which is released while
// writing. Each fsync wakes the Puts it made durable.
func (s *MetadataStore) writeBatches() {
	s.writing = true
	defer func() { s.writing = false; s.cond.Broadcast() }()
	for len(s.buf) > 0 && s.err == nil {
		batch, idxBatch := s.buf, s.idxBuf
		s.buf, s.idxBuf = nil, nil
		start, batchEnd := s.durable, s.durable+uint64(len(batch))
		s.mu.Unlock()
		_, err := s.pack.Write(batch)
		if err == nil {
			err = s.pack.Sync()
		}
		if err == nil { // advisory: not synced, checked when opening
			_, err = s.idx.Write(idxBatch)
		}
		s.mu.Lock()
		if err != nil {
			s.err = err
			return
		}
		for at := start; at < batchEnd; {
			delete(s.pending, at)
			at += recordHeaderSize + uint64(binary.BigEndian.Uint32(batch[at-start+4:]))
		}
		s.durable = batchEnd
		s.cond.Broadcast()
	}
}

// Path returns the file name of the metadata with hash sum in the earlier
// layout, one file per release (read for stores written before the pack).
func (s *MetadataStore) Path(sum [sha256.Size]byte) string {
	h := hex.EncodeToString(sum[:])
	return filepath.Join(s.dir, h[:2], h)
}

// Get returns the metadata with hash sum, at most MaxMetadataSize bytes,
// checking that the bytes match sum. It returns ErrNotFound (wrapped) when
// absent, not yet durable, or damaged on disk (bytes that do not match
// their hash are as good as lost).
func (s *MetadataStore) Get(sum [sha256.Size]byte) ([]byte, error) {
	s.mu.Lock()
	at, ok, err := s.lookup(sum)
	ok = ok && at < s.durable
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if !ok {
		return s.getFile(sum)
	}
	var h [recordHeaderSize]byte
	if _, err := s.pack.ReadAt(h[:], int64(at)); err != nil {
		return nil, err
	}
	n, got, ok := parseHeader(h[:])
	if !ok || got != sum {
		return nil, fmt.Errorf("metadata %x: stored record is damaged: %w", sum[:], ErrNotFound)
	}
	b := make([]byte, n)
	if _, err := s.pack.ReadAt(b, int64(at+recordHeaderSize)); err != nil && n > 0 {
		return nil, err
	}
	if sha256.Sum256(b) != sum {
		return nil, fmt.Errorf("metadata %x: stored record is damaged: %w", sum[:], ErrNotFound)
	}
	return b, nil
}

// getFile reads the metadata from a file of the earlier layout.
func (s *MetadataStore) getFile(sum [sha256.Size]byte) ([]byte, error) {
	f, err := os.Open(s.Path(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("metadata %x: %w", sum[:], ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > MaxMetadataSize {
		return nil, fmt.Errorf("metadata %x: stored file too large", sum[:])
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil && fi.Size() > 0 {
		return nil, err
	}
	if sha256.Sum256(b) != sum {
		return nil, fmt.Errorf("metadata %x: stored file does not match its hash", sum[:])
	}
	return b, nil
}

// Close waits for a batch being written, then syncs the index file and
// closes the files. Puts after Close fail.
func (s *MetadataStore) Close() error {
	s.mu.Lock()
	for s.writing {
		s.cond.Wait()
	}
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	err := s.idx.Sync()
	if e := s.pack.Close(); err == nil {
		err = e
	}
	if e := s.idx.Close(); err == nil {
		err = e
	}
	return err
}
