package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/shiplog/shiplog/log/server"
)

func openErr(t *testing.T, dir string) error {
	t.Helper()
	n, err := server.Open(context.Background(), dir, server.Options{})
	if err == nil {
		n.Close()
	}
	return err
}

// TestServeRefusesMissingOrMismatchedState: serve never silently starts a
// new log, nor one that is not the configured log's.
func TestServeRefusesMissingOrMismatchedState(t *testing.T) {
	a := startNode(t, nodeOptions{})
	repo := kit.NewRandomRepo(expires)
	if _, r := a.register(fw, repo.RootBytes()); r.code != 200 {
		t.Fatal(r.code)
	}
	a.stop()
	b := startNode(t, nodeOptions{})
	b.stop()

	if err := openErr(t, t.TempDir()); err == nil {
		t.Error("opened an empty directory")
	}
	cases := []struct {
		name   string
		mutate func(dir string)
	}{
		{"log-directory-removed", func(dir string) { os.RemoveAll(filepath.Join(dir, server.LogDir)) }},
		{"another-ledgers-log", func(dir string) {
			os.RemoveAll(filepath.Join(dir, server.LogDir))
			os.CopyFS(filepath.Join(dir, server.LogDir), os.DirFS(filepath.Join(b.dir, server.LogDir)))
		}},
		{"another-ledgers-key", func(dir string) {
			copyFile(t, filepath.Join(b.dir, server.SKeyFile), filepath.Join(dir, server.SKeyFile))
		}},
		{"policy-without-this-log", func(dir string) {
			copyFile(t, filepath.Join(b.dir, server.PolicyFile), filepath.Join(dir, server.PolicyFile))
		}},
		{"config-unknown-field", func(dir string) {
			os.WriteFile(filepath.Join(dir, server.ConfigFile), []byte(`{"origin":"`+origin+`","storage":"posix","extra":1}`), 0o644)
		}},
		{"config-other-origin", func(dir string) {
			os.WriteFile(filepath.Join(dir, server.ConfigFile), []byte(`{"origin":"other.test/log","storage":"posix"}`), 0o644)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ledger")
			if err := os.CopyFS(dir, os.DirFS(a.dir)); err != nil {
				t.Fatal(err)
			}
			if err := openErr(t, dir); err != nil {
				t.Fatalf("the unmodified copy does not open: %v", err)
			}
			c.mutate(dir)
			if err := openErr(t, dir); err == nil {
				t.Fatal("opened a mismatched state")
			}
		})
	}
}

// TestServeRefusesRolledBackLog: restoring an older copy of the log
// directory (a rollback attack, or a stale backup) under newer checkpoint
// state is refused instead of re-signing a different tree at sizes the
// witnesses already cosigned.
func TestServeRefusesRolledBackLog(t *testing.T) {
	n := startNode(t, nodeOptions{})
	repo := kit.NewRandomRepo(expires)
	if _, r := n.register(fw, repo.RootBytes()); r.code != 200 {
		t.Fatal(r.code)
	}
	n.stop()
	old := filepath.Join(t.TempDir(), "old-log")
	if err := os.CopyFS(old, os.DirFS(filepath.Join(n.dir, server.LogDir))); err != nil {
		t.Fatal(err)
	}
	n = serveNode(t, n.dir)
	for v := int64(1); v <= 3; v++ {
		if _, r := n.publish(fw, "targets", repo.Targets(v), "5s"); r.code != 200 {
			t.Fatal(r.code)
		}
	}
	n.stop()
	os.RemoveAll(filepath.Join(n.dir, server.LogDir))
	if err := os.CopyFS(filepath.Join(n.dir, server.LogDir), os.DirFS(old)); err != nil {
		t.Fatal(err)
	}
	err := openErr(t, n.dir)
	if err == nil || !strings.Contains(err.Error(), "rolled back") && !strings.Contains(err.Error(), "index covers") {
		t.Fatalf("rolled-back log: %v", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
