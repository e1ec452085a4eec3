// Package tessera is the ledger's embedded log engine: a log.Storage on
// Tessera's POSIX driver (github.com/transparency-dev/tessera/storage/posix),
// which keeps a C2SP tlog-tiles log (c2sp.org/tlog-tiles) as plain files in
// a directory: tile/<L>/<N>[.p/<W>], tile/entries/<N>[.p/<W>], checkpoint,
// and Tessera's private .state directory.
//
// Tessera signs a checkpoint with the log key at most once per checkpoint
// interval and writes it to the directory's checkpoint file; that checkpoint
// is internal to the ledger (it is not cosigned): the ledger serves its own
// cosigned copy. Tessera's sequencing and integration happen together, under
// a file lock, with every file fsynced, so an appended entry is durable
// once Append returns, and a SIGKILL leaves a consistent tree.
package tessera

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/shiplog/shiplog/evidence/checkpoint"
	ledger "github.com/shiplog/shiplog/log"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
)

// Defaults of Options, tuned for low latency from append to checkpoint
// (see docs/perf/ledger.md). Tessera's POSIX driver refuses checkpoint
// intervals under 100 ms.
const (
	DefaultBatchMaxSize       = 256
	DefaultBatchMaxAge        = 50 * time.Millisecond
	DefaultCheckpointInterval = 100 * time.Millisecond
	// MaxEntrySize is the largest entry of a tlog-tiles entry bundle.
	MaxEntrySize = 65535
	stateFile    = ".state/treeState"
)

// ErrPlatform is the error of Create and Open where Tessera's POSIX driver
// does not run (Windows).
var ErrPlatform = errors.New("the embedded log engine (Tessera's POSIX driver) runs on Linux and macOS, not Windows: serve the ledger there, or with --storage trillian")

// Options configures Open.
type Options struct {
	// Dir is the log directory, made by Create.
	Dir string
	// Signer signs checkpoints; its name is the log's origin.
	Signer note.Signer
	// Verifier is the log's verifier key: Open refuses a directory whose
	// checkpoint it does not verify.
	Verifier note.Verifier
	// BatchMaxSize and BatchMaxAge bound a sequencing batch (0: defaults).
	BatchMaxSize uint
	BatchMaxAge  time.Duration
	// CheckpointInterval is the most often a checkpoint is signed (0: default).
	CheckpointInterval time.Duration
	// Logger receives warnings; nil discards.
	Logger *slog.Logger
}

// Storage is a log.Storage on Tessera's POSIX driver. It is safe for
// concurrent use.
type Storage struct {
	appender *tessera.Appender
	shutdown func(context.Context) error
	reader   tessera.LogReader
	cancel   context.CancelFunc
	done     chan struct{}
	log      *slog.Logger
	dir      string

	closeOnce sync.Once
	closeErr  error
}

var _ ledger.Storage = (*Storage)(nil)

// Create makes a new, empty log in dir: Tessera's state and a signed
// checkpoint of size 0. It refuses a directory that already holds a log.
func Create(ctx context.Context, dir string, signer note.Signer) error {
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err == nil {
		return fmt.Errorf("%s already holds a log", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d, err := newDriver(ctx, dir)
	if err != nil {
		return err
	}
	_, shutdown, _, err := tessera.NewAppender(ctx, d, tessera.NewAppendOptions().WithCheckpointSigner(signer))
	if err != nil {
		return fmt.Errorf("couldn't create log: %w", err)
	}
	return shutdown(ctx)
}

// Open opens the log that Create made in opts.Dir. It refuses a directory
// without a log (rather than silently starting a new one) and one whose
// checkpoint is not signed by opts.Verifier for its origin.
func Open(ctx context.Context, opts Options) (*Storage, error) {
	if _, err := os.Stat(filepath.Join(opts.Dir, stateFile)); err != nil {
		return nil, fmt.Errorf("no log in %s (run shiplog ledger init): %w", opts.Dir, err)
	}
	cp, err := os.ReadFile(filepath.Join(opts.Dir, "checkpoint"))
	if err != nil {
		return nil, fmt.Errorf("log in %s has no checkpoint: %w", opts.Dir, err)
	}
	if _, err := checkpoint.Open(cp, opts.Verifier.Name(), opts.Verifier); err != nil {
		return nil, fmt.Errorf("log in %s is not this log's (origin %q): %w", opts.Dir, opts.Verifier.Name(), err)
	}
	o := tessera.NewAppendOptions().
		WithCheckpointSigner(opts.Signer).
		WithBatching(or(opts.BatchMaxSize, DefaultBatchMaxSize), or(opts.BatchMaxAge, DefaultBatchMaxAge)).
		WithCheckpointInterval(or(opts.CheckpointInterval, DefaultCheckpointInterval)).
		WithCheckpointRepublishInterval(0).
		WithShutdownTimeout(30 * time.Second)
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d, err := newDriver(bg, opts.Dir)
	if err != nil {
		cancel()
		return nil, err
	}
	a, shutdown, r, err := tessera.NewAppender(bg, d, o)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("couldn't open log: %w", err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Storage{appender: a, shutdown: shutdown, reader: r, cancel: cancel, done: make(chan struct{}), log: logger, dir: opts.Dir}, nil
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Append adds entry to the log and returns its index once the entry is
// sequenced, integrated and fsynced. The wait does not end with ctx: an
// entry handed to Tessera is logged whatever the caller does, and the
// ledger must learn its index; it ends early only when the storage closes.
func (s *Storage) Append(ctx context.Context, e []byte) (uint64, error) {
	if len(e) > MaxEntrySize {
		return 0, errors.New("entry too large")
	}
	select {
	case <-s.done:
		return 0, ledger.ErrUnavailable
	default:
	}
	future := s.appender.Add(ctx, tessera.NewEntry(e))
	type result struct {
		idx tessera.Index
		err error
	}
	ch := make(chan result, 1)
	go func() {
		idx, err := future()
		ch <- result{idx, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return 0, fmt.Errorf("couldn't append to the log: %w", r.err)
		}
		return r.idx.Index, nil
	case <-s.done:
		return 0, fmt.Errorf("storage closed during append: %w", ledger.ErrUnavailable)
	}
}

// IntegratedSize returns the size of the integrated tree.
func (s *Storage) IntegratedSize(ctx context.Context) (uint64, error) {
	return s.reader.IntegratedSize(ctx)
}

// Checkpoint returns Tessera's latest signed checkpoint.
func (s *Storage) Checkpoint(ctx context.Context) ([]byte, error) {
	b, err := s.reader.ReadCheckpoint(ctx)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("checkpoint: %w", ledger.ErrNotFound)
	}
	return b, err
}

// ReadTile returns the hash tile of the given width, truncating a larger
// tile when the partial one was garbage collected.
func (s *Storage) ReadTile(ctx context.Context, level, index uint64, width uint8) ([]byte, error) {
	b, err := s.reader.ReadTile(ctx, level, index, width)
	if errors.Is(err, fs.ErrNotExist) && width > 0 {
		b, err = s.widerPartial(layout.TilePath(level, index, 0), width)
	}
	if err != nil {
		return nil, notFound(err)
	}
	if len(b)%32 != 0 || len(b) == 0 {
		return nil, fmt.Errorf("tile %d/%d: corrupt (%d bytes)", level, index, len(b))
	}
	if width > 0 {
		if len(b) < int(width)*32 {
			return nil, fmt.Errorf("tile %d/%d.p/%d: %w", level, index, width, ledger.ErrNotFound)
		}
		b = b[:int(width)*32]
	} else if len(b) != 256*32 {
		return nil, fmt.Errorf("tile %d/%d: %w", level, index, ledger.ErrNotFound)
	}
	return b, nil
}

// ReadEntryBundle returns the entry bundle of the given width, truncating a
// larger bundle when the partial one was garbage collected.
func (s *Storage) ReadEntryBundle(ctx context.Context, index uint64, width uint8) ([]byte, error) {
	b, err := s.reader.ReadEntryBundle(ctx, index, width)
	if errors.Is(err, fs.ErrNotExist) && width > 0 {
		b, err = s.widerPartial(layout.EntriesPath(index, 0), width)
	}
	if err != nil {
		return nil, notFound(err)
	}
	want := int(width)
	if want == 0 {
		want = 256
	}
	n, end := 0, 0
	for end < len(b) && n < want {
		if len(b)-end < 2 {
			return nil, fmt.Errorf("entry bundle %d: corrupt", index)
		}
		l := int(b[end])<<8 | int(b[end+1])
		if len(b)-end-2 < l {
			return nil, fmt.Errorf("entry bundle %d: corrupt", index)
		}
		end += 2 + l
		n++
	}
	if n < want {
		return nil, fmt.Errorf("entry bundle %d width %d: %w", index, width, ledger.ErrNotFound)
	}
	return b[:end], nil
}

// widerPartial reads the narrowest partial resource wider than width
// (Tessera writes partials only for the sizes it integrated at, and the
// caller truncates it). It returns fs.ErrNotExist if there is none.
func (s *Storage) widerPartial(full string, width uint8) ([]byte, error) {
	des, err := os.ReadDir(filepath.Join(s.dir, full+".p"))
	if err != nil {
		return nil, err
	}
	best := 0
	for _, de := range des {
		w, err := strconv.Atoi(de.Name())
		if err == nil && w > int(width) && w < 256 && (best == 0 || w < best) {
			best = w
		}
	}
	if best == 0 {
		return nil, fs.ErrNotExist
	}
	return os.ReadFile(filepath.Join(s.dir, full+".p", strconv.Itoa(best)))
}

func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%v: %w", err, ledger.ErrNotFound)
	}
	return err
}

// InclusionProof returns the inclusion proof of index in the tree of size,
// built from the stored tiles.
func (s *Storage) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	if index >= size {
		return nil, fmt.Errorf("index %d not below size %d: %w", index, size, ledger.ErrBadRequest)
	}
	pb, err := client.NewProofBuilder(ctx, size, s.ReadTile)
	if err != nil {
		return nil, err
	}
	return pb.InclusionProof(ctx, index)
}

// ConsistencyProof returns the consistency proof between two tree sizes.
func (s *Storage) ConsistencyProof(ctx context.Context, oldSize, newSize uint64) ([][]byte, error) {
	if oldSize > newSize {
		return nil, fmt.Errorf("old size %d above new size %d: %w", oldSize, newSize, ledger.ErrBadRequest)
	}
	if oldSize == 0 || oldSize == newSize {
		return [][]byte{}, nil
	}
	pb, err := client.NewProofBuilder(ctx, newSize, s.ReadTile)
	if err != nil {
		return nil, err
	}
	return pb.ConsistencyProof(ctx, oldSize, newSize)
}

// Close waits until every appended entry is integrated and under a
// checkpoint (at most 30 s, or until ctx ends), then stops Tessera. Closing
// again does nothing and returns the first Close's error.
func (s *Storage) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.closeErr = s.shutdown(ctx)
		close(s.done)
		s.cancel()
	})
	return s.closeErr
}

// Bundle parses an entry bundle into its entries.
func Bundle(b []byte) ([][]byte, error) {
	var eb api.EntryBundle
	if err := eb.UnmarshalText(b); err != nil {
		return nil, err
	}
	return eb.Entries, nil
}

// noHTTP is the HTTP client given to Tessera, which uses one only for its
// own witnessing (not used here): it refuses every request.
var noHTTP = &http.Client{
	Timeout: time.Second,
	Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("tessera: no outgoing HTTP from the log engine")
	}),
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
