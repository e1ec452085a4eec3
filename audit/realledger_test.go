package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/audit/store"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/harness/kit"
	ledger "github.com/shiplog/shiplog/log"
	"github.com/shiplog/shiplog/log/server"
	"github.com/shiplog/shiplog/witness"
)

// TestRealLedgerAndWitness audits the real ledger (log/server, as `shiplog
// ledger serve` runs it) whose checkpoints are cosigned by a real witness
// (witness.Serve, as `shiplog witness serve`), and gossips with that
// witness's monitoring endpoint: an honest run has no finding. Then the
// ledger's operator deletes a stored metadata file, and an auditor of a fresh
// state reports it missing. (The real ledger checks the hash of what it
// serves: a file altered on disk gets a 500, which the auditor retries
// rather than report.)
func TestRealLedgerAndWitness(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const origin = "ledger.audit.test/log"
	ldir := t.TempDir()
	if err := server.Init(ctx, ldir, server.InitOptions{Origin: origin, Config: &server.Config{RateLimit: -1}}); err != nil {
		t.Fatal(err)
	}
	vkeyBytes, err := os.ReadFile(filepath.Join(ldir, server.VKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	logVKey := strings.TrimSpace(string(vkeyBytes))

	// A real witness that knows the log.
	wdir := t.TempDir()
	_, wvkey, err := witness.Init(wdir, "w.audit.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := witness.AddLog(wdir, logVKey, origin, 0); err != nil {
		t.Fatal(err)
	}
	waddr := kit.StableAddr(t)
	go witness.Serve(ctx, witness.ServeOptions{Dir: wdir, Listen: waddr})
	waitHTTP(t, "http://"+waddr+"/healthz")
	policyText := fmt.Sprintf("log %s\nwitness w0 %s http://%s\nquorum w0\n", logVKey, wvkey, waddr)
	if err := os.WriteFile(filepath.Join(ldir, server.PolicyFile), []byte(policyText), 0o644); err != nil {
		t.Fatal(err)
	}

	// The real ledger.
	addrFile := filepath.Join(t.TempDir(), "addr")
	n, err := server.Open(ctx, ldir, server.Options{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", AddrFile: addrFile})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	defer func() { cancel(); <-done }()
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
	base := "http://" + addrs["http"]
	token, _ := os.ReadFile(filepath.Join(ldir, server.TokenFile))

	repo := kit.NewRepo("example.com/firmware", time.Now().Add(365*24*time.Hour))
	post(t, base+"/v1/admin/repositories?id="+url.QueryEscape(repo.ID)+"&wait=10s", repo.RootBytes(), strings.TrimSpace(string(token)))
	var last []byte
	for v := 1; v <= 5; v++ {
		last = repo.Release(kit.Files("fw", 2, uint64(v)))
		post(t, fmt.Sprintf("%s/v1/publish?repo=%s&role=targets&wait=10s", base, url.QueryEscape(repo.ID)), last, "")
	}

	p, err := policy.Parse([]byte(policyText))
	if err != nil {
		t.Fatal(err)
	}
	audit := func() Result {
		db, err := store.Open(filepath.Join(t.TempDir(), "audit.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		a, err := New(Config{Ledger: base, Policy: p, State: db, Witnesses: []string{"http://" + waddr}})
		if err != nil {
			t.Fatal(err)
		}
		res, err := a.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := audit()
	wantNone(t, res)
	if res.Audited != 6 || res.CheckpointSize != 6 {
		t.Errorf("audited %d of %d, want 6 of 6", res.Audited, res.CheckpointSize)
	}

	// The stored bytes of the last release are damaged on disk.
	path := filepath.Join(ldir, "metadata", ledger.PackFile)
	pack, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("metadata store layout changed: %v", err)
	}
	at := bytes.LastIndex(pack, last)
	if at < 0 {
		t.Fatal("metadata store layout changed: the release is not in the pack")
	}
	pack[at+len(last)/2] ^= 1
	if err := os.WriteFile(path, pack, 0o644); err != nil {
		t.Fatal(err)
	}
	f := wantFinding(t, audit(), alert.KindMetadataMissing)
	if f.Index == nil || *f.Index != 5 {
		t.Errorf("metadata mismatch at %v, want index 5", f.Index)
	}
}

func post(t *testing.T, u string, body []byte, token string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(string(body)))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s %s", u, resp.Status, b)
	}
}

func waitHTTP(t *testing.T, u string) {
	t.Helper()
	hc := &http.Client{Timeout: time.Second}
	for i := 0; i < 6000; i++ { // 60 s: a loaded machine
		if resp, err := hc.Get(u); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s did not come up", u)
}
