package replay

import (
	"runtime"
	"sync"
	"time"

	"github.com/shiplog/shiplog/client/tufcheck"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// prepared is one entry with the work that does not depend on the
// replayed state done: the entry parsed, the metadata checked against it
// and decoded once; and, from CheckAll, its signatures checked ahead of
// time against the signers the repository is expected to have (spec),
// which apply uses only when they are the repository's signers then.
type prepared struct {
	in        Input
	isRelease bool
	e         entry.Entry
	u         *tufcheck.Unverified // nil when the metadata does not match the entry
	spec      *speculation
}

// prepare does the state-independent part of Check. It is pure and safe
// to call concurrently.
func prepare(in Input) *prepared {
	p := &prepared{in: in}
	e, err := entry.Parse(in.Entry)
	if err != nil {
		return p
	}
	p.isRelease, p.e = true, e
	if e.Matches(e.Repo, e.Role, in.Metadata) {
		p.u = tufcheck.DecodeUnverified(in.Metadata, e.Role)
	}
	return p
}

// speculation is the signature check of one entry against signers taken
// ahead of the replay. Results are those of tufcheck, so using one is
// exactly checking again, provided the signers are the same objects.
type speculation struct {
	first bool // an initial root: no signer but itself
	done  bool // a root, checked by speculate
	under any  // the trusted root it was checked under (next root, top-level targets)
	// delegators are the current delegators' targets, in r.currentDelegators()
	// order, that a delegated role was checked against; signer is the one
	// that verified it.
	delegators []*tufcheck.Targets
	signer     any
	root       *tufcheck.Root
	targets    *tufcheck.Targets
	err        error
}

// sameDelegators reports whether the speculation was checked against the
// delegators r has now for role name.
func (sp *speculation) sameDelegators(r *repo, name string) bool {
	if sp.under != nil || sp.first {
		return false
	}
	cur := r.delegatorTargets(name)
	if len(cur) != len(sp.delegators) || len(cur) == 0 {
		return false
	}
	for i := range cur {
		if cur[i] != sp.delegators[i] {
			return false
		}
	}
	return true
}

// CheckAll replays ins, entries in index order, and returns one Output per
// entry, exactly as calling Check on each in turn would. It uses up to
// GOMAXPROCS goroutines: every entry is parsed, decoded and has its
// signatures checked in parallel against the signers its repository is
// expected to have at that point (the state before ins, advanced by the
// roots in ins that verify); the results are then applied one entry at a
// time, in index order, and an entry whose repository's signers turned out
// different (a root or delegating role that did not verify, a rotation by
// a targets role in ins) is checked again there. h must include the
// releases recorded before ins; CheckAll adds those of ins itself. It must
// not run concurrently with any other method. Memory: every entry of ins is
// held decoded until it is applied (a few times its metadata's size).
func (c *Checker) CheckAll(h History, ins []Input) ([]Output, error) {
	ps := make([]*prepared, len(ins))
	parallel(len(ins), func(i int) { ps[i] = prepare(ins[i]) })
	c.speculate(ps)
	parallel(len(ps), func(i int) { ps[i].spec.check(ps[i]) })
	outs := make([]Output, len(ins))
	ov := &overlay{h: h, own: map[releaseKey]Release{}}
	for i, p := range ps {
		out, err := c.apply(ov, p)
		if err != nil {
			return nil, err
		}
		if out.Record {
			r := out.Release
			ov.own[releaseKey{r.Repo, r.Role, r.Version}] = *r
		}
		outs[i] = out
		ps[i] = nil // its decoded metadata is garbage now, unless the state kept it
	}
	return outs, nil
}

// speculate decides, in index order, which signers each decoded entry is
// to be checked against, and checks the roots on the way (they move the
// expected signers on; they are few).
func (c *Checker) speculate(ps []*prepared) {
	roots := map[string]*tufcheck.Root{} // expected root per repository
	rootOf := func(id string) *tufcheck.Root {
		if r, ok := roots[id]; ok {
			return r
		}
		var root *tufcheck.Root
		if r := c.repo(id); r != nil {
			root = r.root
		}
		roots[id] = root
		return root
	}
	for _, p := range ps {
		if p.u == nil {
			continue
		}
		hdr, err := p.u.Header()
		if err != nil || hdr.Version < 1 || uint64(hdr.Version) != p.e.Version {
			continue
		}
		id, cur := p.e.Repo, rootOf(p.e.Repo)
		switch {
		case p.e.Role == metadata.ROOT && hdr.Type == metadata.ROOT && cur == nil:
			sp := &speculation{first: true, done: true}
			sp.root, sp.err = tufcheck.InitialRootDecoded(p.u, time.Time{})
			p.spec = sp
			if sp.err == nil {
				roots[id] = sp.root
			}
		case p.e.Role == metadata.ROOT && hdr.Type == metadata.ROOT:
			if p.e.Version != uint64(cur.Signed.Version)+1 {
				continue
			}
			sp := &speculation{under: cur, done: true}
			sp.root, sp.err = tufcheck.NextRootDecoded(cur, p.u, time.Time{})
			p.spec = sp
			if sp.err == nil {
				roots[id] = sp.root
			}
		case hdr.Type != metadata.TARGETS || cur == nil:
		case p.e.Role == metadata.TARGETS:
			p.spec = &speculation{under: cur}
		default:
			if r := c.repo(id); r != nil {
				p.spec = &speculation{delegators: r.delegatorTargets(p.e.Role)}
			}
		}
	}
}

// check runs a targets speculation; roots were checked by speculate.
func (sp *speculation) check(p *prepared) {
	switch {
	case sp == nil || sp.done:
	case sp.under != nil:
		sp.targets, sp.err = tufcheck.TopLevelTargetsDecoded(sp.under.(*tufcheck.Root), p.u, time.Time{})
	default:
		sp.targets, sp.signer, sp.err = delegatedBy(sp.delegators, p.e.Role, p.u)
	}
}

// parallel calls f(0), …, f(n-1) on up to GOMAXPROCS goroutines.
func parallel(n int, f func(int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	const chunk = 16
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				lo := next
				next += chunk
				mu.Unlock()
				if lo >= n {
					return
				}
				for i := lo; i < min(lo+chunk, n); i++ {
					f(i)
				}
			}
		}()
	}
	wg.Wait()
}

type releaseKey struct {
	repo, role string
	version    uint64
}

// overlay is a History with the releases recorded by CheckAll so far over
// the caller's.
type overlay struct {
	h   History
	own map[releaseKey]Release
}

func (o *overlay) Release(repo, role string, version uint64) (Release, bool, error) {
	if r, ok := o.own[releaseKey{repo, role, version}]; ok {
		return r, true, nil
	}
	return o.h.Release(repo, role, version)
}
