package device

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/shiplog/shiplog/client/approval"
	"github.com/shiplog/shiplog/client/install"
	"github.com/shiplog/shiplog/client/ledger"
	"github.com/shiplog/shiplog/client/state"
	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/durable"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// Options are per-run settings of a Device.
type Options struct {
	// Time is the reference time for every expiry check; zero means now.
	Time time.Time
	// HTTPClient is used for the repository and the ledger; nil means
	// update.NewHTTPClient().
	HTTPClient *http.Client
	// Logger receives progress; nil discards.
	Logger *slog.Logger
	// Fault is a test hook called at every step of an install.
	Fault install.Fault
	// Yes approves updates that the approval mode says to ask about.
	Yes bool
	// Prompt asks the user about an update (download and ask); nil, with
	// Yes unset, declines.
	Prompt func(*approval.Summary) (bool, error)
	// Limits bound the update loop.
	Limits update.Limits
}

// Device is an opened state directory. It holds the directory's lock until
// Close. Not safe for concurrent use.
type Device struct {
	dir    string
	cfg    *Config
	policy *policy.Policy
	store  state.Store
	inst   install.Installer
	opts   Options
	log    *slog.Logger
	unlock func()
}

// Init creates a state directory: the configuration, the tlog-policy and a
// trusted state holding only root (which must be validly self-signed).
// It refuses a directory that already holds a device.
func Init(dir string, cfg Config, root, policyText []byte) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	pol, err := policy.Parse(policyText)
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	if err := checkWindowPolicy(&cfg, pol); err != nil {
		return err
	}
	if _, err := trustedmetadata.New(root); err != nil {
		return fmt.Errorf("trusted root: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	st := state.Store{Dir: dir}
	switch _, err := st.Load(); {
	case err == nil:
		return fmt.Errorf("%s already holds a device: init never replaces what a device trusts; to start again (another root, repository id or policy), move %s away or give another --data-dir: the new device trusts only the root you give it and has nothing installed", dir, dir)
	case !errors.Is(err, state.ErrNoState):
		return fmt.Errorf("%s holds device state that init cannot read, and never overwrites: %w", dir, err)
	}
	if err := writeConfig(dir, &cfg, policyText); err != nil {
		return fmt.Errorf("couldn't write config: %w", err)
	}
	return st.Create(&state.State{Root: root})
}

// Open opens a state directory, takes its lock, checks the trusted state
// (corrupt state is reported, never overwritten) and recovers from an
// interrupted install: the installer is settled on the version the trusted
// state names, rolling back a version switched to but never committed.
func Open(dir string, o Options) (*Device, error) {
	st := state.Store{Dir: dir}
	unlock, err := st.Lock()
	if errors.Is(err, state.ErrLocked) {
		return nil, inUseError{err}
	}
	if err != nil {
		return nil, err
	}
	d := &Device{dir: dir, store: st, opts: o, unlock: unlock, log: o.Logger}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.cfg, d.policy, err = loadConfig(dir); err != nil {
		unlock()
		return nil, err
	}
	s, err := st.Load()
	if err != nil {
		unlock()
		return nil, err
	}
	d.inst = d.cfg.installer(dir, o.Fault)
	if err := d.inst.Settle(s.InstalledID()); err != nil {
		unlock()
		return nil, fmt.Errorf("couldn't restore the installed version %q: %w", s.InstalledID(), err)
	}
	return d, nil
}

// ErrInUse matches Open's error when it could not take the state's lock
// (another process is updating the device); ReadStatus still answers then.
var ErrInUse = errors.New("device state in use by another process")

type inUseError struct{ err error }

func (e inUseError) Error() string        { return e.err.Error() }
func (e inUseError) Unwrap() error        { return e.err }
func (e inUseError) Is(target error) bool { return target == ErrInUse }

// Close releases the state directory.
func (d *Device) Close() { d.unlock() }

// Config returns the device's configuration.
func (d *Device) Config() Config { return *d.cfg }

// Result is the outcome of Check, Update or InstallBundle.
type Result struct {
	Summary *approval.Summary `json:"summary,omitempty"`
	Action  approval.Action   `json:"action"`
	// Installed reports that a new version was installed and committed.
	Installed bool   `json:"installed"`
	Version   string `json:"version,omitempty"`
	Message   string `json:"message"`
}

func (d *Device) fault(step string) {
	if d.opts.Fault != nil {
		d.opts.Fault(step)
	}
}

func (d *Device) httpClient() *http.Client {
	if d.opts.HTTPClient != nil {
		return d.opts.HTTPClient
	}
	return update.NewHTTPClient()
}

func (d *Device) ledgerClient() *ledger.Client {
	return &ledger.Client{URL: d.cfg.Ledger, HTTP: &http.Client{Transport: d.httpClient().Transport, Timeout: 30 * time.Second}}
}

func (d *Device) remote() *update.HTTPRemote {
	return d.cfg.Download.remote(d.cfg.metadataURL(), d.cfg.targetsURL(), d.httpClient())
}

func (d *Device) client() *update.Client {
	g := &update.Gate{Policy: d.policy, Repository: d.cfg.Repository}
	if d.cfg.Ledger != "" {
		g.Ledger = d.ledgerClient()
	}
	// Rekor v1 logs named with a URL in the policy give consistency proofs.
	g.Rekor = &update.RekorConsistency{HTTP: &http.Client{Transport: d.httpClient().Transport, Timeout: 30 * time.Second}}
	return &update.Client{
		Remote: d.remote(),
		Gate:   g, Time: d.opts.Time, Limits: d.opts.Limits, Logger: d.log,
	}
}

func trustedOf(s *state.State) update.Trusted {
	return update.Trusted{Root: s.Root, Timestamp: s.Timestamp, Snapshot: s.Snapshot, Targets: s.Targets, Checkpoints: s.Checkpoints}
}

// Check refreshes the metadata and reports what an update would change. It
// never changes the trusted state or the installed version.
func (d *Device) Check(ctx context.Context) (*Result, error) {
	s, err := d.store.Load()
	if err != nil {
		return nil, err
	}
	sess, err := d.client().Refresh(ctx, trustedOf(s))
	if err != nil {
		return nil, d.failed(err)
	}
	p, err := d.planOnline(ctx, sess, s)
	if err != nil {
		return nil, d.failed(err)
	}
	res := &Result{Summary: p.summary, Action: approval.Show, Message: p.message()}
	if held, err := d.release(p); err != nil {
		res.Message = err.Error()
	} else if held != nil {
		res.Message = held.Message
	}
	return res, nil
}

// Update runs an online update under the approval mode: refresh and verify
// (TUF and the transparency gate), show or ask as the mode says, download
// into a staged version, switch to it, and only then commit the trusted
// state. Any failure leaves the trusted state and the installed version as
// they were.
func (d *Device) Update(ctx context.Context) (*Result, error) {
	if d.cfg.Approval == approval.Never {
		return &Result{Action: approval.Skip, Message: "approval mode is never: not checking for updates"}, nil
	}
	s, err := d.store.Load()
	if err != nil {
		return nil, err
	}
	sess, err := d.client().Refresh(ctx, trustedOf(s))
	if err != nil {
		return nil, d.failed(err)
	}
	p, err := d.planOnline(ctx, sess, s)
	if err != nil {
		return nil, d.failed(err)
	}
	action := approval.Decide(d.cfg.Approval, p.summary)
	if action == approval.Show && !p.summary.Empty() {
		return &Result{Summary: p.summary, Action: action, Message: p.message()}, nil
	}
	if held, err := d.release(p); held != nil || err != nil {
		return held, err
	}
	return d.apply(ctx, s, sess, p, action, sess.Download)
}

func (d *Device) failed(err error) error {
	var fork *evidence.ForkError
	if !errors.As(err, &fork) {
		return err
	}
	path, werr := d.writeFork(fork.Evidence)
	if werr != nil {
		return fmt.Errorf("%w (and the fork evidence could not be saved: %v)", err, werr)
	}
	return fmt.Errorf("%w: evidence written to %s (check it with shiplog-device verify-evidence)", err, path)
}

// writeFork saves fork evidence durably in DIR/evidence.
func (d *Device) writeFork(f evidence.Fork) (string, error) {
	b := f.Format()
	sum := sha256.Sum256(b)
	dir := filepath.Join(d.dir, "evidence")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "fork-"+hex.EncodeToString(sum[:8])+".txt")
	if err := durable.CreateFile(path, b, 0o644); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	return path, nil
}

// VerifyEvidence re-checks a fork evidence file under policyText: both
// checkpoints carry valid signatures of the same log and are not
// consistent. conclusive reports equal sizes with different roots.
func VerifyEvidence(b, policyText []byte) (conclusive bool, err error) {
	p, err := policy.Parse(policyText)
	if err != nil {
		return false, fmt.Errorf("policy: %w", err)
	}
	f, err := evidence.ParseFork(b)
	if err != nil {
		return false, err
	}
	return evidence.VerifyFork(f, p)
}

// PolicyText returns the device's tlog-policy file.
func (d *Device) PolicyText() ([]byte, error) {
	return readLimited(filepath.Join(d.dir, policyFile), policy.MaxSize)
}

// planOnline resolves the targets the device installs.
func (d *Device) planOnline(ctx context.Context, sess *update.Session, s *state.State) (*plan, error) {
	targets := map[string]*metadata.TargetFiles{}
	if len(d.cfg.Targets) == 0 {
		all, err := sess.AllTargets(ctx)
		if err != nil {
			return nil, err
		}
		targets = all
	} else {
		for _, p := range d.cfg.Targets {
			t, err := sess.Target(ctx, p)
			if err != nil {
				return nil, err
			}
			targets[p] = t
		}
	}
	p, err := newPlan(d.cfg.Repository, sess, s, targets)
	if err != nil {
		return nil, err
	}
	if err := d.signoff(ctx, sess, p, d.onlineSources(d.remote())); err != nil {
		return nil, err
	}
	return p, d.assess(p)
}

func sortedPaths[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
