package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/shiplog/shiplog/audit/replay"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// writeFormat1 writes a state file as the auditor before format 2 did: one
// key per tree hash, one JSON record per release.
func writeFormat1(t *testing.T, path string, leaves int, rels []replay.Release) (root tlog.Hash) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{"meta", "hashes", "repos", "releases", "checkpoints", "findings", "findingkeys"} {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		hb := tx.Bucket([]byte("hashes"))
		read := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for i, x := range idx {
				copy(out[i][:], hb.Get(u64(uint64(x))))
			}
			return out, nil
		})
		for n := 0; n < leaves; n++ {
			hs, err := tlog.StoredHashes(int64(n), []byte(fmt.Sprintf("entry %d\n", n)), read)
			if err != nil {
				return err
			}
			for i, h := range hs {
				if err := hb.Put(u64(uint64(tlog.StoredHashIndex(0, int64(n))+int64(i))), append([]byte(nil), h[:]...)); err != nil {
					return err
				}
			}
		}
		if root, err = tlog.TreeHash(int64(leaves), read); err != nil {
			return err
		}
		hd, _ := json.Marshal(Head{Origin: "example.com/log", Size: uint64(leaves), Root: root})
		if err := tx.Bucket([]byte("meta")).Put(keyHead, hd); err != nil {
			return err
		}
		for _, r := range rels {
			k := append(append(append(append([]byte(r.Repo), 0), r.Role...), 0), binary.BigEndian.AppendUint64(nil, r.Version)...)
			v, _ := json.Marshal(r)
			if err := tx.Bucket([]byte("releases")).Put(k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func format1Releases(n int) []replay.Release {
	seen := time.Date(2026, 12, 1, 10, 0, 0, 123, time.UTC)
	var rels []replay.Release
	for i := 0; i < n; i++ {
		rels = append(rels, replay.Release{Index: uint64(i), Repo: fmt.Sprintf("repo-%d", i%3), Role: []string{"root", "targets", "apps"}[i%3],
			Version: uint64(i/3 + 1), SHA256: fmt.Sprintf("%064x", i), Length: uint64(1000 + i), Seen: seen.Add(time.Duration(i) * time.Second),
			PublicSince: seen.Add(time.Minute), Expires: seen.Add(time.Hour), Changed: []string{"+a.bin", fmt.Sprintf("~b-%d.bin", i)},
			ChangedMore: i % 2, Valid: i%5 != 0})
	}
	rels = append(rels, replay.Release{Index: uint64(n), Repo: "odd", Role: "targets", Version: 1, SHA256: "not hex"})
	return rels
}

// checkMigrated checks that the state at path holds exactly rels and the
// tree of leaves entries, in format 2.
func checkMigrated(t *testing.T, db *DB, leaves int, root tlog.Hash, rels []replay.Release) {
	t.Helper()
	err := db.View(func(tx *Tx) error {
		if f := tx.tx.Bucket(bucketMeta).Get(keyFormat); string(f) != stateFormat {
			t.Errorf("format %q after Open, want %s", f, stateFormat)
		}
		if tx.tx.Bucket(bucketHashesV1) != nil || tx.tx.Bucket(bucketReleasesV1) != nil {
			t.Error("format-1 buckets left after the migration")
		}
		got, err := tx.TreeHash(uint64(leaves))
		if err != nil || got != root {
			t.Errorf("tree hash after migration %v (%v), want %v", got, err, root)
		}
		for _, want := range rels {
			got, ok, err := tx.Release(want.Repo, want.Role, want.Version)
			if err != nil || !ok || !reflect.DeepEqual(got, want) {
				t.Errorf("release %s/%s/%d after migration:\n got %+v (%v %v)\nwant %+v", want.Repo, want.Role, want.Version, got, ok, err, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOpenMigratesFormat1State: a state file written before format 2 opens,
// and reads back the same tree and releases.
func TestOpenMigratesFormat1State(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	rels := format1Releases(300)
	root := writeFormat1(t, path, 700, rels)
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkMigrated(t, db, 700, root, rels)
	// The migrated tree grows on.
	err = db.Update(func(tx *Tx) error { return tx.AppendLeaf(700, []byte("entry 700\n")) })
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrationResumesAfterCrash: a migration stopped between its
// transactions (here: after the first) completes on the next Open.
func TestMigrationResumesAfterCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	rels := format1Releases(200)
	root := writeFormat1(t, path, 500, rels)
	defer func(n int) { migrateBatch = n }(migrateBatch)
	migrateBatch = 97
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := createBuckets(bdb); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ { // part of the hashes, then part of the releases
		if done, err := migrateStep(bdb); err != nil || done {
			t.Fatalf("step %d: done %v, err %v", i, done, err)
		}
	}
	bdb.Close()
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkMigrated(t, db, 500, root, rels)
}

// TestOpenRefusesNewerFormat: a state file of a later format is refused
// with what to do, not read wrongly.
func TestOpenRefusesNewerFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	db.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyFormat, []byte("3")) })
	db.Close()
	if _, err := Open(path); err == nil {
		t.Fatal("state of format 3 opened")
	} else {
		t.Log(err)
	}
}
