package log

import (
	"fmt"
	"time"

	"github.com/shiplog/shiplog/client/tufcheck"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Limits of the submission checks.
const (
	// MaxMetadataSize is the largest metadata file accepted (tufcheck.MaxSize).
	MaxMetadataSize = tufcheck.MaxSize
	// MaxDelegationDepth bounds how deep below the top-level targets role
	// the search for a delegator goes.
	MaxDelegationDepth = 8
	// MaxDelegators bounds how many logged targets roles the search visits.
	MaxDelegators = 64
)

// History is the logged history of one repository that the checks consult.
// Its methods return nil, nil when the role was never logged. An
// implementation reads the latest logged entry of each role, by position in
// the log (after a key rotation a role's version may go down); it must not
// include submissions that are not in the log yet.
type History interface {
	// Root returns the latest logged root.
	Root() (*tufcheck.Root, error)
	// Targets returns the latest logged version of a targets role ("targets"
	// or a delegated role name).
	Targets(role string) (*tufcheck.Targets, error)
	// Version returns the version of the latest logged entry of role, 0 if
	// none.
	Version(role string) (uint64, error)
}

// Accepted is a submission that passed the checks.
type Accepted struct {
	Entry entry.Entry
	// Targets is the verified metadata of an accepted targets role, and
	// Delegator the metadata whose keys it met the threshold of (the root
	// for top-level targets, the delegating targets role otherwise); nil
	// for a root.
	Targets   *tufcheck.Targets
	Delegator any
	// Root is the verified metadata of an accepted root (nil otherwise).
	Root *tufcheck.Root
}

// thresholdMemo is a History that remembers which logged targets files
// met the threshold of the keys their delegator lists for them (the
// ledger's remembers those it accepted and those the checks verified), so
// neither the floor of the next submission nor the search for a delegator
// need verify them again. Delegator and latest are compared by identity:
// the same parsed objects the History returned.
type thresholdMemo interface {
	metThreshold(delegator any, role string, latest *tufcheck.Targets) bool
	rememberThreshold(delegator any, role string, latest *tufcheck.Targets)
}

// meets reports whether latest meets the threshold of the keys delegator
// gives role: as h remembers it, else by verify (remembered when true).
func meets(h History, delegator any, role string, latest *tufcheck.Targets, verify func() bool) bool {
	if latest == nil {
		return false
	}
	m, ok := h.(thresholdMemo)
	if ok && m.metThreshold(delegator, role, latest) {
		return true
	}
	if !verify() {
		return false
	}
	if ok {
		m.rememberThreshold(delegator, role, latest)
	}
	return true
}

// floorOf returns latest's version if it meets its threshold under
// delegator (remembered, or compute() > 0), else 0.
func floorOf(h History, delegator any, role string, latest *tufcheck.Targets, compute func() int64) int64 {
	if meets(h, delegator, role, latest, func() bool { return compute() > 0 }) {
		return latest.Signed.Version
	}
	return 0
}

// CheckInitialRoot checks the first root of repository repo: a root,
// signed by its own threshold, not expired at now (trust on first use).
func CheckInitialRoot(repo string, data []byte, now time.Time) (Accepted, error) {
	if err := checkShape(repo, metadata.ROOT, data); err != nil {
		return Accepted{}, err
	}
	r, err := tufcheck.InitialRoot(data, now)
	if err != nil {
		return Accepted{}, err
	}
	acc, err := accepted(repo, metadata.ROOT, r.Signed.Version, data)
	acc.Root = r
	return acc, err
}

// CheckSubmission checks data, submitted as role of repo, against the
// repository's logged history h at time now. In order:
//
//  1. the role is root, targets or a delegated targets role (snapshot and
//     timestamp are refused), its name and the repository id fit the entry
//     format, and data is at most MaxMetadataSize bytes;
//  2. the signature threshold is met by distinct keys of the role's current
//     keys: for root the TUF N→N+1 rule (§5.3.4: old and new thresholds,
//     version exactly one more), for targets the latest logged root's
//     targets keys, for a delegated role the keys given by the first logged
//     targets role that delegates to it, searched breadth first from the
//     top-level targets (at most MaxDelegationDepth levels, MaxDelegators
//     roles) through current delegators only (findDelegator);
//  3. the metadata is not expired at now;
//  4. its version is above the role's floor: for root the latest logged
//     root version; for a targets role the version of its latest logged
//     metadata while that metadata still meets the threshold of the role's
//     current keys (as in step 2), else 0, a new version sequence after a
//     rotation of the role's keys (tufcheck.TargetsFloor, DelegatedFloor;
//     docs/spec/versions.md).
//
// Identical resubmissions are the caller's to detect before calling. The
// error wraps a tufcheck sentinel or one of ErrRoleRefused, ErrBadRequest,
// ErrTooLarge.
func CheckSubmission(h History, repo, role string, data []byte, now time.Time) (Accepted, error) {
	if err := checkShape(repo, role, data); err != nil {
		return Accepted{}, err
	}
	return checkDecoded(h, repo, role, data, tufcheck.DecodeUnverified(data, role), now)
}

// checkDecoded is CheckSubmission on data already decoded as role by
// tufcheck.DecodeUnverified (whose Decoded checks return what the byte
// functions return), after checkShape passed: the ledger decodes a
// submission once, before it takes the repository's lock, for its header.
func checkDecoded(h History, repo, role string, data []byte, u *tufcheck.Unverified, now time.Time) (Accepted, error) {
	root, err := h.Root()
	if err != nil {
		return Accepted{}, err
	}
	if root == nil {
		return Accepted{}, ErrUnknownRepository
	}
	var version, floor int64
	var verified *tufcheck.Targets
	var delegatorOf any
	var nextRoot *tufcheck.Root
	switch role {
	case metadata.ROOT:
		r, err := tufcheck.NextRootDecoded(root, u, now)
		if err != nil {
			return Accepted{}, err
		}
		nextRoot = r
		latest, err := h.Version(role)
		if err != nil {
			return Accepted{}, err
		}
		version, floor = r.Signed.Version, int64(latest)
	case metadata.TARGETS:
		t, err := tufcheck.TopLevelTargetsDecoded(root, u, now)
		if err != nil {
			return Accepted{}, err
		}
		latest, err := h.Targets(role)
		if err != nil {
			return Accepted{}, err
		}
		version = t.Signed.Version
		floor = floorOf(h, root, role, latest, func() int64 { return tufcheck.TargetsFloor(root, latest) })
		verified, delegatorOf = t, root
	default:
		delegator, err := findDelegator(h, root, role)
		if err != nil {
			return Accepted{}, err
		}
		t, err := tufcheck.DelegatedTargetsDecoded(delegator, role, u, now)
		if err != nil {
			return Accepted{}, err
		}
		latest, err := h.Targets(role)
		if err != nil {
			return Accepted{}, err
		}
		version = t.Signed.Version
		floor = floorOf(h, delegator, role, latest, func() int64 { return tufcheck.DelegatedFloor(delegator, role, latest) })
		verified, delegatorOf = t, delegator
	}
	if version <= floor { // rollback, or a replay of other bytes for a logged version
		return Accepted{}, fmt.Errorf("%w: %s v%d is not above the logged v%d (the latest version its current keys signed; docs/spec/versions.md)", tufcheck.ErrVersion, role, version, floor)
	}
	acc, err := accepted(repo, role, version, data)
	acc.Targets, acc.Delegator, acc.Root = verified, delegatorOf, nextRoot
	return acc, err
}

// checkShape checks what needs no parsing: sizes, names and logged roles.
func checkShape(repo, role string, data []byte) error {
	if len(data) > MaxMetadataSize {
		return ErrTooLarge
	}
	if role == metadata.SNAPSHOT || role == metadata.TIMESTAMP {
		return ErrRoleRefused
	}
	probe := entry.Entry{Repo: repo, Role: role, Version: 1, Length: 1}
	if err := probe.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	return nil
}

func accepted(repo, role string, version int64, data []byte) (Accepted, error) {
	if version < 1 {
		return Accepted{}, fmt.Errorf("%w: version %d", tufcheck.ErrMalformed, version)
	}
	e, err := entry.New(repo, role, uint64(version), data)
	if err != nil {
		return Accepted{}, fmt.Errorf("%w: %v", tufcheck.ErrMalformed, err)
	}
	return Accepted{Entry: e}, nil
}

// findDelegator returns the first logged targets role, breadth first from
// the top-level targets, that delegates to role, counting only current
// delegators: the latest logged top-level targets only while it meets the
// threshold of root's targets keys, and a delegated role only while its
// latest logged version meets the threshold of the keys the delegator that
// reaches it first lists for it (tufcheck.TargetsCurrent,
// DelegatedCurrent; docs/spec/versions.md, "Delegators"). Otherwise a
// thief's targets, logged with a key that root has since rotated out,
// would go on delegating to the thief's keys until the vendor's next
// targets. A role is checked only when the search needs it (it delegates
// role, or has delegations to search), and verifications are remembered
// (thresholdMemo), so a publish in the steady state verifies none of the
// chain again. The error wraps
// tufcheck.ErrNoDelegation and says which role to publish anew when a
// delegator is no longer current.
func findDelegator(h History, root *tufcheck.Root, role string) (*tufcheck.Targets, error) {
	top, err := h.Targets(metadata.TARGETS)
	if err != nil {
		return nil, err
	}
	if top == nil {
		return nil, fmt.Errorf("%w: no targets logged yet to delegate %q", tufcheck.ErrNoDelegation, role)
	}
	if !meets(h, root, metadata.TARGETS, top, func() bool { return tufcheck.TargetsCurrent(root, top) }) {
		return nil, fmt.Errorf("%w: %q: the latest logged targets (v%d) does not meet the threshold of the targets keys of the latest logged root (v%d), so its delegations no longer count: publish a new targets signed by the current targets keys first (docs/spec/versions.md)",
			tufcheck.ErrNoDelegation, role, top.Signed.Version, root.Signed.Version)
	}
	type node struct {
		name   string
		t      *tufcheck.Targets
		parent *tufcheck.Targets // nil for the top-level targets, checked above
		from   string
		depth  int
	}
	queue := []node{{name: metadata.TARGETS, t: top}}
	visited := map[string]bool{metadata.TARGETS: true, role: true}
	var stale error // the first delegator of role left out for not being current
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		delegatesRole := tufcheck.Delegates(n.t, role)
		d := n.t.Signed.Delegations
		expand := d != nil && len(d.Roles) > 0 && n.depth+1 < MaxDelegationDepth
		if !delegatesRole && !expand {
			continue // no need to know whether it is current
		}
		if n.parent != nil && !meets(h, n.parent, n.name, n.t, func() bool { return tufcheck.DelegatedCurrent(n.parent, n.name, n.t) }) {
			if stale == nil && delegatesRole {
				stale = fmt.Errorf("%w: %q: the latest logged %s (v%d) does not meet the threshold of the keys %s lists for it, so its delegations no longer count: publish a new %s signed by its current keys first (docs/spec/versions.md)",
					tufcheck.ErrNoDelegation, role, n.name, n.t.Signed.Version, n.from, n.name)
			}
			continue
		}
		if delegatesRole {
			return n.t, nil
		}
		for _, r := range d.Roles {
			if visited[r.Name] || len(visited) >= MaxDelegators {
				continue
			}
			visited[r.Name] = true
			child, err := h.Targets(r.Name)
			if err != nil {
				return nil, err
			}
			if child != nil {
				queue = append(queue, node{r.Name, child, n.t, n.name, n.depth + 1})
			}
		}
	}
	if stale != nil {
		return nil, stale
	}
	return nil, fmt.Errorf("%w: no logged targets role delegates %q", tufcheck.ErrNoDelegation, role)
}
