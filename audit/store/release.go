package store

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/shiplog/shiplog/audit/replay"
)

// Releases are stored one binary record each (replay.Release, about 60
// bytes plus the changed targets' names), keyed so that one repository's
// releases are adjacent and each role's in version order:
//
//	key:   repository number | role number | version, each an ordered
//	       number: one byte n (0-8), then the number in n bytes BE
//	value: flags (1 byte)
//	       index (uvarint)
//	       sha256: 32 bytes when it is 64 lowercase hex digits (flagRawSum),
//	               else uvarint length and the string
//	       length (uvarint)
//	       seen, public since (times; only with flagOwnTimes)
//	       expires (time)
//	       changed: uvarint count, then per name uvarint length and bytes;
//	       changed-more (uvarint)
//
// A time is one byte 0 (the zero time) or 1, then the Unix seconds
// (varint) and nanoseconds (uvarint); it reads back in UTC.
//
// Seen and public since are the same for every entry of a catch-up step,
// so they are stored once per step, as a span: spans maps the step's first
// log index (8 bytes BE) to the two times, which hold for every release
// from that index up to the next span. A release whose times differ from
// its span (or that was stored without one) carries its own (flagOwnTimes).
//
// Repository ids and role names are numbered in names: "r" + id -> number,
// "s" + number -> id, "o" + role -> number, "p" + number -> role (numbers
// 8 bytes BE). Role root is number 0 and targets 1, without entries, so a
// repository's releases list root, then targets, then its delegated roles
// in the order they were first logged.
var (
	bucketReleases2 = []byte("releases2")
	bucketNames     = []byte("names")
	bucketSpans     = []byte("spans")
)

const (
	flagValid = 1 << iota
	flagRawSum
	flagOwnTimes
)

// maxReleaseRecord bounds a stored record: far above what
// replay.Release holds (32 changed names of a bounded length).
const maxReleaseRecord = 1 << 20

// releaseCache is a transaction's view of names and of its span.
type releaseCache struct {
	nums     map[string]uint64 // kind + name -> number, known or added
	haveSpan bool
	span     uint64
	seen     time.Time
	public   time.Time
}

// number returns the number of name in namespace kind ('r' repositories,
// 'o' roles); with add, one is assigned when it has none.
func (t *Tx) number(kind byte, name string, add bool) (uint64, bool, error) {
	if kind == 'o' {
		switch name {
		case "root":
			return 0, true, nil
		case "targets":
			return 1, true, nil
		}
	}
	ck := string(kind) + name
	if n, ok := t.rc.nums[ck]; ok {
		return n, true, nil
	}
	b := t.tx.Bucket(bucketNames)
	if v := b.Get([]byte(ck)); len(v) == 8 {
		t.cacheNum(ck, binary.BigEndian.Uint64(v))
		return binary.BigEndian.Uint64(v), true, nil
	}
	if !add {
		return 0, false, nil
	}
	seq, err := b.NextSequence() // shared by both namespaces: numbers stay unique
	if err != nil {
		return 0, false, err
	}
	n := seq + 1 // 0 and 1 are root and targets
	if err := b.Put([]byte(ck), u64(n)); err != nil {
		return 0, false, err
	}
	if err := b.Put(append([]byte{kind + 1}, u64(n)...), []byte(name)); err != nil {
		return 0, false, err
	}
	t.cacheNum(ck, n)
	return n, true, nil
}

func (t *Tx) cacheNum(ck string, n uint64) {
	if t.rc.nums == nil {
		t.rc.nums = map[string]uint64{}
	}
	t.rc.nums[ck] = n
}

// name returns the name numbered n in namespace kind.
func (t *Tx) name(kind byte, n uint64) (string, error) {
	if kind == 'o' && n < 2 {
		return [2]string{"root", "targets"}[n], nil
	}
	v := t.tx.Bucket(bucketNames).Get(append([]byte{kind + 1}, u64(n)...))
	if v == nil {
		return "", fmt.Errorf("%w: name number %d of kind %c missing", ErrCorrupt, n, kind)
	}
	return string(v), nil
}

// appendOrdered appends x as an ordered number: byte order is number order.
func appendOrdered(b []byte, x uint64) []byte {
	n := (bits.Len64(x) + 7) / 8
	b = append(b, byte(n))
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(x>>(8*i)))
	}
	return b
}

// readOrdered reads an ordered number from the front of b.
func readOrdered(b []byte) (x uint64, rest []byte, ok bool) {
	if len(b) == 0 || b[0] > 8 || len(b) < 1+int(b[0]) {
		return 0, nil, false
	}
	n := int(b[0])
	for _, c := range b[1 : 1+n] {
		x = x<<8 | uint64(c)
	}
	if n > 0 && b[1] == 0 { // not minimal: not one this package wrote
		return 0, nil, false
	}
	return x, b[1+n:], true
}

// releaseKey2 returns the key of a release, nil when its repository or
// role has no number (and so no release) and add is false.
func (t *Tx) releaseKey2(repo, role string, version uint64, add bool) ([]byte, error) {
	rn, ok, err := t.number('r', repo, add)
	if err != nil || !ok {
		return nil, err
	}
	on, ok, err := t.number('o', role, add)
	if err != nil || !ok {
		return nil, err
	}
	return appendOrdered(appendOrdered(appendOrdered(make([]byte, 0, 16), rn), on), version), nil
}

// SetSpan records that the releases stored from log index start on (until
// the next span) were seen at seen and public since publicSince (zero
// when unknown): PutRelease then stores these times once, not per release.
func (t *Tx) SetSpan(start uint64, seen, publicSince time.Time) error {
	var v []byte
	v = appendTime(v, seen)
	v = appendTime(v, publicSince)
	if err := t.tx.Bucket(bucketSpans).Put(u64(start), v); err != nil {
		return err
	}
	t.rc.haveSpan, t.rc.span, t.rc.seen, t.rc.public = true, start, seen, publicSince
	return nil
}

// spanAt returns the times of the span that covers log index idx.
func (t *Tx) spanAt(idx uint64) (seen, public time.Time, err error) {
	c := t.tx.Bucket(bucketSpans).Cursor()
	k, v := c.Seek(u64(idx))
	if k == nil || binary.BigEndian.Uint64(k) != idx {
		k, v = c.Prev()
	}
	if k == nil {
		return time.Time{}, time.Time{}, nil
	}
	d := decoder{b: v}
	seen, public = d.time(), d.time()
	if d.err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: span: %v", ErrCorrupt, d.err)
	}
	return seen, public, nil
}

// Release implements replay.History.
func (t *Tx) Release(repo, role string, version uint64) (replay.Release, bool, error) {
	k, err := t.releaseKey2(repo, role, version, false)
	if err != nil || k == nil {
		return replay.Release{}, false, err
	}
	v := t.tx.Bucket(bucketReleases2).Get(k)
	if v == nil {
		return replay.Release{}, false, nil
	}
	r, err := t.decodeRelease(repo, role, version, v)
	return r, err == nil, err
}

// PutRelease records the first release of its repository, role and version.
func (t *Tx) PutRelease(r *replay.Release) error {
	k, err := t.releaseKey2(r.Repo, r.Role, r.Version, true)
	if err != nil {
		return err
	}
	own := !(t.rc.haveSpan && r.Index >= t.rc.span && r.Seen.Equal(t.rc.seen) && r.PublicSince.Equal(t.rc.public))
	b := t.tx.Bucket(bucketReleases2)
	b.FillPercent = 1.0 // each repository's releases only grow at its end
	return b.Put(k, encodeRelease(r, own))
}

func encodeRelease(r *replay.Release, ownTimes bool) []byte {
	var flags byte
	if r.Valid {
		flags |= flagValid
	}
	sum, err := hex.DecodeString(r.SHA256)
	if err == nil && len(sum) == 32 && hex.EncodeToString(sum) == r.SHA256 {
		flags |= flagRawSum
	}
	if ownTimes {
		flags |= flagOwnTimes
	}
	v := make([]byte, 0, 64+len(r.Changed)*16)
	v = append(v, flags)
	v = binary.AppendUvarint(v, r.Index)
	if flags&flagRawSum != 0 {
		v = append(v, sum...)
	} else {
		v = appendString(v, r.SHA256)
	}
	v = binary.AppendUvarint(v, r.Length)
	if ownTimes {
		v = appendTime(v, r.Seen)
		v = appendTime(v, r.PublicSince)
	}
	v = appendTime(v, r.Expires)
	v = binary.AppendUvarint(v, uint64(len(r.Changed)))
	for _, c := range r.Changed {
		v = appendString(v, c)
	}
	return binary.AppendUvarint(v, uint64(max(r.ChangedMore, 0)))
}

// decodeRelease decodes a record stored under repo, role and version.
func (t *Tx) decodeRelease(repo, role string, version uint64, v []byte) (replay.Release, error) {
	r := replay.Release{Repo: repo, Role: role, Version: version}
	if len(v) == 0 || len(v) > maxReleaseRecord {
		return r, fmt.Errorf("%w: release record of %d bytes", ErrCorrupt, len(v))
	}
	d := decoder{b: v[1:]}
	flags := v[0]
	r.Valid = flags&flagValid != 0
	r.Index = d.uvarint()
	if flags&flagRawSum != 0 {
		r.SHA256 = hex.EncodeToString(d.bytes(32))
	} else {
		r.SHA256 = d.string()
	}
	r.Length = d.uvarint()
	own := flags&flagOwnTimes != 0
	if own {
		r.Seen, r.PublicSince = d.time(), d.time()
	}
	r.Expires = d.time()
	n := d.uvarint()
	if n > uint64(len(v)) {
		d.fail()
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		r.Changed = append(r.Changed, d.string())
	}
	r.ChangedMore = int(min(d.uvarint(), 1<<31))
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	if d.err != nil {
		return r, fmt.Errorf("%w: release record: %v", ErrCorrupt, d.err)
	}
	if !own {
		var err error
		if r.Seen, r.PublicSince, err = t.spanAt(r.Index); err != nil {
			return r, err
		}
	}
	return r, nil
}

// splitReleaseKey splits a stored key into the encoded repository number
// (the prefix of all its releases), the role's number and the version.
func splitReleaseKey(k []byte) (repoPrefix []byte, repo, role, version uint64, err error) {
	repo, rest, ok1 := readOrdered(k)
	role, rest, ok2 := readOrdered(rest)
	version, rest, ok3 := readOrdered(rest)
	if !ok1 || !ok2 || !ok3 || len(rest) != 0 {
		return nil, 0, 0, 0, fmt.Errorf("%w: release key", ErrCorrupt)
	}
	return k[:1+int(k[0])], repo, role, version, nil
}

// Releases calls fn for every release of repo in (role, version) order
// (root, targets, then delegated roles in the order first logged), until
// fn returns false.
func (t *Tx) Releases(repo string, fn func(replay.Release) bool) error {
	rn, ok, err := t.number('r', repo, false)
	if err != nil || !ok {
		return err
	}
	prefix := appendOrdered(nil, rn)
	c := t.tx.Bucket(bucketReleases2).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		_, _, on, version, err := splitReleaseKey(k)
		if err != nil {
			return err
		}
		role, err := t.name('o', on)
		if err != nil {
			return err
		}
		r, err := t.decodeRelease(repo, role, version, v)
		if err != nil {
			return err
		}
		if !fn(r) {
			return nil
		}
	}
	return nil
}

// FindReleases calls fn for every stored release whose repository id,
// metadata SHA-256 or a changed target's path may contain needle, in
// (repository number, role, version) order, until fn returns false. It may
// call fn for releases that do not match (the caller checks the fields);
// it skips, without decoding them, releases whose repository id, SHA-256
// and stored record cannot contain needle, which makes a search over every
// release cheap. An empty needle visits every release.
func (t *Tx) FindReleases(needle string, fn func(replay.Release) bool) error {
	sum, _ := hex.DecodeString(needle) // a whole SHA-256, or an even prefix of one
	return t.scanReleases(func(repo string, v []byte) bool {
		return needle == "" || bytes.Contains([]byte(repo), []byte(needle)) || bytes.Contains(v, []byte(needle)) ||
			(len(sum) > 0 && bytes.Contains(v, sum))
	}, fn)
}

// ReleaseAt returns the release logged at log index idx; ok is false when
// the entry there is not a recorded release (malformed, or a repeat). It
// reads every record's index: O(releases), without decoding the rest.
func (t *Tx) ReleaseAt(idx uint64) (r replay.Release, ok bool, err error) {
	err = t.scanReleases(func(_ string, v []byte) bool {
		x, n := binary.Uvarint(v[min(1, len(v)):])
		return n > 0 && x == idx
	}, func(rel replay.Release) bool {
		if rel.Index == idx {
			r, ok = rel, true
		}
		return !ok
	})
	return r, ok, err
}

// scanReleases decodes and passes to fn every release whose repository id
// and record pass pre.
func (t *Tx) scanReleases(pre func(repo string, v []byte) bool, fn func(replay.Release) bool) error {
	c := t.tx.Bucket(bucketReleases2).Cursor()
	var lastPrefix []byte
	var repo string
	for k, v := c.First(); k != nil; k, v = c.Next() {
		prefix, rn, on, version, err := splitReleaseKey(k)
		if err != nil {
			return err
		}
		if !bytes.Equal(prefix, lastPrefix) {
			if repo, err = t.name('r', rn); err != nil {
				return err
			}
			lastPrefix = bytes.Clone(prefix)
		}
		if !pre(repo, v) {
			continue
		}
		role, err := t.name('o', on)
		if err != nil {
			return err
		}
		r, err := t.decodeRelease(repo, role, version, v)
		if err != nil {
			return err
		}
		if !fn(r) {
			return nil
		}
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = binary.AppendVarint(append(b, 1), t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// decoder reads a record; the first error sticks and later reads return
// zero values.
type decoder struct {
	b   []byte
	err error
}

var errRecord = errors.New("truncated or malformed record")

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errRecord
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) varint() int64 {
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) bytes(n uint64) []byte {
	if uint64(len(d.b)) < n {
		d.fail()
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) string() string { return string(d.bytes(d.uvarint())) }

func (d *decoder) time() time.Time {
	switch tag := d.bytes(1); {
	case tag == nil:
		return time.Time{}
	case tag[0] == 0:
		return time.Time{}
	case tag[0] != 1:
		d.fail()
		return time.Time{}
	}
	s, ns := d.varint(), d.uvarint()
	if ns >= 1e9 {
		d.fail()
		return time.Time{}
	}
	return time.Unix(s, int64(ns)).UTC()
}
