package log

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"

	"github.com/shiplog/shiplog/client/tufcheck"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// history is the History of one repository as the index and the metadata
// store record it. The ledger holds the repository's lock while it is used,
// so it sees exactly the logged state, and the roles' states it read stay
// true while it is used: roles holds those read so far (asked: the roles
// looked up before, absent from roles when not logged).
type history struct {
	l     *Ledger
	repo  string
	roles map[string]RoleState
	asked []string
}

// role returns the latest logged state of role, reading the index once
// per role.
func (h *history) role(role string) (RoleState, bool, error) {
	if st, ok := h.roles[role]; ok {
		return st, true, nil
	}
	if slices.Contains(h.asked, role) {
		return RoleState{}, false, nil
	}
	st, ok, err := h.l.index.Role(h.repo, role)
	if err != nil {
		return st, ok, err
	}
	h.asked = append(h.asked, role)
	if ok {
		if h.roles == nil {
			h.roles = map[string]RoleState{}
		}
		h.roles[role] = st
	}
	return st, ok, nil
}

func (h *history) Root() (*tufcheck.Root, error) {
	v, err := h.parsed(metadata.ROOT, func(b []byte) (any, error) { return metadata.Root().FromBytes(b) })
	if v == nil || err != nil {
		return nil, err
	}
	return v.(*tufcheck.Root), nil
}

func (h *history) Targets(role string) (*tufcheck.Targets, error) {
	v, err := h.parsed(role, func(b []byte) (any, error) { return metadata.Targets().FromBytes(b) })
	if v == nil || err != nil {
		return nil, err
	}
	t, ok := v.(*tufcheck.Targets)
	if !ok {
		return nil, nil // a role named like a root: not a delegator
	}
	return t, nil
}

func (h *history) Version(role string) (uint64, error) {
	st, ok, err := h.role(role)
	if !ok || err != nil {
		return 0, err
	}
	return st.Version, nil
}

func (h *history) metThreshold(delegator any, role string, latest *tufcheck.Targets) bool {
	return h.l.verified.has(verifiedKey{delegator, role}, latest)
}

func (h *history) rememberThreshold(delegator any, role string, latest *tufcheck.Targets) {
	h.l.verified.add(verifiedKey{delegator, role}, latest)
}

// parsed returns the latest logged version of role, parsed by parse, from
// the cache of parsed metadata.
func (h *history) parsed(role string, parse func([]byte) (any, error)) (any, error) {
	st, ok, err := h.role(role)
	if !ok || err != nil {
		return nil, err
	}
	if v, ok := h.l.parsedCache.get(st.SHA256); ok {
		return v, nil
	}
	b, err := h.l.meta.Get(st.SHA256)
	if err != nil {
		return nil, fmt.Errorf("couldn't read logged %s of %s: %w", role, h.repo, err)
	}
	v, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse logged %s of %s: %w", role, h.repo, err)
	}
	h.l.parsedCache.put(st.SHA256, v, len(b))
	return v, nil
}

// parsedCache keeps parsed logged metadata by SHA-256, at most max
// entries and at most maxBytes bytes of the files they were parsed from (a
// parsed file takes about five times its size in memory: 5.5 KB for a
// 1.2 KB root, 2.4 KB for a 470-byte targets file). When full, it drops
// entries one by one (the first of Go's randomised map iteration), so a
// working set near the bound mostly stays cached instead of being dropped
// whole. Parsed metadata is only read.
type parsedCache struct {
	mu       sync.Mutex
	m        map[[sha256.Size]byte]parsedEntry
	bytes    int // sum of the entries' sizes
	max      int
	maxBytes int
}

type parsedEntry struct {
	v    any
	size int // of the bytes v was parsed from
}

func (c *parsedCache) get(k [sha256.Size]byte) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	return e.v, ok
}

// put caches v, parsed from size bytes with SHA-256 k; a file larger than
// the whole cache is not cached.
func (c *parsedCache) put(k [sha256.Size]byte, v any, size int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if size > c.maxBytes {
		return
	}
	if c.m == nil {
		c.m = make(map[[sha256.Size]byte]parsedEntry)
	}
	if old, ok := c.m[k]; ok {
		c.bytes -= old.size
		delete(c.m, k)
	}
	for len(c.m) > 0 && (len(c.m) >= c.max || c.bytes+size > c.maxBytes) {
		for old, e := range c.m {
			delete(c.m, old)
			c.bytes -= e.size
			break
		}
	}
	c.m[k] = parsedEntry{v, size}
	c.bytes += size
}

func (c *parsedCache) drop(k [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.bytes -= e.size
		delete(c.m, k)
	}
}

// verifiedKey names a delegator (parsed root or targets) and a role it
// delegates.
type verifiedKey struct {
	delegator any
	role      string
}

// verifiedSet remembers, per delegator and role, the last targets file
// (parsed) accepted or verified as meeting the threshold of the
// delegator's keys for the role: the one the next submission of the role
// is checked above, or a delegator on the way to a delegated role. At most
// max entries (one dropped when full).
type verifiedSet struct {
	mu  sync.Mutex
	m   map[verifiedKey]*tufcheck.Targets
	max int
}

func (s *verifiedSet) has(k verifiedKey, t *tufcheck.Targets) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k] == t
}

func (s *verifiedSet) add(k verifiedKey, t *tufcheck.Targets) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[verifiedKey]*tufcheck.Targets)
	}
	if _, ok := s.m[k]; !ok && len(s.m) >= s.max {
		for old := range s.m {
			delete(s.m, old)
			break
		}
	}
	s.m[k] = t
}
