package update_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/internal/harness"
	"github.com/shiplog/shiplog/internal/harness/kit"
)

func serve(t *testing.T, r *harness.RawRepo) *update.HTTPRemote {
	srv := httptest.NewServer(http.FileServer(http.Dir(r.Dir)))
	t.Cleanup(srv.Close)
	return &update.HTTPRemote{MetadataURL: srv.URL + "/metadata", TargetsURL: srv.URL + "/targets", Client: srv.Client()}
}

func client(t *testing.T, r *harness.RawRepo, k int) *update.Client {
	return &update.Client{Remote: serve(t, r), Time: harness.Now,
		Gate: &update.Gate{Policy: r.Policy(k), Repository: r.ID}}
}

func TestRefreshResolveDownload(t *testing.T) {
	r := harness.NewRawRepo(t)
	r.AddTarget("targets", "fw/image.bin", []byte("firmware v1"), map[string]any{"release_notes": "first"})
	r.Delegate("targets", "apps", []string{"apps/*"}, false)
	r.AddTarget("apps", "apps/a.bin", []byte("app a"), nil)
	r.Publish()
	r.RotateRoot("timestamp")
	r.WriteTimestamp()

	c := client(t, r, 2)
	s, err := c.Refresh(context.Background(), update.Trusted{Root: r.RootBytes(1)})
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.AllTargets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("got %d targets, want 2", len(all))
	}
	var buf bytes.Buffer
	if err := s.Download(context.Background(), all["apps/a.bin"], &buf); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "app a" {
		t.Errorf("got %q", buf.String())
	}
	// root v2 + targets + apps, each proven.
	if got := len(s.Evidence()); got != 3 {
		t.Errorf("evidence for %d files, want 3", got)
	}
	tr := s.Trusted()
	if len(tr.Checkpoints) != 1 || len(tr.Targets) != 2 {
		t.Errorf("trusted: %d checkpoints, %d roles", len(tr.Checkpoints), len(tr.Targets))
	}

	// A second refresh from the new trusted state fetches nothing new and is
	// still fine.
	s2, err := c.Refresh(context.Background(), tr)
	if err != nil {
		t.Fatal(err)
	}
	if len(s2.Evidence()) != 0 {
		t.Errorf("unchanged roles were gated again: %d", len(s2.Evidence()))
	}
}

func TestAttackUnloggedRelease(t *testing.T) {
	r := harness.NewRawRepo(t)
	r.AddTarget("targets", "fw/image.bin", []byte("evil"), nil)
	r.Publish()
	// The release is validly signed but its proof is missing.
	r.Remove(harness.RoleFile("targets", 2) + ".tlog-proof")
	_, err := client(t, r, 2).Refresh(context.Background(), update.Trusted{Root: r.RootBytes(1)})
	if !errors.Is(err, update.ErrUnlogged) {
		t.Fatalf("got %v, want ErrUnlogged", err)
	}
	_ = filepath.Join
}

func TestDelegationSearch(t *testing.T) {
	r := harness.NewRawRepo(t)
	// targets -> a (terminating for apps/*) -> ...; b also claims apps/*
	r.Delegate("targets", "a", []string{"apps/*"}, true)
	r.Delegate("targets", "b", []string{"apps/*"}, false)
	r.AddTarget("b", "apps/x.bin", []byte("from b"), nil)
	r.AddTarget("a", "apps/y.bin", []byte("from a"), nil)
	r.Publish()
	s, err := client(t, r, 2).Refresh(context.Background(), update.Trusted{Root: r.RootBytes(1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Target(context.Background(), "apps/y.bin"); err != nil {
		t.Fatal(err)
	}
	// a is terminating for apps/*: b is never consulted.
	if _, err := s.Target(context.Background(), "apps/x.bin"); !errors.Is(err, update.ErrTargetNotFound) {
		t.Fatalf("terminating delegation: got %v", err)
	}
}

func TestDelegationBound(t *testing.T) {
	r := harness.NewRawRepo(t)
	parent := "targets"
	for i := 0; i < 40; i++ {
		role := fmt.Sprintf("r%d", i)
		r.Delegate(parent, role, []string{"deep/*"}, false)
		parent = role
	}
	r.AddTarget(parent, "deep/x", []byte("x"), nil)
	r.Publish()
	c := client(t, r, 2)
	s, err := c.Refresh(context.Background(), update.Trusted{Root: r.RootBytes(1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Target(context.Background(), "deep/x"); !errors.Is(err, update.ErrTargetNotFound) {
		t.Fatalf("got %v, want the search to give up", err)
	}
	c.Limits.MaxDelegations = 64
	s, _ = c.Refresh(context.Background(), update.Trusted{Root: r.RootBytes(1)})
	if _, err := s.Target(context.Background(), "deep/x"); err != nil {
		t.Fatalf("with a higher bound: %v", err)
	}
}

func TestSnapshotMustPinRoles(t *testing.T) {
	r := harness.NewRawRepo(t)
	r.AddTarget("targets", "a", []byte("a"), nil)
	r.Publish()
	// A snapshot that lists targets by version only.
	r.Snapshot.Signed.Meta["targets.json"].Hashes = nil
	r.Snapshot.Signed.Version++
	b := kit.Sign(r.Snapshot, r.Keys["snapshot"]...)
	r.Write(fmt.Sprintf("%d.snapshot.json", r.Snapshot.Signed.Version), b)
	r.WriteTimestamp()
	_, err := client(t, r, 2).Refresh(context.Background(), update.Trusted{Root: r.RootBytes(1)})
	if err == nil || !strings.Contains(err.Error(), "does not pin") {
		t.Fatalf("got %v", err)
	}
}
