package repo

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// maxBinBits bounds succinct hash-bin delegations to 2^14 bins.
const maxBinBits = 14

// DelegateOptions describes a new delegation (TUF 1.0 §4.5 "delegations").
// Exactly one of Name (a named role with path patterns) or HashBins (succinct
// hash-bin roles, TAP 15) is set.
type DelegateOptions struct {
	// From is the delegating role; "" means targets.
	From string
	// Name is the new role's name (letters, digits, '-' and '_', at most 64).
	Name string
	// Paths are the path patterns (TUF "paths", shell-style '*' per segment)
	// the named role is trusted for.
	Paths []string
	// Terminating stops the client's search at this role for matching paths.
	Terminating bool
	// HashBins is the number of hash bins: a power of two from 2 to 16384.
	HashBins int
	// Prefix is the bins' name prefix ("bins" when empty): bins are named
	// <prefix>-<hex>.
	Prefix string
	// Keys and Threshold are the delegated role's keys and threshold (0 means 1).
	Keys      []*metadata.Key
	Threshold int
}

// Delegate stages a new delegation: a new version of the delegating role and
// an empty version 1 of every new role (one per bin). It refuses a role name
// already in use, mixing named and hash-bin delegations in one role (TUF
// allows one kind per delegations object), and thresholds the keys cannot
// meet. It returns the staged roles.
func (r *Repo) Delegate(o DelegateOptions) ([]string, error) {
	from := o.From
	if from == "" {
		from = "targets"
	}
	v := r.working()
	dm := v.targets(from)
	if dm == nil {
		return nil, fmt.Errorf("role %s does not exist", from)
	}
	if (o.Name == "") == (o.HashBins == 0) {
		return nil, errors.New("give either --name (a named role with --path patterns) or --hash-bins N")
	}
	keyMap, ids, err := keySet(o.Keys, o.Threshold)
	if err != nil {
		return nil, err
	}
	if o.Threshold == 0 {
		o.Threshold = 1
	}
	existing, err := v.delegators()
	if err != nil {
		return nil, err
	}
	var newRoles []string
	d := dm.Signed.Delegations
	if o.Name != "" {
		if newRoles, err = namedDelegation(o, d, existing); err != nil {
			return nil, err
		}
	} else {
		if newRoles, err = binDelegation(o, d, existing); err != nil {
			return nil, err
		}
	}
	m, err := r.stageTargets(from)
	if err != nil {
		return nil, err
	}
	if m.Signed.Delegations == nil {
		m.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	for id, k := range keyMap {
		m.Signed.Delegations.Keys[id] = k
	}
	if o.Name != "" {
		m.Signed.Delegations.Roles = append(m.Signed.Delegations.Roles, metadata.DelegatedRole{
			Name: o.Name, KeyIDs: ids, Threshold: o.Threshold, Terminating: o.Terminating, Paths: o.Paths})
	} else {
		m.Signed.Delegations.SuccinctRoles = &metadata.SuccinctRoles{KeyIDs: ids, Threshold: o.Threshold,
			BitLength: bits.TrailingZeros(uint(o.HashBins)), NamePrefix: binPrefix(o.Prefix)}
	}
	for _, name := range newRoles {
		if _, err := r.stageTargets(name); err != nil {
			return nil, err
		}
	}
	return append([]string{from}, newRoles...), r.saveStaging()
}

func namedDelegation(o DelegateOptions, d *metadata.Delegations, existing map[string]string) ([]string, error) {
	if !validRoleName(o.Name) {
		return nil, fmt.Errorf("invalid role name %q: want 1-64 letters, digits, '-' or '_', not a top-level role name", o.Name)
	}
	if _, ok := existing[o.Name]; ok {
		return nil, fmt.Errorf("role %s is already delegated by %s", o.Name, existing[o.Name])
	}
	if d != nil && d.SuccinctRoles != nil {
		return nil, errors.New("this role delegates to hash bins; a role delegates either to named roles or to hash bins, not both")
	}
	if len(o.Paths) == 0 {
		return nil, errors.New("a named delegation needs at least one --path pattern, e.g. --path 'firmware/*'")
	}
	for _, p := range o.Paths {
		if p == "" || len(p) > maxTargetPathSize {
			return nil, fmt.Errorf("invalid path pattern %q", p)
		}
	}
	return []string{o.Name}, nil
}

func binDelegation(o DelegateOptions, d *metadata.Delegations, existing map[string]string) ([]string, error) {
	n := o.HashBins
	if n < 2 || n > 1<<maxBinBits || n&(n-1) != 0 {
		return nil, fmt.Errorf("--hash-bins %d: want a power of two from 2 to %d", n, 1<<maxBinBits)
	}
	prefix := binPrefix(o.Prefix)
	if !validRoleName(prefix) || len(prefix) > 40 {
		return nil, fmt.Errorf("invalid bin prefix %q", prefix)
	}
	if d != nil && (d.SuccinctRoles != nil || len(d.Roles) > 0) {
		return nil, errors.New("this role already delegates; hash bins must be its only delegation")
	}
	sr := metadata.SuccinctRoles{BitLength: bits.TrailingZeros(uint(n)), NamePrefix: prefix}
	names := sr.GetRoles()
	for _, name := range names {
		if _, ok := existing[name]; ok {
			return nil, fmt.Errorf("role %s already exists: choose another --prefix", name)
		}
	}
	return names, nil
}

func binPrefix(p string) string {
	if p == "" {
		return "bins"
	}
	return p
}

// keySet returns the keys by ID and their IDs in order, refusing duplicates
// and a threshold that they cannot meet.
func keySet(ks []*metadata.Key, threshold int) (map[string]*metadata.Key, []string, error) {
	if len(ks) == 0 {
		return nil, nil, errors.New("no keys given: pass at least one --key FILE.pub")
	}
	m := map[string]*metadata.Key{}
	var ids []string
	for _, k := range ks {
		id, err := k.ID()
		if err != nil {
			return nil, nil, err
		}
		if m[id] != nil {
			return nil, nil, fmt.Errorf("key %s is given twice", short(id))
		}
		m[id] = k
		ids = append(ids, id)
	}
	if threshold == 0 {
		threshold = 1
	}
	if threshold < 1 || threshold > len(ids) {
		return nil, nil, fmt.Errorf("threshold %d cannot be met by %d key(s): give more keys or a threshold between 1 and %d", threshold, len(ids), len(ids))
	}
	return m, ids, nil
}

// resolveKeyID returns the key ID in ids that equals id or starts with it
// (at least 8 hex digits), refusing an ambiguous prefix.
func resolveKeyID(ids []string, id string) (string, error) {
	if len(id) < 8 {
		return "", fmt.Errorf("key ID %q is too short: give at least 8 hex digits", id)
	}
	var found []string
	for _, k := range ids {
		if k == id || (len(id) < len(k) && k[:len(id)] == id) {
			found = append(found, k)
		}
	}
	found = slices.Compact(found)
	switch len(found) {
	case 0:
		return "", fmt.Errorf("key %s is not a key of this role", id)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("key ID prefix %s is ambiguous", id)
}

// Undelegate stages the removal of a delegation (TUF 1.0 §4.5): a new
// version of the delegating role from ("" means targets) without the named
// role name, or without its hash bins when name is their prefix, and
// without the keys no remaining delegation uses. Staged versions of roles
// that are no longer reachable are discarded. Published versions stay in
// DIR/metadata (older snapshots name them); the next publish writes a
// snapshot without them, so clients no longer trust the role for anything.
// It returns the staged delegating role and the discarded roles.
func (r *Repo) Undelegate(from, name string) (staged string, discarded []string, err error) {
	if from == "" {
		from = "targets"
	}
	dm := r.working().targets(from)
	if dm == nil {
		return "", nil, fmt.Errorf("role %s does not exist", from)
	}
	d := dm.Signed.Delegations
	if d == nil || !delegates(d, name) {
		return "", nil, fmt.Errorf("role %s does not delegate %q (see `shiplog repo status`)", from, name)
	}
	m, err := r.stageTargets(from)
	if err != nil {
		return "", nil, err
	}
	d = m.Signed.Delegations
	if d.SuccinctRoles != nil {
		d.SuccinctRoles = nil
	} else {
		d.Roles = slices.DeleteFunc(d.Roles, func(dr metadata.DelegatedRole) bool { return dr.Name == name })
	}
	used := map[string]bool{}
	for _, dr := range d.Roles {
		for _, id := range dr.KeyIDs {
			used[id] = true
		}
	}
	for id := range d.Keys {
		if !used[id] {
			delete(d.Keys, id)
		}
	}
	if len(d.Roles) == 0 && d.SuccinctRoles == nil {
		m.Signed.Delegations = nil
	}
	reachable, err := r.working().delegators()
	if err != nil {
		return "", nil, err
	}
	for role := range r.staged.Targets {
		if _, ok := reachable[role]; !ok {
			delete(r.staged.Targets, role)
			discarded = append(discarded, role)
		}
	}
	slices.Sort(discarded)
	return from, discarded, r.saveStaging()
}

// delegates reports whether d delegates to the named role, or to hash
// bins with that prefix.
func delegates(d *metadata.Delegations, name string) bool {
	if d.SuccinctRoles != nil {
		return d.SuccinctRoles.NamePrefix == name
	}
	for _, dr := range d.Roles {
		if dr.Name == name {
			return true
		}
	}
	return false
}
