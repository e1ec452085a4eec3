// Package store is the auditor's durable state, in one bbolt file: every
// hash of the log's Merkle tree as the auditor recomputed it from the
// entries (in golang.org/x/mod/sumdb/tlog's stored-hash order), the replayed
// state of every repository, every release seen, every checkpoint verified,
// and every finding. Each catch-up step is one bbolt transaction, so after a
// crash the auditor resumes from the last step that committed, with tree,
// replay state and findings in agreement.
//
// The per-entry part is compact (format 2, about 160-190 bytes of pages per
// log entry): tree hashes packed 126 to a value (hashes.go), one binary
// record per release under numbered repository and role names, with the
// times shared by a catch-up step stored once (release.go). Open moves a
// state of the earlier format (one key per hash, JSON per release) to it in
// resumable steps (migrate.go); the file does not shrink, bbolt reuses the
// freed pages as the state grows.
//
// A DB is safe for concurrent use: bbolt allows one writer and many readers
// (the dashboard reads while the follower writes).
package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/shiplog/shiplog/internal/pidlock"
	"os"
	"time"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/audit/replay"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

var (
	bucketMeta        = []byte("meta")        // "head" -> Head JSON, "format" -> stateFormat
	bucketRepos       = []byte("repos")       // repo id -> replay.RepoState JSON
	bucketCheckpoints = []byte("checkpoints") // sequence -> CheckpointRecord JSON
	bucketFindings    = []byte("findings")    // sequence -> FindingRecord JSON
	bucketFindingKeys = []byte("findingkeys") // dedup key -> sequence
	// Tree hashes: hashes.go; releases, repository numbers, spans: release.go.
	allBuckets = [][]byte{bucketMeta, bucketHashChunks, bucketRepos, bucketReleases2, bucketNames, bucketSpans,
		bucketCheckpoints, bucketFindings, bucketFindingKeys}
	keyHead = []byte("head")
)

// allocSize is how much the state file grows at a time.
const allocSize = 1 << 20

// ErrCorrupt means the state file is not one this package wrote.
var ErrCorrupt = errors.New("auditor state is corrupt")

// Head is the log state the auditor has verified: its tree of Size entries,
// every one replayed, hashes to Root, which Checkpoint (a signed note that
// verified under the policy) commits to.
type Head struct {
	Origin     string    `json:"origin"`
	Size       uint64    `json:"size"`
	Root       tlog.Hash `json:"root"`
	Checkpoint []byte    `json:"checkpoint"`
	Verified   time.Time `json:"verified"` // when the auditor verified Checkpoint
}

// CheckpointRecord is one verified checkpoint, for the size-over-time plot
// and the dashboard's cosigner list.
type CheckpointRecord struct {
	Seen      time.Time `json:"seen"`
	Source    string    `json:"source"` // "ledger", or the witness or peer URL
	Size      uint64    `json:"size"`
	Root      tlog.Hash `json:"root"`
	Cosigners []string  `json:"cosigners,omitempty"`
	Note      []byte    `json:"note"`
}

// FindingRecord is a stored finding with its sequence number.
type FindingRecord struct {
	ID uint64 `json:"id"`
	alert.Finding
}

// DB is an open state file.
type DB struct {
	db   *bolt.DB
	lock *pidlock.Lock
}

// Open opens (creating if needed) the state file at path. Only one process
// may have it open: a second Open fails at once with a *pidlock.HeldError
// ("already running (pid …)"; the lock file is path + ".lock").
func Open(path string) (*DB, error) {
	lock, err := pidlock.Acquire(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("couldn't open auditor state %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		lock.Release()
		return nil, fmt.Errorf("couldn't open auditor state %s: %w", path, err)
	}
	// Grow the file in steps of 1 MiB, not bbolt's 16 MiB: the state is
	// small per entry, and a large step would double a young state's file.
	db.AllocSize = allocSize
	err = createBuckets(db)
	if err == nil {
		err = migrate(db)
	}
	if err != nil {
		db.Close()
		lock.Release()
		return nil, err
	}
	return &DB{db: db, lock: lock}, nil
}

func createBuckets(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
}

// Size returns the state file's size and the bytes of it that hold data
// (the pages in use: not free, not reserved for growth).
func (d *DB) Size() (file, used int64, err error) {
	err = d.db.View(func(tx *bolt.Tx) error {
		st := d.db.Stats()
		used = tx.Size() - int64(st.FreeAlloc)
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	fi, err := os.Stat(d.db.Path())
	if err != nil {
		return 0, 0, err
	}
	return fi.Size(), used, nil
}

// Close closes the file and releases its lock.
func (d *DB) Close() error {
	err := d.db.Close()
	d.lock.Release()
	return err
}

// Head returns the verified head; ok is false before the first checkpoint.
func (d *DB) Head() (h Head, ok bool, err error) {
	err = d.db.View(func(tx *bolt.Tx) error {
		h, ok, err = (&Tx{tx: tx}).Head()
		return err
	})
	return h, ok, err
}

// Update runs fn in one write transaction, committed durably (fsync) when
// fn returns nil and rolled back otherwise.
func (d *DB) Update(fn func(*Tx) error) error {
	return d.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// View runs fn in a read-only transaction.
func (d *DB) View(fn func(*Tx) error) error {
	return d.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// Tx is a transaction. It implements replay.History and, through Hashes,
// tlog.HashReader. It is not safe for concurrent use.
type Tx struct {
	tx *bolt.Tx
	// Added is set by AddFinding for each finding new to the state.
	Added []FindingRecord

	hc *hashChunks
	rc releaseCache
}

// Head is as DB.Head, in the transaction.
func (t *Tx) Head() (Head, bool, error) {
	b := t.tx.Bucket(bucketMeta).Get(keyHead)
	if b == nil {
		return Head{}, false, nil
	}
	var h Head
	if err := json.Unmarshal(b, &h); err != nil {
		return Head{}, false, fmt.Errorf("%w: head: %v", ErrCorrupt, err)
	}
	return h, true, nil
}

// SetHead replaces the head.
func (t *Tx) SetHead(h Head) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucketMeta).Put(keyHead, b)
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// Hashes returns a tlog.HashReader over the stored tree hashes.
func (t *Tx) Hashes() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			h, err := t.chunks().hash(x)
			if err != nil {
				return nil, err
			}
			out[i] = h
		}
		return out, nil
	})
}

func (t *Tx) chunks() *hashChunks {
	if t.hc == nil {
		t.hc = &hashChunks{tx: t}
	}
	return t.hc
}

// AppendLeaf adds the log entry at index n (the next one: the tree has n
// leaves) to the stored tree.
func (t *Tx) AppendLeaf(n uint64, entryBytes []byte) error {
	hs, err := tlog.StoredHashes(int64(n), entryBytes, t.Hashes())
	if err != nil {
		return err
	}
	first := tlog.StoredHashIndex(0, int64(n))
	for i, h := range hs {
		if err := t.chunks().put(first+int64(i), h); err != nil {
			return err
		}
	}
	return nil
}

// TreeHash returns the root hash of the first n stored leaves.
func (t *Tx) TreeHash(n uint64) (tlog.Hash, error) {
	return tlog.TreeHash(int64(n), t.Hashes())
}

// PutRepo stores the replayed state of a repository.
func (t *Tx) PutRepo(id string, s *replay.RepoState) error {
	b, err := replay.MarshalRepoState(s)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucketRepos).Put([]byte(id), b)
}

// Repos calls fn for every stored repository state, in id order.
func (t *Tx) Repos(fn func(id string, s *replay.RepoState) error) error {
	return t.tx.Bucket(bucketRepos).ForEach(func(k, v []byte) error {
		s, err := replay.UnmarshalRepoState(v)
		if err != nil {
			return fmt.Errorf("%w: repository %q: %v", ErrCorrupt, k, err)
		}
		return fn(string(k), s)
	})
}

// AddCheckpoint records a verified checkpoint.
func (t *Tx) AddCheckpoint(r CheckpointRecord) error {
	b := t.tx.Bucket(bucketCheckpoints)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return b.Put(u64(seq), v)
}

// Checkpoints calls fn for every recorded checkpoint, oldest first.
func (t *Tx) Checkpoints(fn func(CheckpointRecord) error) error {
	return t.tx.Bucket(bucketCheckpoints).ForEach(func(_, v []byte) error {
		var r CheckpointRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("%w: checkpoint: %v", ErrCorrupt, err)
		}
		return fn(r)
	})
}

// AddFinding stores f unless a finding with the same dedup key is stored
// already (a fork seen on every poll is one finding). The key is the kind,
// log, index, repository, role, version and evidence. It reports whether f
// was new; new findings are also appended to t.Added.
func (t *Tx) AddFinding(f alert.Finding) (bool, error) {
	key := dedupKey(f)
	keys := t.tx.Bucket(bucketFindingKeys)
	if keys.Get(key) != nil {
		return false, nil
	}
	b := t.tx.Bucket(bucketFindings)
	seq, err := b.NextSequence()
	if err != nil {
		return false, err
	}
	rec := FindingRecord{ID: seq, Finding: f}
	v, err := json.Marshal(rec)
	if err != nil {
		return false, err
	}
	if err := b.Put(u64(seq), v); err != nil {
		return false, err
	}
	t.Added = append(t.Added, rec)
	return true, keys.Put(key, u64(seq))
}

func dedupKey(f alert.Finding) []byte {
	g := f
	g.Time = time.Time{}
	g.Message = ""
	b, _ := json.Marshal(g) // map keys are sorted: deterministic
	s := sha256.Sum256(b)
	return s[:]
}

// Findings calls fn for every stored finding, oldest first.
func (t *Tx) Findings(fn func(FindingRecord) error) error {
	return t.tx.Bucket(bucketFindings).ForEach(func(_, v []byte) error {
		var r FindingRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("%w: finding: %v", ErrCorrupt, err)
		}
		return fn(r)
	})
}

// Finding returns the finding with id.
func (t *Tx) Finding(id uint64) (FindingRecord, bool, error) {
	v := t.tx.Bucket(bucketFindings).Get(u64(id))
	if v == nil {
		return FindingRecord{}, false, nil
	}
	var r FindingRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return FindingRecord{}, false, fmt.Errorf("%w: finding: %v", ErrCorrupt, err)
	}
	return r, true, nil
}
