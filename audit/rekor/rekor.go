// Package rekor audits a Sigstore Rekor log for a vendor's releases: it
// follows a Rekor v2 log through its C2SP tlog-tiles (c2sp.org/tlog-tiles:
// /checkpoint and entry bundles) or a Rekor v1 log through its REST API
// (/api/v1/log and /api/v1/log/entries?logIndex=N), verifies every
// checkpoint under a C2SP tlog-policy with the device's own checks
// (client/sigstore.VerifyCheckpoint: Rekor v1 ECDSA or v2 Ed25519
// signatures, witness quorum), recomputes the RFC 6962 tree from every entry
// body so that the entries served are the ones signed and each checkpoint
// is consistent with the last one seen, and applies shiplog's vendor-mode
// check: every hashedrekord entry signed by one of the vendor's TUF keys must
// log the digest of a metadata file the vendor actually made. Anything else
// is a critical unexpected-release finding: a stolen or misused key.
//
// State (the checkpoint reached and the compact Merkle range of the tree up
// to it) is one JSON file, rewritten durably after each round, so an
// auditor killed at any point resumes from the last completed round.
//
// Limits: entries of at most sigstore.MaxBodySize; at most Config.MaxEntries
// new entries per round (default 1,000,000); Rekor v1 is read one request
// per entry (Config.Workers at a time).
package rekor

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/client/sigstore"
	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/durable"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// API names how a log is read.
type API string

// The two Rekor generations.
const (
	// Tiles is Rekor v2: c2sp.org/tlog-tiles.
	Tiles API = "tiles"
	// V1 is Rekor v1's REST API.
	V1 API = "v1"
)

// Config configures Run. URL, API, Policy, Vendor and StateDir are required.
type Config struct {
	// URL is the log's base URL: the tiles prefix (v2) or the server (v1).
	URL    string
	API    API
	Policy *policy.Policy
	Vendor *Vendor
	// StateDir holds the auditor's state file (rekor-state.json).
	StateDir string
	// Client makes every request; nil means a client with a 30 s timeout.
	Client *http.Client
	// Workers bounds concurrent Rekor v1 entry requests; 0 means 8.
	Workers int
	// MaxEntries bounds the new entries read in one round; 0 means 1,000,000.
	MaxEntries uint64
	// Logger receives progress; nil discards.
	Logger *slog.Logger
	// Now is the clock for finding times; nil means time.Now.
	Now func() time.Time
}

// Result is what one round found.
type Result struct {
	// Checkpoint is the verified checkpoint the round reached.
	Checkpoint *evidence.Checkpoint
	// Entries is the number of entries read in this round.
	Entries uint64
	// VendorEntries counts the entries signed by the vendor's keys, and
	// Expected those of them logging a metadata file the vendor made.
	VendorEntries, Expected int
	Findings                []alert.Finding
}

// state is the durable position of the auditor in one log.
type state struct {
	Origin     string   `json:"origin"`
	Size       uint64   `json:"size"`
	Range      [][]byte `json:"range"` // compact range [0, Size)
	Checkpoint string   `json:"checkpoint"`
}

const stateFile = "rekor-state.json"

// ErrFork means the log showed the auditor entries or checkpoints that do
// not fit the tree it had verified: the round's findings hold the evidence.
var ErrFork = errors.New("the log is inconsistent with what it showed before")

// Run audits the log once: it reads the latest checkpoint, verifies it,
// reads every entry since the last round, checks that they extend the
// verified tree to the checkpoint's root, checks the vendor's entries, and
// saves the new position. Findings of a broken log (bad checkpoint, rolled
// back or forked tree) end the round with an error wrapping ErrFork, and the
// state is not advanced.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	a, err := newAuditor(cfg)
	if err != nil {
		return nil, err
	}
	return a.round(ctx)
}

type auditor struct {
	cfg Config
	src source
	log *slog.Logger
	rf  *compact.RangeFactory
}

func newAuditor(cfg Config) (*auditor, error) {
	if cfg.Policy == nil || cfg.Vendor == nil || cfg.StateDir == "" {
		return nil, errors.New("audit/rekor: policy, vendor and state directory are required")
	}
	base, err := trimBase(cfg.URL)
	if err != nil {
		return nil, err
	}
	hc := cfg.Client
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	a := &auditor{cfg: cfg, log: cfg.Logger, rf: &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.cfg.Now == nil {
		a.cfg.Now = time.Now
	}
	if a.cfg.MaxEntries == 0 {
		a.cfg.MaxEntries = 1_000_000
	}
	switch cfg.API {
	case Tiles:
		a.src = &tilesSource{base: base, hc: hc}
	case V1:
		workers := cfg.Workers
		if workers <= 0 {
			workers = 8
		}
		a.src = &apiSource{base: base, hc: hc, workers: workers}
	default:
		return nil, fmt.Errorf("unknown log API %q: want %q or %q", cfg.API, Tiles, V1)
	}
	return a, nil
}

func (a *auditor) round(ctx context.Context) (*Result, error) {
	st, err := a.loadState()
	if err != nil {
		return nil, err
	}
	note, err := a.src.Checkpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("couldn't fetch the checkpoint: %w", err)
	}
	res := &Result{}
	cp, err := sigstore.VerifyCheckpoint(note, a.cfg.Policy)
	var untrusted *evidence.UntrustedError
	if errors.As(err, &untrusted) {
		// No key of the policy signed it: that proves nothing against the
		// log and is most often a policy naming another log key. Before
		// any checkpoint verified it is a configuration error; afterwards
		// a warning. Never a fork.
		if st.Size == 0 {
			return res, fmt.Errorf("the log's checkpoint is not signed by a log key of the policy: %w", err)
		}
		f := a.finding(alert.KindBadCheckpoint, "the log's checkpoint is not signed by a log key of the policy: "+err.Error(), map[string]string{"checkpoint": string(note)})
		f.Severity = alert.Warning
		res.Findings = append(res.Findings, f)
		return res, err
	}
	if err != nil {
		f := a.finding(alert.KindBadCheckpoint, "the log's checkpoint does not verify under the policy: "+err.Error(), map[string]string{"checkpoint": string(note)})
		res.Findings = append(res.Findings, f)
		return res, fmt.Errorf("%w: %v", ErrFork, err)
	}
	res.Checkpoint = cp
	if st.Origin != "" && st.Origin != cp.Origin {
		// Rekor v1 starts a new tree (shard) under a new origin; the old
		// tree is frozen. Follow the new one from its start.
		a.log.Info("log moved to a new tree", "from", st.Origin, "to", cp.Origin)
		st = &state{}
	}
	if cp.Size < st.Size {
		f := a.finding(alert.KindFork, fmt.Sprintf("the log's checkpoint is smaller (%d) than one it signed before (%d)", cp.Size, st.Size),
			map[string]string{"checkpoint": string(note), "previous": st.Checkpoint})
		res.Findings = append(res.Findings, f)
		return res, ErrFork
	}
	r, err := a.rf.NewRange(0, st.Size, st.Range)
	if err != nil {
		return nil, fmt.Errorf("corrupt state %s: %w", filepath.Join(a.cfg.StateDir, stateFile), err)
	}
	end := min(cp.Size, st.Size+a.cfg.MaxEntries)
	if err := a.readEntries(ctx, r, st.Size, end, cp.Size, res); err != nil {
		return res, err
	}
	if end == cp.Size {
		root, err := r.GetRootHash(nil)
		if err != nil {
			return nil, err
		}
		if [32]byte(root) != cp.Hash {
			f := a.finding(alert.KindTreeMismatch, "the entries the log serves, appended to the tree verified before, do not hash to its signed checkpoint's root: the log forked or serves other entries",
				map[string]string{"checkpoint": string(note), "previous": st.Checkpoint, "computed_root": hex.EncodeToString(root)})
			res.Findings = append(res.Findings, f)
			return res, ErrFork
		}
		st.Checkpoint = string(note)
	}
	st.Origin, st.Size, st.Range = cp.Origin, end, r.Hashes()
	return res, a.saveState(st)
}

// readEntries reads entries [start, end) of the tree of size, appends
// their leaf hashes to r and checks the vendor's ones.
func (a *auditor) readEntries(ctx context.Context, r *compact.Range, start, end, size uint64, res *Result) error {
	const step = 1024
	for lo := start; lo < end; lo += step {
		hi := min(lo+step, end)
		bodies, err := a.src.Entries(ctx, lo, hi, size)
		if err != nil {
			return fmt.Errorf("couldn't read entries %d-%d: %w", lo, hi, err)
		}
		if uint64(len(bodies)) != hi-lo {
			return fmt.Errorf("read %d entries, want %d", len(bodies), hi-lo)
		}
		for i, body := range bodies {
			if err := r.Append(rfc6962.DefaultHasher.HashLeaf(body), nil); err != nil {
				return err
			}
			if f, mine, ok := a.cfg.Vendor.check(body); mine {
				res.VendorEntries++
				if ok {
					res.Expected++
				} else {
					f.Time, f.Index = a.cfg.Now().UTC(), alert.At(lo+uint64(i))
					f.Log = a.cfg.URL
					res.Findings = append(res.Findings, f)
				}
			}
		}
		res.Entries += hi - lo
	}
	return nil
}

func (a *auditor) finding(kind alert.Kind, msg string, ev map[string]string) alert.Finding {
	return alert.Finding{Time: a.cfg.Now().UTC(), Severity: alert.Critical, Kind: kind, Log: a.cfg.URL, Message: msg, Evidence: ev}
}

func (a *auditor) loadState() (*state, error) {
	path := filepath.Join(a.cfg.StateDir, stateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &state{}, nil
	}
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("corrupt state %s: %w", path, err)
	}
	if st.Checkpoint != "" {
		// The saved checkpoint must still verify: a changed policy or a
		// tampered file is reported, never followed.
		if _, err := sigstore.VerifyCheckpoint([]byte(st.Checkpoint), a.cfg.Policy); err != nil {
			return nil, fmt.Errorf("state %s: saved checkpoint no longer verifies under the policy: %w", path, err)
		}
	}
	return &st, nil
}

func (a *auditor) saveState(st *state) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(a.cfg.StateDir, 0o700); err != nil {
		return err
	}
	return durable.WriteFile(filepath.Join(a.cfg.StateDir, stateFile), b, 0o600)
}

// digests returns the SHA-256 and SHA-512 of b, the digests a
// hashedrekord of b can carry.
func digests(b []byte) (string, string) {
	s256 := sha256.Sum256(b)
	s512 := sha512.Sum512(b)
	return hex.EncodeToString(s256[:]), hex.EncodeToString(s512[:])
}
