// Package conformance is the one behaviour suite of the shiplog ledger
// (docs/spec/ledger-api.md), run against every storage backend — Tessera
// POSIX files and Trillian on PostgreSQL — so they cannot drift: register,
// publish, validation, dedup, proofs, witnessing (c2sp.org/tlog-witness
// with real witnesses), the C2SP tlog-tiles read API, the metadata store,
// gRPC, sign-off attestations, and the auditor's full replay, all through the servers' real HTTP
// and gRPC listeners on 127.0.0.1. With several replicas it also checks
// that any replica accepts publishes and serves reads, that they agree on
// one history, and that two replicas never accept two versions of one
// role.
//
// A backend package uses it from a test:
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, func(t *testing.T) *conformance.Ledger {
//			return conformance.Start(t, conformance.StartOptions{Config: server.Config{Storage: "posix"}})
//		})
//	}
package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/log/server"
	"github.com/shiplog/shiplog/witness/witnesstest"
)

// Ledger is a running ledger under test: one or more replicas serving one
// log.
type Ledger struct {
	// URLs are the replicas' HTTP base URLs; GRPC their gRPC addresses.
	URLs []string
	GRPC []string
	// Token is the admin bearer token.
	Token string
	// Policy is the ledger's witness policy (its log key and a quorum of
	// Witnesses).
	Policy    *policy.Policy
	Witnesses []*witnesstest.Witness
}

// Factory starts a fresh, empty ledger for the suite.
type Factory func(t *testing.T) *Ledger

// StartOptions configures Start.
type StartOptions struct {
	// Config is the ledger's config.json (its storage part; Start sets the
	// rest). Each call must name a new, empty log.
	Config server.Config
	// Replicas is the number of ledger servers on the same data directory
	// and log (default 1; more only for shared storage such as Trillian).
	Replicas int
	// Origin is the log's origin (default "conformance.test/log").
	Origin string
}

// Start initialises a ledger directory with opts.Config, starts two real
// witnesses and a 2-of-2 witness policy, and serves opts.Replicas ledger
// servers on 127.0.0.1 free ports (in this process) until the test ends.
func Start(t *testing.T, opts StartOptions) *Ledger {
	t.Helper()
	if opts.Origin == "" {
		opts.Origin = "conformance.test/log"
	}
	if opts.Replicas == 0 {
		opts.Replicas = 1
	}
	dir, ws := Init(t, opts.Origin, opts.Config, 2, 2)
	pol, err := policy.Parse([]byte(readFile(t, filepath.Join(dir, server.PolicyFile))))
	if err != nil {
		t.Fatal(err)
	}
	l := &Ledger{Token: strings.TrimSpace(readFile(t, filepath.Join(dir, server.TokenFile))), Policy: pol, Witnesses: ws}
	for i := 0; i < opts.Replicas; i++ {
		h, g := Serve(t, dir, server.Options{})
		l.URLs, l.GRPC = append(l.URLs, h), append(l.GRPC, g)
	}
	return l
}

// Init initialises a ledger directory under t.TempDir with cfg (its rate
// limit off) for origin, starts n real witnesses (w0.<host>, w1.<host>, ...,
// host being the origin's first segment) that cosign for its log, and
// writes a k-of-n witness policy naming them with their URLs (with n 0 the
// ledger's own "quorum none" stays). It returns the directory and the
// witnesses, which stop when the test ends.
func Init(t testing.TB, origin string, cfg server.Config, n, k int) (string, []*witnesstest.Witness) {
	t.Helper()
	dir := t.TempDir()
	cfg.RateLimit = -1
	if err := server.Init(context.Background(), dir, server.InitOptions{Origin: origin, Config: &cfg}); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		return dir, nil
	}
	vkey := strings.TrimSpace(readFile(t, filepath.Join(dir, server.VKeyFile)))
	host, _, _ := strings.Cut(origin, "/")
	var ws []*witnesstest.Witness
	for i := 0; i < n; i++ {
		ws = append(ws, witnesstest.Start(t, fmt.Sprintf("w%d.%s", i, host), vkey))
	}
	if err := os.WriteFile(filepath.Join(dir, server.PolicyFile), witnesstest.Policy(vkey, k, ws...), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, ws
}

// Serve serves the ledger in dir on 127.0.0.1 free ports until the test
// ends, and returns its HTTP base URL and gRPC address. It fails the test
// if the ledger does not listen within a minute (a loaded machine).
func Serve(t testing.TB, dir string, opts server.Options) (string, string) {
	t.Helper()
	opts.HTTPAddr, opts.GRPCAddr = "127.0.0.1:0", "127.0.0.1:0"
	opts.AddrFile = filepath.Join(t.TempDir(), "addr")
	n, err := server.Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	var addrs map[string]string
	for deadline := time.Now().Add(time.Minute); ; {
		b, err := os.ReadFile(opts.AddrFile)
		if err == nil && json.Unmarshal(b, &addrs) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ledger did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "http://" + addrs["http"], addrs["grpc"]
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// replica returns the URL of replica i (round robin).
func (l *Ledger) replica(i int) string { return l.URLs[i%len(l.URLs)] }

func (l *Ledger) String() string { return fmt.Sprintf("%d replica(s)", len(l.URLs)) }
