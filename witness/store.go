package witness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/shiplog/shiplog/internal/pidlock"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The store keeps each log's State in bbolt, a pure-Go B+tree in one file
// whose transactions are serialised and fsynced on commit. The
// check-and-update of a log's state is a compare-and-swap run inside a
// write transaction, and the witness signs nothing that leaves the process
// before that transaction is durable. Concurrent requests are group
// committed: one goroutine takes every update waiting, applies each as a
// compare-and-swap against the state as it stands in the same transaction,
// and commits them with one fsync.

var (
	bucketLogs         = []byte("logs")
	bucketMisbehaviour = []byte("misbehaviour")
)

const maxBatch = 4096

// Store is the witness's durable state. It is safe for concurrent use; only
// one process may open a store file at a time (bbolt holds a file lock).
type Store struct {
	db   *bolt.DB
	lock *pidlock.Lock
	log  *slog.Logger
	ops  chan *storeOp

	// failed is set when a commit fails: the file's state is then unknown
	// ("failed but maybe persisted"), so the store refuses every later write
	// until it is reopened, which re-reads the truth from disk.
	failed atomic.Bool

	mu     sync.RWMutex
	cache  map[string]State // by origin
	byHash map[[sha256.Size]byte]string

	// onMisbehaviour, if set before the first Update, is called for each
	// misbehaviour detected, with whether it was newly stored.
	onMisbehaviour func(m Misbehaviour, stored bool)
	// onCommit, if set before the first Update, observes each commit.
	onCommit func(batch int, d time.Duration)

	closeOnce sync.Once
	quit      chan struct{}
	done      chan struct{}
}

// storeOp is one compare-and-swap (when cas) and the misbehaviour records
// to keep with it.
type storeOp struct {
	cas          bool
	origin       string
	expect, next State
	received     []byte // the log-signed note of next, as received, for evidence
	records      []Misbehaviour
	result       chan error
}

// OpenStore opens or creates the store at path. It fails at once with a
// *pidlock.HeldError ("already running (pid …)") if another process serves
// it (the lock file is path + ".lock").
func OpenStore(path string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	lock, err := pidlock.Acquire(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("couldn't open witness state %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true, InitialMmapSize: 64 << 20})
	if err != nil {
		lock.Release()
		return nil, fmt.Errorf("couldn't open witness state %s: %w", path, err)
	}
	s := &Store{
		db: db, lock: lock, log: logger, ops: make(chan *storeOp),
		cache: map[string]State{}, byHash: map[[sha256.Size]byte]string{},
		quit: make(chan struct{}), done: make(chan struct{}),
	}
	if err := s.load(); err != nil {
		db.Close()
		lock.Release()
		return nil, err
	}
	go s.run()
	return s, nil
}

// load creates the buckets and reads every log's state into the cache.
func (s *Store) load() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		logs, err := tx.CreateBucketIfNotExists(bucketLogs)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketMisbehaviour); err != nil {
			return err
		}
		return logs.ForEach(func(k, v []byte) error {
			st, err := decodeState(v)
			if err != nil {
				return fmt.Errorf("witness state of %q: %w", k, err)
			}
			s.setCacheLocked(string(k), st)
			return nil
		})
	})
}

func (s *Store) setCacheLocked(origin string, st State) {
	s.cache[origin] = st
	s.byHash[sha256.Sum256([]byte(origin))] = origin
}

// Latest returns the latest cosigned state of the log with origin, or the
// initial state (size 0) if it has none.
func (s *Store) Latest(origin string) State {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if st, ok := s.cache[origin]; ok {
		return st
	}
	return initialState()
}

// LatestByHash returns the state of the log whose origin hashes (SHA-256)
// to h, for the monitoring endpoint.
func (s *Store) LatestByHash(h [sha256.Size]byte) (origin string, st State, ok bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	origin, ok = s.byHash[h]
	if !ok {
		return "", State{}, false
	}
	return origin, s.cache[origin], true
}

// Update atomically replaces the state of origin by next if it is still
// expect (same size and root hash), together with keeping the given
// misbehaviour records, and returns once that is durable. It returns a
// *ConflictError with the current size if the state changed, and
// ErrUnavailable if the store failed or is closed.
func (s *Store) Update(ctx context.Context, origin string, expect, next State, received []byte, records ...Misbehaviour) error {
	return s.submit(ctx, &storeOp{cas: true, origin: origin, expect: expect, next: next, received: received, records: records})
}

// Record durably keeps misbehaviour records (deduplicated, at most a few
// dozen per log and kind).
func (s *Store) Record(ctx context.Context, records ...Misbehaviour) error {
	return s.submit(ctx, &storeOp{records: records})
}

func (s *Store) submit(ctx context.Context, op *storeOp) error {
	if s.failed.Load() {
		return ErrUnavailable
	}
	op.result = make(chan error, 1)
	select {
	case s.ops <- op:
	case <-s.quit:
		return ErrUnavailable
	case <-ctx.Done():
		return ctx.Err()
	}
	// Wait for the commit even if ctx ends: the caller must not act (sign
	// or answer) on an update whose fate it does not know.
	return <-op.result
}

// run is the group committer. ops is unbuffered: an update is either taken
// by run, and answered after its commit, or refused at Close.
func (s *Store) run() {
	defer close(s.done)
	for {
		var batch []*storeOp
		select {
		case op := <-s.ops:
			batch = append(batch, op)
		case <-s.quit:
			return
		}
	more:
		for len(batch) < maxBatch {
			select {
			case op := <-s.ops:
				batch = append(batch, op)
			default:
				break more
			}
		}
		s.commit(batch)
	}
}

func (s *Store) commit(batch []*storeOp) {
	if s.failed.Load() {
		for _, op := range batch {
			op.result <- ErrUnavailable
		}
		return
	}
	start := time.Now()
	var a *applied
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		a, err = apply(tx, batch, start)
		return err
	})
	if err != nil {
		s.failed.Store(true)
		s.log.Error("witness state commit failed; refusing further updates until restart", "error", err)
		for _, op := range batch {
			op.result <- ErrUnavailable
		}
		return
	}
	// Durable: now the new states may be read and the callers answered.
	s.mu.Lock()
	for origin, st := range a.changed {
		s.setCacheLocked(origin, st)
	}
	s.mu.Unlock()
	if s.onCommit != nil {
		s.onCommit(len(batch), time.Since(start))
	}
	for _, f := range a.found {
		if s.onMisbehaviour != nil {
			s.onMisbehaviour(f.m, f.stored)
		}
		s.log.Warn("log misbehaviour detected", "origin", f.m.Origin, "kind", f.m.Kind, "old_size", f.m.OldSize, "new_size", f.m.NewSize, "stored", f.stored)
	}
	for i, op := range batch {
		op.result <- a.results[i]
	}
}

// applied is the outcome of a batch inside its transaction.
type applied struct {
	results []error          // per op: nil or *ConflictError
	changed map[string]State // new state by origin
	found   []foundRecord    // misbehaviour records seen
}

// apply runs each op of batch in order inside tx: a compare-and-swap
// against the state as it stands in tx (so a later op of the same batch
// sees an earlier one's update), then its misbehaviour records.
func apply(tx *bolt.Tx, batch []*storeOp, now time.Time) (*applied, error) {
	a := &applied{results: make([]error, len(batch)), changed: map[string]State{}}
	logs, mis := tx.Bucket(bucketLogs), tx.Bucket(bucketMisbehaviour)
	for i, op := range batch {
		records := op.records
		if op.cas {
			cur, ok := a.changed[op.origin]
			if !ok {
				var err error
				if cur, err = readState(logs, op.origin); err != nil {
					return nil, err
				}
			}
			if cur.Size != op.expect.Size || cur.Hash != op.expect.Hash {
				// Lost a race. If the loser has the winner's size but
				// another root, the log signed both: a fork.
				a.results[i] = &ConflictError{Size: cur.Size}
				if op.next.Size == cur.Size && op.next.Hash != cur.Hash {
					records = append(slices.Clip(records), newMisbehaviour(op.origin, KindFork, cur, op.received, op.next.Size, nil, now))
				}
			} else {
				if err := logs.Put([]byte(op.origin), encodeState(op.next)); err != nil {
					return nil, err
				}
				a.changed[op.origin] = op.next
			}
		}
		for _, m := range records {
			stored, err := putMisbehaviour(mis, m)
			if err != nil {
				return nil, err
			}
			a.found = append(a.found, foundRecord{m, stored})
		}
	}
	return a, nil
}

type foundRecord struct {
	m      Misbehaviour
	stored bool
}

// Healthy reports whether the store accepts updates.
func (s *Store) Healthy() bool {
	select {
	case <-s.quit:
		return false
	default:
		return !s.failed.Load()
	}
}

// Close stops the committer, failing queued updates, and closes the file.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.quit) })
	<-s.done
	err := s.db.Close()
	s.lock.Release()
	return err
}

// Misbehaviour returns the records kept for origin, or for every log if
// origin is empty, at most limit of them.
func (s *Store) Misbehaviour(origin string, limit int) ([]Misbehaviour, error) {
	out := []Misbehaviour{}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketMisbehaviour).Cursor()
		prefix := []byte{}
		if origin != "" {
			prefix = append([]byte(origin), 0)
		}
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(out) < limit; k, v = c.Next() {
			var m Misbehaviour
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("misbehaviour record %q: %w", k, err)
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

// putMisbehaviour keeps m under origin\0kind\0sha256(evidence) unless the
// same evidence is kept already or the log's cap for the kind is reached.
func putMisbehaviour(b *bolt.Bucket, m Misbehaviour) (bool, error) {
	prefix := append(append(append([]byte(m.Origin), 0), m.Kind...), 0)
	h := sha256.Sum256([]byte(m.Evidence))
	key := append(append([]byte{}, prefix...), h[:]...)
	if b.Get(key) != nil {
		return false, nil
	}
	limit := maxUnprovenPerLog
	if m.Kind == KindFork {
		limit = maxForksPerLog
	}
	n := 0
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if n++; n >= limit {
			return false, nil
		}
	}
	v, err := json.Marshal(m)
	if err != nil {
		return false, err
	}
	return true, b.Put(key, v)
}

// storedState is the encoding of a State in the store.
type storedState struct {
	Size uint64 `json:"size"`
	Hash string `json:"hash"`
	Note string `json:"note"`
}

func encodeState(st State) []byte {
	b, _ := json.Marshal(storedState{Size: st.Size, Hash: base64.StdEncoding.EncodeToString(st.Hash[:]), Note: string(st.Note)})
	return b
}

func decodeState(v []byte) (State, error) {
	var ss storedState
	d := json.NewDecoder(bytes.NewReader(v))
	d.DisallowUnknownFields()
	if err := d.Decode(&ss); err != nil {
		return State{}, err
	}
	h, err := base64.StdEncoding.DecodeString(ss.Hash)
	if err != nil || len(h) != sha256.Size {
		return State{}, errors.New("malformed root hash")
	}
	return State{Size: ss.Size, Hash: [sha256.Size]byte(h), Note: []byte(ss.Note)}, nil
}

func readState(b *bolt.Bucket, origin string) (State, error) {
	v := b.Get([]byte(origin))
	if v == nil {
		return initialState(), nil
	}
	return decodeState(v)
}
