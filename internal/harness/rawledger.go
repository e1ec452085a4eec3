package harness

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api/layout"
	"k8s.io/klog/v2"
)

// Release is one metadata file to log.
type Release struct {
	Repo, Role string
	Version    uint64
	Metadata   []byte
}

// RawLedger is a real transparency log for the auditor's tests and
// benchmarks: Tessera's POSIX driver in a directory, appending
// shiplog/release/v1 entries, with the metadata they commit to stored under
// /metadata/<sha256> and in metadata bundles, served over HTTP with the
// ledger's read API (docs/spec/ledger-api.md): a checkpoint cosigned by test
// witnesses, tlog-tiles hash tiles and entry bundles, metadata and metadata
// bundles. Unlike Ledger it checks nothing it logs, so tests can make it log
// anything. Its methods are safe for concurrent use.
type RawLedger struct {
	Keys *kit.Keys
	Dir  string

	appender *tessera.Appender
	shutdown func(context.Context) error
	reader   tessera.LogReader
	awaiter  *tessera.PublicationAwaiter
	cancel   context.CancelFunc
	ordered  bool // each entry is its own Tessera batch (NewRawLedger, not NewBulkRawLedger)

	mu      sync.Mutex
	bySeq   map[uint64][sha256.Size]byte // index -> metadata hash
	cosigns map[string][]byte            // checkpoint body -> cosigned note
}

// NewRawLedger starts a log in dir (created if needed) signed with keys. Tessera
// integrates each entry in a batch of its own, so the entries one goroutine
// adds are logged in the order it added them (see Append); that costs one
// integration (a few fsyncs) per entry.
func NewRawLedger(ctx context.Context, dir string, keys *kit.Keys) (*RawLedger, error) {
	return start(ctx, dir, keys, 1)
}

// NewBulkRawLedger starts a log like NewRawLedger whose Tessera batches up to 4096 entries,
// for building large logs quickly with AppendUnordered. Tessera may then log
// one goroutine's entries out of order: a batch flushed by its timer races
// the next batch to storage, and the later one can win. Append refuses to
// run on such a ledger.
func NewBulkRawLedger(ctx context.Context, dir string, keys *kit.Keys) (*RawLedger, error) {
	return start(ctx, dir, keys, 4096)
}

func start(ctx context.Context, dir string, keys *kit.Keys, batch uint) (*RawLedger, error) {
	if err := os.MkdirAll(filepath.Join(dir, "metadata"), 0o755); err != nil {
		return nil, err
	}
	drv, err := newDriver(ctx, dir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	// With a batch of one, every Add flushes its entry from the caller's
	// goroutine onto Tessera's single sequencing worker, so one goroutine's
	// entries reach it, and are given indices, in order; the batch timer
	// then never finds an entry to flush.
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(keys.LogSigner()).
		WithBatching(batch, 5*time.Millisecond).
		WithCheckpointInterval(100 * time.Millisecond)
	app, shutdown, reader, err := tessera.NewAppender(ctx, drv, opts)
	if err != nil {
		cancel()
		return nil, err
	}
	l := &RawLedger{Keys: keys, Dir: dir, appender: app, shutdown: shutdown, reader: reader, cancel: cancel,
		ordered: batch == 1, bySeq: map[uint64][sha256.Size]byte{}, cosigns: map[string][]byte{}}
	l.awaiter = tessera.NewPublicationAwaiter(ctx, reader.ReadCheckpoint, 20*time.Millisecond)
	return l, nil
}

// Close stops the log.
func (l *RawLedger) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := l.shutdown(ctx)
	l.cancel()
	return err
}

// Append logs releases in the order given and returns once a published
// checkpoint covers them all. It returns their indices, and fails rather
// than return indices that are not consecutive (another goroutine appending
// at the same time). It fails on a ledger from NewBulkRawLedger.
func (l *RawLedger) Append(ctx context.Context, rs ...Release) ([]uint64, error) {
	if !l.ordered {
		return nil, errors.New("harness: Append needs a ledger from NewRawLedger (NewBulkRawLedger's batches may log entries out of order)")
	}
	futures := make([]tessera.IndexFuture, len(rs))
	for i, r := range rs {
		e, err := entry.New(r.Repo, r.Role, r.Version, r.Metadata)
		if err != nil {
			return nil, err
		}
		if err := l.storeMetadata(r.Metadata); err != nil {
			return nil, err
		}
		futures[i] = l.appender.Add(ctx, tessera.NewEntry(e.Format()))
	}
	idx := make([]uint64, len(rs))
	for i, f := range futures {
		x, err := f()
		if err != nil {
			return nil, err
		}
		if i > 0 && x.Index != idx[i-1]+1 {
			return nil, fmt.Errorf("harness: entries logged out of order (%d after %d)", x.Index, idx[i-1])
		}
		idx[i] = x.Index
		l.mu.Lock()
		l.bySeq[x.Index] = sha256.Sum256(rs[i].Metadata)
		l.mu.Unlock()
	}
	return idx, l.Publish(ctx)
}

// AppendBulk logs releases concurrently (indices need not follow the order
// given) and returns once a published checkpoint covers them all.
func (l *RawLedger) AppendBulk(ctx context.Context, rs []Release) error {
	if err := l.AppendUnordered(ctx, rs); err != nil {
		return err
	}
	return l.Publish(ctx)
}

// AppendUnordered logs releases concurrently (on a ledger from NewBulkRawLedger,
// indices need not follow the order given) and returns once each has its
// index, without waiting for a checkpoint. Releases logged by later calls
// get larger indices, so a caller logs one repository's releases in order
// by giving at most one of them per call (see Publish).
func (l *RawLedger) AppendUnordered(ctx context.Context, rs []Release) error {
	futures := make([]tessera.IndexFuture, len(rs))
	for i, r := range rs {
		e, err := entry.New(r.Repo, r.Role, r.Version, r.Metadata)
		if err != nil {
			return err
		}
		if err := l.storeMetadata(r.Metadata); err != nil {
			return err
		}
		futures[i] = l.appender.Add(ctx, tessera.NewEntry(e.Format()))
	}
	for i, f := range futures {
		idx, err := f()
		if err != nil {
			return err
		}
		l.mu.Lock()
		l.bySeq[idx.Index] = sha256.Sum256(rs[i].Metadata)
		l.mu.Unlock()
	}
	return nil
}

// AppendRaw logs an arbitrary entry and stores md as the metadata of its
// index (md need not match the entry). It does not wait for a checkpoint.
func (l *RawLedger) AppendRaw(ctx context.Context, entryBytes, md []byte) (uint64, error) {
	if err := l.storeMetadata(md); err != nil {
		return 0, err
	}
	idx, err := l.appender.Add(ctx, tessera.NewEntry(entryBytes))()
	if err != nil {
		return 0, err
	}
	l.mu.Lock()
	l.bySeq[idx.Index] = sha256.Sum256(md)
	l.mu.Unlock()
	return idx.Index, nil
}

// Publish waits until a published checkpoint covers every entry added.
func (l *RawLedger) Publish(ctx context.Context) error {
	l.mu.Lock()
	n := uint64(len(l.bySeq))
	l.mu.Unlock()
	if n == 0 {
		return nil
	}
	_, _, err := l.awaiter.Await(ctx, func() (tessera.Index, error) { return tessera.Index{Index: n - 1}, nil })
	return err
}

func (l *RawLedger) storeMetadata(md []byte) error {
	sum := sha256.Sum256(md)
	p := filepath.Join(l.Dir, "metadata", hex.EncodeToString(sum[:]))
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	return os.WriteFile(p, md, 0o644)
}

// Checkpoint returns the latest published checkpoint, cosigned by every
// witness (the same bytes for the same checkpoint).
func (l *RawLedger) Checkpoint(ctx context.Context) ([]byte, error) {
	cp, err := l.reader.ReadCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c, ok := l.cosigns[string(cp)]; ok {
		return c, nil
	}
	c, err := l.Keys.Cosign(cp)
	if err != nil {
		return nil, err
	}
	l.cosigns[string(cp)] = c
	return c, nil
}

// Metadata returns the metadata stored for hash, or nil.
func (l *RawLedger) Metadata(sum [sha256.Size]byte) []byte {
	b, err := os.ReadFile(filepath.Join(l.Dir, "metadata", hex.EncodeToString(sum[:])))
	if err != nil {
		return nil
	}
	return b
}

// MetadataBundle returns the metadata bundle n of width w (256 for a full
// one), or nil if some entry of it is not logged.
func (l *RawLedger) MetadataBundle(n uint64, w int) []byte {
	var out []byte
	for i := uint64(0); i < uint64(w); i++ {
		l.mu.Lock()
		sum, ok := l.bySeq[n*layout.EntryBundleWidth+i]
		l.mu.Unlock()
		if !ok {
			return nil
		}
		md := l.Metadata(sum)
		if md == nil {
			return nil
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(md)))
		out = append(out, md...)
	}
	return out
}

// ServeHTTP serves the ledger's read API.
func (l *RawLedger) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/checkpoint":
		cp, err := l.Checkpoint(r.Context())
		if err != nil {
			http.Error(w, "no checkpoint", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(cp)
	case strings.HasPrefix(p, "/tile/"):
		rel := filepath.Clean(strings.TrimPrefix(p, "/"))
		if strings.Contains(rel, "..") {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, filepath.Join(l.Dir, rel))
	case strings.HasPrefix(p, "/metadata/bundle/"):
		n, width, err := layout.ParseTileIndexPartial(strings.TrimPrefix(p, "/metadata/bundle/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		wd := int(width)
		if wd == 0 {
			wd = layout.EntryBundleWidth
		}
		b := l.MetadataBundle(n, wd)
		if b == nil {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	case strings.HasPrefix(p, "/metadata/"):
		raw, err := hex.DecodeString(strings.TrimPrefix(p, "/metadata/"))
		if err != nil || len(raw) != sha256.Size {
			http.NotFound(w, r)
			return
		}
		md := l.Metadata([sha256.Size]byte(raw))
		if md == nil {
			http.NotFound(w, r)
			return
		}
		w.Write(md)
	default:
		http.NotFound(w, r)
	}
}

// QuietTessera stops Tessera's klog output (tests call it from TestMain).
func QuietTessera() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	fs.Set("logtostderr", "false")
	fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)
}
