package store

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/audit/replay"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

func open(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestTreeMatchesRFC6962 checks the stored tree against transparency-dev's
// compact range at every size, across transactions.
func TestTreeMatchesRFC6962(t *testing.T) {
	db := open(t)
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	cr := rf.NewEmptyRange(0)
	for n := uint64(0); n < 300; n++ {
		e := []byte(fmt.Sprintf("entry %d\n", n))
		if err := cr.Append(rfc6962.DefaultHasher.HashLeaf(e), nil); err != nil {
			t.Fatal(err)
		}
		want, _ := cr.GetRootHash(nil)
		err := db.Update(func(tx *Tx) error {
			if err := tx.AppendLeaf(n, e); err != nil {
				return err
			}
			got, err := tx.TreeHash(n + 1)
			if err != nil {
				return err
			}
			if string(got[:]) != string(want) {
				t.Fatalf("size %d: root %x, want %x", n+1, got, want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestFindingsAreDeduplicated(t *testing.T) {
	db := open(t)
	f := alert.Finding{Severity: alert.Critical, Kind: alert.KindFork, Message: "m", Evidence: map[string]string{"fork": "x"}}
	for i := 0; i < 2; i++ {
		err := db.Update(func(tx *Tx) error {
			added, err := tx.AddFinding(f)
			if added != (i == 0) {
				t.Errorf("round %d: added = %v", i, added)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		f.Message = "another wording" // the message is not part of the key
	}
	f.Evidence["fork"] = "y"
	db.Update(func(tx *Tx) error {
		if added, _ := tx.AddFinding(f); !added {
			t.Error("finding with other evidence deduplicated")
		}
		return nil
	})
	var n int
	db.View(func(tx *Tx) error { return tx.Findings(func(FindingRecord) error { n++; return nil }) })
	if n != 2 {
		t.Errorf("%d findings stored, want 2", n)
	}
}

func TestReleasesByRepository(t *testing.T) {
	db := open(t)
	db.Update(func(tx *Tx) error {
		for _, r := range []replay.Release{{Repo: "a", Role: "targets", Version: 2}, {Repo: "a", Role: "root", Version: 1},
			{Repo: "ab", Role: "targets", Version: 1}, {Repo: "a", Role: "targets", Version: 10}} {
			if err := tx.PutRelease(&r); err != nil {
				return err
			}
		}
		return nil
	})
	var got []string
	db.View(func(tx *Tx) error {
		return tx.Releases("a", func(r replay.Release) bool { got = append(got, fmt.Sprintf("%s/%d", r.Role, r.Version)); return true })
	})
	if fmt.Sprint(got) != "[root/1 targets/2 targets/10]" {
		t.Errorf("releases of a = %v (repository ab must not leak in)", got)
	}
}

// TestFindReleases: the byte prefilter finds by repository, SHA-256 and
// changed target, also for a needle JSON would escape, and ReleaseAt finds
// by log index (10 must not match 1 or 100).
func TestFindReleases(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rels := []*replay.Release{
		{Index: 1, Repo: "a.example/fw", Role: "targets", Version: 1, SHA256: "aa11", Changed: []string{"+fw<1>.bin"}},
		{Index: 10, Repo: "b.example/os", Role: "targets", Version: 1, SHA256: "bb22", Changed: []string{"+os.img"}},
		{Index: 100, Repo: "b.example/os", Role: "targets", Version: 2, SHA256: "cc33", Changed: []string{"~os.img"}},
	}
	err = db.Update(func(tx *Tx) error {
		for _, r := range rels {
			if err := tx.PutRelease(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	find := func(needle string) (got []uint64) {
		db.View(func(tx *Tx) error {
			return tx.FindReleases(needle, func(r replay.Release) bool { got = append(got, r.Index); return true })
		})
		return got
	}
	for needle, want := range map[string]int{"b.example": 2, "bb22": 1, "os.img": 2, "": 3, "zz": 0} {
		if got := find(needle); len(got) != want {
			t.Errorf("FindReleases(%q) = %v, want %d releases", needle, got, want)
		}
	}
	// JSON escapes '<': no prefilter, but the match is still visited.
	if got := find("fw<1>"); len(got) == 0 || got[0] != 1 {
		t.Errorf("FindReleases(%q) visited %v, want release 1 among them", "fw<1>", got)
	}
	for _, idx := range []uint64{1, 10, 100} {
		var r replay.Release
		var ok bool
		db.View(func(tx *Tx) (err error) { r, ok, err = tx.ReleaseAt(idx); return err })
		if !ok || r.Index != idx {
			t.Errorf("ReleaseAt(%d) = %v, %v", idx, r.Index, ok)
		}
	}
	db.View(func(tx *Tx) error {
		if _, ok, _ := tx.ReleaseAt(5); ok {
			t.Error("ReleaseAt(5) found a release")
		}
		return nil
	})
}
