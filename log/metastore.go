package log

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/shiplog/shiplog/internal/durable"
)

// MetadataStore keeps the exact metadata bytes that log entries commit to,
// content-addressed by SHA-256 under a directory:
// <dir>/<first two hex digits>/<64 hex digits>. Files are written with
// temp-file, fsync, rename and directory fsync, so a file under its final
// name always holds exactly the bytes its name commits to. It is safe for
// concurrent use.
type MetadataStore struct {
	dir string
}

// NewMetadataStore returns a store rooted at dir, creating dir if needed.
func NewMetadataStore(dir string) (*MetadataStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("couldn't create metadata store: %w", err)
	}
	return &MetadataStore{dir: dir}, nil
}

// Path returns the file name of the metadata with hash sum.
func (s *MetadataStore) Path(sum [sha256.Size]byte) string {
	h := hex.EncodeToString(sum[:])
	return filepath.Join(s.dir, h[:2], h)
}

// Put stores data durably and returns its SHA-256. When it returns nil, the
// bytes survive a crash. Storing bytes already present is a cheap no-op.
func (s *MetadataStore) Put(data []byte) ([sha256.Size]byte, error) {
	sum := sha256.Sum256(data)
	p := s.Path(sum)
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, data) {
		return sum, nil
	}
	shard := filepath.Dir(p)
	if _, err := os.Stat(shard); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(shard, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return sum, fmt.Errorf("couldn't store metadata: %w", err)
		}
		if err := durable.SyncDir(s.dir); err != nil {
			return sum, err
		}
	}
	if err := durable.WriteFile(p, data, 0o644); err != nil {
		return sum, fmt.Errorf("couldn't store metadata: %w", err)
	}
	return sum, nil
}

// Get returns the metadata with hash sum, at most MaxMetadataSize bytes,
// checking that the bytes match sum. It returns ErrNotFound (wrapped) when
// absent.
func (s *MetadataStore) Get(sum [sha256.Size]byte) ([]byte, error) {
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
