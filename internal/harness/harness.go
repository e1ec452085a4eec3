package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/approval"
	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/log/server"
	"github.com/shiplog/shiplog/repo"
	"github.com/shiplog/shiplog/repo/keys"
	"github.com/shiplog/shiplog/witness/witnesstest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Origin is the origin (and log key name) of the ledger Start runs.
const Origin = "harness.example/log"

// startWait bounds how long Start waits for the ledger to listen, and
// publishWait how long a publish waits for each proof: generous, for a
// loaded machine. They are deadlines, not expectations.
const (
	startWait   = 60 * time.Second
	publishWait = 2 * time.Minute
)

// Option configures Start.
type Option func(*options)

type options struct{ witnesses, quorum int }

// Witnesses runs n real witnesses (package witness, each on its own HTTP
// server on 127.0.0.1) that the ledger must have cosign every checkpoint it
// publishes; by default all n form the quorum.
func Witnesses(n int) Option { return func(o *options) { o.witnesses, o.quorum = n, n } }

// Quorum makes k of the witnesses the policy's quorum (after Witnesses).
func Quorum(k int) Option { return func(o *options) { o.quorum = k } }

// Harness is a running ledger, the real one: log/server on Tessera POSIX
// storage in a temporary directory, serving HTTP (and gRPC) on 127.0.0.1
// on free ports, with the witnesses its policy names. Everything stops at
// the end of the test. Not safe for concurrent use.
type Harness struct {
	// Dir is the ledger's directory (config.json, log.vkey, the log).
	Dir string
	// URL is the ledger's HTTP base URL; Token its admin token.
	URL, Token string
	// PolicyText is the tlog-policy every proof the ledger serves
	// satisfies (the ledger's witnesses.policy); Policy is it parsed.
	PolicyText []byte
	Policy     *policy.Policy
	// Witnesses are the running witnesses, w0.example, w1.example, ...
	Witnesses []*witnesstest.Witness
}

// Start starts the ledger and its witnesses, and fails the test if they
// do not start within a minute. (It does the work of log/conformance.Init
// and Serve itself: log/conformance imports audit, whose internal tests use
// this package.)
func Start(t testing.TB, opts ...Option) *Harness {
	t.Helper()
	var o options
	for _, f := range opts {
		f(&o)
	}
	ctx := context.Background()
	h := &Harness{Dir: filepath.Join(t.TempDir(), "ledger")}
	if err := server.Init(ctx, h.Dir, server.InitOptions{Origin: Origin}); err != nil {
		t.Fatal(err)
	}
	vkey := strings.TrimSpace(string(readFile(t, filepath.Join(h.Dir, server.VKeyFile))))
	for i := 0; i < o.witnesses; i++ {
		h.Witnesses = append(h.Witnesses, witnesstest.Start(t, fmt.Sprintf("w%d.example", i), vkey))
	}
	if o.witnesses > 0 {
		p := witnesstest.Policy(vkey, o.quorum, h.Witnesses...)
		if err := os.WriteFile(filepath.Join(h.Dir, server.PolicyFile), p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.URL = serve(t, h.Dir)
	h.Token = strings.TrimSpace(string(readFile(t, filepath.Join(h.Dir, server.TokenFile))))
	h.PolicyText = readFile(t, filepath.Join(h.Dir, server.PolicyFile))
	var err error
	if h.Policy, err = policy.Parse(h.PolicyText); err != nil {
		t.Fatal(err)
	}
	return h
}

// serve opens the ledger in dir, serves it until the test ends and returns
// its HTTP base URL.
func serve(t testing.TB, dir string) string {
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
	for deadline := time.Now().Add(startWait); ; {
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

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Repo is a vendor repository made and published with the vendor's own
// code (package repo, as `shiplog repo` runs it), on disk in a temporary
// directory, with one Ed25519 key per top-level role. Not safe for
// concurrent use.
type Repo struct {
	// ID is the repository id; Dir its directory.
	ID, Dir string
	// Keys holds the key of each top-level role.
	Keys map[string]*keys.Private
	h    *Harness
	t    testing.TB
	srv  sync.Once
	url  string
}

// NewRepo initialises repository id, registers it with the ledger, and
// publishes and exposes its (empty) targets version 1.
func (h *Harness) NewRepo(t testing.TB, id string) *Repo {
	t.Helper()
	r := &Repo{ID: id, Dir: filepath.Join(t.TempDir(), "repo"), Keys: map[string]*keys.Private{}, h: h, t: t}
	ks := map[string][]*metadata.Key{}
	for _, role := range repo.TopLevelRoles {
		k, err := keys.GenerateDefault(keys.Ed25519)
		if err != nil {
			t.Fatal(err)
		}
		r.Keys[role], ks[role] = k, []*metadata.Key{k.Public}
	}
	if err := repo.Init(r.Dir, repo.InitOptions{Repository: id, Ledger: h.URL, Keys: ks}); err != nil {
		t.Fatal(err)
	}
	r.Sign(metadata.ROOT, metadata.TARGETS)
	if _, err := repo.Register(context.Background(), r.Dir, r.options()); err != nil {
		t.Fatal(err)
	}
	r.Publish()
	return r
}

func (r *Repo) options() repo.PublishOptions {
	return repo.PublishOptions{Policy: r.h.Policy, Token: r.h.Token, Wait: publishWait,
		SnapshotKey: r.Keys[metadata.SNAPSHOT], TimestampKey: r.Keys[metadata.TIMESTAMP]}
}

// open opens the repository, failing the test on error; the caller closes it.
func (r *Repo) open() *repo.Repo {
	r.t.Helper()
	o, err := repo.Open(r.Dir)
	if err != nil {
		r.t.Fatal(err)
	}
	return o
}

// Add stages a target file with content at target path p (in the
// top-level targets role).
func (r *Repo) Add(p string, content []byte) {
	r.t.Helper()
	file := filepath.Join(r.t.TempDir(), filepath.Base(p))
	if err := os.WriteFile(file, content, 0o644); err != nil {
		r.t.Fatal(err)
	}
	o := r.open()
	defer o.Close()
	if _, err := o.Add(repo.AddOptions{Targets: []repo.TargetInput{{Path: p, File: file}}, Replace: true}); err != nil {
		r.t.Fatal(err)
	}
}

// Sign signs the staged roles with their keys (default: targets).
func (r *Repo) Sign(roles ...string) {
	r.t.Helper()
	if len(roles) == 0 {
		roles = []string{metadata.TARGETS}
	}
	o := r.open()
	defer o.Close()
	for _, role := range roles {
		if _, err := o.Sign(r.Keys[role], []string{role}); err != nil {
			r.t.Fatal(err)
		}
	}
}

// Publish logs what was signed in the ledger, waits for its witness-cosigned
// proofs, and exposes it (new snapshot and timestamp).
func (r *Repo) Publish() *repo.PublishResult {
	r.t.Helper()
	res, err := repo.Publish(context.Background(), r.Dir, r.options())
	if err != nil {
		r.t.Fatal(err)
	}
	return res
}

// Root returns the exact bytes of root version v.
func (r *Repo) Root(v int) []byte {
	return readFile(r.t, filepath.Join(r.Dir, "metadata", fmt.Sprintf("%d.root.json", v)))
}

// URL serves the repository directory over HTTP on 127.0.0.1 (a static web
// server, as a vendor's CDN) and returns its base URL.
func (r *Repo) URL() string {
	r.srv.Do(func() {
		s := httptest.NewServer(http.FileServer(http.Dir(r.Dir)))
		r.t.Cleanup(s.Close)
		r.url = s.URL
	})
	return r.url
}

// Device initialises and opens a device (package client/device, as
// shiplog-device runs it) in a temporary directory that trusts r's root
// version 1 and the ledger's policy, follows r over HTTP, asks the ledger
// for proofs and installs without asking (approval.Auto). configure, if
// given, changes the config before Init. The device is closed at the end of
// the test.
func (h *Harness) Device(t testing.TB, r *Repo, configure ...func(*device.Config)) *device.Device {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "device")
	cfg := device.Config{Repository: r.ID, RepositoryURL: r.URL(), Ledger: h.URL, Approval: approval.Auto}
	for _, f := range configure {
		f(&cfg)
	}
	if err := device.Init(dir, cfg, r.Root(1), h.PolicyText); err != nil {
		t.Fatal(err)
	}
	d, err := device.Open(dir, device.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}
