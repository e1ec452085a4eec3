package update

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// ErrTargetNotFound means no trusted targets role lists the target path.
var ErrTargetNotFound = errors.New("target not found")

type roleEdge struct{ role, delegator string }

// Target resolves one target path by TUF §5.6.7's pre-order depth-first
// search of the delegation graph, loading (and gating) each role visited.
// At most Limits.MaxDelegations roles are visited; a path not found within
// that bound is reported as ErrTargetNotFound. The returned TargetFiles has
// Path set.
func (s *Session) Target(ctx context.Context, path string) (*metadata.TargetFiles, error) {
	stack := []roleEdge{{metadata.TARGETS, metadata.ROOT}}
	visited := map[string]bool{}
	for len(stack) > 0 {
		if len(visited) >= s.limits.MaxDelegations {
			return nil, fmt.Errorf("%w: %s (gave up after %d roles)", ErrTargetNotFound, path, len(visited))
		}
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[e.role] { // cycles and diamonds: each role once
			continue
		}
		md, err := s.loadRole(ctx, e.role, e.delegator)
		if err != nil {
			return nil, err
		}
		if t, ok := md.Signed.Targets[path]; ok {
			t.Path = path
			return t, nil
		}
		visited[e.role] = true
		children, err := delegatedRolesFor(md, path)
		if err != nil {
			return nil, fmt.Errorf("role %q: %w", e.role, err)
		}
		var next []roleEdge
		for _, r := range children {
			next = append(next, roleEdge{r.Name, e.role})
			if r.Terminating { // §5.6.7.2.1: stop backtracking
				stack = stack[:0]
				break
			}
		}
		slices.Reverse(next)
		stack = append(stack, next...)
	}
	return nil, fmt.Errorf("%w: %s", ErrTargetNotFound, path)
}

// delegatedRolesFor returns the roles md delegates path to, in order,
// refusing succinct delegations with an out-of-range bit length.
func delegatedRolesFor(md *metadata.Metadata[metadata.TargetsType], path string) ([]metadata.RoleResult, error) {
	d := md.Signed.Delegations
	if d == nil {
		return nil, nil
	}
	if d.SuccinctRoles != nil && (d.SuccinctRoles.BitLength < 1 || d.SuccinctRoles.BitLength > 32) {
		return nil, fmt.Errorf("succinct delegation bit_length %d out of range 1-32", d.SuccinctRoles.BitLength)
	}
	return d.GetRolesForTarget(path), nil
}

// AllTargets resolves every target of the repository: it loads every role
// reachable from top-level targets (at most Limits.MaxDelegations, else an
// error: name the targets explicitly for large delegation trees), then
// resolves each path listed anywhere with Target, so the answer is what a
// search for that path would find.
func (s *Session) AllTargets(ctx context.Context) (map[string]*metadata.TargetFiles, error) {
	stack := []roleEdge{{metadata.TARGETS, metadata.ROOT}}
	visited := map[string]bool{}
	paths := map[string]bool{}
	for len(stack) > 0 {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[e.role] {
			continue
		}
		if len(visited) >= s.limits.MaxDelegations {
			return nil, fmt.Errorf("more than %d targets roles: list the targets to install explicitly", s.limits.MaxDelegations)
		}
		visited[e.role] = true
		md, err := s.loadRole(ctx, e.role, e.delegator)
		if err != nil {
			return nil, err
		}
		for p := range md.Signed.Targets {
			paths[p] = true
		}
		names, err := allDelegated(md, s.limits.MaxDelegations)
		if err != nil {
			return nil, fmt.Errorf("role %q: %w", e.role, err)
		}
		for i := len(names) - 1; i >= 0; i-- {
			stack = append(stack, roleEdge{names[i], e.role})
		}
	}
	sorted := make([]string, 0, len(paths))
	for p := range paths {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	out := map[string]*metadata.TargetFiles{}
	for _, p := range sorted {
		t, err := s.Target(ctx, p)
		if errors.Is(err, ErrTargetNotFound) {
			continue // listed by a role the search does not trust for it
		}
		if err != nil {
			return nil, err
		}
		out[p] = t
	}
	return out, nil
}

func allDelegated(md *metadata.Metadata[metadata.TargetsType], max int) ([]string, error) {
	d := md.Signed.Delegations
	if d == nil {
		return nil, nil
	}
	if sr := d.SuccinctRoles; sr != nil {
		if sr.BitLength < 1 || sr.BitLength > 32 {
			return nil, fmt.Errorf("succinct delegation bit_length %d out of range 1-32", sr.BitLength)
		}
		if 1<<sr.BitLength > max {
			return nil, fmt.Errorf("%d hash bins: more than %d roles; list the targets to install explicitly", 1<<sr.BitLength, max)
		}
		return sr.GetRoles(), nil
	}
	names := make([]string, 0, len(d.Roles))
	for _, r := range d.Roles {
		names = append(names, r.Name)
	}
	return names, nil
}
