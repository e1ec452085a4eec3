package witness_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/evidence/evidencetest"
	"github.com/shiplog/shiplog/witness"
	"github.com/shiplog/shiplog/witness/addcheckpoint"
	bolt "go.etcd.io/bbolt"
)

// TestServeMigratesBboltState: a witness directory whose state.db an
// earlier version wrote (bbolt) serves on from where it was: the real
// "shiplog witness serve" migrates it, refuses a checkpoint older than the
// state with 409 and the state's size, cosigns the next one, and after a
// restart holds it, in a journal.
func TestServeMigratesBboltState(t *testing.T) {
	l := evidencetest.NewLog("example.com/log", 0)
	grow(l, 8, "main")
	dir := t.TempDir()
	initWitnessDir(t, dir, "witness.test", l.VKey)
	path := filepath.Join(dir, witness.StateFile)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	// The earlier format: bucket "logs", origin → {"size","hash","note"}.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := l.Body(5)
	v, _ := json.Marshal(map[string]any{"size": 5, "hash": base64.StdEncoding.EncodeToString(body.Hash[:]), "note": string(l.CheckpointAt(5))})
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("logs"))
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucket([]byte("misbehaviour")); err != nil {
			return err
		}
		return b.Put([]byte(l.Origin), v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	p := startWitnessProcess(t, dir)
	r := httpDo(t, http.MethodPost, p.url+"/add-checkpoint", request(l, 3, 4))
	if size, err := addcheckpoint.ParseSize(r.body); r.code != http.StatusConflict || err != nil || size != 5 {
		t.Fatalf("checkpoint older than the migrated state: %d %q, want 409 with size 5", r.code, r.body)
	}
	if r := httpDo(t, http.MethodPost, p.url+"/add-checkpoint", request(l, 5, 8)); r.code != http.StatusOK {
		t.Fatalf("next checkpoint after migration: %d %s\n%s", r.code, r.body, p.log())
	}
	if !strings.Contains(p.log(), "migrated from bbolt") {
		t.Errorf("no migration logged:\n%s", p.log())
	}
	p.kill()

	p = startWitnessProcess(t, dir)
	if r := httpDo(t, http.MethodPost, p.url+"/add-checkpoint", request(l, 5, 8)); r.code != http.StatusConflict {
		t.Fatalf("after restart, the state went back: %d", r.code)
	}
	p.kill()
	if data, _ := os.ReadFile(path); !strings.HasPrefix(string(data), "shiplog witness state journal") {
		t.Error("state.db is not a journal after the migration")
	}
}
