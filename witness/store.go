package witness

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shiplog/shiplog/internal/durable"
	"github.com/shiplog/shiplog/internal/pidlock"
)

// The store keeps every log's State, and the misbehaviour records, in
// memory, and makes each change durable in an append-only journal (see
// journal.go for its format) before anyone learns of it. The
// check-and-update of a log's state is a compare-and-swap run by one
// goroutine, the committer, against the state as it stands: it takes every
// update waiting (group commit), applies each in order, appends their
// records in one write, syncs the file once (fdatasync), and only then
// publishes the new states and answers the callers, so the witness signs
// nothing that leaves the process before its state is durable. One sync per
// commit: a B+tree (bbolt, which this store replaces) waits for two, its
// pages and then its meta page. The file is grown ahead of the records in
// zeroed, synced chunks, so that sync need not write the file's size too.
//
// Now and then (when the journal outgrows twice what the state needs plus
// compactSlack) the committer compacts it: it writes the whole state as a
// new journal beside it, fsyncs it, renames it over the journal and fsyncs
// the directory. On open, the journal is replayed and a torn tail, left by
// a crash during an unanswered write, is cut off.
//
// A store file of the earlier bbolt format is migrated on open (migrate.go).

const maxBatch = 4096

// defaultCompactSlack is how far the journal may outgrow twice the size of
// the state before it is compacted.
const defaultCompactSlack = 16 << 20

// Store is the witness's durable state. It is safe for concurrent use; only
// one process may open a store at a time (a pid lock file, path + ".lock").
// It holds every log's latest state and the misbehaviour records in memory:
// a few hundred bytes per log, and at most a few dozen records per log that
// misbehaved.
type Store struct {
	path string
	lock *pidlock.Lock
	log  *slog.Logger
	ops  chan *storeOp

	// Owned by the committer (run), and by OpenStore before it starts.
	f            *os.File
	size         int64 // bytes of records in the journal
	alloc        int64 // bytes in the file: records, then zeros
	live         int64 // bytes a compacted journal would hold
	compactSlack int64

	// failed is set when a write or sync fails: the journal's content is
	// then unknown ("failed but maybe persisted"), so the store refuses
	// every later write until it is reopened, which replays the truth.
	failed atomic.Bool

	mu       sync.RWMutex
	cache    map[string]State // by origin
	byHash   map[[sha256.Size]byte]string
	mis      map[string]Misbehaviour // by misbehaviourKey
	misCount map[string]int          // by misbehaviourPrefix

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
// it (the lock file is path + ".lock"), and with a *JournalCorruptError if
// the journal is damaged where no crash can have damaged it. A store of the
// earlier bbolt format is migrated to a journal first.
func OpenStore(path string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	lock, err := pidlock.Acquire(path + ".lock")
	if err != nil {
		return nil, fmt.Errorf("couldn't open witness state %s: %w", path, err)
	}
	s := &Store{
		path: path, lock: lock, log: logger, ops: make(chan *storeOp), compactSlack: defaultCompactSlack,
		cache: map[string]State{}, byHash: map[[sha256.Size]byte]string{},
		mis: map[string]Misbehaviour{}, misCount: map[string]int{},
		quit: make(chan struct{}), done: make(chan struct{}),
	}
	if err := s.load(); err != nil {
		if s.f != nil {
			s.f.Close()
		}
		lock.Release()
		return nil, fmt.Errorf("couldn't open witness state %s: %w", path, err)
	}
	go s.run()
	return s, nil
}

// load reads (creating or migrating if needed) the journal, replays it,
// cuts a torn tail, and opens it for appending.
func (s *Store) load() error {
	removeStaleTemps(s.path)
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		if data, err = s.writeSnapshot(); err != nil {
			return err
		}
	} else if err != nil {
		return err
	} else if isBoltFile(data) {
		if data, err = s.migrateBolt(); err != nil {
			return err
		}
	}
	records, valid, err := parseJournal(data)
	if err != nil {
		return err
	}
	for _, r := range records {
		s.replay(r)
	}
	if s.f, err = os.OpenFile(s.path, os.O_RDWR, 0); err != nil {
		return err
	}
	s.size, s.alloc = valid, int64(len(data))
	if nonZero(data, int(valid), len(data)) >= 0 {
		s.log.Warn("witness state journal: cutting a torn tail left by a crash during an unanswered write", "path", s.path, "valid_bytes", valid, "cut_bytes", int64(len(data))-valid)
		if err := s.f.Truncate(valid); err != nil {
			return err
		}
		if err := s.f.Sync(); err != nil {
			return err
		}
		s.alloc = valid
	}
	return nil
}

// removeStaleTemps removes the temporary files of a compaction or
// migration that a crash interrupted (durable.WriteFile's names).
func removeStaleTemps(path string) {
	stale, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp*"))
	for _, p := range stale {
		os.Remove(p)
	}
}

// replay applies one journal record to the in-memory state.
func (s *Store) replay(r journalRecord) {
	if r.Misbehaviour != nil {
		s.addMisbehaviourLocked(*r.Misbehaviour)
		return
	}
	s.setCacheLocked(r.Origin, r.State)
}

func (s *Store) setCacheLocked(origin string, st State) {
	if old, ok := s.cache[origin]; ok {
		s.live -= stateRecordSize(origin, old)
	}
	s.live += stateRecordSize(origin, st)
	s.cache[origin] = st
	s.byHash[sha256.Sum256([]byte(origin))] = origin
}

func (s *Store) addMisbehaviourLocked(m Misbehaviour) {
	k := misbehaviourKey(m)
	if _, ok := s.mis[k]; ok {
		return
	}
	s.mis[k] = m
	s.misCount[misbehaviourPrefix(m)]++
	if b, err := appendMisbehaviourRecord(nil, m); err == nil {
		s.live += int64(len(b))
	}
}

func stateRecordSize(origin string, st State) int64 {
	return int64(frameHeaderSize + 1 + 2 + len(origin) + 8 + sha256.Size + 4 + len(st.Note))
}

// misbehaviourPrefix is origin\0kind\0: the records of a log and kind.
func misbehaviourPrefix(m Misbehaviour) string { return m.Origin + "\x00" + m.Kind + "\x00" }

// misbehaviourKey is the prefix and the SHA-256 of the evidence: the same
// evidence is kept once.
func misbehaviourKey(m Misbehaviour) string {
	h := sha256.Sum256([]byte(m.Evidence))
	return misbehaviourPrefix(m) + string(h[:])
}

// writeSnapshot atomically replaces the journal by one holding the whole
// current state (temp file, fsync, rename, directory fsync) and returns its
// content.
func (s *Store) writeSnapshot() ([]byte, error) {
	s.mu.RLock()
	b := []byte(journalMagic)
	for _, origin := range slices.Sorted(maps.Keys(s.cache)) {
		b = appendStateRecord(b, origin, s.cache[origin])
	}
	var err error
	for _, k := range slices.Sorted(maps.Keys(s.mis)) {
		if b, err = appendMisbehaviourRecord(b, s.mis[k]); err != nil {
			break
		}
	}
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	if err := durable.WriteFile(s.path, b, durable.Private); err != nil {
		return nil, err
	}
	return b, nil
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
	if !validStateRecord(origin, next) {
		return ErrBadRequest
	}
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
		if !s.failed.Load() && s.size > 2*s.live+s.compactSlack {
			s.compact()
		}
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
	s.mu.RLock()
	a := apply(s, batch, start)
	s.mu.RUnlock()
	if err := s.append(a.journal); err != nil {
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
	for _, f := range a.found {
		if f.stored {
			s.addMisbehaviourLocked(f.m)
		}
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

// append writes framed records to the journal after its records and syncs
// them, in writes of at most maxJournalWrite bytes beyond one record, each
// synced before the next (so a crash damages at most journalTornWindow
// bytes), growing the file first when they do not fit.
func (s *Store) append(b []byte) error {
	for len(b) > 0 {
		n := 0
		for n < len(b) && n < maxJournalWrite {
			n += frameHeaderSize + int(uint32(b[n])<<24|uint32(b[n+1])<<16|uint32(b[n+2])<<8|uint32(b[n+3]))
		}
		// Room for the records and the zero frame header that ends them.
		if s.size+int64(n)+frameHeaderSize > s.alloc {
			if err := s.grow(s.size + int64(n) + frameHeaderSize + journalGrowChunk); err != nil {
				return err
			}
		}
		if _, err := s.f.WriteAt(b[:n], s.size); err != nil {
			return err
		}
		if err := fdatasync(s.f); err != nil {
			return err
		}
		s.size += int64(n)
		b = b[n:]
	}
	return nil
}

// grow extends the file to size bytes with written zeros (not a hole or
// an unwritten extent, which a later write would have to convert, the
// metadata write this avoids) and syncs it, size and all.
func (s *Store) grow(size int64) error {
	if _, err := s.f.WriteAt(make([]byte, size-s.alloc), s.alloc); err != nil {
		return err
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	s.alloc = size
	return nil
}

// compact replaces the journal by a snapshot of the state. If it fails
// before the rename, the journal is as it was and the store goes on; after
// the rename, the file this store appends to is no longer the journal, so
// the store fails.
func (s *Store) compact() {
	start := time.Now()
	b, err := s.writeSnapshot()
	if err != nil {
		if !renamedOver(s.f, s.path) {
			s.log.Error("witness state compaction failed; going on with the journal", "error", err)
			return
		}
		s.failed.Store(true)
		s.log.Error("witness state compaction failed after its rename; refusing further updates until restart", "error", err)
		return
	}
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		s.failed.Store(true)
		s.log.Error("couldn't reopen the compacted witness state; refusing further updates until restart", "error", err)
		return
	}
	s.f.Close()
	s.f, s.size, s.alloc = f, int64(len(b)), int64(len(b))
	s.log.Info("witness state journal compacted", "bytes", len(b), "duration", time.Since(start))
}

// renamedOver reports whether path no longer names the file f.
func renamedOver(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	return err1 != nil || err2 != nil || !os.SameFile(a, b)
}

// applied is the outcome of a batch, before it is durable.
type applied struct {
	results []error          // per op: nil or *ConflictError
	changed map[string]State // new state by origin
	found   []foundRecord    // misbehaviour records seen
	journal []byte           // the records to append
}

// apply runs each op of batch in order: a compare-and-swap against the
// state as it stands with the batch's earlier ops applied, then its
// misbehaviour records (deduplicated and capped). It reads s's committed
// state (s.mu held for reading) and changes nothing.
func apply(s *Store, batch []*storeOp, now time.Time) *applied {
	a := &applied{results: make([]error, len(batch)), changed: map[string]State{}}
	newMis := map[string]bool{}
	newCount := map[string]int{}
	for i, op := range batch {
		records := op.records
		if op.cas {
			cur, ok := a.changed[op.origin]
			if !ok {
				cur, ok = s.cache[op.origin]
			}
			if !ok {
				cur = initialState()
			}
			if cur.Size != op.expect.Size || cur.Hash != op.expect.Hash {
				// Lost a race. If the loser has the winner's size but
				// another root, the log signed both: a fork.
				a.results[i] = &ConflictError{Size: cur.Size}
				if op.next.Size == cur.Size && op.next.Hash != cur.Hash {
					records = append(slices.Clip(records), newMisbehaviour(op.origin, KindFork, cur, op.received, op.next.Size, nil, now))
				}
			} else {
				a.changed[op.origin] = op.next
			}
		}
		for _, m := range records {
			k, p := misbehaviourKey(m), misbehaviourPrefix(m)
			_, dup := s.mis[k]
			stored := !dup && !newMis[k] && s.misCount[p]+newCount[p] < misbehaviourCap(m.Kind)
			if stored {
				b, err := appendMisbehaviourRecord(a.journal, m)
				if err != nil {
					stored = false
				} else {
					a.journal = b
					newMis[k] = true
					newCount[p]++
				}
			}
			a.found = append(a.found, foundRecord{m, stored})
		}
	}
	for _, origin := range slices.Sorted(maps.Keys(a.changed)) {
		a.journal = appendStateRecord(a.journal, origin, a.changed[origin])
	}
	return a
}

func misbehaviourCap(kind string) int {
	if kind == KindFork {
		return maxForksPerLog
	}
	return maxUnprovenPerLog
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
	err := s.f.Close()
	if errors.Is(err, os.ErrClosed) {
		err = nil
	}
	s.lock.Release()
	return err
}

// Misbehaviour returns the records kept for origin, or for every log if
// origin is empty, at most limit of them, in the order of their keys
// (origin, kind, hash of the evidence).
func (s *Store) Misbehaviour(origin string, limit int) ([]Misbehaviour, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	prefix := ""
	if origin != "" {
		prefix = origin + "\x00"
	}
	var keys []string
	for k := range s.mis {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := []Misbehaviour{}
	for _, k := range keys[:min(len(keys), max(limit, 0))] {
		out = append(out, s.mis[k])
	}
	return out, nil
}
