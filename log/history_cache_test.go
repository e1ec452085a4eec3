package log

import (
	"crypto/sha256"
	"testing"
)

// A full cache drops one entry per insertion, not all of them: a working
// set one larger than the cache keeps all but one cached.
func TestParsedCacheDropsOneEntryWhenFull(t *testing.T) {
	c := parsedCache{max: 64}
	key := func(i int) [sha256.Size]byte { return sha256.Sum256([]byte{byte(i)}) }
	for i := 0; i < 65; i++ {
		c.put(key(i), i)
	}
	if len(c.m) != 64 {
		t.Fatalf("%d entries, want 64", len(c.m))
	}
	if v, ok := c.get(key(64)); !ok || v != 64 {
		t.Fatal("the entry just put is not cached")
	}
	c.put(key(64), 64) // present: nothing dropped
	if len(c.m) != 64 {
		t.Fatalf("%d entries after putting a present key, want 64", len(c.m))
	}
}
