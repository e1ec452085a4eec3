package audit

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/audit/replay"
	"github.com/shiplog/shiplog/audit/store"
	"github.com/shiplog/shiplog/internal/harness"
	"github.com/shiplog/shiplog/internal/harness/kit"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// toFormat1 rewrites the closed state file at path as the auditor wrote it
// before format 2: one key per tree hash (bucket "hashes"), one JSON record
// per release keyed by repository, role and version (bucket "releases"),
// no "format" key.
func toFormat1(t *testing.T, path string) {
	t.Helper()
	db, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var hashes []tlog.Hash
	var rels []replay.Release
	err = db.View(func(tx *store.Tx) error {
		h, _, err := tx.Head()
		if err != nil {
			return err
		}
		idx := make([]int64, tlog.StoredHashCount(int64(h.Size)))
		for i := range idx {
			idx[i] = int64(i)
		}
		if hashes, err = tx.Hashes().ReadHashes(idx); err != nil {
			return err
		}
		return tx.Repos(func(id string, _ *replay.RepoState) error {
			return tx.Releases(id, func(r replay.Release) bool { rels = append(rels, r); return true })
		})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	err = bdb.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{"hashchunks", "releases2", "names", "spans"} {
			if err := tx.DeleteBucket([]byte(b)); err != nil {
				return fmt.Errorf("%s: %w", b, err)
			}
		}
		if err := tx.Bucket([]byte("meta")).Delete([]byte("format")); err != nil {
			return err
		}
		hb, err := tx.CreateBucket([]byte("hashes"))
		if err != nil {
			return err
		}
		for i, h := range hashes {
			if err := hb.Put(binary.BigEndian.AppendUint64(nil, uint64(i)), append([]byte(nil), h[:]...)); err != nil {
				return err
			}
		}
		rb, err := tx.CreateBucket([]byte("releases"))
		if err != nil {
			return err
		}
		for _, r := range rels {
			k := append(append(append(append([]byte(r.Repo), 0), r.Role...), 0), binary.BigEndian.AppendUint64(nil, r.Version)...)
			v, _ := json.Marshal(r)
			if err := rb.Put(k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStateOfEarlierFormatKeepsWorking: an auditor whose state directory
// was written before the compact state format (one key per tree hash, JSON
// per release) opens it, resumes at the size it had audited, and still
// reports an equivocation against a release recorded in the old format
// (and the rollback it is).
func TestStateOfEarlierFormatKeepsWorking(t *testing.T) {
	e := newEnv(t)
	r := e.repo
	first := r.Release(kit.Files("a", 1, 1))
	if _, err := e.ledger.Append(e.ctx,
		harness.Release{Repo: r.ID, Role: "root", Version: 1, Metadata: r.RootBytes()},
		harness.Release{Repo: r.ID, Role: "targets", Version: 1, Metadata: first}); err != nil {
		t.Fatal(err)
	}
	e.version = 1
	e.honest(e.ledger, 300)
	wantNone(t, e.step(e.auditor(nil)))
	e.db.Close()
	toFormat1(t, e.dbPath)

	e.openDB()
	if h, ok, err := e.db.Head(); err != nil || !ok || h.Size != 302 {
		t.Fatalf("head after migration: %d (ok %v, err %v), want 302", h.Size, ok, err)
	}
	r.SetVersion(0)
	if _, err := e.ledger.Append(e.ctx, harness.Release{Repo: r.ID, Role: "targets", Version: 1, Metadata: r.Release(kit.Files("b", 1, 1))}); err != nil {
		t.Fatal(err)
	}
	r.SetVersion(int64(e.version))
	e.honest(e.ledger, 2)
	res := e.step(e.auditor(nil))
	f := wantFinding(t, res, alert.KindEquivocation)
	wantFinding(t, res, alert.KindRollback) // version 1 after 301, as without the migration
	if *f.Index != 302 || f.Evidence["first_index"] != "1" || len(res.Findings) != 2 {
		t.Errorf("findings %+v, want an equivocation at 302 against 1 and a rollback", res.Findings)
	}
	if res.Audited != 305 {
		t.Errorf("audited %d entries, want 305", res.Audited)
	}
}
