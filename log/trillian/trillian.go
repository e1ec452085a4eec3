// Package trillian is the ledger's distributed log engine: a log.Storage
// on Google Trillian (github.com/google/trillian, a LOG tree reached over
// its gRPC API), for ledgers that outgrow one machine. Several ledger
// replicas may share one tree.
//
// How each part of log.Storage maps onto Trillian:
//
//   - Append: QueueLeaf with the entry as leaf value. Trillian's identity
//     hash (the RFC 6962 leaf hash) makes a resubmission idempotent: the
//     second QueueLeaf returns the existing leaf, never a second copy. Append
//     then waits until Trillian's signer has sequenced the leaf (a shared
//     follower reads new leaves with GetLeavesByRange) and returns its index.
//     Queue splits the two (log.QueueingStorage), so the ledger can release
//     a repository's lock while the leaf waits for the signer.
//   - Checkpoint: GetLatestSignedLogRoot; Trillian no longer signs its
//     roots, so this package signs a C2SP checkpoint (c2sp.org/tlog-checkpoint)
//     over the root's size and hash with the ledger's key. Trillian's root for
//     a size is deterministic and so are Ed25519 signatures: replicas signing
//     the same root produce the same bytes.
//   - InclusionProof, ConsistencyProof: Trillian's GetInclusionProof and
//     GetConsistencyProof.
//   - ReadTile, ReadEntryBundle: C2SP tlog-tiles resources built from
//     Trillian's leaves (GetLeavesByRange) — level-0 tiles are the leaf
//     hashes, a level-L tile holds the roots of full level-(L-1) tiles — and
//     kept in a Cache once full (full tiles and bundles are immutable).
//
// Leaves read from Trillian are checked (index, RFC 6962 leaf hash of the
// value) before they are used. Errors talking to Trillian wrap
// log.ErrUnavailable, so clients get a retryable 503.
package trillian

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/types"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	ledger "github.com/shiplog/shiplog/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Limits and defaults.
const (
	// MaxEntrySize is the largest entry of a tlog-tiles entry bundle.
	MaxEntrySize = 65535
	// DefaultAppendTimeout bounds how long Append waits for Trillian to
	// sequence a queued leaf.
	DefaultAppendTimeout = 10 * time.Second
	// DefaultPollInterval is how often the follower asks Trillian for a new
	// root while appends are waiting.
	DefaultPollInterval = 20 * time.Millisecond
	// maxLeavesPerRead bounds one GetLeavesByRange request.
	maxLeavesPerRead = 1024
	// rpcTimeout bounds one Trillian call.
	rpcTimeout = 10 * time.Second
	// maxCachedProofs bounds the consistency proofs kept.
	maxCachedProofs = 64
)

// Options configures New.
type Options struct {
	// Client is a connection to Trillian's log server; TreeID a LOG tree
	// made with createtree.
	Client trillian.TrillianLogClient
	TreeID int64
	// Signer signs checkpoints; its name is the log's origin.
	Signer note.Signer
	// Cache keeps full tiles and entry bundles (nil: an in-memory cache,
	// which is lost on restart).
	Cache Cache
	// AppendTimeout and PollInterval: 0 means the defaults.
	AppendTimeout time.Duration
	PollInterval  time.Duration
	// Logger receives warnings; nil discards.
	Logger *slog.Logger
}

// Storage is a log.Storage on a Trillian LOG tree. It is safe for
// concurrent use; several Storages (one per replica) may share a tree.
type Storage struct {
	client  trillian.TrillianLogClient
	tree    int64
	signer  note.Signer
	cache   Cache
	timeout time.Duration
	log     *slog.Logger
	seq     *sequencer

	poll   time.Duration
	mu     sync.Mutex // guards signed, proofs, last and lastAt
	signed signedRoot
	// last is the latest root read and lastAt when its request started;
	// rootMu serialises the reads that may share it (recentRoot).
	last   *types.LogRootV1
	lastAt time.Time
	rootMu sync.Mutex
	// proofs keeps recent consistency proofs (the witnesses each ask for
	// the same one), at most maxCachedProofs.
	proofs map[[2]uint64][][]byte
	// seen is the largest tree size read from Trillian: a leaf queued now
	// is sequenced at this index or later.
	seen   atomic.Uint64
	seenAt atomic.Int64 // unix nanos of the last root read
	// lastLog is when an error talking to Trillian was last logged.
	lastLog atomic.Int64

	closeOnce sync.Once
	done      chan struct{}
}

// signedRoot is the last checkpoint this Storage signed.
type signedRoot struct {
	size uint64
	hash [sha256.Size]byte
	note []byte
}

var _ ledger.Storage = (*Storage)(nil)

// New returns a Storage on the tree. It checks that the tree answers.
func New(ctx context.Context, opts Options) (*Storage, error) {
	if opts.Client == nil || opts.Signer == nil || opts.TreeID == 0 {
		return nil, errors.New("trillian storage needs a client, a tree id and a signer")
	}
	s := &Storage{
		client: opts.Client, tree: opts.TreeID, signer: opts.Signer, cache: opts.Cache,
		timeout: opts.AppendTimeout, log: opts.Logger, done: make(chan struct{}),
	}
	if s.cache == nil {
		s.cache = NewMemoryCache(1024)
	} else {
		s.cache = tiered{NewMemoryCache(256), s.cache}
	}
	if s.timeout == 0 {
		s.timeout = DefaultAppendTimeout
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.poll = opts.PollInterval
	if s.poll == 0 {
		s.poll = DefaultPollInterval
	}
	if _, err := s.root(ctx); err != nil {
		return nil, fmt.Errorf("couldn't read tree %d: %w", s.tree, err)
	}
	s.seq = newSequencer(s, s.poll)
	return s, nil
}

// unavailable logs an error from Trillian (at most once a second) and
// returns a retryable error for clients that does not describe Trillian.
func (s *Storage) unavailable(action string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("couldn't %s: %w", action, err)
	}
	now := time.Now().UnixNano()
	if last := s.lastLog.Load(); now-last > int64(time.Second) && s.lastLog.CompareAndSwap(last, now) {
		s.log.Warn("trillian unavailable", "action", action, "err", err)
	}
	return fmt.Errorf("couldn't %s: log engine unavailable: %w", action, ledger.ErrUnavailable)
}

// recentRoot returns a root of the tree read at most maxAge ago: the
// latest one read, or a new one. Callers that come together share one
// read. The follower and the publisher's polls use it, so that together
// they ask Trillian (whose log server reads PostgreSQL for each root)
// about once per poll interval instead of each on its own schedule.
func (s *Storage) recentRoot(ctx context.Context, maxAge time.Duration) (*types.LogRootV1, error) {
	s.rootMu.Lock()
	defer s.rootMu.Unlock()
	s.mu.Lock()
	last, at := s.last, s.lastAt
	s.mu.Unlock()
	if last != nil && time.Since(at) < maxAge {
		return last, nil
	}
	return s.root(ctx)
}

// root returns Trillian's latest log root.
func (s *Storage) root(ctx context.Context) (*types.LogRootV1, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	resp, err := s.client.GetLatestSignedLogRoot(ctx, &trillian.GetLatestSignedLogRootRequest{LogId: s.tree})
	if err != nil {
		return nil, s.unavailable("read the log root", err)
	}
	var r types.LogRootV1
	if resp.GetSignedLogRoot() == nil || r.UnmarshalBinary(resp.GetSignedLogRoot().GetLogRoot()) != nil {
		return nil, errors.New("trillian returned a malformed log root")
	}
	if len(r.RootHash) != sha256.Size {
		return nil, fmt.Errorf("trillian returned a root hash of %d bytes", len(r.RootHash))
	}
	for old := s.seen.Load(); r.TreeSize > old && !s.seen.CompareAndSwap(old, r.TreeSize); old = s.seen.Load() {
	}
	s.seenAt.Store(time.Now().UnixNano())
	s.mu.Lock()
	if s.last == nil || r.TreeSize >= s.last.TreeSize {
		s.last, s.lastAt = &r, start
	}
	s.mu.Unlock()
	return &r, nil
}

// Append queues entry in Trillian and returns its index once Trillian
// sequenced it (at most the append timeout, then an error wrapping
// log.ErrUnavailable: the leaf may still be sequenced later, and appending
// the same entry again returns that index). Appending an entry already in
// the tree returns its existing index.
func (s *Storage) Append(ctx context.Context, e []byte) (uint64, error) {
	wait, err := s.Queue(ctx, e)
	if err != nil {
		return 0, err
	}
	return wait(ctx)
}

var _ ledger.QueueingStorage = (*Storage)(nil)

// Queue is the first half of Append (log.QueueingStorage): it returns once
// Trillian accepted the leaf (QueueLeaf commits it to Trillian's database
// before it answers, and its signer sequences every accepted leaf), and
// wait returns the leaf's index once sequenced. The append timeout counts
// from Queue's call.
func (s *Storage) Queue(ctx context.Context, e []byte) (func(context.Context) (uint64, error), error) {
	if len(e) > MaxEntrySize {
		return nil, errors.New("entry too large")
	}
	select {
	case <-s.done:
		return nil, fmt.Errorf("storage closed: %w", ledger.ErrUnavailable)
	default:
	}
	deadline := time.Now().Add(s.timeout)
	qctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	leafHash := rfc6962.DefaultHasher.HashLeaf(e)
	if time.Since(time.Unix(0, s.seenAt.Load())) > time.Second {
		// Other replicas may have grown the tree a lot since: start the
		// follower near the end rather than rescanning.
		if _, err := s.root(qctx); err != nil {
			return nil, err
		}
	}
	w := s.seq.wait([sha256.Size]byte(leafHash), s.seen.Load())
	done := func(idx uint64) func(context.Context) (uint64, error) {
		s.seq.cancel(w)
		return func(context.Context) (uint64, error) { return idx, nil }
	}
	resp, err := s.client.QueueLeaf(qctx, &trillian.QueueLeafRequest{LogId: s.tree, Leaf: &trillian.LogLeaf{LeafValue: e}})
	if err != nil {
		s.seq.cancel(w)
		return nil, s.unavailable("queue the entry", err)
	}
	if c := codes.Code(resp.GetQueuedLeaf().GetStatus().GetCode()); c == codes.AlreadyExists {
		// A resubmission: the leaf may have been sequenced long ago.
		if idx, ok, err := s.indexByHash(qctx, leafHash); err != nil {
			s.seq.cancel(w)
			return nil, err
		} else if ok {
			return done(idx), nil
		}
	} else if c != codes.OK {
		s.seq.cancel(w)
		return nil, fmt.Errorf("trillian refused the entry: %v", status.FromProto(resp.GetQueuedLeaf().GetStatus()).Err())
	}
	return func(ctx context.Context) (uint64, error) {
		defer s.seq.cancel(w)
		ctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		select {
		case idx := <-w.ch:
			return idx, nil
		case <-ctx.Done():
			return 0, fmt.Errorf("entry queued but not sequenced within %s: %w", s.timeout, ledger.ErrUnavailable)
		case <-s.done:
			return 0, fmt.Errorf("storage closed: %w", ledger.ErrUnavailable)
		}
	}, nil
}

// indexByHash returns the index of the sequenced leaf with hash h.
func (s *Storage) indexByHash(ctx context.Context, h []byte) (uint64, bool, error) {
	r, err := s.root(ctx)
	if err != nil || r.TreeSize == 0 {
		return 0, false, err
	}
	resp, err := s.client.GetInclusionProofByHash(ctx, &trillian.GetInclusionProofByHashRequest{
		LogId: s.tree, LeafHash: h, TreeSize: int64(r.TreeSize), OrderBySequence: true,
	})
	if status.Code(err) == codes.NotFound {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, s.unavailable("look up the entry", err)
	}
	if len(resp.GetProof()) == 0 {
		return 0, false, nil
	}
	idx := resp.GetProof()[0].GetLeafIndex()
	if idx < 0 || uint64(idx) >= r.TreeSize {
		return 0, false, errors.New("trillian returned a leaf index outside the tree")
	}
	return uint64(idx), true, nil
}

// IntegratedSize returns the size of Trillian's latest root.
func (s *Storage) IntegratedSize(ctx context.Context) (uint64, error) {
	r, err := s.root(ctx)
	if err != nil {
		return 0, err
	}
	return r.TreeSize, nil
}

// Checkpoint returns a checkpoint over Trillian's latest root, signed with
// the log key (the signature is remembered for the latest root).
func (s *Storage) Checkpoint(ctx context.Context) ([]byte, error) {
	r, err := s.root(ctx)
	if err != nil {
		return nil, err
	}
	return s.sign(r)
}

// RecentCheckpoint is Checkpoint over a root read at most the poll
// interval ago (log.RecentCheckpointer): the publisher polls it more
// often than Trillian's signer makes new roots, and shares the reads of
// the follower.
func (s *Storage) RecentCheckpoint(ctx context.Context) ([]byte, error) {
	r, err := s.recentRoot(ctx, s.poll)
	if err != nil {
		return nil, err
	}
	return s.sign(r)
}

// sign returns the checkpoint of r, signed with the log key.
func (s *Storage) sign(r *types.LogRootV1) ([]byte, error) {
	hash := [sha256.Size]byte(r.RootHash)
	s.mu.Lock()
	last := s.signed
	s.mu.Unlock()
	if last.note != nil && last.size == r.TreeSize && last.hash == hash {
		return last.note, nil
	}
	b, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: s.signer.Name(), Size: r.TreeSize, Hash: hash}, s.signer)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if r.TreeSize >= s.signed.size {
		s.signed = signedRoot{r.TreeSize, hash, b}
	}
	s.mu.Unlock()
	return b, nil
}

// InclusionProof returns Trillian's inclusion proof of index in the tree of
// size.
func (s *Storage) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	if index >= size || size > 1<<62 {
		return nil, fmt.Errorf("index %d not below size %d: %w", index, size, ledger.ErrBadRequest)
	}
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	resp, err := s.client.GetInclusionProof(ctx, &trillian.GetInclusionProofRequest{LogId: s.tree, LeafIndex: int64(index), TreeSize: int64(size)})
	if err != nil {
		return nil, s.unavailable("get an inclusion proof", err)
	}
	p := resp.GetProof()
	if p == nil || p.GetLeafIndex() != int64(index) {
		return nil, fmt.Errorf("trillian has no inclusion proof for size %d yet: %w", size, ledger.ErrUnavailable)
	}
	return checkHashes(p.GetHashes())
}

// ConsistencyProof returns Trillian's consistency proof between two sizes.
func (s *Storage) ConsistencyProof(ctx context.Context, oldSize, newSize uint64) ([][]byte, error) {
	if oldSize > newSize || newSize > 1<<62 {
		return nil, fmt.Errorf("old size %d above new size %d: %w", oldSize, newSize, ledger.ErrBadRequest)
	}
	if oldSize == 0 || oldSize == newSize {
		return [][]byte{}, nil
	}
	key := [2]uint64{oldSize, newSize}
	s.mu.Lock()
	p, ok := s.proofs[key]
	s.mu.Unlock()
	if ok {
		return p, nil
	}
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	resp, err := s.client.GetConsistencyProof(ctx, &trillian.GetConsistencyProofRequest{LogId: s.tree, FirstTreeSize: int64(oldSize), SecondTreeSize: int64(newSize)})
	if err != nil {
		return nil, s.unavailable("get a consistency proof", err)
	}
	if resp.GetProof() == nil {
		return nil, fmt.Errorf("trillian has no consistency proof to size %d yet: %w", newSize, ledger.ErrUnavailable)
	}
	p, err = checkHashes(resp.GetProof().GetHashes())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.proofs == nil {
		s.proofs = map[[2]uint64][][]byte{}
	}
	putProof(s.proofs, key, p)
	s.mu.Unlock()
	return p, nil
}

// putProof adds a proof to m, forgetting an arbitrary one when full. The
// proof between two sizes never changes, so a kept one stays right; callers
// only read the returned slices.
func putProof(m map[[2]uint64][][]byte, k [2]uint64, p [][]byte) {
	if len(m) >= maxCachedProofs {
		for old := range m {
			delete(m, old)
			break
		}
	}
	m[k] = p
}

// checkHashes checks a proof from Trillian: at most 64 hashes of 32 bytes.
func checkHashes(hs [][]byte) ([][]byte, error) {
	if len(hs) > 64 {
		return nil, errors.New("trillian returned an overlong proof")
	}
	for _, h := range hs {
		if len(h) != sha256.Size {
			return nil, errors.New("trillian returned a malformed proof hash")
		}
	}
	if hs == nil {
		hs = [][]byte{}
	}
	return hs, nil
}

// Close stops waiting appends and the follower. Entries already queued
// stay in Trillian and are sequenced by its signer.
func (s *Storage) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.seq.stop()
	})
	return nil
}
