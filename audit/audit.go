// Package audit is shiplog's auditor: it follows a ledger through its
// C2SP tlog-tiles read API only (c2sp.org/tlog-tiles; the ledger's proof
// endpoints are never trusted), verifies every checkpoint under a C2SP
// tlog-policy and its consistency with every checkpoint seen before
// (RFC 6962 §2.1.2), recomputes the Merkle tree from the entries, and
// replays every shiplog/release/v1 entry against the TUF rules of its
// repository's logged history (package replay). It compares the ledger's
// checkpoint with witnesses' and other auditors' (gossip), checks a vendor's
// own releases against what it actually made (vendor mode), and reports
// each finding once, as a JSON line and to an optional webhook.
//
// State lives in one bbolt file (package store) and advances one
// transaction per catch-up step, so an auditor killed at any point resumes
// where the last step committed.
//
// Limits: entry bundles up to 256×65,537 bytes, metadata files up to 5 MiB,
// metadata bundles up to 64 MiB (larger ones are fetched file by file), one
// consistency proof of at most 128 hashes per step. The auditor's tree and
// release index grow with the log: about 100 bytes of state per entry.
package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/audit/replay"
	"github.com/shiplog/shiplog/audit/store"
	"github.com/shiplog/shiplog/evidence/policy"
)

// Config configures an Auditor. Ledger, Policy and State are required.
type Config struct {
	// Ledger is the base URL of the ledger's read API.
	Ledger string
	// Policy is the trust policy: the ledger's log key and the witness
	// quorum its checkpoints must meet.
	Policy *policy.Policy
	// State is the open state file.
	State *store.DB
	// Client makes every HTTP request; nil means a client with a 30 s
	// timeout. Never http.DefaultClient.
	Client *http.Client
	// Sink receives each new finding once; nil discards them.
	Sink alert.Sink
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// Vendor, when set, turns on vendor mode: any release of its
	// repositories whose metadata hash it does not list is a critical
	// unexpected-release finding.
	Vendor *Expected
	// SignoffDeadline, in vendor mode, is how long after a release of the
	// vendor's is logged a rebuilder must have reproduced each of its
	// targets (a logged "reproduced" statement about the target's digest,
	// docs/spec/signoff.md) before the auditor reports signoff-missing;
	// zero turns the check off.
	SignoffDeadline time.Duration
	// Reviewer, when set, signs and logs a "reviewed" statement about every
	// target of every release the auditor passes (see Reviewer).
	Reviewer *Reviewer
	// Witnesses are witness monitoring URL prefixes; the auditor reads
	// <prefix>/<hex sha256(origin)>/checkpoint from each.
	Witnesses []string
	// Peers are other auditors' URLs; the auditor reads <peer>/checkpoint.
	Peers []string
	// Repositories are TUF metadata base URLs (or local metadata
	// directories) whose timestamp.json the auditor checks for expiry in
	// every round (KindTimestampLapsed).
	Repositories []string
	// Workers bounds concurrent fetches; zero means 8.
	Workers int
	// StepBundles is the number of entry bundles (of 256 entries) per
	// catch-up step and state transaction; zero means 32.
	StepBundles int
	// MaxValidity bounds metadata expiry past its logging; zero means
	// replay.DefaultMaxValidity.
	MaxValidity time.Duration
	// Progress, when set, receives a one-line progress bar during catch-up
	// (entries per second and time left), redrawn at most twice a second.
	Progress io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Registerer receives the auditor's metrics (docs/auditor.md); nil
	// registers none. One Auditor per registry.
	Registerer prometheus.Registerer
	// UnreachableAfter is how long the ledger may fail to answer before the
	// auditor reports a ledger-unreachable finding (warning; critical after
	// twelve times as long); zero means 5 minutes.
	UnreachableAfter time.Duration
	// StaleViewAfter is how long a witness or peer may hold a log-signed
	// checkpoint larger than any tree the ledger's tiles support before the
	// auditor reports a stale-view finding. A witness cosigns a checkpoint
	// before the ledger publishes it (the ledger publishes once a quorum
	// cosigned, retrying with a 10 s cosigning timeout and backoff up to
	// 5 s), so being ahead for a while is normal. Zero means 2 minutes.
	StaleViewAfter time.Duration
}

// Auditor follows one ledger. Its methods must not be called concurrently.
type Auditor struct {
	cfg     Config
	ledger  *ledgerClient
	checker *replay.Checker
	log     *slog.Logger
	loaded  bool
	m       *metrics
	round   roundState
	rounds  atomic.Int64
	started time.Time
}

// New returns an Auditor for cfg.
func New(cfg Config) (*Auditor, error) {
	if cfg.Policy == nil || cfg.State == nil {
		return nil, errors.New("audit: Policy and State are required")
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.StepBundles <= 0 {
		cfg.StepBundles = 32
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.UnreachableAfter <= 0 {
		cfg.UnreachableAfter = defaultUnreachableAfter
	}
	if cfg.StaleViewAfter <= 0 {
		cfg.StaleViewAfter = defaultStaleViewAfter
	}
	lc, err := newLedgerClient(cfg.Ledger, cfg.Client)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	a := &Auditor{cfg: cfg, ledger: lc, log: cfg.Logger, m: m, started: cfg.Now().UTC()}
	if err := a.loadMetrics(); err != nil {
		return nil, err
	}
	return a, nil
}

// Result summarises one Step.
type Result struct {
	// CheckpointSize is the size of the ledger's latest verified checkpoint;
	// Audited is how many entries are now audited.
	CheckpointSize, Audited uint64
	// Findings are the findings new in this step.
	Findings []store.FindingRecord
}

// Max returns the highest severity among the findings, and false if none.
func (r Result) Max() (alert.Severity, bool) {
	var max alert.Severity
	for _, f := range r.Findings {
		if f.Severity > max {
			max = f.Severity
		}
	}
	return max, len(r.Findings) > 0
}

// load restores the replay state from the state file, once.
func (a *Auditor) load(origin string) error {
	if a.loaded {
		return nil
	}
	c := replay.NewChecker(origin)
	c.MaxValidity = a.cfg.MaxValidity
	err := a.cfg.State.View(func(tx *store.Tx) error {
		return tx.Repos(func(id string, s *replay.RepoState) error { return c.Load(id, s) })
	})
	if err != nil {
		return err
	}
	a.checker, a.loaded = c, true
	return nil
}

// reset drops the in-memory replay state after a failed transaction, so
// that the next step reloads what committed.
func (a *Auditor) reset() { a.loaded, a.checker = false, nil }

// Run calls Step every interval until ctx is done. Errors of a step are
// logged and retried at the next interval.
func (a *Auditor) Run(ctx context.Context, interval time.Duration) error {
	for {
		if _, err := a.Step(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("audit step failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// Step runs one round: it fetches and verifies the ledger's checkpoint,
// checks it against every checkpoint seen before, catches up on the new
// entries, then gossips with the witnesses and peers. Findings are stored
// and sent to the Sink; an error means the round could not finish (network,
// state file), not that the ledger misbehaved. A ledger that keeps failing
// rounds for Config.UnreachableAfter is a ledger-unreachable finding (the
// round still returns its error). How the round went is stored
// (store.RoundRecord) and exported as metrics.
func (a *Auditor) Step(ctx context.Context) (Result, error) {
	a.round = roundState{}
	var res Result
	err := a.follow(ctx, &res)
	if err == nil {
		err = a.gossip(ctx, &res)
	}
	if err == nil {
		err = a.freshness(ctx, &res)
	}
	if err == nil {
		err = a.signoffDue(ctx, &res)
	}
	if err == nil {
		err = a.review(ctx)
	}
	if h, ok, herr := a.cfg.State.Head(); herr == nil && ok {
		res.Audited = h.Size
	}
	if rerr := a.endRound(ctx, &res, err); rerr != nil && err == nil {
		err = rerr
	}
	return res, err
}

// report stores findings in their own transaction (outside a catch-up
// step) and sends the new ones to the sink.
func (a *Auditor) report(ctx context.Context, res *Result, fs ...alert.Finding) error {
	var added []store.FindingRecord
	err := a.cfg.State.Update(func(tx *store.Tx) error {
		for _, f := range fs {
			if _, err := tx.AddFinding(a.stamp(f)); err != nil {
				return err
			}
		}
		added = tx.Added
		return nil
	})
	if err != nil {
		return err
	}
	a.send(ctx, res, added)
	return nil
}

func (a *Auditor) stamp(f alert.Finding) alert.Finding {
	if f.Time.IsZero() {
		f.Time = a.cfg.Now().UTC()
	}
	return f
}

// send delivers committed findings to the sink.
func (a *Auditor) send(ctx context.Context, res *Result, added []store.FindingRecord) {
	res.Findings = append(res.Findings, added...)
	for _, f := range added {
		a.m.findings.WithLabelValues(string(f.Kind), f.Severity.String()).Inc()
	}
	if a.cfg.Sink == nil {
		return
	}
	for _, f := range added {
		if err := a.cfg.Sink.Alert(ctx, f.Finding); err != nil {
			a.log.Error("couldn't deliver finding", "id", f.ID, "kind", f.Kind, "err", err)
		}
	}
}

func fmtErr(action string, err error) error { return fmt.Errorf("couldn't %s: %w", action, err) }
