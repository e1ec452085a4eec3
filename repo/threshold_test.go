package repo

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/shiplog/shiplog/repo/keys"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TestOnlineRolesThresholdAboveOne: snapshot and timestamp with a threshold
// of 2 (TUF 1.0 allows any threshold for every role). Publishing or
// refreshing the timestamp with fewer distinct keys than the threshold is
// refused and writes nothing; with enough keys the files carry one
// signature per key and pass the client workflow.
func TestOnlineRolesThresholdAboveOne(t *testing.T) {
	l := kit.NewFakeLedger()
	t.Cleanup(l.Close)
	f := &fixture{t: t, dir: filepath.Join(t.TempDir(), "repo"), token: l.Token, keys: map[string]*keys.Private{}, ledger: l}
	var err error
	if f.policy, err = policy.Parse([]byte(l.Policy)); err != nil {
		t.Fatal(err)
	}
	ks := map[string][]*metadata.Key{}
	for _, role := range TopLevelRoles {
		f.keys[role] = genKey(t, keys.Ed25519)
		ks[role] = []*metadata.Key{f.keys[role].Public}
	}
	snap2, ts2 := genKey(t, keys.Ed25519), genKey(t, keys.Ed25519)
	ks["snapshot"] = append(ks["snapshot"], snap2.Public)
	ks["timestamp"] = append(ks["timestamp"], ts2.Public)
	if err := Init(f.dir, InitOptions{Repository: "example.com/fw", Ledger: l.URL, Keys: ks, Thresholds: map[string]int{"snapshot": 2, "timestamp": 2}}); err != nil {
		t.Fatal(err)
	}
	f.sign(f.keys["root"], "root")
	f.sign(f.keys["targets"], "targets")
	if _, err := Register(context.Background(), f.dir, f.opts(false)); err != nil {
		t.Fatal(err)
	}
	o := f.opts(true)
	o.MoreSnapshotKeys = []*keys.Private{f.keys["snapshot"]} // the same key twice counts once
	if _, err := Publish(context.Background(), f.dir, o); err == nil || !strings.Contains(err.Error(), "snapshot threshold is 2") {
		t.Fatalf("one snapshot key of 2: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, MetadataDir, "timestamp.json")); err == nil {
		t.Fatal("exposed below the threshold")
	}
	o.MoreSnapshotKeys, o.MoreTimestampKeys = []*keys.Private{snap2}, []*keys.Private{ts2}
	res, err := Publish(context.Background(), f.dir, o)
	if err != nil || res.Exposed == nil {
		t.Fatalf("both keys: %+v %v", res, err)
	}
	sigs := func(name string) int {
		b, err := os.ReadFile(filepath.Join(f.dir, MetadataDir, name))
		if err != nil {
			t.Fatal(err)
		}
		var m struct{ Signatures []json.RawMessage }
		json.Unmarshal(b, &m)
		return len(m.Signatures)
	}
	if n := sigs("timestamp.json"); n != 2 {
		t.Errorf("timestamp.json has %d signatures, want 2", n)
	}
	if n := sigs("1.snapshot.json"); n != 2 {
		t.Errorf("1.snapshot.json has %d signatures, want 2", n)
	}
	r := f.open()
	defer r.Close()
	if _, err := r.Timestamp(f.keys["timestamp"]); err == nil || !strings.Contains(err.Error(), "timestamp threshold is 2") {
		t.Errorf("repo timestamp with one key of 2: %v", err)
	}
	if _, err := r.Timestamp(f.keys["timestamp"], ts2); err != nil {
		t.Errorf("repo timestamp with both keys: %v", err)
	}
	if n := sigs("timestamp.json"); n != 2 {
		t.Errorf("refreshed timestamp.json has %d signatures, want 2", n)
	}
}
