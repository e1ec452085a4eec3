package log

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shiplog/shiplog/client/tufcheck"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/evidence/proof"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/mod/sumdb/note"
)

// Cosigner gathers witness cosignatures on a log-signed checkpoint note.
// Cosign returns the note with the cosignatures added; it wraps
// evidence.ErrQuorum when the policy's quorum was not met before ctx ended.
// witness/client's Collector implements it.
type Cosigner interface {
	Cosign(ctx context.Context, signedCheckpoint []byte) ([]byte, error)
}

// Config configures New. Storage, Index, Metadata, Policy, Origin and
// StateDir (or State) are required.
type Config struct {
	Storage  Storage
	Index    IndexStore
	Metadata MetadataStorage
	// Policy is the ledger's witness policy: a tlog-policy naming this log
	// (by its key) and the witnesses whose quorum makes a checkpoint
	// publishable.
	Policy *policy.Policy
	// Origin is the log's origin, the name of its key.
	Origin string
	// Cosigner gathers cosignatures; nil is allowed only with "quorum none".
	Cosigner Cosigner
	// StateDir holds checkpoint.signed and checkpoint.cosigned, unless
	// State is set.
	StateDir string
	// State keeps the publisher's checkpoints (nil: files in StateDir).
	State CheckpointState
	// Coordinator, if set, lets replicas share the log: repository locks
	// across replicas, the entry being appended for each repository, and the
	// election of the one replica that publishes checkpoints (the others
	// serve the latest cosigned checkpoint from State). Nil for a single
	// ledger process.
	Coordinator Coordinator
	// Now is the clock for expiry checks; nil means time.Now.
	Now func() time.Time
	// PollInterval is how often the publisher looks for a new checkpoint
	// (0: 10 ms). CosignTimeout bounds one round of cosigning (0: 10 s).
	PollInterval  time.Duration
	CosignTimeout time.Duration
	// Logger receives the ledger's logs; nil discards.
	Logger *slog.Logger
	// Registerer receives the ledger's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Ledger accepts releases into the log and proves them. It is safe for
// concurrent use.
type Ledger struct {
	store       Storage
	index       IndexStore
	meta        MetadataStorage
	state       CheckpointState
	coord       Coordinator
	indexClears bool // index.Record clears coord's appending entry of what it records
	policy      *policy.Policy
	origin      string
	logKey      note.Verifier
	cosigner    Cosigner
	stateDir    string
	now         func() time.Time
	log         *slog.Logger
	m           *metrics
	poll        time.Duration
	cosignLimit time.Duration

	repos       keyedLock
	parsedCache parsedCache
	verified    verifiedSet // targets files accepted, with the delegator whose threshold they met
	run         runState    // used by Run's goroutine only
	closing     atomic.Bool
	failed      atomic.Pointer[error]

	mu      sync.Mutex // guards pub, changed and waiting
	pub     *published
	changed chan struct{} // closed when pub changes
	// waiting holds the start times of appended entries not yet covered by
	// a cosigned checkpoint, for the latency metric (bounded).
	waiting []waiter
}

// The bounds of the cache of parsed logged metadata: the latest root and
// targets of every repository publishing at once should fit (a thousand
// repositories of small files take 1.7 MB of files, about 8 MB parsed); a
// publish whose root is not cached parses it and verifies the latest
// targets again, which doubles its CPU.
const (
	parsedCacheEntries = 16384
	parsedCacheBytes   = 8 << 20
)

type waiter struct {
	index uint64
	start time.Time
}

// Receipt is the ledger's answer to an accepted submission.
type Receipt struct {
	Index     uint64
	LeafHash  [sha256.Size]byte
	Entry     []byte
	Duplicate bool
	// Proof is a tlog-proof under a cosigned checkpoint, or nil if none
	// covered the entry within the wait.
	Proof []byte
}

// New opens the ledger: it checks that the policy names this log, replays
// into the index any logged entry it lacks, and loads the last cosigned
// checkpoint, refusing state that does not match the log. Call Run to start
// publishing checkpoints.
func New(ctx context.Context, cfg Config) (*Ledger, error) {
	pl := cfg.Policy.Log(cfg.Origin)
	if pl == nil {
		return nil, fmt.Errorf("witness policy has no log line for origin %q", cfg.Origin)
	}
	if cfg.Cosigner == nil {
		if cfg.Policy.Quorum != nil {
			return nil, errors.New("witness policy requires a quorum but no cosigner is configured")
		}
		cfg.Cosigner = noCosigner{}
	}
	l := &Ledger{
		store: cfg.Storage, index: cfg.Index, meta: cfg.Metadata, policy: cfg.Policy,
		origin: cfg.Origin, logKey: pl.Verifier, cosigner: cfg.Cosigner, stateDir: cfg.StateDir,
		state: cfg.State, coord: cfg.Coordinator,
		now: cfg.Now, log: cfg.Logger, poll: cfg.PollInterval, cosignLimit: cfg.CosignTimeout,
		parsedCache: parsedCache{max: parsedCacheEntries, maxBytes: parsedCacheBytes}, verified: verifiedSet{max: 4096},
	}
	if c, ok := l.index.(appendingClearer); ok && l.coord != nil {
		l.indexClears = c.ClearsAppendingOf(l.coord)
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.state == nil {
		l.state = FileCheckpointState{Dir: cfg.StateDir}
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.poll == 0 {
		l.poll = 10 * time.Millisecond
	}
	if l.cosignLimit == 0 {
		l.cosignLimit = 10 * time.Second
	}
	var err error
	if l.m, err = newMetrics(cfg.Registerer, l); err != nil {
		return nil, err
	}
	if err := l.catchUp(ctx); err != nil {
		return nil, err
	}
	if err := l.loadState(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// Ready reports whether the ledger accepts submissions.
func (l *Ledger) Ready() error {
	if l.closing.Load() {
		return fmt.Errorf("shutting down: %w", ErrUnavailable)
	}
	if e := l.failed.Load(); e != nil {
		return fmt.Errorf("stopped after a storage failure (restart to recover): %v: %w", *e, ErrUnavailable)
	}
	return nil
}

// StartClosing makes the ledger refuse new submissions; those in flight
// complete.
func (l *Ledger) StartClosing() { l.closing.Store(true) }

// fail stops the ledger from accepting submissions after an entry reached
// the log but not the index: continuing could check a submission against
// stale history. A restart replays the log into the index.
func (l *Ledger) fail(err error) {
	l.failed.CompareAndSwap(nil, &err)
	l.log.Error("ledger stopped accepting submissions", "err", err)
}

// Register registers repository repo with its initial root.json, data: a
// root signed by its own threshold, not expired. The root is logged as the
// repository's first entry. Registering again with identical bytes returns
// the same index; with another root, ErrRepositoryExists. The caller must
// have authenticated the operator.
func (l *Ledger) Register(ctx context.Context, repo string, data []byte, wait time.Duration) (*Receipt, error) {
	start := time.Now()
	if err := l.Ready(); err != nil {
		return nil, err
	}
	acc, err := CheckInitialRoot(repo, data, l.now())
	if err != nil {
		return nil, l.m.refused(err)
	}
	unlock, err := l.lockRepo(ctx, repo)
	if err != nil {
		return nil, err
	}
	r, err := l.registerLocked(ctx, acc, data, unlock)
	unlock()
	if err != nil {
		return nil, l.m.refused(err)
	}
	return l.finish(ctx, r, start, wait)
}

func (l *Ledger) registerLocked(ctx context.Context, acc Accepted, data []byte, unlock func()) (*Receipt, error) {
	leaf := acc.Entry.LeafHash()
	if _, ok, err := l.index.Registered(acc.Entry.Repo); err != nil {
		return nil, err
	} else if ok {
		if idx, dup, err := l.index.Leaf(leaf); err != nil {
			return nil, err
		} else if dup {
			return l.receipt(Record{Entry: acc.Entry}, idx, true), nil
		}
		return nil, ErrRepositoryExists
	}
	r, err := l.appendLocked(ctx, Record{Entry: acc.Entry}, data, unlock)
	if err == nil {
		// The repository's first publish reads this root as the latest:
		// keep it parsed rather than parse it again.
		l.parsedCache.put(acc.Entry.SHA256, acc.Root, len(data))
	}
	return r, err
}

// Publish checks data, the exact bytes of a metadata file submitted as role
// of repo (see CheckSubmission), and logs it: it stores the bytes durably,
// appends the entry, records it in the index, and then waits up to wait for
// a cosigned checkpoint covering it to attach a proof. Resubmitting bytes
// already logged returns their index with Duplicate set.
func (l *Ledger) Publish(ctx context.Context, repo, role string, data []byte, wait time.Duration) (*Receipt, error) {
	start := time.Now()
	if err := l.Ready(); err != nil {
		return nil, err
	}
	if err := checkShape(repo, role, data); err != nil {
		return nil, l.m.refused(err)
	}
	// Decoded once: its header (what PeekUnverified returns) before the
	// lock, the rest for the checks under it.
	u := tufcheck.DecodeUnverified(data, role)
	h, err := u.Header()
	if err != nil {
		return nil, l.m.refused(err)
	}
	// One read of the index for what the checks need first, taken with
	// the lock where the coordinator can.
	e, entryErr := entry.New(repo, role, uint64(h.Version), data)
	q := Lookup{Repo: repo, Leaf: e.LeafHash(), Roles: lookupRoles(role)}
	unlock, found, err := l.lockRepoLookup(ctx, repo, &q)
	if err != nil {
		return nil, err
	}
	r, err := l.publishLocked(ctx, repo, role, data, u, e, entryErr, q, found, unlock)
	unlock()
	if err != nil {
		return nil, l.m.refused(err)
	}
	return l.finish(ctx, r, start, wait)
}

// publishLocked checks and logs a submission under its repository's lock
// (see appendLocked for unlock). found is the index's answer to q read
// with the lock, or nil.
func (l *Ledger) publishLocked(ctx context.Context, repo, role string, data []byte, u *tufcheck.Unverified, e entry.Entry, entryErr error, q Lookup, found *LookupResult, unlock func()) (*Receipt, error) {
	if found == nil {
		f, err := lookup(l.index, q)
		if err != nil {
			return nil, err
		}
		found = &f
	}
	if !found.Registered {
		return nil, fmt.Errorf("%w: %q", ErrUnknownRepository, repo)
	}
	if entryErr == nil && found.Logged { // identical bytes resubmitted: idempotent
		return l.receipt(Record{Entry: e}, found.LeafIndex, true), nil
	}
	prev, hadPrev := found.Roles[role]
	acc, err := checkDecoded(&history{l: l, repo: repo, roles: found.Roles, asked: q.Roles}, repo, role, data, u, l.now())
	if err != nil {
		return nil, err
	}
	r, err := l.appendLocked(ctx, Record{Entry: acc.Entry}, data, unlock)
	if err == nil && (acc.Targets != nil || acc.Root != nil) {
		// The next submission of this role reads these bytes as the latest:
		// keep them parsed instead of the version they replace, and
		// remember a targets file met its threshold.
		if hadPrev {
			l.parsedCache.drop(prev.SHA256)
		}
		if acc.Root != nil {
			l.parsedCache.put(acc.Entry.SHA256, acc.Root, len(data))
		} else {
			l.parsedCache.put(acc.Entry.SHA256, acc.Targets, len(data))
			l.verified.add(verifiedKey{acc.Delegator, role}, acc.Targets)
		}
	}
	return r, err
}

// lookupRoles are the roles whose logged state a submission of role reads
// first: its own, the root, and the top-level targets (where a search for
// a delegator starts).
func lookupRoles(role string) []string {
	switch role {
	case metadata.ROOT, metadata.TARGETS:
		return []string{metadata.ROOT, metadata.TARGETS}
	}
	return []string{role, metadata.ROOT, metadata.TARGETS}
}

// appendLocked stores the bytes the entry of e commits to (metadata or an
// envelope) durably, appends the entry and records it in the index, in
// that order. unlock releases the repository's lock (idempotent; the
// caller calls it again after): appendLocked calls it early when the
// entry is durably queued in the log and recorded as appending with a
// coordinator whose appending entry only the index's recording of that
// entry clears — the lock's next holder then finishes the append
// (finishAppending) before it reads the history, as after a replica's
// crash, so it never checks against a history missing this entry.
// Nothing is acknowledged before the entry is sequenced and indexed.
func (l *Ledger) appendLocked(ctx context.Context, e Record, data []byte, unlock func()) (*Receipt, error) {
	if err := l.Ready(); err != nil {
		return nil, err
	}
	if err := l.storeAppending(ctx, e, data); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var idx uint64
	var err error
	if qs, ok := l.store.(QueueingStorage); ok && l.indexClears {
		var wait func(context.Context) (uint64, error)
		if wait, err = qs.Queue(ctx, e.Format()); err == nil {
			go unlock() // its round trip overlaps the wait
			idx, err = wait(ctx)
		}
	} else {
		idx, err = l.store.Append(ctx, e.Format())
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if err := l.recordAppended(ctx, idx, e); err != nil {
		return nil, err
	}
	return l.receipt(e, idx, false), nil
}

// appendingWithMetadata is a Coordinator that stores an entry's metadata
// in the same durable write that records the entry as appending (both or
// neither: log/pgstore's, one transaction), used when the metadata it
// stores is what the ledger's MetadataStorage reads.
type appendingWithMetadata interface {
	SetAppendingWithMetadata(ctx context.Context, repo string, entry, metadata []byte) error
	StoresMetadataFor(m MetadataStorage) bool
}

// QueueingStorage is a Storage that appends in two steps (log/trillian's:
// QueueLeaf, then Trillian's signer sequences the leaf). Queue returns
// once e is durably queued: it will be sequenced, and Append of e returns
// its index. Call the returned wait once: it returns e's index once
// sequenced, with Append's errors and timeout.
type QueueingStorage interface {
	Storage
	Queue(ctx context.Context, e []byte) (wait func(context.Context) (uint64, error), err error)
}

// appendingClearer is an IndexStore whose Record also clears the
// appending entry of each recorded entry's repository when it is that
// entry, in the same durable write (log/pgstore's, with its own
// coordinator); ClearsAppendingOf reports whether it clears those c
// records.
type appendingClearer interface {
	ClearsAppendingOf(c Coordinator) bool
}

// storeAppending stores the metadata durably and, with a coordinator,
// records e as appending: in one write if the coordinator can, else the
// metadata first.
func (l *Ledger) storeAppending(ctx context.Context, e Record, data []byte) error {
	if c, ok := l.coord.(appendingWithMetadata); ok && c.StoresMetadataFor(l.meta) {
		return c.SetAppendingWithMetadata(ctx, e.Repo(), e.Format(), data)
	}
	if _, err := l.meta.Put(data); err != nil {
		return err
	}
	if l.coord != nil {
		return l.coord.SetAppending(ctx, e.Repo(), e.Format())
	}
	return nil
}

// recordAppended records a logged entry in the index and clears it as
// appending (in the index's own write where it can). Without a
// coordinator a failure stops the ledger (a restart replays the log into
// the index); with one, the entry stays recorded as appending, and the
// next holder of the repository's lock records it.
func (l *Ledger) recordAppended(ctx context.Context, idx uint64, e Record) error {
	e.Index = idx
	if err := l.index.Record(e); err != nil {
		if l.coord == nil {
			l.fail(fmt.Errorf("entry %d is logged but not indexed: %w", idx, err))
		} else {
			l.log.Warn("entry is logged but not indexed; the next submission for its repository indexes it", "index", idx, "err", err)
		}
		return fmt.Errorf("%w: couldn't index entry %d", ErrUnavailable, idx)
	}
	if l.coord != nil && !l.indexClears {
		if err := l.coord.SetAppending(ctx, e.Repo(), nil); err != nil {
			l.log.Warn("couldn't clear the appending entry; the next submission redoes it", "repo", e.Repo(), "err", err)
		}
	}
	return nil
}

// lockRepo takes repo's lock in this process and, with a coordinator,
// across replicas; then it finishes an append that a replica left
// unfinished for repo, so the checks see every logged version.
func (l *Ledger) lockRepo(ctx context.Context, repo string) (func(), error) {
	unlock, _, err := l.lockRepoLookup(ctx, repo, nil)
	return unlock, err
}

// lookupCoordinator is a Coordinator that can read its index in the same
// round trip as a repository's lock (log/pgstore's, for its own index).
//
// LockRepositoryLookup is LockRepository that also answers q from the
// index, read once the lock is held; LooksUpIn reports whether that index
// is x.
type lookupCoordinator interface {
	LockRepositoryLookup(ctx context.Context, repo string, q Lookup) (unlock func(), appending []byte, found LookupResult, err error)
	LooksUpIn(x IndexStore) bool
}

// lockRepoLookup is lockRepo that, given q, also returns the index's
// answer to q when the coordinator read it with the lock and no unfinished
// append changed the index since (nil otherwise: the caller reads it).
func (l *Ledger) lockRepoLookup(ctx context.Context, repo string, q *Lookup) (func(), *LookupResult, error) {
	unlock, err := l.repos.lock(ctx, repo)
	if err != nil {
		return nil, nil, err
	}
	if l.coord == nil {
		return sync.OnceFunc(unlock), nil, nil
	}
	var (
		unlockAll func()
		appending []byte
		found     *LookupResult
	)
	if lc, ok := l.coord.(lookupCoordinator); ok && q != nil && len(q.Roles) <= MaxLookupRoles && lc.LooksUpIn(l.index) {
		var r LookupResult
		unlockAll, appending, r, err = lc.LockRepositoryLookup(ctx, repo, *q)
		found = &r
	} else {
		unlockAll, appending, err = l.coord.LockRepository(ctx, repo)
	}
	if err != nil {
		unlock()
		return nil, nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	release := sync.OnceFunc(func() { unlockAll(); unlock() })
	if appending != nil {
		// Finishing it records an entry: what was read before is stale.
		found = nil
		if err := l.finishAppending(ctx, repo, appending); err != nil {
			release()
			return nil, nil, err
		}
	}
	return release, found, nil
}

// finishAppending appends and records raw, the entry left appending for
// repo, if any. Appending it again is idempotent (see Coordinator).
func (l *Ledger) finishAppending(ctx context.Context, repo string, raw []byte) error {
	if raw == nil {
		return nil
	}
	e, err := ParseRecord(0, raw)
	if err != nil || e.Repo() != repo {
		return fmt.Errorf("the appending entry of %q is malformed", repo)
	}
	l.log.Info("finishing an unfinished append", "repo", repo, "entry", entry.Kind(raw))
	idx, err := l.store.Append(ctx, raw)
	if err != nil {
		return fmt.Errorf("%w: couldn't finish an earlier append for this repository: %v", ErrUnavailable, err)
	}
	return l.recordAppended(ctx, idx, e)
}

func (l *Ledger) receipt(e Record, idx uint64, dup bool) *Receipt {
	raw := e.Format()
	return &Receipt{Index: idx, LeafHash: entry.LeafHash(raw), Entry: raw, Duplicate: dup}
}

// finish records metrics and waits up to wait for a proof.
func (l *Ledger) finish(ctx context.Context, r *Receipt, start time.Time, wait time.Duration) (*Receipt, error) {
	l.m.accepted(r.Duplicate, time.Since(start))
	if !r.Duplicate {
		l.trackLatency(r.Index, start)
	}
	if wait <= 0 {
		return r, nil
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if p, err := l.WaitProof(wctx, r.Index); err == nil {
		r.Proof = p
	}
	return r, nil
}

// Proof returns a tlog-proof of entry index under the latest cosigned
// checkpoint, or ErrNotCovered.
func (l *Ledger) Proof(ctx context.Context, index uint64) ([]byte, error) {
	p := l.published()
	if p == nil || p.note == nil || index >= p.cp.Size {
		return nil, ErrNotCovered
	}
	return l.proofAt(ctx, index, p)
}

// WaitProof is Proof, waiting until a cosigned checkpoint covers index or
// ctx ends (then ErrNotCovered).
func (l *Ledger) WaitProof(ctx context.Context, index uint64) ([]byte, error) {
	p, err := l.waitCovered(ctx, index)
	if err != nil {
		return nil, err
	}
	return l.proofAt(ctx, index, p)
}

func (l *Ledger) proofAt(ctx context.Context, index uint64, p *published) ([]byte, error) {
	hs, err := l.store.InclusionProof(ctx, index, p.cp.Size)
	if err != nil {
		return nil, fmt.Errorf("couldn't build inclusion proof: %w", err)
	}
	pr := proof.Proof{Index: index, Checkpoint: p.note, Hashes: make([][sha256.Size]byte, len(hs))}
	for i, h := range hs {
		if len(h) != sha256.Size {
			return nil, errors.New("storage returned a malformed proof hash")
		}
		pr.Hashes[i] = [sha256.Size]byte(h)
	}
	return pr.Format(), nil
}

// LeafIndex returns the index of the entry with leaf hash h.
func (l *Ledger) LeafIndex(h [sha256.Size]byte) (uint64, error) {
	idx, ok, err := l.index.Leaf(h)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("leaf: %w", ErrNotFound)
	}
	return idx, nil
}

// Role returns the latest logged version of role in repo, or ErrNotFound.
func (l *Ledger) Role(repo, role string) (RoleState, error) {
	st, ok, err := l.index.Role(repo, role)
	if err != nil {
		return RoleState{}, err
	}
	if !ok {
		return RoleState{}, fmt.Errorf("role: %w", ErrNotFound)
	}
	return st, nil
}

// Metadata returns the logged metadata with SHA-256 sum, or ErrNotFound if
// no log entry commits to it.
func (l *Ledger) Metadata(sum [sha256.Size]byte) ([]byte, error) {
	if _, ok, err := l.index.Metadata(sum); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("metadata: %w", ErrNotFound)
	}
	return l.meta.Get(sum)
}

// Consistency returns the consistency proof between two sizes, the larger
// at most the latest cosigned size.
func (l *Ledger) Consistency(ctx context.Context, oldSize, newSize uint64) ([][]byte, error) {
	p := l.published()
	if oldSize > newSize || p == nil || p.note == nil || newSize > p.cp.Size {
		return nil, fmt.Errorf("%w: want old <= new <= the cosigned size", ErrBadRequest)
	}
	return l.store.ConsistencyProof(ctx, oldSize, newSize)
}

// Checkpoint returns the latest cosigned checkpoint note, or ErrNotFound
// before the first one.
func (l *Ledger) Checkpoint() ([]byte, error) {
	p := l.published()
	if p == nil || p.note == nil {
		return nil, fmt.Errorf("no cosigned checkpoint yet: %w", ErrNotFound)
	}
	return p.note, nil
}

// Storage returns the ledger's log storage, for the read API.
func (l *Ledger) Storage() Storage { return l.store }

// MetadataStore returns the ledger's metadata store, for the read API.
func (l *Ledger) MetadataStore() MetadataStorage { return l.meta }

type noCosigner struct{}

func (noCosigner) Cosign(_ context.Context, n []byte) ([]byte, error) { return n, nil }

// CosignedSize returns the size of the served cosigned checkpoint.
func (l *Ledger) CosignedSize() (uint64, bool) {
	p := l.published()
	if p == nil || p.note == nil {
		return 0, false
	}
	return p.cp.Size, true
}
