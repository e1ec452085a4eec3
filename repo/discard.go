package repo

import (
	"fmt"
	"sort"
)

// Discard drops staged changes, as `git restore` drops edits to the work
// tree: the named roles ("root", "targets" or a delegated role), or every
// staged role when roles is empty, go back to their committed versions.
// It returns the roles discarded, sorted. Naming a role that is not staged
// is an error and changes nothing; so is discarding root v1 before it was
// ever published (there is nothing to go back to: initialise again). Target
// files that `repo add` copied into DIR/targets stay there: no signed
// metadata names them, so no device installs them.
func (r *Repo) Discard(roles []string) ([]string, error) {
	if len(roles) == 0 {
		if r.staged.Root != nil {
			roles = append(roles, "root")
		}
		for name := range r.staged.Targets {
			roles = append(roles, name)
		}
	}
	for _, name := range roles {
		switch {
		case name == "root" && r.staged.Root == nil, name != "root" && r.staged.Targets[name] == nil:
			return nil, fmt.Errorf("%s has no staged changes: see `shiplog repo status`", name)
		case name == "root" && r.root == nil:
			return nil, fmt.Errorf("root v%d was never published, so there is no committed root to go back to", r.staged.Root.Signed.Version)
		}
	}
	for _, name := range roles {
		if name == "root" {
			r.staged.Root = nil
		} else {
			delete(r.staged.Targets, name)
		}
	}
	sort.Strings(roles)
	return roles, r.saveStaging()
}
