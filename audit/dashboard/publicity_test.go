package dashboard_test

import (
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/audit/attestation"
	"github.com/shiplog/shiplog/audit/dashboard"
	"github.com/shiplog/shiplog/audit/replay"
	"github.com/shiplog/shiplog/audit/store"
)

// TestReleasesShowWhenDevicesMayInstall: the release timeline shows since when a release is public and when devices with 24h, 72h and
// 7-day windows may install it.
func TestReleasesShowWhenDevicesMayInstall(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	since := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	err = db.Update(func(tx *store.Tx) error {
		return tx.PutRelease(&replay.Release{Index: 0, Repo: "example.com/fw", Role: "targets", Version: 1,
			SHA256: strings.Repeat("ab", 32), Length: 10, Seen: since.Add(time.Minute), PublicSince: since, Valid: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(dashboard.NewHandler(dashboard.Config{State: db}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/repo?id=example.com/fw")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"2026-03-01 12:00:00Z", "2026-03-02 12:00:00Z", "2026-03-04 12:00:00Z", "2026-03-08 12:00:00Z"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the timeline lacks %s", want)
		}
	}
}

// TestReleasesShowSignoff: the release timeline and the entry page show
// who reproduced, reviewed and objected to a release, each attester once.
func TestReleasesShowSignoff(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := func(index uint64, verdict, key, name string) *attestation.Statement {
		return &attestation.Statement{Index: index, Repo: "example.com/fw", Subject: strings.Repeat("cd", 32), Verdict: verdict,
			Key: key, Name: name, Target: "fw.bin", TargetsRole: "targets", TargetsVersion: 1}
	}
	err = db.Update(func(tx *store.Tx) error {
		if err := tx.PutRelease(&replay.Release{Index: 0, Repo: "example.com/fw", Role: "targets", Version: 1,
			SHA256: strings.Repeat("ab", 32), Length: 10, Valid: true}); err != nil {
			return err
		}
		// The entry page shows audited entries only: a tree of one.
		if err := tx.AppendLeaf(0, []byte("entry 0")); err != nil {
			return err
		}
		root, err := tx.TreeHash(1)
		if err != nil {
			return err
		}
		if err := tx.SetHead(store.Head{Origin: "log.example", Size: 1, Root: root}); err != nil {
			return err
		}
		for _, s := range []*attestation.Statement{st(1, "reproduced", "a", "rebuilder-a.example"), st(2, "reproduced", "a", "rebuilder-a.example"),
			st(3, "reproduced", "b", "rebuilder-b.example"), st(4, "reviewed", "c", "auditor.example"), st(5, "mismatch", "d", "rebuilder-d.example")} {
			if err := tx.PutStatement(s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(dashboard.NewHandler(dashboard.Config{State: db}))
	defer srv.Close()
	for _, path := range []string{"/repo?id=example.com/fw", "/entry/0"} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{"reproduced by rebuilder-a.example, rebuilder-b.example<", "reviewed by auditor.example<", "mismatch by rebuilder-d.example<"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s lacks %q", path, want)
			}
		}
	}
}
