package repo

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// RotateOptions changes the keys or threshold of one role.
type RotateOptions struct {
	// Role is a top-level role (root, targets, snapshot, timestamp), a named
	// delegated role, or a hash-bin prefix (all bins at once).
	Role string
	// Add are keys to add; Remove are key IDs (or unique prefixes of at least
	// 8 hex digits) to remove.
	Add    []*metadata.Key
	Remove []string
	// Threshold is the new threshold; 0 keeps the current one.
	Threshold int
}

// Rotate stages a key rotation. For a top-level role it stages a new root,
// which must then be signed by the threshold of the old root and of the new
// one (TUF 1.0 §5.3.4); rotating targets keys also stages a new targets
// version for the new keys to sign. For a delegated role it stages a new
// version of its delegator and of the role itself. A change that would leave
// a threshold unmet is refused and nothing is staged.
func (r *Repo) Rotate(o RotateOptions) ([]string, error) {
	if len(o.Add) == 0 && len(o.Remove) == 0 && o.Threshold == 0 {
		return nil, errors.New("nothing to rotate: give --add-key, --remove-key or --threshold")
	}
	if slices.Contains(TopLevelRoles, o.Role) {
		return r.rotateTopLevel(o)
	}
	return r.rotateDelegated(o)
}

func (r *Repo) rotateTopLevel(o RotateOptions) ([]string, error) {
	cur := r.working().rootMeta()
	if cur == nil {
		return nil, errors.New("the repository has no root yet")
	}
	role := cur.Signed.Roles[o.Role]
	ids, th, err := rotateIDs(role.KeyIDs, role.Threshold, o)
	if err != nil {
		return nil, fmt.Errorf("role %s: %w", o.Role, err)
	}
	m, err := r.stageRoot()
	if err != nil {
		return nil, err
	}
	for _, id := range role.KeyIDs {
		if !slices.Contains(ids, id) {
			if err := m.Signed.RevokeKey(id, o.Role); err != nil {
				return nil, err
			}
		}
	}
	for _, k := range o.Add {
		if err := m.Signed.AddKey(k, o.Role); err != nil {
			return nil, err
		}
	}
	m.Signed.Roles[o.Role].Threshold = th
	staged := []string{"root"}
	if o.Role == "targets" {
		if _, err := r.stageTargets("targets"); err != nil {
			return nil, err
		}
		staged = append(staged, "targets")
	}
	return staged, r.saveStaging()
}

func (r *Repo) rotateDelegated(o RotateOptions) ([]string, error) {
	v := r.working()
	var from string
	var bins []string
	err := v.walk(func(d delegation, m *metadata.Metadata[metadata.TargetsType]) error {
		if m == nil || m.Signed.Delegations == nil || from != "" {
			return nil
		}
		if sr := m.Signed.Delegations.SuccinctRoles; sr != nil && sr.NamePrefix == o.Role {
			from, bins = d.Role, sr.GetRoles()
		}
		for _, dr := range m.Signed.Delegations.Roles {
			if dr.Name == o.Role {
				from, bins = d.Role, []string{o.Role}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if from == "" {
		return nil, fmt.Errorf("role %s is not a top-level role, a delegated role or a hash-bin prefix", o.Role)
	}
	dm := v.targets(from)
	_, curIDs, curTh := targetsKeysFor(dm, bins[0])
	ids, th, err := rotateIDs(curIDs, curTh, o)
	if err != nil {
		return nil, fmt.Errorf("role %s: %w", o.Role, err)
	}
	m, err := r.stageTargets(from)
	if err != nil {
		return nil, err
	}
	d := m.Signed.Delegations
	for _, k := range o.Add {
		id, _ := k.ID()
		d.Keys[id] = k
	}
	if d.SuccinctRoles != nil {
		d.SuccinctRoles.KeyIDs, d.SuccinctRoles.Threshold = ids, th
	}
	for i := range d.Roles {
		if d.Roles[i].Name == o.Role {
			d.Roles[i].KeyIDs, d.Roles[i].Threshold = ids, th
		}
	}
	pruneDelegationKeys(d)
	staged := []string{from}
	for _, name := range bins {
		if _, err := r.stageTargets(name); err != nil {
			return nil, err
		}
		staged = append(staged, name)
	}
	return staged, r.saveStaging()
}

// rotateIDs applies o to a role's key IDs and threshold.
func rotateIDs(cur []string, th int, o RotateOptions) ([]string, int, error) {
	ids := slices.Clone(cur)
	for _, rm := range o.Remove {
		id, err := resolveKeyID(ids, rm)
		if err != nil {
			return nil, 0, err
		}
		ids = slices.DeleteFunc(ids, func(s string) bool { return s == id })
	}
	for _, k := range o.Add {
		id, err := k.ID()
		if err != nil {
			return nil, 0, err
		}
		if slices.Contains(ids, id) {
			return nil, 0, fmt.Errorf("key %s is already a key of this role", short(id))
		}
		ids = append(ids, id)
	}
	if o.Threshold != 0 {
		th = o.Threshold
	}
	if len(ids) == 0 {
		return nil, 0, errors.New("the rotation would remove every key: add a new key with --add-key")
	}
	if th < 1 || th > len(ids) {
		return nil, 0, fmt.Errorf("threshold %d cannot be met by %d key(s)", th, len(ids))
	}
	return ids, th, nil
}

// pruneDelegationKeys drops keys no delegated role uses any more.
func pruneDelegationKeys(d *metadata.Delegations) {
	used := map[string]bool{}
	if d.SuccinctRoles != nil {
		for _, id := range d.SuccinctRoles.KeyIDs {
			used[id] = true
		}
	}
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
}

// Renew stages a new version of role (root or a targets role) with a fresh
// expiry, for keyholders to sign before the current one expires. Snapshot
// and timestamp are renewed by publish and `repo refresh`.
func (r *Repo) Renew(role string) (int64, time.Time, error) {
	switch role {
	case "snapshot", "timestamp":
		return 0, time.Time{}, fmt.Errorf("%s is renewed with its online key by `shiplog repo refresh` (and by `shiplog publish`), not by renew", role)
	case "root":
		m, err := r.stageRoot()
		if err != nil {
			return 0, time.Time{}, err
		}
		m.Signed.Expires = r.expiry("root")
		return m.Signed.Version, m.Signed.Expires, r.saveStaging()
	}
	if r.working().targets(role) == nil {
		return 0, time.Time{}, fmt.Errorf("role %s does not exist", role)
	}
	m, err := r.stageTargets(role)
	if err != nil {
		return 0, time.Time{}, err
	}
	m.Signed.Expires = r.expiry(role)
	return m.Signed.Version, m.Signed.Expires, r.saveStaging()
}
