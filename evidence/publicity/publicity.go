// Package publicity computes since when a log entry has been public, proven
// by the witnesses' own clocks: the timestamps that C2SP tlog-cosignature
// (c2sp.org/tlog-cosignature, cosignature/v1) puts inside every witness
// cosignature, and specified in docs/spec/publicity.md.
//
// An entry at index i is public since the earliest time T such that the
// policy witnesses whose verified cosignatures carry a timestamp ≤ T, on a
// checkpoint of size > i, satisfy the policy's quorum. A device with a
// publicity window W installs the entry's release only once its own clock
// says now − T ≥ W. A cosignature whose timestamp is later than the device's
// now plus a skew allowance does not count (a witness, or a device, whose
// clock is wrong cannot make a release look public earlier); nor does one
// at or before the Unix epoch (the spec's uint64 seconds beyond 2^63 wrap
// there).
//
// The timestamps come only from cosignatures that verified under the policy
// (evidence.VerifyCheckpoint); nothing here reads a clock: the caller passes
// its own now. Limits: a quorum of witnesses that lie about time together
// can make an entry look older than it is, as it could cosign a fork; and a
// device clock set ahead shortens the window by as much.
package publicity

import (
	"errors"
	"slices"
	"time"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/policy"
)

// DefaultSkew is the clock skew allowance a device grants witnesses' clocks
// ahead of its own when none is configured.
const DefaultSkew = 5 * time.Minute

// MaxSkew bounds the skew allowance: beyond it, a witness clock ahead of
// the device's would shorten a window by as much.
const MaxSkew = time.Hour

var (
	// ErrNoQuorum means the policy has no witness quorum ("quorum none"):
	// nothing proves when an entry became public, so no window can be met.
	ErrNoQuorum = errors.New("the policy has no witness quorum: publicity cannot be proven")
	// ErrNotCovered means the checkpoint does not contain the entry.
	ErrNotCovered = errors.New("the checkpoint does not contain the entry")
	errSkew       = errors.New("skew allowance out of range")
)

// Publicity is since when one entry (or a release of several) is proven
// public. When Public is false, no quorum of counted cosignatures exists
// yet and Since is zero.
type Publicity struct {
	Public bool
	Since  time.Time
}

// EligibleAt returns when a device with window w may install: Since + w.
// It is meaningful only when Public.
func (p Publicity) EligibleAt(w time.Duration) time.Time { return p.Since.Add(w) }

// Eligible reports whether a device with window w may install at now: the
// entry is public and now − Since ≥ w.
func (p Publicity) Eligible(w time.Duration, now time.Time) bool {
	return p.Public && !now.Before(p.EligibleAt(w))
}

// Since returns since when the entry at index is public as proven by c, a
// checkpoint verified under p (evidence.VerifyCheckpoint or
// evidence.VerifyInclusion), judged at the device's time now with skew
// allowance skew (0 ≤ skew ≤ MaxSkew). Only cosignatures of p's witnesses,
// matched by name and key ID, count; each witness counts once. It fails
// with ErrNotCovered if index ≥ c.Size and ErrNoQuorum if p has none.
//
// Only c's own cosignatures are used, never those of a later checkpoint: an
// honest witness's later cosignatures are later, so they could only make
// the entry look younger, while a wrong one could make it look older.
func Since(c *evidence.Checkpoint, p *policy.Policy, index uint64, now time.Time, skew time.Duration) (Publicity, error) {
	if skew < 0 || skew > MaxSkew {
		return Publicity{}, errSkew
	}
	if p.Quorum == nil {
		return Publicity{}, ErrNoQuorum
	}
	if index >= c.Size { // "a checkpoint of size > i"
		return Publicity{}, ErrNotCovered
	}
	limit := now.Add(skew)
	at := map[*policy.Witness]time.Time{}
	for _, w := range p.Witnesses {
		for _, cs := range c.Cosignatures {
			if cs.Name != w.Verifier.Name() || cs.KeyHash != w.Verifier.KeyHash() {
				continue
			}
			if cs.Time.Unix() <= 0 || cs.Time.After(limit) {
				continue // future-dated (beyond the skew) or wrapped: does not count
			}
			if old, ok := at[w]; !ok || cs.Time.Before(old) {
				at[w] = cs.Time
			}
		}
	}
	times := make([]time.Time, 0, len(at))
	for _, t := range at {
		times = append(times, t)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	for _, t := range times {
		if p.Satisfied(func(w *policy.Witness) bool {
			wt, ok := at[w]
			return ok && !wt.After(t)
		}) {
			return Publicity{Public: true, Since: t}, nil
		}
	}
	return Publicity{}, nil
}

// Latest combines the publicity of the entries a release depends on: the
// release is public once all are, since the latest of them.
func Latest(ps ...Publicity) Publicity {
	if len(ps) == 0 {
		return Publicity{}
	}
	out := Publicity{Public: true}
	for _, p := range ps {
		if !p.Public {
			return Publicity{}
		}
		if p.Since.After(out.Since) {
			out.Since = p.Since
		}
	}
	return out
}
