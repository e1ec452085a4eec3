package repo

import (
	"errors"
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// view is the repository as a client would see it with some staged changes
// applied: all of them (the working view, what keyholders sign), none (what
// is committed), or those in a set (what publishing would commit).
type view struct {
	r *Repo
	// apply reports whether the staged version of role is part of the view.
	apply func(role string) bool
}

func (r *Repo) working() view       { return view{r, func(string) bool { return true }} }
func (r *Repo) committedView() view { return view{r, func(string) bool { return false }} }

// rootMeta returns the view's root, nil if there is none yet.
func (v view) rootMeta() *metadata.Metadata[metadata.RootType] {
	if v.r.staged.Root != nil && v.apply("root") {
		return v.r.staged.Root
	}
	return v.r.root
}

// targets returns the view's version of a targets role, nil if none.
func (v view) targets(name string) *metadata.Metadata[metadata.TargetsType] {
	if m := v.r.staged.Targets[name]; m != nil && v.apply(name) {
		return m
	}
	if c := v.r.roles[name]; c != nil {
		return c.Meta
	}
	return nil
}

// delegation is one edge of the delegation graph.
type delegation struct {
	Role      string
	Delegator string
}

var errTooManyRoles = fmt.Errorf("delegation graph has more than %d roles", MaxRoles)

// walk visits the roles reachable from targets in the order a TUF client
// resolves them (breadth first, delegators before delegatees), each once.
// Roles without metadata in the view are visited but not descended into.
func (v view) walk(fn func(d delegation, m *metadata.Metadata[metadata.TargetsType]) error) error {
	queue := []delegation{{Role: "targets", Delegator: "root"}}
	seen := map[string]bool{"targets": true}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		m := v.targets(d.Role)
		if err := fn(d, m); err != nil {
			return err
		}
		if m == nil || m.Signed.Delegations == nil {
			continue
		}
		for _, name := range delegatedNames(m.Signed.Delegations) {
			if seen[name] {
				continue
			}
			if len(seen) >= MaxRoles {
				return errTooManyRoles
			}
			seen[name] = true
			queue = append(queue, delegation{Role: name, Delegator: d.Role})
		}
	}
	return nil
}

// delegatedNames lists the roles a delegations object delegates to.
func delegatedNames(d *metadata.Delegations) []string {
	if d.SuccinctRoles != nil {
		if d.SuccinctRoles.BitLength < 1 || d.SuccinctRoles.BitLength > maxBinBits {
			return nil
		}
		return d.SuccinctRoles.GetRoles()
	}
	names := make([]string, 0, len(d.Roles))
	for _, r := range d.Roles {
		names = append(names, r.Name)
	}
	return names
}

// delegators maps every reachable role to its delegator.
func (v view) delegators() (map[string]string, error) {
	out := map[string]string{}
	err := v.walk(func(d delegation, _ *metadata.Metadata[metadata.TargetsType]) error {
		out[d.Role] = d.Delegator
		return nil
	})
	return out, err
}

// responsible returns the role a new target at path belongs in: following
// the first matching delegation from targets down, as a client's preorder
// search would (TUF 1.0 §5.6.7.2), stopping where no delegation matches.
func (v view) responsible(path string) (string, error) {
	role := "targets"
	for depth := 0; depth < 32; depth++ {
		m := v.targets(role)
		if m == nil {
			return "", fmt.Errorf("role %s has no metadata yet", role)
		}
		if m.Signed.Delegations == nil {
			return role, nil
		}
		matches := m.Signed.Delegations.GetRolesForTarget(path)
		if len(matches) == 0 {
			return role, nil
		}
		role = matches[0].Name
	}
	return "", errors.New("delegation chain deeper than 32 roles")
}

// keysFor returns the keys and threshold that delegator m gives role.
func rootKeysFor(m *metadata.Metadata[metadata.RootType], role string) (map[string]*metadata.Key, []string, int) {
	r, ok := m.Signed.Roles[role]
	if !ok {
		return nil, nil, 0
	}
	return m.Signed.Keys, r.KeyIDs, r.Threshold
}

func targetsKeysFor(m *metadata.Metadata[metadata.TargetsType], role string) (map[string]*metadata.Key, []string, int) {
	d := m.Signed.Delegations
	if d == nil {
		return nil, nil, 0
	}
	if d.SuccinctRoles != nil {
		if !d.SuccinctRoles.IsDelegatedRole(role) {
			return nil, nil, 0
		}
		return d.Keys, d.SuccinctRoles.KeyIDs, d.SuccinctRoles.Threshold
	}
	for _, dr := range d.Roles {
		if dr.Name == role {
			return d.Keys, dr.KeyIDs, dr.Threshold
		}
	}
	return nil, nil, 0
}
