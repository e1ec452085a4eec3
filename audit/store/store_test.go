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
