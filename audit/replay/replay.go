// Package replay is the auditor's pure core: it re-checks every
// shiplog/release/v1 log entry (docs/spec/entry.md) against the TUF 1.0 rules
// as the log's own history defines them, and says what is wrong.
//
// Replaying a log means, per repository: its first entry is its root (trust
// on first use, TUF 1.0 §5.2); each later root version N+1 is signed by the
// thresholds of root N and of itself (§5.3.4); the top-level targets role is
// signed by the keys the latest logged root gives it (§5.6.3), and a delegated
// targets role by the keys that the latest logged version of a current
// delegating targets role lists for it (§5.6.6); a delegator is current
// while its latest valid version meets the keys its own delegator (the
// root, for the top-level targets) currently gives it
// (docs/spec/versions.md, "Delegators"). Versions only go up per repository and
// role, within a role's version sequence: a rotation of a targets role's keys
// that leaves its latest valid version unverifiable starts the role's
// versions again (docs/spec/versions.md, tufcheck.TargetsFloor). No two
// different metadata files share a repository, role and version
// (equivocation), whatever the sequence. The signing rule itself is client/tufcheck, the one
// the ledger applies when it accepts a release and the device when it
// installs one.
//
// Expiry. A log entry carries no time, and a tlog-tiles log publishes only its
// latest checkpoint, so when an entry was logged is known only within bounds:
// LoggedBy (it was in the log then: the earliest time this auditor or a
// cosigning witness saw a checkpoint covering it) and LoggedAfter (it was not
// covered by the previous checkpoint this auditor verified, zero when the
// auditor saw none, as when it catches up on an old log). Replay reports
// metadata that expired before LoggedAfter (expired-when-logged, a warning:
// the ledger must refuse expired metadata), metadata that expired before
// LoggedBy when LoggedAfter is unknown (info only: it may have been valid
// when logged), and an expiry further than MaxValidity past LoggedBy.
// Replay never refuses a release for expiry: expired metadata still moves
// the keys and versions on, as it did for every device that took it in time.
//
// It is pure: bytes and times in, findings and releases out; no network, no
// clock. Earlier releases are looked up through History, the only I/O, which
// the caller backs with its store. CheckAll replays a batch of entries with
// the decoding and signature checks spread over every core and the results
// applied in log order: its outputs are exactly Check's, one entry at a time.
// Each metadata file is decoded once (tufcheck.DecodeUnverified), and a
// targets role's latest version is not verified again for the version floor
// while the signer it was verified under is still current.
package replay

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/client/capability"
	"github.com/shiplog/shiplog/client/tufcheck"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// DefaultMaxValidity is the longest expiry past LoggedBy that replay accepts
// without a finding: ten years.
const DefaultMaxValidity = 10 * 365 * 24 * time.Hour

// maxChangedTargets bounds Release.Changed.
const maxChangedTargets = 32

// Release is what the auditor keeps about one logged entry.
type Release struct {
	Index   uint64    `json:"index"`
	Repo    string    `json:"repo"`
	Role    string    `json:"role"`
	Version uint64    `json:"version"`
	SHA256  string    `json:"sha256"` // lowercase hex
	Length  uint64    `json:"length"`
	Seen    time.Time `json:"seen"` // LoggedBy of the entry
	// PublicSince is since when the entry is public by the witness
	// quorum's cosignature timestamps on the checkpoint this auditor first
	// verified covering it (docs/spec/publicity.md); zero when unknown.
	// A device holding a proof under an earlier checkpoint may see an
	// earlier time.
	PublicSince time.Time `json:"public_since,omitzero"`
	Expires     time.Time `json:"expires,omitzero"`
	// Changed names the targets added (+), removed (-) or modified (~)
	// against the previous valid version of the role, at most 32, sorted.
	Changed []string `json:"changed,omitempty"`
	// ChangedMore counts the changes left out of Changed.
	ChangedMore int `json:"changed_more,omitempty"`
	// Valid reports whether the release passed every check that can refuse
	// it (signatures, versions, metadata bytes); expiry findings do not count.
	Valid bool `json:"valid"`
}

// History looks up the first logged release of a repository, role and
// version. Implementations return ok=false when there is none and an error
// only when the lookup itself failed.
type History interface {
	Release(repo, role string, version uint64) (r Release, ok bool, err error)
}

// Input is one log entry with what the auditor fetched for it.
type Input struct {
	Index uint64
	Entry []byte
	// Metadata are the bytes served for the entry's sha256, nil when none
	// could be fetched. Replay checks them against the entry.
	Metadata []byte
	// LoggedBy and LoggedAfter bound when the entry was logged; see the
	// package documentation. LoggedAfter may be zero.
	LoggedBy, LoggedAfter time.Time
	// PublicSince is the entry's public-since time, zero when unknown.
	PublicSince time.Time
}

// Output is what replay found about one entry.
type Output struct {
	Findings []alert.Finding
	// Release is nil only when the entry itself did not parse.
	Release *Release
	// Record reports whether Release is the first of its repository, role and
	// version and so must be added to History.
	Record bool
}

// Checker replays a log's entries in index order. Its state is the trusted
// metadata of each repository, which State and Load persist.
//
// Entries of one repository must be checked one at a time, in index order;
// Check may be called concurrently for entries of different repositories
// (their replays share nothing), with History implementations that allow it.
// Entries that do not parse belong to no repository. The other methods
// (CheckAll included) must not run concurrently with Check.
type Checker struct {
	// Log is the origin named in findings.
	Log string
	// MaxValidity bounds expiries past LoggedBy; zero means DefaultMaxValidity.
	MaxValidity time.Duration

	mu    sync.Mutex // guards the maps, not the repositories in them
	repos map[string]*repo
	dirty map[string]bool
}

func (c *Checker) repo(id string) *repo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.repos[id]
}

func (c *Checker) setRepo(id string, r *repo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.repos[id] = r
	c.dirty[id] = true
}

func (c *Checker) markDirty(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirty[id] = true
}

// repo is the replayed, trusted state of one repository.
type repo struct {
	rootBytes []byte
	root      *tufcheck.Root
	roles     map[string]*role // "root" included, for its version
	// current caches currentDelegators until the root or a targets role
	// changes (changed); nil: not computed.
	current []string
}

// changed drops what was computed from the repository's root and roles.
func (r *repo) changed() { r.current = nil }

// released updates what was computed after role n's new valid version t
// (prev the one it replaces, nil if none), verified under the root or a
// current delegator. When neither prev nor t delegates, no other role's
// standing depends on n: the current delegators stay, n among them;
// otherwise they are computed again.
func (r *repo) released(n string, prev, t *tufcheck.Targets) {
	if len(r.current) == 0 || n == metadata.TARGETS || delegates(prev) || delegates(t) {
		r.changed()
		return
	}
	i, found := slices.BinarySearch(r.current[1:], n) // r.current[0] is the top-level targets
	if !found {
		r.current = slices.Insert(r.current, i+1, n)
	}
}

// delegates reports whether t delegates to any role.
func delegates(t *tufcheck.Targets) bool {
	if t == nil || t.Signed.Delegations == nil {
		return false
	}
	d := t.Signed.Delegations
	return len(d.Roles) > 0 || d.SuccinctRoles != nil
}

// role is the latest valid logged version of one role.
type role struct {
	version uint64
	bytes   []byte            // targets roles only
	targets *tufcheck.Targets // targets roles only
	// signer is what targets was verified under in this process: the
	// repository's root for the top-level targets role, the delegating
	// role's targets for a delegated one; nil when unknown (loaded from the
	// state). While it is still the repository's current signer, targets
	// still meets its threshold and floor needs no second verification.
	signer any
	// notUnder holds the delegators' targets (by identity) that targets was
	// found not to meet, so that a role left out of the current
	// delegators is not verified again against the same ones.
	notUnder map[any]bool
}

// NewChecker returns a Checker with no repositories, for the log origin.
func NewChecker(origin string) *Checker {
	return &Checker{Log: origin, repos: map[string]*repo{}, dirty: map[string]bool{}}
}

var errNoEntry = errors.New("entry does not parse")

// Check replays one entry. Entries must be given in index order, each once.
// A History error is returned as is and leaves the Checker unchanged.
func (c *Checker) Check(h History, in Input) (Output, error) {
	return c.apply(h, prepare(in))
}

// apply replays one prepared entry against the state (see Check).
func (c *Checker) apply(h History, p *prepared) (Output, error) {
	in := p.in
	if !p.isRelease {
		return Output{Findings: c.notRelease(in)}, nil
	}
	e := p.e
	rel := &Release{Index: in.Index, Repo: e.Repo, Role: e.Role, Version: e.Version,
		SHA256: hex.EncodeToString(e.SHA256[:]), Length: e.Length, Seen: in.LoggedBy, PublicSince: in.PublicSince}
	out := Output{Release: rel}
	prior, seen, err := h.Release(e.Repo, e.Role, e.Version)
	if err != nil {
		return Output{}, err
	}
	out.Record = !seen
	if seen {
		out.Findings = append(out.Findings, c.repeated(in, rel, prior))
	}
	if p.u == nil {
		out.Findings = append(out.Findings, c.metadataProblem(in, rel, e))
		return out, nil
	}
	if seen && prior.SHA256 == rel.SHA256 {
		return out, nil // a replay of the same bytes: reported, nothing new to check
	}
	out.Findings = append(out.Findings, c.replay(p, rel, seen)...)
	return out, nil
}

// notRelease reports a log entry that is not a shiplog/release/v1 entry.
func (c *Checker) notRelease(in Input) []alert.Finding {
	return []alert.Finding{c.finding(in, nil, alert.Critical, alert.KindMalformedEntry,
		"log entry is not a canonical shiplog/release/v1 entry", map[string]string{"entry_sha256": hexSum(in.Entry)})}
}

// repeated reports a second entry for a repository, role and version.
func (c *Checker) repeated(in Input, rel *Release, prior Release) alert.Finding {
	ev := map[string]string{"first_index": fmt.Sprint(prior.Index), "first_sha256": prior.SHA256, "sha256": rel.SHA256}
	if prior.SHA256 == rel.SHA256 {
		return c.finding(in, rel, alert.Warning, alert.KindDuplicate,
			fmt.Sprintf("the same metadata was logged again (first at index %d)", prior.Index), ev)
	}
	return c.finding(in, rel, alert.Critical, alert.KindEquivocation,
		fmt.Sprintf("two different metadata files for one version (first at index %d)", prior.Index), ev)
}

func (c *Checker) metadataProblem(in Input, rel *Release, e entry.Entry) alert.Finding {
	if in.Metadata == nil {
		return c.finding(in, rel, alert.Critical, alert.KindMetadataMissing,
			"the ledger does not serve the metadata this entry commits to", nil)
	}
	return c.finding(in, rel, alert.Critical, alert.KindMetadataMismatch,
		"the metadata served does not match the entry's sha256 and length",
		map[string]string{"served_sha256": hexSum(in.Metadata), "served_length": fmt.Sprint(len(in.Metadata))})
}

// replay checks the metadata of a new repository, role and version against
// the repository's replayed state and, when it is valid, advances the state.
// equivocated reports that another file of this version was logged before,
// which Check has reported already.
func (c *Checker) replay(p *prepared, rel *Release, equivocated bool) []alert.Finding {
	in := p.in
	hdr, err := p.u.Header()
	if err != nil {
		return []alert.Finding{c.finding(in, rel, alert.Critical, alert.KindMalformedMeta, "metadata does not parse as TUF metadata", nil)}
	}
	rel.Expires = hdr.Expires.UTC()
	wantType := metadata.TARGETS
	if rel.Role == metadata.ROOT {
		wantType = metadata.ROOT
	}
	if hdr.Type != wantType || rel.Role == metadata.SNAPSHOT || rel.Role == metadata.TIMESTAMP {
		return []alert.Finding{c.finding(in, rel, alert.Critical, alert.KindWrongRole,
			fmt.Sprintf("metadata of type %q logged as role %q", hdr.Type, rel.Role), nil)}
	}
	if hdr.Version < 1 || uint64(hdr.Version) != rel.Version {
		return []alert.Finding{c.finding(in, rel, alert.Critical, alert.KindVersionMismatch,
			fmt.Sprintf("metadata says version %d", hdr.Version), nil)}
	}
	var fs []alert.Finding
	r := c.repo(rel.Repo)
	switch {
	case r == nil && rel.Role != metadata.ROOT:
		return []alert.Finding{c.finding(in, rel, alert.Critical, alert.KindUnknownRepo,
			"release of a repository whose root was never logged", nil)}
	case r == nil:
		fs = c.firstRoot(p, rel)
	case rel.Role == metadata.ROOT:
		fs = c.nextRoot(p, rel, r, equivocated)
	default:
		fs = c.targets(p, rel, r, equivocated)
	}
	if rel.Valid {
		fs = append(fs, c.expiry(in, rel)...)
	}
	return fs
}

func (c *Checker) firstRoot(p *prepared, rel *Release) []alert.Finding {
	in := p.in
	var root *tufcheck.Root
	var err error
	if sp := p.spec; sp != nil && sp.first {
		root, err = sp.root, sp.err
	} else {
		root, err = tufcheck.InitialRootDecoded(p.u, time.Time{})
	}
	if err != nil {
		return []alert.Finding{c.tufFinding(in, rel, err)}
	}
	c.setRepo(rel.Repo, &repo{rootBytes: in.Metadata, root: root, roles: map[string]*role{metadata.ROOT: {version: rel.Version}}})
	rel.Valid = true
	return nil
}

func (c *Checker) nextRoot(p *prepared, rel *Release, r *repo, equivocated bool) []alert.Finding {
	in := p.in
	cur := r.roles[metadata.ROOT].version
	switch {
	case rel.Version <= cur:
		return c.rollback(in, rel, cur, equivocated)
	case rel.Version > cur+1:
		return []alert.Finding{c.finding(in, rel, alert.Critical, alert.KindRootGap,
			fmt.Sprintf("root v%d logged after v%d: the versions between were never logged, so its keys cannot be checked", rel.Version, cur), nil)}
	}
	var root *tufcheck.Root
	var err error
	if sp := p.spec; sp != nil && !sp.first && sp.under == any(r.root) {
		root, err = sp.root, sp.err
	} else {
		root, err = tufcheck.NextRootDecoded(r.root, p.u, time.Time{})
	}
	if err != nil {
		return []alert.Finding{c.tufFinding(in, rel, err)}
	}
	r.rootBytes, r.root = in.Metadata, root
	r.roles[metadata.ROOT] = &role{version: rel.Version}
	r.changed()
	c.markDirty(rel.Repo)
	rel.Valid = true
	return nil
}

// targets checks a top-level or delegated targets role.
func (c *Checker) targets(p *prepared, rel *Release, r *repo, equivocated bool) []alert.Finding {
	in := p.in
	prev := r.roles[rel.Role]
	if floor := r.floor(rel.Role, prev); prev != nil && rel.Version <= floor {
		return c.rollback(in, rel, floor, equivocated)
	}
	var t *tufcheck.Targets
	var signer any
	var err error
	switch sp := p.spec; {
	case rel.Role == metadata.TARGETS && sp != nil && sp.under == any(r.root):
		t, signer, err = sp.targets, r.root, sp.err
	case rel.Role == metadata.TARGETS:
		signer = r.root
		t, err = tufcheck.TopLevelTargetsDecoded(r.root, p.u, time.Time{})
	case sp != nil && sp.sameDelegators(r, rel.Role):
		t, signer, err = sp.targets, sp.signer, sp.err
	default:
		t, signer, err = c.delegated(r, rel.Role, p.u)
	}
	var prevTargets *tufcheck.Targets
	if prev != nil {
		prevTargets = prev.targets
	}
	if err != nil {
		// Show what the refused release would have changed: for a stolen
		// key, that is what the thief shipped.
		if u := p.u.Targets(); u != nil {
			rel.Changed, rel.ChangedMore = changed(prevTargets, (*tufcheck.Targets)(u))
		}
		return []alert.Finding{c.tufFinding(in, rel, err)}
	}
	rel.Changed, rel.ChangedMore = changed(prevTargets, t)
	r.roles[rel.Role] = &role{version: rel.Version, bytes: in.Metadata, targets: t, signer: signer}
	r.released(rel.Role, prevTargets, t)
	c.markDirty(rel.Repo)
	rel.Valid = true
	return c.escalations(in, rel, prevTargets, t)
}

// escalations reports, as public findings, every target of a valid
// targets release that declares a capability the role's previous valid
// version did not declare for it (a new target gains all it declares), and
// every capability list that does not parse. At most maxChangedTargets
// findings per release.
func (c *Checker) escalations(in Input, rel *Release, prev, next *tufcheck.Targets) []alert.Finding {
	var out []alert.Finding
	for _, name := range sortedTargets(next) {
		if len(out) == maxChangedTargets {
			break
		}
		caps, err := capability.FromCustom(customOf(next.Signed.Targets[name]))
		if err != nil {
			out = append(out, c.finding(in, rel, alert.Warning, alert.KindMalformedCapabilities,
				fmt.Sprintf("target %q declares capabilities that do not parse (devices refuse it): %v", name, err), map[string]string{"target": name}))
			continue
		}
		var was capability.Set
		if prev != nil {
			if o := prev.Signed.Targets[name]; o != nil {
				was, _ = capability.FromCustom(customOf(o))
			}
		}
		if gained, _ := capability.Diff(was, caps); len(gained) > 0 {
			out = append(out, c.finding(in, rel, alert.Info, alert.KindCapabilityEscalation,
				fmt.Sprintf("%s v%d: target %q gains %s", rel.Role, rel.Version, name, strings.Join(gained, ", ")),
				map[string]string{"target": name, "gained": strings.Join(gained, " ")}))
		}
	}
	return out
}

func customOf(t *metadata.TargetFiles) []byte {
	if t == nil || t.Custom == nil {
		return nil
	}
	return *t.Custom
}

func sortedTargets(t *tufcheck.Targets) []string {
	out := make([]string, 0, len(t.Signed.Targets))
	for name := range t.Signed.Targets {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// floor is the version a new version of role must be above: the latest
// valid version while it still meets the threshold of the role's current
// keys (for a delegated role, those that one of its current delegators
// lists), else 0, a new sequence after a key rotation (the rule of
// tufcheck.TargetsFloor, which the ledger and the device apply too).
func (r *repo) floor(name string, prev *role) uint64 {
	switch {
	case prev == nil:
		return 0
	case prev.targets == nil:
		return prev.version
	case name == metadata.TARGETS && prev.signer == any(r.root):
		return prev.version // verified under this very root: it still does
	case name == metadata.TARGETS:
		f := uint64(tufcheck.TargetsFloor(r.root, prev.targets))
		if f > 0 {
			prev.signer = r.root
		}
		return f
	}
	ds := r.delegatorTargets(name)
	for _, d := range ds {
		if prev.signer != nil && prev.signer == any(d) {
			return prev.version // verified under a current delegator: it still does
		}
	}
	for _, d := range ds {
		if f := tufcheck.DelegatedFloor(d, name, prev.targets); f > 0 {
			prev.signer = d
			return uint64(f)
		}
	}
	return 0
}

// delegated verifies a delegated role against the latest valid version of
// each current delegator of the repository that delegates to it: the
// top-level targets first, then the others by name. The first that
// verifies wins. It returns the delegator's targets that verified it.
func (c *Checker) delegated(r *repo, name string, u *tufcheck.Unverified) (*tufcheck.Targets, any, error) {
	return delegatedBy(r.delegatorTargets(name), name, u)
}

// delegatorTargets lists the targets of r.currentDelegators() but name.
func (r *repo) delegatorTargets(name string) []*tufcheck.Targets {
	var out []*tufcheck.Targets
	for _, d := range r.currentDelegators() {
		if d != name {
			out = append(out, r.roles[d].targets)
		}
	}
	return out
}

// delegatedBy verifies a delegated role against each delegator in turn.
// The first that verifies wins.
func delegatedBy(delegators []*tufcheck.Targets, name string, u *tufcheck.Unverified) (*tufcheck.Targets, any, error) {
	var firstErr error
	for _, d := range delegators {
		if !tufcheck.Delegates(d, name) {
			continue
		}
		t, err := tufcheck.DelegatedTargetsDecoded(d, name, u, time.Time{})
		if err == nil {
			return t, d, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("%w: no current targets role delegates to %q (a targets role counts as a delegator only while its latest valid version meets the threshold of the keys root or its own current delegator gives it)", tufcheck.ErrNoDelegation, name)
	}
	return nil, nil, firstErr
}

// currentDelegators lists the repository's current delegators, top-level
// first, then the others by name: the top-level targets while its latest
// valid version meets the threshold of the root's targets keys, and a
// delegated role while its latest valid version meets the threshold of the
// keys that a current delegator other than itself lists for it
// (tufcheck.TargetsCurrent, DelegatedCurrent; docs/spec/versions.md,
// "Delegators"). So after a root rotates a stolen targets key out, the
// thief's targets delegates nothing until a targets signed by the new keys
// is logged, as the ledger and the device hold it.
//
// Cost: a breadth-first walk from the top-level targets over the
// delegations of current delegators, each examined once. A role's signer
// remembers what it was verified under and notUnder what it failed under
// (by identity), so a walk first follows the remembered verdicts and then
// verifies only pairs it never saw; the list is kept until the
// repository's root or a targets role changes.
func (r *repo) currentDelegators() []string {
	if r.current != nil {
		return r.current
	}
	r.current = []string{}
	top := r.roles[metadata.TARGETS]
	if top == nil || top.targets == nil {
		return r.current
	}
	if top.signer != any(r.root) {
		if !tufcheck.TargetsCurrent(r.root, top.targets) {
			return r.current
		}
		top.signer = r.root
	}
	current := map[string]bool{metadata.TARGETS: true}
	queue := []string{metadata.TARGETS}
	type edge struct{ from, to string }
	var deferred []edge // not remembered: verified once the remembered ones are walked
	verify := false
	for {
		for len(queue) > 0 {
			d := queue[0]
			queue = queue[1:]
			for _, n := range r.delegatedBy(d) {
				switch {
				case current[n]:
				case r.meets(d, n, verify):
					current[n] = true
					queue = append(queue, n)
				case !verify:
					deferred = append(deferred, edge{d, n})
				}
			}
		}
		if verify || len(deferred) == 0 {
			break
		}
		verify = true
		for _, e := range deferred {
			if !current[e.to] && r.meets(e.from, e.to, true) {
				current[e.to] = true
				queue = append(queue, e.to)
			}
		}
	}
	r.current = orderedNames(current)
	return r.current
}

// delegatedBy lists the repository's targets roles (by name, sorted) that
// role d delegates to, d itself left out.
func (r *repo) delegatedBy(d string) []string {
	dl := r.roles[d].targets.Signed.Delegations
	if dl == nil {
		return nil
	}
	var out []string
	if dl.SuccinctRoles != nil {
		for n, ro := range r.roles {
			if ro.targets != nil && n != d && dl.SuccinctRoles.IsDelegatedRole(n) {
				out = append(out, n)
			}
		}
		sort.Strings(out)
		return out
	}
	for _, dr := range dl.Roles {
		if ro := r.roles[dr.Name]; ro != nil && ro.targets != nil && dr.Name != d {
			out = append(out, dr.Name)
		}
	}
	return out
}

// meets reports whether role n's latest valid version meets the threshold
// of the keys current delegator d lists for it: remembered (signer,
// notUnder), or, with verify, checked and remembered.
func (r *repo) meets(d, n string, verify bool) bool {
	ro, dt := r.roles[n], r.roles[d].targets
	switch {
	case ro.signer == any(dt):
		return true
	case !verify || ro.notUnder[dt]:
		return false
	case tufcheck.DelegatedCurrent(dt, n, ro.targets):
		ro.signer = dt
		return true
	}
	if ro.notUnder == nil {
		ro.notUnder = map[any]bool{}
	}
	ro.notUnder[dt] = true
	return false
}

// orderedNames lists the names in m: the top-level targets first, then
// the others sorted.
func orderedNames(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		if n != metadata.TARGETS {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	if m[metadata.TARGETS] {
		out = append([]string{metadata.TARGETS}, out...)
	}
	return out
}

// rollback reports a version not above the latest valid one; a second file
// of the latest version itself is only the equivocation already reported.
func (c *Checker) rollback(in Input, rel *Release, cur uint64, equivocated bool) []alert.Finding {
	if equivocated && rel.Version == cur {
		return nil
	}
	return []alert.Finding{c.finding(in, rel, alert.Critical, alert.KindRollback,
		fmt.Sprintf("version %d logged after version %d of the same role", rel.Version, cur),
		map[string]string{"latest_version": fmt.Sprint(cur)})}
}

// tufFinding maps a tufcheck error to a finding.
func (c *Checker) tufFinding(in Input, rel *Release, err error) alert.Finding {
	kind := alert.KindMalformedMeta
	switch {
	case errors.Is(err, tufcheck.ErrThreshold):
		kind = alert.KindBadSignature
	case errors.Is(err, tufcheck.ErrNoDelegation):
		kind = alert.KindNotDelegated
	case errors.Is(err, tufcheck.ErrWrongRole):
		kind = alert.KindWrongRole
	case errors.Is(err, tufcheck.ErrVersion):
		kind = alert.KindRootGap
	}
	return c.finding(in, rel, alert.Critical, kind, err.Error(), nil)
}

// expiry checks what can be known about the expiry; see the package doc.
func (c *Checker) expiry(in Input, rel *Release) []alert.Finding {
	max := c.MaxValidity
	if max == 0 {
		max = DefaultMaxValidity
	}
	exp := rel.Expires
	ev := map[string]string{"expires": exp.Format(time.RFC3339)}
	switch {
	case !in.LoggedAfter.IsZero() && exp.Before(in.LoggedAfter):
		ev["logged_after"] = in.LoggedAfter.UTC().Format(time.RFC3339)
		return []alert.Finding{c.finding(in, rel, alert.Warning, alert.KindExpiredWhenSeen,
			"metadata had expired before it was logged", ev)}
	case in.LoggedAfter.IsZero() && !in.LoggedBy.IsZero() && exp.Before(in.LoggedBy):
		ev["logged_by"] = in.LoggedBy.UTC().Format(time.RFC3339)
		return []alert.Finding{c.finding(in, rel, alert.Info, alert.KindExpiredWhenSeen,
			"metadata had expired when this auditor first saw it logged (it may have been valid when logged)", ev)}
	case !in.LoggedBy.IsZero() && exp.After(in.LoggedBy.Add(max)):
		return []alert.Finding{c.finding(in, rel, alert.Warning, alert.KindExpiryTooFar,
			fmt.Sprintf("metadata expires more than %s after it was logged", max), ev)}
	}
	return nil
}

// changed lists the targets added, removed and modified from a to b.
func changed(a, b *tufcheck.Targets) ([]string, int) {
	var out []string
	old := map[string]*metadata.TargetFiles{}
	if a != nil {
		old = a.Signed.Targets
	}
	for name, tf := range b.Signed.Targets {
		switch o, ok := old[name]; {
		case !ok:
			out = append(out, "+"+name)
		case !o.Equal(*tf):
			out = append(out, "~"+name)
		}
	}
	for name := range old {
		if _, ok := b.Signed.Targets[name]; !ok {
			out = append(out, "-"+name)
		}
	}
	sort.Strings(out)
	if len(out) > maxChangedTargets {
		return out[:maxChangedTargets], len(out) - maxChangedTargets
	}
	return out, 0
}

func (c *Checker) finding(in Input, rel *Release, sev alert.Severity, kind alert.Kind, msg string, ev map[string]string) alert.Finding {
	f := alert.Finding{Severity: sev, Kind: kind, Log: c.Log, Index: alert.At(in.Index), Message: msg, Evidence: ev}
	if rel != nil {
		f.Repo, f.Role, f.Version = rel.Repo, rel.Role, rel.Version
		if f.Evidence == nil {
			f.Evidence = map[string]string{}
		}
		if _, ok := f.Evidence["sha256"]; !ok {
			f.Evidence["sha256"] = rel.SHA256
		}
		if len(rel.Changed) > 0 {
			f.Evidence["targets_changed"] = strings.Join(rel.Changed, " ")
		}
	}
	return f
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
