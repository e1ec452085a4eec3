package log

import (
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/tufcheck"
	"github.com/shiplog/shiplog/evidence/evidencetest"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/harness/kit"
)

// countingMetadata counts the reads of a MetadataStorage.
type countingMetadata struct {
	MetadataStorage
	gets atomic.Int64
}

func (c *countingMetadata) Get(sum [sha256.Size]byte) ([]byte, error) {
	c.gets.Add(1)
	return c.MetadataStorage.Get(sum)
}

// The ledger keeps the roots it accepts parsed, as it keeps the targets
// files: the first publish after a registration and the publishes after a
// root rotation read no logged metadata back. The root kept is the one
// accepted last: after a rotation of the targets key, targets signed by
// the revoked key are refused, and those signed by the new key accepted.
func TestAcceptedRootsStayParsed(t *testing.T) {
	ctx := context.Background()
	lg := evidencetest.NewLog("roots.test/log", 0)
	p, err := policy.Parse(lg.Policy(0))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	idx, err := OpenIndex(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	ms, err := NewMetadataStore(filepath.Join(dir, "metadata"))
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	meta := &countingMetadata{MetadataStorage: ms}
	l, err := New(ctx, Config{Storage: &fakeStorage{log: lg}, Index: idx, Metadata: meta, Policy: p, Origin: lg.Origin, StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	repo := kit.NewRandomRepo(time.Now().Add(time.Hour))
	const id = "roots.test/fw"
	if _, err := l.Register(ctx, id, repo.RootBytes(), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Publish(ctx, id, "targets", repo.Targets(1), 0); err != nil {
		t.Fatal(err)
	}
	root2, revoked := repo.RotateTargetsKey()
	if _, err := l.Publish(ctx, id, "root", root2, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Publish(ctx, id, "targets", repo.Targets(2, revoked...), 0); !errors.Is(err, tufcheck.ErrThreshold) {
		t.Fatalf("targets signed by the revoked key after the rotation: %v, want ErrThreshold", err)
	}
	if _, err := l.Publish(ctx, id, "targets", repo.Targets(2), 0); err != nil {
		t.Fatalf("targets signed by the new key: %v", err)
	}
	if n := meta.gets.Load(); n != 0 {
		t.Fatalf("the ledger read %d logged files back to check what it had just accepted", n)
	}
}
