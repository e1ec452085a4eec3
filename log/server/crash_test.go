package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/shiplog/shiplog/log/server"
)

// buildShiplog builds the shiplog binary once per test binary.
var buildShiplog = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "shiplog-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "shiplog")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/shiplog/shiplog/cmd/shiplog").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func shiplogBin(t *testing.T) string {
	t.Helper()
	bin, err := buildShiplog()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("shiplog %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// process is a started shiplog process whose output goes to a file.
type process struct {
	cmd *exec.Cmd
	out *os.File
}

func start(t *testing.T, bin, logFile string, args ...string) *process {
	t.Helper()
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd, f}
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *process) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
	p.out.Close()
}

func waitHTTP(t *testing.T, u string) {
	t.Helper()
	for i := 0; i < 6000; i++ { // 60 s: a loaded machine
		resp, err := httpClient.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", u)
}

// startWitnessProcesses runs n real "shiplog witness serve" processes that
// witness the log with vkey, and returns policy lines for them.
func startWitnessProcesses(t *testing.T, bin, vkey string, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		dir := filepath.Join(t.TempDir(), "witness")
		out := run(t, bin, "witness", "init", "--data-dir", dir, "--name", fmt.Sprintf("w%d.crash.test", i))
		var cosig string
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(l, "cosignature/v1 vkey: "); ok {
				cosig = strings.TrimSpace(v)
			}
		}
		run(t, bin, "witness", "add-log", "--data-dir", dir, vkey)
		addr := kit.StableAddr(t)
		start(t, bin, filepath.Join(dir, "out.log"), "witness", "serve", "--data-dir", dir, "--listen", addr)
		waitHTTP(t, "http://"+addr+"/healthz")
		fmt.Fprintf(&b, "witness w%d %s http://%s\n", i, cosig, addr)
	}
	return b.String()
}

type acked struct {
	repo    string
	version int64
	data    []byte
	index   uint64
}

// TestCrashSIGKILLLosesNothingAcknowledged kills the real ledger process
// (SIGKILL three times, SIGTERM once) in the middle of a stream of
// concurrent publishes,
// witnessed by two real witness processes. After every restart, every
// acknowledged release is in the log with its stored bytes, proven under a
// cosigned checkpoint, and every checkpoint ever published is consistent
// with every later one.
func TestCrashSIGKILLLosesNothingAcknowledged(t *testing.T) {
	bin := shiplogBin(t)
	dir := filepath.Join(t.TempDir(), "ledger")
	run(t, bin, "ledger", "init", "-d", dir, "--origin", "crash.test/log", "--rate-limit", "-1")
	vkey := strings.TrimSpace(readFile(t, filepath.Join(dir, server.VKeyFile)))
	policyText := "log " + vkey + "\n" + startWitnessProcesses(t, bin, vkey, 2) + "group q all w0 w1\nquorum q\n"
	if err := os.WriteFile(filepath.Join(dir, server.PolicyFile), []byte(policyText), 0o644); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse([]byte(policyText))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(readFile(t, filepath.Join(dir, server.TokenFile)))
	addr := kit.StableAddr(t)
	base := "http://" + addr
	serve := func() *process {
		p := start(t, bin, filepath.Join(dir, "..", "serve.log"), "ledger", "serve", "-d", dir, "--http-listen", addr, "--grpc-listen", "127.0.0.1:0")
		waitHTTP(t, base+"/readyz")
		return p
	}
	ledgerProc := serve()

	const publishers = 8
	repos := make([]*kit.Repo, publishers)
	for i := range repos {
		repos[i] = kit.NewRandomRepo(expires)
		if code, body := post(base+"/v1/admin/repositories?wait=0&id="+repoID(i), repos[i].RootBytes(), token); code != 200 {
			t.Fatalf("register: %d %s", code, body)
		}
	}
	var mu sync.Mutex
	var acks []acked
	seenCPs := map[string][]byte{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < publishers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := int64(1); ctx.Err() == nil; {
				data := repos[i].Targets(v)
				code, body := post(fmt.Sprintf("%s/v1/publish?repo=%s&role=targets&wait=0", base, url.QueryEscape(repoID(i))), data, "")
				if code != 200 { // down or restarting: retry the same bytes (idempotent)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				var rc receipt
				if err := json.Unmarshal(body, &rc); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acks = append(acks, acked{repoID(i), v, data, rc.Index})
				mu.Unlock()
				v++
			}
		}()
	}
	wg.Add(1)
	go func() { // every checkpoint ever published
		defer wg.Done()
		for ctx.Err() == nil {
			if code, body := get(base + "/checkpoint"); code == 200 {
				mu.Lock()
				seenCPs[string(body)] = body
				mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	for round := 0; round < 4; round++ {
		time.Sleep(time.Duration(300+rand.IntN(900)) * time.Millisecond)
		if round == 2 { // graceful: SIGTERM mid-stream must exit cleanly
			ledgerProc.cmd.Process.Signal(syscall.SIGTERM)
			if err := ledgerProc.cmd.Wait(); err != nil {
				t.Errorf("ledger after SIGTERM: %v", err)
			}
		} else {
			ledgerProc.cmd.Process.Kill() // SIGKILL, mid-stream
			ledgerProc.cmd.Wait()
		}
		ledgerProc = serve()
		mu.Lock()
		snapshot := append([]acked(nil), acks...)
		mu.Unlock()
		checkAcked(t, base, pol, snapshot)
	}
	cancel()
	wg.Wait()
	checkAcked(t, base, pol, acks)
	checkCheckpointsConsistent(t, base, pol, seenCPs)
	if len(acks) < 20 || len(seenCPs) < 4 {
		t.Errorf("only %d acknowledged releases and %d checkpoints: the stream was too short to test anything", len(acks), len(seenCPs))
	}
	t.Logf("%d acknowledged releases, %d distinct published checkpoints, 3 SIGKILLs and a SIGTERM", len(acks), len(seenCPs))
}

func repoID(i int) string { return fmt.Sprintf("crash.test/repo%d", i) }

// checkAcked checks every acknowledged release: its proof under a
// cosigned checkpoint and its stored bytes.
func checkAcked(t *testing.T, base string, pol *policy.Policy, acks []acked) {
	t.Helper()
	for _, a := range acks {
		code, p := get(fmt.Sprintf("%s/v1/proof?index=%d&wait=20s", base, a.index))
		if code != 200 {
			t.Fatalf("acknowledged %s v%d at %d: proof %d %s", a.repo, a.version, a.index, code, p)
		}
		if _, err := evidence.VerifyEntry(a.repo, "targets", uint64(a.version), a.data, p, pol); err != nil {
			t.Fatalf("acknowledged %s v%d at %d: %v", a.repo, a.version, a.index, err)
		}
		sum := sha256.Sum256(a.data)
		if code, m := get(base + "/metadata/" + hex.EncodeToString(sum[:])); code != 200 || !bytes.Equal(m, a.data) {
			t.Fatalf("acknowledged %s v%d: stored bytes %d", a.repo, a.version, code)
		}
	}
}

// checkCheckpointsConsistent checks every published checkpoint against
// the next larger one with a consistency proof from the ledger.
func checkCheckpointsConsistent(t *testing.T, base string, pol *policy.Policy, cps map[string][]byte) {
	t.Helper()
	var signed []*checkpoint.Signed
	for _, b := range cps {
		c, err := evidence.VerifyCheckpoint(b, pol)
		if err != nil {
			t.Fatalf("published checkpoint does not meet the policy: %v\n%s", err, b)
		}
		signed = append(signed, c.Signed)
	}
	sort.Slice(signed, func(i, j int) bool { return signed[i].Size < signed[j].Size })
	for i := 0; i+1 < len(signed); i++ {
		a, b := signed[i], signed[i+1]
		var hs [][sha256.Size]byte
		if a.Size < b.Size && a.Size > 0 {
			code, body := get(fmt.Sprintf("%s/v1/consistency?old=%d&new=%d", base, a.Size, b.Size))
			if code != 200 {
				t.Fatalf("consistency %d->%d: %d %s", a.Size, b.Size, code, body)
			}
			for _, l := range strings.Fields(string(body)) {
				h, err := base64.StdEncoding.DecodeString(l)
				if err != nil || len(h) != 32 {
					t.Fatalf("bad proof line %q", l)
				}
				hs = append(hs, [sha256.Size]byte(h))
			}
		}
		if err := evidence.CheckConsistency(a, b, hs); err != nil {
			t.Fatalf("published checkpoints %d and %d are not consistent: %v", a.Size, b.Size, err)
		}
	}
}

func post(u string, body []byte, token string) (int, []byte) {
	req, _ := http.NewRequest("POST", u, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return doReq(req)
}

func get(u string) (int, []byte) {
	req, _ := http.NewRequest("GET", u, nil)
	return doReq(req)
}

func doReq(req *http.Request) (int, []byte) {
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, b
}
