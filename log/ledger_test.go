package log_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/tufcheck"
	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/internal/harness"
	"github.com/shiplog/shiplog/internal/harness/kit"
	ledger "github.com/shiplog/shiplog/log"
	"k8s.io/klog/v2"
)

var expires = time.Now().Add(365 * 24 * time.Hour)

func TestMain(m *testing.M) {
	if ledger.MetadataCrashChild() {
		return
	}
	klog.SetSlogLogger(slog.New(slog.DiscardHandler)) // Tessera logs through klog
	os.Exit(m.Run())
}

func TestPublishProveAndRestart(t *testing.T) {
	dir := t.TempDir()
	keys := kit.NewKeys("example.com/ledger", 3)
	l := harness.StartLedger(t, dir, keys, harness.LedgerOptions{Quorum: 2})
	ctx := context.Background()
	repo := kit.NewRandomRepo(expires)
	root := repo.RootBytes()
	r, err := l.Register(ctx, "example.com/fw", root, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Index != 0 || r.Proof == nil {
		t.Fatalf("register: index %d, proof %q", r.Index, r.Proof)
	}
	if _, err := evidence.VerifyEntry("example.com/fw", "root", 1, root, r.Proof, l.Policy); err != nil {
		t.Fatalf("root proof: %v", err)
	}
	t1 := repo.Targets(1)
	r, err = l.Publish(ctx, "example.com/fw", "targets", t1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := evidence.VerifyEntry("example.com/fw", "targets", 1, t1, r.Proof, l.Policy); err != nil {
		t.Fatalf("targets proof: %v", err)
	}
	// Idempotent resubmission: same index, duplicate.
	r2, err := l.Publish(ctx, "example.com/fw", "targets", t1, 0)
	if err != nil || r2.Index != r.Index || !r2.Duplicate {
		t.Fatalf("resubmission: %+v, %v", r2, err)
	}
	// Restart without the index: it is rebuilt from the log.
	l.Stop()
	if err := os.Remove(filepath.Join(dir, "index.db")); err != nil {
		t.Fatal(err)
	}
	l = harness.StartLedger(t, dir, keys, harness.LedgerOptions{Quorum: 2})
	st, err := l.Role("example.com/fw", "targets")
	if err != nil || st.Version != 1 || st.Index != r.Index {
		t.Fatalf("after restart: %+v, %v", st, err)
	}
	if _, err := l.Publish(ctx, "example.com/fw", "targets", repo.Targets(1, repo.TargetsKeys[0], kit.NewKey()), 0); !errors.Is(err, tufcheck.ErrVersion) {
		t.Fatalf("replay of v1 with other bytes after restart: %v, want ErrVersion", err)
	}
	r3, err := l.Publish(ctx, "example.com/fw", "targets", repo.Targets(2), 5*time.Second)
	if err != nil || r3.Proof == nil {
		t.Fatalf("v2 after restart: %+v, %v", r3, err)
	}
	if got := ledger.HTTPStatus(err); got != 200 {
		t.Fatal(got)
	}
}

// TestPolicyChangeRecosignsTheSameSize: after the witness policy changes,
// the last cosigned checkpoint no longer meets it and is not served; the
// ledger gets the same size cosigned under the new policy without waiting
// for the log to grow.
func TestPolicyChangeRecosignsTheSameSize(t *testing.T) {
	dir := t.TempDir()
	keys := kit.NewKeys("example.com/ledger", 2)
	l := harness.StartLedger(t, dir, keys, harness.LedgerOptions{Quorum: 0})
	repo := kit.NewRandomRepo(expires)
	if _, err := l.Register(context.Background(), "example.com/fw", repo.RootBytes(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	l.Stop()
	l = harness.StartLedger(t, dir, keys, harness.LedgerOptions{Quorum: 2})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := l.WaitProof(ctx, 0)
	if err != nil {
		t.Fatalf("no proof under the new policy: %v", err)
	}
	inc, err := evidence.VerifyEntry("example.com/fw", "root", 1, repo.RootBytes(), p, l.Policy)
	if err != nil || len(inc.Checkpoint.Cosigners) != 2 || inc.Checkpoint.Size != 1 {
		t.Fatalf("proof under the new policy: %+v, %v", inc, err)
	}
}
