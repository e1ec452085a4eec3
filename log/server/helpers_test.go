package server_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/log/server"
	ledgerv1 "github.com/shiplog/shiplog/proto/ledger/v1"
	"github.com/shiplog/shiplog/witness"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/klog/v2"
)

const origin = "ledger.test/log"

func TestMain(m *testing.M) {
	klog.SetSlogLogger(slog.New(slog.DiscardHandler)) // Tessera logs through klog
	os.Exit(m.Run())
}

var expires = time.Now().Add(365 * 24 * time.Hour)

// testNode is a ledger served on 127.0.0.1 ports, with an HTTP and a
// gRPC client.
type testNode struct {
	t      *testing.T
	dir    string
	url    string
	addrs  map[string]string // "http" and "grpc" listen addresses
	token  string
	node   *server.Node
	grpc   ledgerv1.LedgerClient
	policy *policy.Policy
	stop   func()
}

type nodeOptions struct {
	config server.Config
	policy func(vkey string) string // witnesses.policy text; nil keeps "quorum none"
}

func startNode(t *testing.T, o nodeOptions) *testNode {
	t.Helper()
	dir := t.TempDir()
	cfg := o.config
	if cfg.RateLimit == 0 {
		cfg.RateLimit = -1
	}
	if err := server.Init(context.Background(), dir, server.InitOptions{Origin: origin, Config: &cfg}); err != nil {
		t.Fatal(err)
	}
	if o.policy != nil {
		vkey := readFile(t, filepath.Join(dir, server.VKeyFile))
		if err := os.WriteFile(filepath.Join(dir, server.PolicyFile), []byte(o.policy(strings.TrimSpace(vkey))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return serveNode(t, dir)
}

// serveNode serves the ledger in dir until the test ends or stop.
func serveNode(t *testing.T, dir string) *testNode {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	n, err := server.Open(context.Background(), dir, server.Options{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", AddrFile: addrFile})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
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
	conn, err := grpc.NewClient(addrs["grpc"], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	pb, err := os.ReadFile(filepath.Join(dir, server.PolicyFile))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse(pb)
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNode{t: t, dir: dir, url: "http://" + addrs["http"], addrs: addrs, token: strings.TrimSpace(readFile(t, filepath.Join(dir, server.TokenFile))),
		node: n, grpc: ledgerv1.NewLedgerClient(conn), policy: pol}
	stopped := false
	tn.stop = func() {
		if stopped {
			return
		}
		stopped = true
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(tn.stop)
	return tn
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

var httpClient = &http.Client{Timeout: 90 * time.Second}

func (n *testNode) do(method, path string, body []byte, header ...string) response {
	n.t.Helper()
	var r io.Reader
	if body != nil {
		r = strings.NewReader(string(body))
	}
	req, err := http.NewRequest(method, n.url+path, r)
	if err != nil {
		n.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		n.t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// metric returns the value of the sample series (a metric name with its
// labels, as /metrics writes it) from the ledger's /metrics; the test fails
// if the series is missing.
func (n *testNode) metric(series string) float64 {
	n.t.Helper()
	r := n.do("GET", "/metrics", nil)
	for _, line := range strings.Split(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				n.t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	n.t.Fatalf("/metrics (%d) has no %s", r.code, series)
	return 0
}

type receipt struct {
	Index     uint64 `json:"index"`
	LeafHash  string `json:"leaf_hash"`
	Entry     string `json:"entry"`
	Duplicate bool   `json:"duplicate"`
	Proof     string `json:"proof"`
}

func (n *testNode) register(repo string, root []byte) (receipt, response) {
	n.t.Helper()
	r := n.do("POST", "/v1/admin/repositories?id="+repo+"&wait=5s", root, "Authorization", "Bearer "+n.token)
	var rc receipt
	if r.code == 200 {
		if err := json.Unmarshal(r.body, &rc); err != nil {
			n.t.Fatal(err)
		}
	}
	return rc, r
}

func (n *testNode) publish(repo, role string, data []byte, wait string) (receipt, response) {
	n.t.Helper()
	r := n.do("POST", fmt.Sprintf("/v1/publish?repo=%s&role=%s&wait=%s", url.QueryEscape(repo), url.QueryEscape(role), wait), data)
	var rc receipt
	if r.code == 200 {
		if err := json.Unmarshal(r.body, &rc); err != nil {
			n.t.Fatal(err)
		}
	}
	return rc, r
}

func (n *testNode) size() uint64 {
	n.t.Helper()
	s, err := n.node.Ledger().Storage().IntegratedSize(context.Background())
	if err != nil {
		n.t.Fatal(err)
	}
	return s
}

// testWitness is a real shiplog witness (package witness) served over
// HTTP in-process, with durable state in a temporary directory.
type testWitness struct {
	srv  *httptest.Server
	vkey string      // cosignature/v1 vkey
	down atomic.Bool // when set, the witness answers 503 to everything
	hang atomic.Bool // when set, the witness never answers (until the client gives up)
	stop chan struct{}
}

func startWitness(t *testing.T, name, logVKey string) *testWitness {
	t.Helper()
	skey, _, cosig, err := notekey.GenerateWitness(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := notekey.NewWitnessSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	list, err := witness.ParseLogList([]byte("logs/v0\nvkey " + logVKey + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := witness.OpenStore(filepath.Join(t.TempDir(), witness.StateFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	w, err := witness.New(witness.Config{Signer: signer, Store: store, Logs: list})
	if err != nil {
		t.Fatal(err)
	}
	tw := &testWitness{vkey: cosig, stop: make(chan struct{})}
	h := w.Handler("", nil)
	tw.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if tw.down.Load() {
			http.Error(rw, "down", http.StatusServiceUnavailable)
			return
		}
		if tw.hang.Load() {
			select {
			case <-r.Context().Done():
			case <-tw.stop:
			}
			return
		}
		h.ServeHTTP(rw, r)
	}))
	t.Cleanup(tw.srv.Close)
	t.Cleanup(func() { close(tw.stop) }) // runs first: releases hanging requests
	return tw
}
