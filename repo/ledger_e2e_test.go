package repo

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/log/server"
	"github.com/shiplog/shiplog/repo/keys"
)

// realLedger starts the real ledger (log/server on Tessera POSIX, in a
// temporary directory, quorum none) behind a real HTTP server.
func realLedger(t *testing.T) ledgerEndpoint {
	return realLedgerWith(t, nil)
}

// realLedgerWith is realLedger with its config.json changed by configure
// (given the ledger directory) before it starts.
func realLedgerWith(t *testing.T, configure func(dir string, cfg map[string]any)) ledgerEndpoint {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "ledger")
	if err := server.Init(ctx, dir, server.InitOptions{Origin: "e2e.example/log"}); err != nil {
		t.Fatal(err)
	}
	if configure != nil {
		path := filepath.Join(dir, server.ConfigFile)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var cfg map[string]any
		if err := json.Unmarshal(b, &cfg); err != nil {
			t.Fatal(err)
		}
		configure(dir, cfg)
		if b, err = json.Marshal(cfg); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	addrFile := filepath.Join(t.TempDir(), "addr")
	n, err := server.Open(ctx, dir, server.Options{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", AddrFile: addrFile})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.Serve(sctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("ledger: %v", err)
		}
	})
	var addrs map[string]string
	for i := 0; ; i++ {
		b, err := os.ReadFile(addrFile)
		if err == nil && json.Unmarshal(b, &addrs) == nil {
			break
		}
		if i > 6000 { // 60 s: a loaded machine
			t.Fatal("ledger did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return ledgerEndpoint{URL: "http://" + addrs["http"], Token: strings.TrimSpace(read(server.TokenFile)), Policy: read("witnesses.policy")}
}

// TestPublishToRealLedger runs the whole vendor history of richRepo (ECDSA
// and Ed25519 keys, named delegations, hash bins, root and targets
// rotations) against the real ledger, then reads the result with go-tuf.
func TestPublishToRealLedger(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real ledger")
	}
	f := richRepoOn(t, newRepoOn(t, keys.ECDSAP256, realLedger(t)))
	for p, want := range richTargets {
		got, err := goTUFDownload(t, f.dir, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if string(got) != want {
			t.Fatalf("%s: got %q", p, got)
		}
	}
}
