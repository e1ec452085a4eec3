package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/shiplog/shiplog/internal/buildinfo/buildmetric"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/durable"
	"github.com/shiplog/shiplog/internal/keyref"
	ledger "github.com/shiplog/shiplog/log"
	"github.com/shiplog/shiplog/log/challenge"
	"github.com/shiplog/shiplog/log/tessera"
	ledgerv1 "github.com/shiplog/shiplog/proto/ledger/v1"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
)

// ProofFunc returns the RFC 6962 consistency proof between two sizes of
// the log, for the witnesses.
type ProofFunc func(ctx context.Context, oldSize, newSize uint64) ([][]byte, error)

// CosignerFunc builds the Cosigner for a policy that names witnesses.
type CosignerFunc func(p *policy.Policy, proofs ProofFunc, witnessTimeout time.Duration, logger *slog.Logger, reg prometheus.Registerer) (ledger.Cosigner, error)

// Options configures Open. Zero values mean the config file's values.
type Options struct {
	HTTPAddr string
	GRPCAddr string
	// AddrFile, if set, receives {"http": addr, "grpc": addr} (JSON) once
	// both listeners are open, for tests and scripts using port 0.
	AddrFile string
	// NewCosigner builds the witness client for a policy naming witnesses
	// (nil: witness/client Collectors, returning once the quorum is met).
	NewCosigner CosignerFunc
	// Now is the clock for expiry checks (nil: time.Now).
	Now func() time.Time
	// Logger receives logs (nil: discard).
	Logger *slog.Logger
	// Storage, TrillianAddr, TrillianTreeID, PostgresURI and
	// PostgresSchema, when set, override the config's (shiplog ledger serve
	// --storage trillian --trillian-addr ... --trillian-tree-id ...).
	Storage        string
	TrillianAddr   string
	TrillianTreeID int64
	PostgresURI    string
	PostgresSchema string
}

// Node is an open ledger with its servers, not yet serving.
type Node struct {
	dir      string
	cfg      *Config
	opts     Options
	ledger   *ledger.Ledger
	cos      ledger.Cosigner // nil without witnesses
	store    ledger.Storage
	be       *backend
	token    string
	reg      *prometheus.Registry
	limiter  *limiter
	budget   *budget
	conns    *connMetrics
	pending  *challenge.Pending
	fetcher  *challenge.Fetcher
	log      *slog.Logger
	httpSrv  *http.Server
	grpcSrv  *grpc.Server
	closeMu  sync.Mutex
	isClosed bool
}

// Open checks and opens the ledger in dir. It refuses a missing or
// mismatched state: no config, a key whose name is not the origin, a
// policy that does not name this log's key, a log directory that is not
// this log's, an index or checkpoint state ahead of the log.
func Open(ctx context.Context, dir string, opts Options) (*Node, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	skey, err := readLine(filepath.Join(dir, SKeyFile))
	if err != nil {
		return nil, fmt.Errorf("couldn't read the log key: %w", err)
	}
	signer, vkey, err := keyref.OpenLogSigner(ctx, skey)
	if err != nil {
		return nil, err
	}
	if signer.Name() != cfg.Origin {
		return nil, fmt.Errorf("log key is named %q but the origin is %q", signer.Name(), cfg.Origin)
	}
	verifier, err := notekey.ParseLogVerifier(vkey)
	if err != nil {
		return nil, err
	}
	pol, err := loadPolicy(dir, cfg.Origin, vkey)
	if err != nil {
		return nil, err
	}
	token, err := readLine(filepath.Join(dir, TokenFile))
	if err != nil || len(token) < 32 {
		return nil, fmt.Errorf("couldn't read a token of at least 32 characters from %s: %v", TokenFile, err)
	}
	opts.override(cfg)
	reg := prometheus.NewRegistry()
	be, err := openBackend(ctx, dir, cfg, signer, verifier, logger, reg)
	if err != nil {
		return nil, err
	}
	n := &Node{dir: dir, cfg: cfg, opts: opts, store: be.store, be: be, token: token, log: logger, reg: reg}
	if err := n.openLedger(ctx, pol); err != nil {
		be.store.Close(ctx)
		be.close()
		return nil, err
	}
	return n, nil
}

func (n *Node) openLedger(ctx context.Context, pol *policy.Policy) error {
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildmetric.Collector())
	var err error
	var cos ledger.Cosigner
	for _, w := range pol.Witnesses {
		if w.URL == "" {
			n.log.Warn("witness has no URL in the policy: the ledger cannot ask it to cosign", "witness", w.Name)
		}
	}
	if pol.Quorum != nil || len(pol.Witnesses) > 0 {
		newCosigner := n.opts.NewCosigner
		if newCosigner == nil {
			newCosigner = collectorCosigner
		}
		wt := time.Duration(n.cfg.WitnessTimeout)
		if wt == 0 {
			wt = 5 * time.Second
		}
		if cos, err = newCosigner(pol, n.store.ConsistencyProof, wt, n.log, n.reg); err != nil {
			return fmt.Errorf("couldn't set up the witness client: %w", err)
		}
	}
	n.cos = cos
	n.ledger, err = ledger.New(ctx, ledger.Config{
		Storage: n.store, Index: n.be.index, Metadata: n.be.meta, Policy: pol, Origin: n.cfg.Origin,
		Cosigner: cos, StateDir: n.dir, State: n.be.state, Coordinator: n.be.coord,
		Now: n.opts.Now, Logger: n.log, Registerer: n.reg,
		CosignTimeout: time.Duration(n.cfg.CosignTimeout),
	})
	if err != nil {
		return err
	}
	rate, burst := n.cfg.RateLimit, n.cfg.RateBurst
	if rate == 0 {
		rate = 50
	}
	if burst == 0 {
		burst = int(2 * rate)
	}
	n.limiter = newLimiter(rate, burst)
	n.budget = newBudget(n.cfg.floodLimits().inFlight)
	n.conns = newConnMetrics(n.reg)
	n.pending = &challenge.Pending{Now: n.opts.Now}
	if n.fetcher, err = newFetcher(n.dir, n.cfg); err != nil {
		return err
	}
	return nil
}

// backend is what the ledger keeps its log and state in.
type backend struct {
	store ledger.Storage
	index ledger.IndexStore
	meta  ledger.MetadataStorage
	state ledger.CheckpointState // nil: files in the data directory
	coord ledger.Coordinator     // nil: a single ledger process
	close func()                 // releases all but the store
}

// openBackend opens the log engine named by the config: "posix" (Tessera
// on local files, with a bbolt index, metadata files and checkpoint files
// in dir) or "trillian" (a Trillian tree, everything else in PostgreSQL;
// see trillian.go).
func openBackend(ctx context.Context, dir string, cfg *Config, signer note.Signer, verifier note.Verifier, logger *slog.Logger, reg prometheus.Registerer) (*backend, error) {
	switch cfg.Storage {
	case "posix":
		store, err := tessera.Open(ctx, tessera.Options{
			Dir: filepath.Join(dir, LogDir), Signer: signer, Verifier: verifier, Logger: logger,
			BatchMaxSize: cfg.BatchMaxSize, BatchMaxAge: time.Duration(cfg.BatchMaxAge),
			CheckpointInterval: time.Duration(cfg.CheckpointInterval),
		})
		if err != nil {
			return nil, err
		}
		index, err := ledger.OpenIndex(filepath.Join(dir, IndexFile))
		if err != nil {
			store.Close(ctx)
			return nil, err
		}
		ms, err := ledger.NewMetadataStore(filepath.Join(dir, MetadataDir))
		if err != nil {
			store.Close(ctx)
			index.Close()
			return nil, err
		}
		return &backend{store: store, index: index, meta: ms, close: func() { index.Close(); ms.Close() }}, nil
	case StorageTrillian:
		return openTrillian(ctx, cfg, signer, logger, reg)
	default:
		return nil, fmt.Errorf("storage %q is not supported", cfg.Storage)
	}
}

// loadPolicy reads the witness policy and checks it names this log's key.
func loadPolicy(dir, origin, vkey string) (*policy.Policy, error) {
	b, err := readLimited(filepath.Join(dir, PolicyFile), policy.MaxSize)
	if err != nil {
		return nil, err
	}
	p, err := policy.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", PolicyFile, err)
	}
	l := p.Log(origin)
	if l == nil || l.VKey != vkey {
		return nil, fmt.Errorf("%s: its log line must be this ledger's key %s", PolicyFile, vkey)
	}
	return p, nil
}

// Ledger returns the node's ledger.
func (n *Node) Ledger() *ledger.Ledger { return n.ledger }

// Serve listens and serves until ctx ends, then shuts down gracefully:
// it stops accepting submissions, lets those in flight finish (each is
// durable in the log and the index before it is acknowledged), waits
// for the log to integrate everything, and closes the storage.
func (n *Node) Serve(ctx context.Context) error {
	httpAddr := firstNonEmpty(n.opts.HTTPAddr, n.cfg.HTTPAddr, defaultHTTPAddr)
	grpcAddr := firstNonEmpty(n.opts.GRPCAddr, n.cfg.GRPCAddr, defaultGRPCAddr)
	hl, err := net.Listen("tcp", httpAddr)
	if err != nil {
		n.Close()
		return err
	}
	gl, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		hl.Close()
		n.Close()
		return err
	}
	fl := n.cfg.floodLimits()
	hl, gl = n.conns.limit(hl, "http", fl.conns, fl.connsPerClient), n.conns.limit(gl, "grpc", fl.conns, fl.connsPerClient)
	n.httpSrv = &http.Server{
		Handler:           n.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
	}
	n.grpcSrv = n.GRPCServer()
	if n.opts.AddrFile != "" {
		b, _ := json.Marshal(map[string]string{"http": hl.Addr().String(), "grpc": gl.Addr().String()})
		if err := durable.WriteFile(n.opts.AddrFile, b, 0o644); err != nil {
			hl.Close()
			gl.Close()
			n.Close()
			return err
		}
	}
	n.log.Info("ledger serving", "origin", n.cfg.Origin, "http", hl.Addr().String(), "grpc", gl.Addr().String())
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	runDone := make(chan struct{})
	go func() { n.ledger.Run(runCtx); close(runDone) }()
	errc := make(chan error, 2)
	go func() { errc <- n.httpSrv.Serve(hl) }()
	go func() { errc <- n.grpcSrv.Serve(gl) }()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	n.log.Info("ledger shutting down")
	n.ledger.StartClosing()
	sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n.httpSrv.Shutdown(sctx)
	stopGRPC(sctx, n.grpcSrv)
	err = n.store.Close(sctx) // everything acknowledged is integrated and under a checkpoint
	stopRun()
	<-runDone
	n.be.close()
	n.markClosed()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return err
}

// Close releases a node that was opened but will not serve.
func (n *Node) Close() {
	if n.markClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n.ledger.StartClosing()
	n.store.Close(ctx)
	n.be.close()
}

func (n *Node) markClosed() (was bool) {
	n.closeMu.Lock()
	defer n.closeMu.Unlock()
	was, n.isClosed = n.isClosed, true
	return was
}

func stopGRPC(ctx context.Context, s *grpc.Server) {
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.Stop()
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

var _ ledgerv1.LedgerServer = (*grpcService)(nil)
