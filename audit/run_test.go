package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/internal/harness"
	"github.com/shiplog/shiplog/internal/harness/kit"
)

// TestRunOnceExitCodes runs the command's one-shot mode: clean, then a
// critical finding (a stolen-key release in vendor mode) on stdout and the
// webhook, then clean again because a finding is reported once.
func TestRunOnceExitCodes(t *testing.T) {
	e := newEnv(t)
	rs := e.honest(e.ledger, 2)
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.txt")
	os.WriteFile(policyFile, e.keys.PolicyAll(), 0o644)
	hashes := filepath.Join(dir, "hashes.txt")
	var hb bytes.Buffer
	for _, r := range rs {
		hb.WriteString(hexSum(r.Metadata) + "\n")
	}
	os.WriteFile(hashes, hb.Bytes(), 0o644)

	var mu sync.Mutex
	var posted []alert.Finding
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var f alert.Finding
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &f); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		mu.Lock()
		posted = append(posted, f)
		mu.Unlock()
	}))
	defer hook.Close()

	state := filepath.Join(dir, "state")
	run := func() (int, string) {
		var out bytes.Buffer
		code, err := Run(e.ctx, Options{Ledger: e.srv.URL, PolicyFile: policyFile, StateDir: state, Once: true,
			Webhook: hook.URL, VendorHashes: hashes, VendorRepos: []string{e.repo.ID}, Stdout: &out})
		if err != nil {
			t.Fatal(err)
		}
		return code, out.String()
	}
	if code, out := run(); code != ExitClean || out != "" {
		t.Fatalf("honest run: exit %d, output %q", code, out)
	}
	// A thief with the targets key publishes a release.
	e.version++
	thief := e.repo.Release(kit.Files("backdoor", 1, 66))
	if _, err := e.ledger.Append(e.ctx, harness.Release{Repo: e.repo.ID, Role: "targets", Version: e.version, Metadata: thief}); err != nil {
		t.Fatal(err)
	}
	code, out := run()
	if code != ExitCritical {
		t.Errorf("stolen-key release: exit %d, want %d", code, ExitCritical)
	}
	var f alert.Finding
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &f); err != nil || f.Kind != alert.KindUnexpected {
		t.Errorf("stdout %q, want one unexpected-release JSON line", out)
	}
	mu.Lock()
	if len(posted) != 1 || posted[0].Kind != alert.KindUnexpected {
		t.Errorf("webhook got %+v", posted)
	}
	mu.Unlock()
	if code, _ := run(); code != ExitClean {
		t.Errorf("the same finding reported again: exit %d", code)
	}
}

// TestRunSavesForkEvidence checks that a fork found in a one-shot run is
// written to the state directory in a form evidence.VerifyFork accepts.
func TestRunSavesForkEvidence(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 3)
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.txt")
	os.WriteFile(policyFile, e.keys.PolicyAll(), 0o644)
	state := filepath.Join(dir, "state")
	opts := Options{Ledger: e.srv.URL, PolicyFile: policyFile, StateDir: state, Once: true, Stdout: io.Discard}
	if code, err := Run(e.ctx, opts); err != nil || code != ExitClean {
		t.Fatalf("honest run: %d %v", code, err)
	}
	forked := e.newLedger()
	e.version = 0
	e.repo = kit.NewRepo("example.com/forked", e.repo.Expires)
	e.honest(forked, 3)
	e.mal.SetBackend(forked)
	code, err := Run(context.Background(), opts)
	if err != nil || code != ExitCritical {
		t.Fatalf("forked run: exit %d, %v", code, err)
	}
	files, _ := filepath.Glob(filepath.Join(state, "evidence", "finding-*-fork.txt"))
	if len(files) != 1 {
		t.Fatalf("evidence files %v, want one", files)
	}
	b, _ := os.ReadFile(files[0])
	fork, err := evidence.ParseFork(b)
	if err != nil {
		t.Fatal(err)
	}
	if conclusive, err := evidence.VerifyFork(fork, e.policy); err != nil || !conclusive {
		t.Errorf("saved evidence: conclusive=%v err=%v", conclusive, err)
	}
}

// TestRunServesDashboardWhileFollowing runs the command's long-running mode
// with --serve: the dashboard's /checkpoint follows the ledger as it grows,
// and the run stops cleanly when its context ends.
func TestRunServesDashboardWhileFollowing(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 1)
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.txt")
	os.WriteFile(policyFile, e.keys.PolicyAll(), 0o644)
	ctx, cancel := context.WithCancel(e.ctx)
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Options{Ledger: e.srv.URL, PolicyFile: policyFile, StateDir: filepath.Join(dir, "st"),
			Serve: "127.0.0.1:0", Interval: 50 * time.Millisecond, Stdout: io.Discard, Listening: func(a string) { addr <- a }})
		done <- err
	}()
	base := "http://" + <-addr
	hc := &http.Client{Timeout: 5 * time.Second}
	waitFor := func(want []byte) {
		t.Helper()
		for i := 0; i < 2400; i++ { // 60 s: a loaded machine
			resp, err := hc.Get(base + "/checkpoint")
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if bytes.Equal(b, want) {
					return
				}
			}
			time.Sleep(25 * time.Millisecond)
		}
		t.Fatalf("dashboard never served the ledger's checkpoint")
	}
	cp, _ := e.ledger.Checkpoint(e.ctx)
	waitFor(cp)
	e.honest(e.ledger, 3)
	cp, _ = e.ledger.Checkpoint(e.ctx)
	waitFor(cp)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestAttackFreezeBehindWitnessAfterTheOperatorsWindow: `shiplog audit
// --stale-view-after` is the operator's window (Options.StaleViewAfter ->
// Config.StaleViewAfter). A ledger that freezes the auditor's view while a
// witness holds a larger checkpoint is reported by a later round once the
// window has passed, and not while a long window has not.
func TestAttackFreezeBehindWitnessAfterTheOperatorsWindow(t *testing.T) {
	for _, tc := range []struct {
		window time.Duration
		want   int
	}{{time.Hour, ExitClean}, {time.Nanosecond, ExitWarning}} {
		e := newEnv(t)
		e.honest(e.ledger, 3)
		old, _ := e.ledger.Checkpoint(e.ctx)
		forked := e.newLedger()
		e.version = 0
		e.honest(forked, 300)
		cp, _ := forked.Checkpoint(e.ctx)
		e.mal.ServeCheckpoint(old)
		ws := &harness.WitnessServer{Origin: origin}
		ws.Set(cp)
		wsrv := httptest.NewServer(ws)
		defer wsrv.Close()
		dir := t.TempDir()
		policyFile := filepath.Join(dir, "policy.txt")
		os.WriteFile(policyFile, e.keys.PolicyAll(), 0o644)
		var out bytes.Buffer
		opts := Options{Ledger: e.srv.URL, PolicyFile: policyFile, StateDir: filepath.Join(dir, "st"), Once: true,
			Witnesses: []string{wsrv.URL}, StaleViewAfter: tc.window, Stdout: &out}
		// The first round sees the witness ahead: it may be about to publish.
		if code, err := Run(e.ctx, opts); err != nil || code != ExitClean {
			t.Fatalf("window %v, first round: exit %d, %v: %s", tc.window, code, err, out.String())
		}
		code, err := Run(e.ctx, opts)
		if err != nil || code != tc.want || (tc.want == ExitWarning) != strings.Contains(out.String(), `"kind":"stale-view"`) {
			t.Errorf("window %v, second round: exit %d (want %d), %v: %s", tc.window, code, tc.want, err, out.String())
		}
	}
}
