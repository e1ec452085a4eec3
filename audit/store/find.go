package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/shiplog/shiplog/audit/replay"
)

// FindReleases calls fn for every stored release whose repository id,
// metadata SHA-256 or a changed target's path may contain needle, in
// (repository, role, version) order, until fn returns false. It may call fn
// for releases that do not match (the caller checks the fields); it skips,
// without decoding them, releases whose stored encoding does not contain
// needle, which makes a search over every release cheap. An empty needle
// visits every release.
func (t *Tx) FindReleases(needle string, fn func(replay.Release) bool) error {
	pre := []byte(needle)
	if q, err := json.Marshal(needle); err != nil || string(q) != `"`+needle+`"` {
		pre = nil // JSON escapes it: no byte prefilter, decode everything
	}
	return t.scanReleases(pre, fn)
}

// ReleaseAt returns the release logged at log index idx; ok is false when
// the entry there is not a recorded release (malformed, or a repeat). It
// reads the release index: O(releases), without decoding the others.
func (t *Tx) ReleaseAt(idx uint64) (r replay.Release, ok bool, err error) {
	pre := []byte(`{"index":` + strconv.FormatUint(idx, 10) + `,`)
	err = t.scanReleases(pre, func(rel replay.Release) bool {
		if rel.Index == idx {
			r, ok = rel, true
		}
		return !ok
	})
	return r, ok, err
}

func (t *Tx) scanReleases(pre []byte, fn func(replay.Release) bool) error {
	c := t.tx.Bucket(bucketReleases).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if pre != nil && !bytes.Contains(v, pre) {
			continue
		}
		var r replay.Release
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("%w: release: %v", ErrCorrupt, err)
		}
		if !fn(r) {
			return nil
		}
	}
	return nil
}
