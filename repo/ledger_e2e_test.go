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
	return realLedgerWith(t, server.Config{}, nil)
}

// realLedgerWith is realLedger with config cfg and files (name -> content)
// written into the ledger directory before it starts.
func realLedgerWith(t *testing.T, cfg server.Config, files map[string][]byte) ledgerEndpoint {
	t.Helper()
	dir := t.TempDir()
	cfg.RateLimit = -1
	if err := server.Init(context.Background(), dir, server.InitOptions{Origin: "e2e.example/log", Config: &cfg}); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	url := serveLedger(t, dir)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return ledgerEndpoint{URL: url, Token: strings.TrimSpace(read(server.TokenFile)), Policy: read(server.PolicyFile)}
}

// serveLedger serves the ledger in dir on 127.0.0.1 until the test ends
// and returns its HTTP base URL. (Not log/conformance.Serve: that package
// imports audit, which imports this package.)
func serveLedger(t *testing.T, dir string) string {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	n, err := server.Open(context.Background(), dir, server.Options{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", AddrFile: addrFile})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ledger: %v", err)
		}
	})
	var addrs map[string]string
	for deadline := time.Now().Add(time.Minute); ; { // a loaded machine
		b, err := os.ReadFile(addrFile)
		if err == nil && json.Unmarshal(b, &addrs) == nil {
			return "http://" + addrs["http"]
		}
		if time.Now().After(deadline) {
			t.Fatal("ledger did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
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
