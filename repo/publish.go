package repo

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/durable"
	"github.com/shiplog/shiplog/repo/keys"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// MaxPolicySize bounds a tlog-policy file.
const MaxPolicySize = 64 << 10

// PublishOptions configures Publish and Register.
type PublishOptions struct {
	// Ledger is the ledger's base URL; "" means the config's "ledger".
	Ledger string
	// Policy is the tlog-policy every proof must satisfy before it is
	// written; nil means the file named by the config's "policy".
	Policy *policy.Policy
	// Wait is how long to wait for each entry's proof (default 30s; the
	// ledger caps one request at 60s, longer waits poll).
	Wait time.Duration
	// SnapshotKey and TimestampKey, when both set, make Publish expose what
	// it logged: a new snapshot and timestamp. Without them Publish only logs.
	SnapshotKey, TimestampKey *keys.Private
	// MoreSnapshotKeys and MoreTimestampKeys are further keys of those
	// roles, signing with the first when a role's threshold is above 1.
	MoreSnapshotKeys, MoreTimestampKeys []*keys.Private
	// Token is the ledger's admin token (Register only).
	Token string
	// ChallengeDir, when Token is empty, registers by proof of control
	// instead (Register only; ids whose first segment is a DNS name): the
	// directory served as https://<host>/ of the id's host, into which
	// Register writes the ledger's challenge for the time of the call.
	ChallengeDir string
	// HTTPClient is used for every request; nil means a client with a 90s timeout.
	HTTPClient *http.Client
	// Logger receives progress; nil discards.
	Logger *slog.Logger
	// Progress, when not nil, receives a line every few seconds while
	// publish waits for a cosigned checkpoint: which witnesses cosigned and
	// which did not answer (as the ledger reports them).
	Progress io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RetryDelay is the first backoff after a 429/503 (default 1s).
	RetryDelay time.Duration
}

// LoggedEntry is one metadata version logged by Publish or Register.
type LoggedEntry struct {
	Role      string `json:"role"`
	Version   int64  `json:"version"`
	Index     uint64 `json:"index"`
	Duplicate bool   `json:"duplicate,omitempty"`
	// ProofFile is the tlog-proof written beside the metadata file.
	ProofFile string `json:"proof_file"`
}

// PublishResult reports what Publish did.
type PublishResult struct {
	Logged []LoggedEntry `json:"logged"`
	// Pending lists staged roles not published because they lack signatures.
	Pending []string `json:"pending,omitempty"`
	// Exposed is the snapshot and timestamp written, nil when not exposed.
	Exposed *Exposure `json:"exposed,omitempty"`
	// NotExposed says why nothing was exposed.
	NotExposed string `json:"not_exposed,omitempty"`
}

// ErrNothingLogged means publish logged nothing although roles are staged:
// they lack signatures (or are otherwise not ready). Commands exit non-zero
// on it, so a script does not carry on as if the release were out.
var ErrNothingLogged = errors.New("nothing logged")

// NothingLogged returns an error wrapping ErrNothingLogged, naming what is
// pending, when nothing was logged and staged roles are pending; nil
// otherwise (something was logged, or nothing was staged).
func (res *PublishResult) NothingLogged() error {
	if len(res.Logged) > 0 || len(res.Pending) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d staged role(s) pending: %s: sign them with `shiplog repo sign` and publish again", ErrNothingLogged, len(res.Pending), strings.Join(res.Pending, "; "))
}

// Publish logs every staged root and targets role version whose signatures
// meet their thresholds, in the safe order (roots by version, then targets,
// then delegated roles, delegators before delegatees): it submits the exact
// bytes to the ledger, waits for the proof, verifies it with
// evidence.VerifyEntry under the policy, writes
// <version>.<role>.json.tlog-proof and only then <version>.<role>.json (and
// root.json) into DIR/metadata. With a snapshot and timestamp key it then
// exposes them: a new snapshot and timestamp, written only after every role
// they list has a verified proof and the whole repository passes the TUF
// client workflow. It refuses to publish anything when the result would be
// a repository that clients reject (for example a root rotation whose new
// targets keys have not signed targets yet).
func Publish(ctx context.Context, dir string, o PublishOptions) (*PublishResult, error) {
	r, err := open(dir, nowOr(o.Now))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	p, lc, err := r.publishSetup(o)
	if err != nil {
		return nil, err
	}
	if r.root == nil {
		return nil, errors.New("the repository's root is not registered with the ledger yet: sign it and run `shiplog repo register`")
	}
	ready, pending, err := r.readySet()
	if err != nil {
		return nil, err
	}
	res := &PublishResult{Logged: []LoggedEntry{}, Pending: pending}
	for _, role := range r.stagedRoles() {
		if !ready[role] {
			continue
		}
		le, err := r.publishRole(ctx, lc, p, o, role)
		if err != nil {
			// Committed roles leave staging now; a crash before this
			// point is resumed by alreadyCommitted on the next run.
			return res, errors.Join(err, r.saveStaging())
		}
		res.Logged = append(res.Logged, *le)
	}
	if err := r.saveStaging(); err != nil {
		return res, err
	}
	if o.SnapshotKey == nil || o.TimestampKey == nil {
		res.NotExposed = "no --snapshot-key and --timestamp-key: logged versions are not exposed to clients yet; run publish again with both keys"
		return res, nil
	}
	if res.Exposed, err = r.expose(p, append([]*keys.Private{o.SnapshotKey}, o.MoreSnapshotKeys...), append([]*keys.Private{o.TimestampKey}, o.MoreTimestampKeys...)); err != nil {
		return res, err
	}
	return res, nil
}

func nowOr(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}

// publishSetup resolves the policy and the ledger client.
func (r *Repo) publishSetup(o PublishOptions) (*policy.Policy, *ledgerClient, error) {
	p, err := r.configuredPolicy(o.Policy)
	if err != nil {
		if errors.Is(err, errNoPolicy) {
			err = fmt.Errorf("%w; proofs are never written unverified", err)
		}
		return nil, nil, err
	}
	ledger := o.Ledger
	if ledger == "" {
		ledger = r.Config.Ledger
	}
	lc, err := newLedgerClient(ledger, o.HTTPClient, o.Logger, o.RetryDelay)
	return p, lc, err
}

// errNoPolicy means neither the caller nor the repository's configuration
// names a tlog-policy.
var errNoPolicy = errors.New("no tlog-policy: pass --policy FILE or set \"policy\" in " + ConfigFile)

// configuredPolicy returns given, or else the policy the repository's
// configuration names (a path relative to the repository directory).
func (r *Repo) configuredPolicy(given *policy.Policy) (*policy.Policy, error) {
	if given != nil {
		return given, nil
	}
	if r.Config.Policy == "" {
		return nil, errNoPolicy
	}
	path := r.Config.Policy
	if !filepath.IsAbs(path) {
		path = filepath.Join(r.Dir, path)
	}
	return LoadPolicy(path)
}

// LoadPolicy reads and parses a C2SP tlog-policy file.
func LoadPolicy(path string) (*policy.Policy, error) {
	b, err := readLimited(path, MaxPolicySize)
	if err != nil {
		return nil, fmt.Errorf("couldn't read policy: %w", err)
	}
	p, err := policy.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return p, nil
}

// readySet decides which staged roles publishing would commit: those whose
// signatures meet every threshold in the view where the roles decided
// before them are committed. It then checks that the resulting repository
// verifies as a whole, and refuses (with what to sign) when it would not.
func (r *Repo) readySet() (map[string]bool, []string, error) {
	ready := map[string]bool{}
	v := view{r, func(role string) bool { return ready[role] }}
	var pending []string
	for _, role := range r.stagedRoles() {
		version, expires, _ := r.stagedInfo(role)
		auth, err := r.authorities(v, role)
		if err != nil {
			return nil, nil, err
		}
		if !allMet(auth) {
			pending = append(pending, fmt.Sprintf("%s v%d (needs %s)", role, version, describeNeeds(auth)))
			continue
		}
		if !expires.After(r.now()) {
			return nil, nil, fmt.Errorf("staged %s v%d expired at %s: restage it with `shiplog repo renew --role %s` and sign again", role, version, expires.Format(time.RFC3339), role)
		}
		ready[role] = true
	}
	if err := r.checkView(v); err != nil {
		return nil, nil, fmt.Errorf("refusing to publish: %w", err)
	}
	return ready, pending, nil
}

func describeNeeds(auth []Authority) string {
	var out string
	for i, a := range auth {
		if i > 0 {
			out += " and "
		}
		out += fmt.Sprintf("%d of %d signatures from %s, has %d", a.Threshold, len(a.KeyIDs), a.Name, len(a.Signed))
	}
	return out
}

// checkView verifies every role reachable in v against its delegator in v
// (go-tuf's VerifyDelegate: threshold of distinct keys) and its expiry.
func (r *Repo) checkView(v view) error {
	root := v.rootMeta()
	if root != nil && root != r.root {
		if r.root != nil {
			if err := r.root.VerifyDelegate("root", root); err != nil {
				return fmt.Errorf("root v%d is not signed by the threshold of root v%d: %w", root.Signed.Version, r.root.Signed.Version, err)
			}
		}
		if err := root.VerifyDelegate("root", root); err != nil {
			return fmt.Errorf("root v%d is not signed by its own threshold: %w", root.Signed.Version, err)
		}
	}
	now := r.now()
	return v.walk(func(d delegation, m *metadata.Metadata[metadata.TargetsType]) error {
		if m == nil {
			return fmt.Errorf("role %s is delegated by %s but has no signed version: sign the staged %s", d.Role, d.Delegator, d.Role)
		}
		var err error
		if d.Delegator == "root" {
			err = root.VerifyDelegate("targets", m)
		} else {
			err = v.targets(d.Delegator).VerifyDelegate(d.Role, m)
		}
		if err != nil {
			return fmt.Errorf("%s v%d would not verify under %s: sign its staged version with the current keys (%w)", d.Role, m.Signed.Version, d.Delegator, err)
		}
		if m.Signed.IsExpired(now) {
			return fmt.Errorf("%s v%d expired at %s: run `shiplog repo renew --role %s` and sign it", d.Role, m.Signed.Version, m.Signed.Expires.Format(time.RFC3339), d.Role)
		}
		return nil
	})
}

// publishRole logs one ready staged role and commits it.
func (r *Repo) publishRole(ctx context.Context, lc *ledgerClient, p *policy.Policy, o PublishOptions, role string) (*LoggedEntry, error) {
	version, _, _ := r.stagedInfo(role)
	body, err := r.stagedBytes(role)
	if err != nil {
		return nil, err
	}
	if done, err := r.alreadyCommitted(role, version, body); done || err != nil {
		if err == nil {
			r.dropStaged(role)
		}
		return &LoggedEntry{Role: role, Version: version, ProofFile: r.proofPath(version, role)}, err
	}
	wait := o.Wait
	if wait <= 0 {
		wait = 30 * time.Second
	}
	resp, err := lc.publish(ctx, r.Config.Repository, role, body, min(wait, proofPoll))
	if err != nil {
		return nil, fmt.Errorf("couldn't log %s v%d: %w", role, version, err)
	}
	pr, err := r.awaitProof(ctx, lc, p, role, version, body, resp, wait, o.Progress)
	if err != nil {
		return nil, err
	}
	if err := r.commit(role, version, body, pr); err != nil {
		return nil, err
	}
	return &LoggedEntry{Role: role, Version: version, Index: resp.Index, Duplicate: resp.Duplicate, ProofFile: r.proofPath(version, role)}, nil
}

// awaitProof returns a tlog-proof for the entry, from the publish response
// or by polling the ledger, verified under p: its entry is rebuilt from the
// bytes we sent, never taken from the ledger. An unverified proof is never
// returned.
func (r *Repo) awaitProof(ctx context.Context, lc *ledgerClient, p *policy.Policy, role string, version int64, body []byte, resp *PublishResponse, wait time.Duration, progress io.Writer) ([]byte, error) {
	e, err := entry.New(r.Config.Repository, role, uint64(version), body)
	if err != nil {
		return nil, err
	}
	leaf := e.LeafHash()
	if resp.LeafHash != hex.EncodeToString(leaf[:]) {
		return nil, fmt.Errorf("ledger returned leaf hash %s for %s v%d, want %x: the ledger logged something else", sanitize([]byte(resp.LeafHash)), role, version, leaf)
	}
	pr := []byte(resp.Proof)
	deadline := r.now().Add(wait)
	for len(pr) == 0 {
		left := deadline.Sub(r.now())
		if left <= 0 {
			msg := fmt.Sprintf("%s v%d is logged at index %d but no cosigned checkpoint covered it within %v", role, version, resp.Index, wait)
			if ws, err := lc.witnesses(ctx); err == nil && len(ws) > 0 {
				cosigned, missing := quorumReport(ws, resp.Index)
				msg += fmt.Sprintf(": the policy's witness quorum was not met (cosigned: %s; not cosigned: %s)", orNone(cosigned), orNone(missing))
			}
			return nil, errors.New(msg + ": run publish again later (the entry stays logged; publish picks it up)")
		}
		if ws, err := lc.witnesses(ctx); err == nil && len(ws) > 0 && progress != nil {
			cosigned, missing := quorumReport(ws, resp.Index)
			fmt.Fprintf(progress, "waiting for a cosigned checkpoint covering %s v%d (index %d, %v left): cosigned by %s; not yet: %s\n",
				role, version, resp.Index, left.Round(time.Second), orNone(cosigned), orNone(missing))
		}
		if pr, err = lc.proof(ctx, resp.LeafHash, min(left, proofPoll)); err != nil {
			var le *LedgerError
			if errors.As(err, &le) && le.Status == http.StatusGatewayTimeout {
				pr = nil
				continue
			}
			return nil, err
		}
	}
	if _, err := evidence.VerifyEntry(r.Config.Repository, role, uint64(version), body, pr, p); err != nil {
		return nil, fmt.Errorf("the ledger's proof for %s v%d does not verify under the policy, not written: %w", role, version, err)
	}
	return pr, nil
}

// proofPoll is how long one request waits for a proof before publish
// reports progress and asks again.
const proofPoll = 5 * time.Second

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// stagedBytes returns the exact bytes a staged role is published as.
func (r *Repo) stagedBytes(role string) ([]byte, error) {
	var b []byte
	var err error
	var max int
	if role == "root" {
		b, err = r.staged.Root.ToBytes(true)
		max = MaxRootSize
	} else {
		b, err = r.staged.Targets[role].ToBytes(true)
		max = MaxTargetsSize
	}
	if err == nil && len(b) > max {
		err = fmt.Errorf("%s is %d bytes, more than TUF clients accept (%d): split it with delegations or hash bins", role, len(b), max)
	}
	return b, err
}

// alreadyCommitted reports whether an earlier, interrupted publish already
// committed exactly these bytes with a proof.
func (r *Repo) alreadyCommitted(role string, version int64, body []byte) (bool, error) {
	old, err := readLimited(r.metaPath(version, role), MaxTargetsSize)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !bytes.Equal(old, body) {
		return false, fmt.Errorf("%s already holds other bytes for %s v%d: stage a new version", r.metaPath(version, role), role, version)
	}
	if !r.logged(version, role) {
		return false, nil
	}
	return true, nil
}

// commit writes the verified proof, then the metadata file (and root.json),
// then drops the role from staging: a crash at any point leaves no exposed
// file without its proof, and a rerun resumes.
func (r *Repo) commit(role string, version int64, body, pr []byte) error {
	return r.commitEvidence(r.proofPath(version, role), pr, role, version, body)
}

// dropStaged removes a committed role from the in-memory staging; the
// caller saves staging.
func (r *Repo) dropStaged(role string) {
	if role == "root" {
		r.staged.Root = nil
	} else {
		delete(r.staged.Targets, role)
	}
}

// Register registers the repository with the ledger (the admin call, with
// o.Token) by logging its signed root version 1, verifies the returned
// proof under the policy, and commits 1.root.json with its tlog-proof.
func Register(ctx context.Context, dir string, o PublishOptions) (*LoggedEntry, error) {
	r, err := open(dir, nowOr(o.Now))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if r.root != nil {
		return nil, fmt.Errorf("the repository is already registered (root v%d is committed)", r.root.Signed.Version)
	}
	if r.staged.Root == nil || r.staged.Root.Signed.Version != 1 {
		return nil, errors.New("no staged root v1: create the repository with `shiplog repo init`")
	}
	if o.Token == "" && o.ChallengeDir == "" {
		return nil, errors.New("no admin token and no challenge directory: pass --token-file FILE (the ledger's admin.token, or a token scoped to the id), or --challenge-dir DIR (the web root of the id's host) to prove control of the id")
	}
	p, lc, err := r.publishSetup(o)
	if err != nil {
		return nil, err
	}
	auth, err := r.authorities(r.working(), "root")
	if err != nil {
		return nil, err
	}
	if !allMet(auth) {
		return nil, fmt.Errorf("root v1 is not signed by its threshold (needs %s): sign it with `shiplog repo sign -d %s --role root --key FILE`", describeNeeds(auth), r.Dir)
	}
	if err := r.staged.Root.VerifyDelegate("root", r.staged.Root); err != nil {
		return nil, err
	}
	body, err := r.stagedBytes("root")
	if err != nil {
		return nil, err
	}
	var resp *PublishResponse
	if o.Token != "" {
		resp, err = lc.register(ctx, r.Config.Repository, o.Token, body)
	} else {
		resp, err = registerByChallenge(ctx, lc, r.Config.Repository, body, o.ChallengeDir, o.Logger)
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't register: %w", err)
	}
	wait := o.Wait
	if wait <= 0 {
		wait = 30 * time.Second
	}
	pr, err := r.awaitProof(ctx, lc, p, "root", 1, body, resp, wait, o.Progress)
	if err != nil {
		return nil, err
	}
	if lc.base.String() != r.Config.Ledger {
		r.Config.Ledger = lc.base.String()
		if err := durable.WriteFile(filepath.Join(r.Dir, ConfigFile), r.Config.Format(), 0o644); err != nil {
			return nil, err
		}
	}
	if err := r.commit("root", 1, body, pr); err != nil {
		return nil, err
	}
	if err := r.saveStaging(); err != nil {
		return nil, err
	}
	return &LoggedEntry{Role: "root", Version: 1, Index: resp.Index, Duplicate: resp.Duplicate, ProofFile: r.proofPath(1, "root")}, nil
}
