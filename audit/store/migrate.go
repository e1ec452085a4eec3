package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/shiplog/shiplog/audit/replay"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// stateFormat names the layout this package writes, stored under "format"
// in the meta bucket. Format 1 (no "format" key) kept one key per tree hash
// (bucket "hashes") and one JSON record per release keyed by repository
// id, role and version (bucket "releases"); Open moves such a state to the
// current layout.
const stateFormat = "2"

var (
	keyFormat        = []byte("format")
	bucketHashesV1   = []byte("hashes")
	bucketReleasesV1 = []byte("releases")
)

// migrateBatch is how many format-1 records one migration transaction
// moves: the migration commits in steps, each moving records out of the
// old buckets into the new ones, so it is never more than one step from
// where a crash left it, and resumes there on the next Open.
var migrateBatch = 50_000

// migrate brings the state file to stateFormat, refusing one written by a
// newer auditor.
func migrate(db *bolt.DB) error {
	for {
		done, err := migrateStep(db)
		var newer *newerFormatError
		if errors.As(err, &newer) {
			return err
		}
		if err != nil {
			return fmt.Errorf("couldn't move the auditor state to format %s: %w", stateFormat, err)
		}
		if done {
			return nil
		}
	}
}

// newerFormatError is a state file of a format this auditor does not know.
type newerFormatError struct{ format string }

func (e *newerFormatError) Error() string {
	return fmt.Sprintf("the auditor state is in format %q, which this auditor (format %s) does not read: run the auditor version that wrote it, or audit into a new state directory", e.format, stateFormat)
}

func migrateStep(db *bolt.DB) (done bool, err error) {
	err = db.Update(func(btx *bolt.Tx) error {
		meta := btx.Bucket(bucketMeta)
		if f := meta.Get(keyFormat); f != nil {
			if string(f) != stateFormat {
				return &newerFormatError{format: string(f)}
			}
			done = true
			return nil
		}
		t := &Tx{tx: btx}
		moved, err := migrateHashes(t)
		if err != nil || moved > 0 {
			return err
		}
		if moved, err = migrateReleases(t); err != nil || moved > 0 {
			return err
		}
		return meta.Put(keyFormat, []byte(stateFormat))
	})
	return done, err
}

// migrateHashes moves up to migrateBatch tree hashes, in index order, into
// hash chunks; it deletes the old bucket once it is empty.
func migrateHashes(t *Tx) (int, error) {
	b := t.tx.Bucket(bucketHashesV1)
	if b == nil {
		return 0, nil
	}
	c := b.Cursor()
	n := 0
	for k, v := c.First(); k != nil && n < migrateBatch; k, v = c.First() {
		if len(k) != 8 || len(v) != tlog.HashSize {
			return n, fmt.Errorf("%w: format-1 tree hash", ErrCorrupt)
		}
		if err := t.chunks().put(int64(binary.BigEndian.Uint64(k)), tlog.Hash(v)); err != nil {
			return n, err
		}
		if err := c.Delete(); err != nil {
			return n, err
		}
		n++
	}
	if n == 0 {
		return 0, t.tx.DeleteBucket(bucketHashesV1)
	}
	return n, nil
}

// migrateReleases moves up to migrateBatch format-1 release records into
// binary records (each with its own times); it deletes the old bucket once
// it is empty.
func migrateReleases(t *Tx) (int, error) {
	b := t.tx.Bucket(bucketReleasesV1)
	if b == nil {
		return 0, nil
	}
	c := b.Cursor()
	n := 0
	for k, v := c.First(); k != nil && n < migrateBatch; k, v = c.First() {
		var r replay.Release
		if err := json.Unmarshal(v, &r); err != nil {
			return n, fmt.Errorf("%w: format-1 release: %v", ErrCorrupt, err)
		}
		if err := t.PutRelease(&r); err != nil {
			return n, err
		}
		if err := c.Delete(); err != nil {
			return n, err
		}
		n++
	}
	if n == 0 {
		return 0, t.tx.DeleteBucket(bucketReleasesV1)
	}
	return n, nil
}
