package log

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/tufcheck"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// A full cache drops one entry per insertion, not all of them: a working
// set one larger than the cache keeps all but one cached.
func TestParsedCacheDropsOneEntryWhenFull(t *testing.T) {
	c := parsedCache{max: 64, maxBytes: 1 << 20}
	key := func(i int) [sha256.Size]byte { return sha256.Sum256([]byte{byte(i)}) }
	for i := 0; i < 65; i++ {
		c.put(key(i), i, 10)
	}
	if len(c.m) != 64 {
		t.Fatalf("%d entries, want 64", len(c.m))
	}
	if v, ok := c.get(key(64)); !ok || v != 64 {
		t.Fatal("the entry just put is not cached")
	}
	c.put(key(64), 64, 10) // present: nothing dropped
	if len(c.m) != 64 || c.bytes != 640 {
		t.Fatalf("%d entries (%d bytes) after putting a present key, want 64 (640)", len(c.m), c.bytes)
	}
}

// The cache holds at most maxBytes of parsed files: a file that would take
// it past the bound drops others first, and one larger than the whole
// cache is not cached. A flood of large files cannot grow it further.
func TestParsedCacheBoundedInBytes(t *testing.T) {
	c := parsedCache{max: 1000, maxBytes: 1000}
	key := func(i int) [sha256.Size]byte { return sha256.Sum256([]byte{byte(i), byte(i >> 8)}) }
	for i := 0; i < 50; i++ {
		c.put(key(i), i, 100)
		if c.bytes > 1000 {
			t.Fatalf("after %d puts the cache holds %d bytes, over its 1000", i+1, c.bytes)
		}
	}
	if len(c.m) != 10 {
		t.Fatalf("%d entries of 100 bytes, want 10", len(c.m))
	}
	if _, ok := c.get(key(49)); !ok {
		t.Fatal("the entry just put is not cached")
	}
	c.put(key(1000), "huge", 1001)
	if _, ok := c.get(key(1000)); ok || c.bytes > 1000 {
		t.Fatalf("a file larger than the cache was cached (%d bytes held)", c.bytes)
	}
	c.drop(key(49))
	if _, ok := c.get(key(49)); ok || c.bytes != 900 {
		t.Fatalf("after a drop: %d bytes held, want 900", c.bytes)
	}
}

// memoHistory is a fakeHistory that remembers one targets file as having
// met its threshold under one delegator.
type memoHistory struct {
	*fakeHistory
	delegator any
	met       *tufcheck.Targets
}

func (h memoHistory) metThreshold(delegator any, role string, latest *tufcheck.Targets) bool {
	return delegator == h.delegator && role == "targets" && latest == h.met
}

func (h memoHistory) rememberThreshold(any, string, *tufcheck.Targets) {}

// The floor comes from the remembered verification only for the very
// objects remembered: the same content parsed again, or the same file
// under another root, is verified again. A latest version signed by a key
// the root no longer lists (here: another key) does not set the floor
// unless the memo says it met the threshold.
func TestCheckSubmissionUsesRememberedThresholdOnlyForTheSameObjects(t *testing.T) {
	now := time.Now()
	repo := kit.NewRandomRepo(now.Add(time.Hour))
	root, err := tufcheck.InitialRoot(repo.RootBytes(), now)
	if err != nil {
		t.Fatal(err)
	}
	otherKey := kit.NewKey()
	parse := func(b []byte) *tufcheck.Targets {
		m, err := metadata.Targets().FromBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	latest := parse(repo.Targets(5, otherKey)) // not signed by the root's targets key
	h := &fakeHistory{root: root, targets: map[string]*tufcheck.Targets{"targets": latest}, version: map[string]uint64{"root": 1, "targets": 5}}
	v3 := repo.Targets(3)
	if _, err := CheckSubmission(h, "example.com/fw", "targets", v3, now); err != nil {
		t.Fatalf("v3 above a latest v5 its current keys did not sign: %v", err)
	}
	if _, err := CheckSubmission(memoHistory{h, root, latest}, "example.com/fw", "targets", v3, now); !errors.Is(err, tufcheck.ErrVersion) {
		t.Fatalf("v3 with v5 remembered as verified: %v, want ErrVersion", err)
	}
	if _, err := CheckSubmission(memoHistory{h, root, parse(repo.Targets(5, otherKey))}, "example.com/fw", "targets", v3, now); err != nil {
		t.Fatalf("a memo of another parse of the file was used: %v", err)
	}
	otherRoot, _ := tufcheck.InitialRoot(repo.RootBytes(), now)
	if _, err := CheckSubmission(memoHistory{h, otherRoot, latest}, "example.com/fw", "targets", v3, now); err != nil {
		t.Fatalf("a memo under another root object was used: %v", err)
	}
	acc, err := CheckSubmission(h, "example.com/fw", "targets", repo.Targets(6), now)
	if err != nil || acc.Targets == nil || acc.Delegator != any(root) || acc.Targets.Signed.Version != 6 {
		t.Fatalf("accepted targets: %+v, %v", acc, err)
	}
}
