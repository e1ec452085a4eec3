package replay

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/shiplog/shiplog/client/tufcheck"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// RepoState is the persisted form of one repository's replayed state: the
// exact bytes of its latest valid root and of the latest valid version of
// each targets role, and the latest valid version of every role.
type RepoState struct {
	Root     []byte            `json:"root"`
	Versions map[string]uint64 `json:"versions"`
	Targets  map[string][]byte `json:"targets"`
}

// Dirty returns the repositories whose state changed since the last call,
// sorted, and forgets them.
func (c *Checker) Dirty() []string {
	ids := make([]string, 0, len(c.dirty))
	for id := range c.dirty {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	clear(c.dirty)
	return ids
}

// State returns the persisted form of repository id, or nil if unknown.
func (c *Checker) State(id string) *RepoState {
	r := c.repos[id]
	if r == nil {
		return nil
	}
	s := &RepoState{Root: r.rootBytes, Versions: map[string]uint64{}, Targets: map[string][]byte{}}
	for name, ro := range r.roles {
		s.Versions[name] = ro.version
		if ro.bytes != nil {
			s.Targets[name] = ro.bytes
		}
	}
	return s
}

// Repos returns the ids of every known repository, sorted.
func (c *Checker) Repos() []string {
	ids := make([]string, 0, len(c.repos))
	for id := range c.repos {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Load restores repository id from a state returned by State. The bytes were
// verified when they were replayed, so they are only parsed here.
func (c *Checker) Load(id string, s *RepoState) error {
	root, err := metadata.Root().FromBytes(s.Root)
	if err != nil {
		return fmt.Errorf("couldn't load root of %q: %w", id, err)
	}
	r := &repo{rootBytes: s.Root, root: root, roles: map[string]*role{}}
	for name, v := range s.Versions {
		r.roles[name] = &role{version: v}
	}
	for name, b := range s.Targets {
		t, err := metadata.Targets().FromBytes(b)
		if err != nil {
			return fmt.Errorf("couldn't load %s of %q: %w", name, id, err)
		}
		ro := r.roles[name]
		if ro == nil {
			return fmt.Errorf("couldn't load %s of %q: no version", name, id)
		}
		ro.bytes, ro.targets = b, (*tufcheck.Targets)(t)
	}
	c.repos[id] = r
	return nil
}

// MarshalRepoState and UnmarshalRepoState encode a RepoState as JSON.
func MarshalRepoState(s *RepoState) ([]byte, error) { return json.Marshal(s) }

// UnmarshalRepoState decodes MarshalRepoState's encoding.
func UnmarshalRepoState(b []byte) (*RepoState, error) {
	var s RepoState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
