package repo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/log/conformance"
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
	dir, _ := conformance.Init(t, "e2e.example/log", cfg, 0, 0)
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	url, _ := conformance.Serve(t, dir, server.Options{})
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return ledgerEndpoint{URL: url, Token: strings.TrimSpace(read(server.TokenFile)), Policy: read(server.PolicyFile)}
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
