package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/audit/dashboard"
	"github.com/shiplog/shiplog/audit/store"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/buildinfo/buildmetric"
	"github.com/shiplog/shiplog/internal/durable"
)

// Exit codes of a one-shot run (Options.Once).
const (
	ExitClean    = 0 // no new finding of severity warning or above
	ExitError    = 1 // the audit could not finish
	ExitWarning  = 2 // new warning findings, none critical
	ExitCritical = 3 // at least one new critical finding
)

// Options are the command line of `shiplog audit`.
type Options struct {
	Ledger     string
	PolicyFile string
	StateDir   string
	Once       bool
	Interval   time.Duration
	Webhook    string
	// MinSeverity filters what goes to Stdout and the webhook; every
	// finding is stored and shown on the dashboard regardless.
	MinSeverity  alert.Severity
	Witnesses    []string
	Peers        []string
	VendorHashes string
	VendorRepos  []string
	VendorDir    string
	// Repositories are TUF metadata base URLs whose timestamp expiry is
	// checked every round; in vendor mode VendorDir/metadata is checked too.
	Repositories []string
	// VendorGrace is how long vendor mode waits for a release's metadata to
	// appear in the vendor's files before it reports it; 0 means 10 s.
	VendorGrace time.Duration
	// SignoffDeadline is Config.SignoffDeadline (vendor mode); zero: off.
	SignoffDeadline time.Duration
	// Reviewer is Config.Reviewer (--review-key); nil: off.
	Reviewer *Reviewer
	// Serve, when set, is the address of the dashboard, /metrics, /healthz
	// and /readyz.
	Serve   string
	Workers int
	// UnreachableAfter is Config.UnreachableAfter; zero means 5 minutes.
	UnreachableAfter time.Duration
	// StaleViewAfter is Config.StaleViewAfter; zero means 2 minutes.
	StaleViewAfter time.Duration
	Stdout         io.Writer // JSON lines
	Progress       io.Writer // nil for no progress bar
	Logger         *slog.Logger
	// Listening, when set, is called with the dashboard's address once it
	// listens (the command prints it).
	Listening func(addr string)
}

// Run runs the auditor as the command does: once (returning an exit code)
// or until ctx is done, serving the dashboard if asked.
func Run(ctx context.Context, o Options) (int, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Once && o.Serve != "" {
		return ExitError, errors.New("--once and --listen do not go together: the dashboard needs a running auditor")
	}
	pb, err := readCapped(o.PolicyFile, policy.MaxSize)
	if err != nil {
		return ExitError, fmtErr("read the policy", err)
	}
	p, err := policy.Parse(pb)
	if err != nil {
		return ExitError, err
	}
	vendor, err := o.vendor()
	if err != nil {
		return ExitError, err
	}
	if o.SignoffDeadline > 0 && vendor == nil {
		return ExitError, errors.New("--signoff-deadline is vendor mode's: give --vendor-dir or --vendor-hashes")
	}
	if err := os.MkdirAll(filepath.Join(o.StateDir, "evidence"), 0o700); err != nil {
		return ExitError, err
	}
	db, err := store.Open(filepath.Join(o.StateDir, "audit.db"))
	if err != nil {
		return ExitError, err
	}
	defer db.Close()
	client := &http.Client{Timeout: 30 * time.Second}
	sinks := alert.Multi{&alert.JSONLines{W: o.Stdout}}
	if o.Webhook != "" {
		sinks = append(sinks, &alert.Webhook{URL: o.Webhook, Client: client})
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildmetric.Collector())
	a, err := New(Config{Ledger: o.Ledger, Policy: p, State: db, Client: client, Logger: o.Logger,
		Sink: minSeverity{o.MinSeverity, sinks}, Vendor: vendor, Witnesses: o.Witnesses, Peers: o.Peers, Repositories: o.repositories(),
		Workers: o.Workers, Progress: o.Progress, Registerer: reg, UnreachableAfter: o.UnreachableAfter, StaleViewAfter: o.StaleViewAfter, SignoffDeadline: o.SignoffDeadline, Reviewer: o.Reviewer})
	if err != nil {
		return ExitError, err
	}
	if o.Once {
		res, err := a.Step(ctx)
		o.saveEvidence(res)
		if err != nil {
			return ExitError, err
		}
		return exitCode(res), nil
	}
	if o.Serve != "" {
		stop, err := o.serve(ctx, db, a, reg, vendor)
		if err != nil {
			return ExitError, err
		}
		defer stop()
	}
	if o.Interval <= 0 {
		o.Interval = 30 * time.Second
	}
	for {
		res, err := a.Step(ctx)
		o.saveEvidence(res)
		if err != nil && ctx.Err() == nil {
			o.Logger.Error("audit round failed; retrying", "err", err, "in", o.Interval)
		}
		select {
		case <-ctx.Done():
			return ExitClean, nil
		case <-time.After(o.Interval):
		}
	}
}

func exitCode(res Result) int {
	max, any := res.Max()
	switch {
	case !any || max < alert.Warning:
		return ExitClean
	case max == alert.Warning:
		return ExitWarning
	}
	return ExitCritical
}

// vendorGrace is how long vendor mode waits for a release's metadata to
// appear in the vendor's files before it reports the release.
const vendorGrace = 10 * time.Second

func (o Options) vendor() (*Expected, error) {
	var load func() (*Expected, error)
	switch {
	case o.VendorDir != "" && o.VendorHashes != "":
		return nil, errors.New("give --vendor-dir or --vendor-hashes, not both")
	case o.VendorDir != "":
		load = func() (*Expected, error) { return ExpectedFromRepoDir(o.VendorDir) }
	case o.VendorHashes != "":
		if len(o.VendorRepos) == 0 {
			return nil, errors.New("--vendor-hashes needs at least one --vendor-repo")
		}
		load = func() (*Expected, error) {
			b, err := readCapped(o.VendorHashes, maxExpectedFile)
			if err != nil {
				return nil, err
			}
			return ParseExpectedHashes(b, o.VendorRepos...)
		}
	default:
		return nil, nil
	}
	e, err := load()
	if err != nil {
		return nil, err
	}
	grace := o.VendorGrace
	if grace <= 0 {
		grace = vendorGrace
	}
	return e.WithReload(load, grace), nil
}

// saveEvidence writes the fork evidence of new findings to
// STATE/evidence/finding-<id>-fork.txt, for `shiplog verify-evidence`.
func (o Options) saveEvidence(res Result) {
	for _, f := range res.Findings {
		if ev, ok := f.Evidence["fork"]; ok {
			path := filepath.Join(o.StateDir, "evidence", fmt.Sprintf("finding-%d-fork.txt", f.ID))
			if err := durable.WriteFile(path, []byte(ev), 0o644); err != nil {
				o.Logger.Error("couldn't save fork evidence", "path", path, "err", err)
			}
		}
	}
}

// serve starts the dashboard, the metrics and the health endpoints and
// returns a function that stops them.
func (o Options) serve(ctx context.Context, db *store.DB, a *Auditor, reg *prometheus.Registry, vendor *Expected) (func(), error) {
	ln, err := net.Listen("tcp", o.Serve)
	if err != nil {
		return nil, err
	}
	dc := dashboard.Config{State: db, Logger: o.Logger, Changed: func() {
		if err := a.RefreshOpenFindings(); err != nil {
			o.Logger.Error("couldn't count open findings", "err", err)
		}
	}, Metadata: a.metadataFor}
	if vendor != nil {
		dc.VendorMode, dc.VendorRepos = true, vendor.RepoList()
	}
	srv := &http.Server{Handler: Handler(a, db, reg, dashboard.NewHandler(dc)),
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second,
		MaxHeaderBytes: 16 << 10, BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Logger.Error("dashboard stopped", "err", err)
		}
	}()
	o.Logger.Info("dashboard listening", "addr", ln.Addr().String())
	if o.Listening != nil {
		o.Listening(ln.Addr().String())
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}, nil
}

// maxRequestBody caps every request body: the largest is an alert form
// (a note of at most store.MaxAlertNote bytes, URL-encoded).
const maxRequestBody = 8 << 10

// Handler serves what `shiplog audit --listen` serves: GET /metrics (reg, in
// the Prometheus text format), GET /healthz (200 while the process runs),
// GET /readyz (200 once a round has ended and the state file answers, 503
// before), and everything else from dash. Request bodies are capped at
// 8 KiB.
func Handler(a *Auditor, db *store.DB, reg prometheus.Gatherer, dash http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if _, _, err := db.Head(); err != nil {
			http.Error(w, "the state file does not answer", http.StatusServiceUnavailable)
			return
		}
		if a.Rounds() == 0 {
			http.Error(w, "no audit round has ended yet", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.Handle("/", dash)
	return http.MaxBytesHandler(mux, maxRequestBody)
}

// minSeverity passes on findings of at least min.
type minSeverity struct {
	min  alert.Severity
	next alert.Sink
}

func (m minSeverity) Alert(ctx context.Context, f alert.Finding) error {
	if f.Severity < m.min {
		return nil
	}
	return m.next.Alert(ctx, f)
}

// repositories are the metadata locations whose freshness is checked.
func (o Options) repositories() []string {
	out := append([]string(nil), o.Repositories...)
	if o.VendorDir != "" {
		out = append(out, filepath.Join(o.VendorDir, "metadata"))
	}
	return out
}
