package trillian_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/shiplog/shiplog/log/server"
	"github.com/shiplog/shiplog/log/trillian/trilliantest"
	"github.com/shiplog/shiplog/witness/witnesstest"
)

// replica is a `shiplog ledger serve --storage trillian` process.
type replica struct {
	bin, dir, http, grpc string
	flags                []string
	cmd                  *exec.Cmd
	logf                 *os.File
}

func (r *replica) start(t *testing.T) {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	http, grpc := r.http, r.grpc
	if http == "" {
		// Outside the ephemeral range: the test starts it again on the same
		// ports while clients keep retrying them (see kit.StableAddr).
		http, grpc = kit.StableAddr(t), kit.StableAddr(t)
	}
	r.cmd = exec.Command(r.bin, append([]string{"ledger", "serve", "-d", r.dir, "--http-listen", http, "--grpc-listen", grpc, "--addr-file", addrFile}, r.flags...)...)
	r.cmd.Stdout, r.cmd.Stderr = r.logf, r.logf
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var addrs map[string]string
		if b, err := os.ReadFile(addrFile); err == nil && json.Unmarshal(b, &addrs) == nil {
			r.http, r.grpc = addrs["http"], addrs["grpc"]
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica did not start; see %s", r.logf.Name())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *replica) kill() {
	r.cmd.Process.Signal(syscall.SIGKILL)
	r.cmd.Wait()
}

// ack is an acknowledged publish.
type ack struct {
	repo  string
	index uint64
	entry string
}

// faultClient publishes a stream of releases through the replicas, retrying
// each release until it is acknowledged, and records what it saw.
type faultClient struct {
	t        *testing.T
	replicas []*replica
	hc       *http.Client
	mu       sync.Mutex
	acks     []ack
	codes    map[int]int // status codes of failed attempts (0: no answer)
	acked    atomic.Int64
}

func (c *faultClient) publish(ctx context.Context, i int, repo string, data []byte) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		rp := c.replicas[(i+attempt)%len(c.replicas)]
		u := fmt.Sprintf("http://%s/v1/publish?repo=%s&role=targets&wait=0", rp.http, url.QueryEscape(repo))
		resp, err := c.hc.Post(u, "application/octet-stream", bytes.NewReader(data))
		code := 0
		var body []byte
		if err == nil {
			body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			code = resp.StatusCode
		}
		if code == 200 {
			var rc struct {
				Index uint64 `json:"index"`
				Entry string `json:"entry"`
			}
			if err := json.Unmarshal(body, &rc); err != nil {
				c.t.Errorf("publish %s: %v", repo, err)
				return
			}
			c.mu.Lock()
			c.acks = append(c.acks, ack{repo, rc.Index, rc.Entry})
			c.mu.Unlock()
			c.acked.Add(1)
			return
		}
		c.mu.Lock()
		c.codes[code]++
		c.mu.Unlock()
		if code != 0 && code != 503 {
			c.t.Errorf("publish %s through %s: %d %s (want 200, or 503 while a component is down)", repo, rp.http, code, body)
			return
		}
		if code == 503 && resp.Header.Get("Retry-After") == "" {
			c.t.Errorf("503 without Retry-After")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFaultsLoseNothingAcknowledged kills (SIGKILL) a ledger replica, the
// Trillian log server, the signer and PostgreSQL in turn during a stream of
// concurrent publishes through three replicas, restarting each with the
// same flags and ports. No acknowledged release is lost, every published
// checkpoint is consistent with the next, clients get 503 with
// Retry-After (or no answer from the dead replica) while a component is
// down, and publishing resumes by itself once it returns.
func TestFaultsLoseNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills a Trillian + PostgreSQL deployment")
	}
	c := trilliantest.Start(t) // its own cluster: the test kills PostgreSQL
	bin := filepath.Join(t.TempDir(), "shiplog")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/shiplog/shiplog/cmd/shiplog").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "ledger")
	trillianFlags := []string{"--storage", "trillian", "--trillian-addr", c.TrillianAddr,
		"--trillian-tree-id", fmt.Sprint(c.TreeID), "--postgres-uri", c.PostgresURI}
	init := append([]string{"ledger", "init", "-d", dir, "--origin", "faults.test/log", "--rate-limit", "-1"}, trillianFlags...)
	if out, err := exec.Command(bin, init...).CombinedOutput(); err != nil {
		t.Fatalf("shiplog ledger init: %v\n%s", err, out)
	}
	vkeyB, _ := os.ReadFile(filepath.Join(dir, server.VKeyFile))
	vkey := strings.TrimSpace(string(vkeyB))
	ws := []*witnesstest.Witness{witnesstest.Start(t, "w0.faults.test", vkey), witnesstest.Start(t, "w1.faults.test", vkey)}
	pb := witnesstest.Policy(vkey, 2, ws...)
	if err := os.WriteFile(filepath.Join(dir, server.PolicyFile), pb, 0o644); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse(pb)
	if err != nil {
		t.Fatal(err)
	}
	token, _ := os.ReadFile(filepath.Join(dir, server.TokenFile))
	logf, err := os.Create(filepath.Join(t.TempDir(), "replicas.log"))
	if err != nil {
		t.Fatal(err)
	}
	var rs []*replica
	for i := 0; i < 3; i++ {
		r := &replica{bin: bin, dir: dir, logf: logf}
		if i == 2 { // the same settings given on the command line
			r.flags = trillianFlags
		}
		r.start(t)
		rs = append(rs, r)
	}
	t.Cleanup(func() {
		for _, r := range rs {
			r.kill()
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("replica logs (tail):\n%s", tail(b, 6000))
		}
	})
	hc := &http.Client{Timeout: 30 * time.Second}

	// Repositories, registered through different replicas.
	const repos = 8
	tufs := make([]*kit.Repo, repos)
	for i := range tufs {
		tufs[i] = kit.NewRandomRepo(time.Now().Add(24 * time.Hour))
		req, _ := http.NewRequest("POST", fmt.Sprintf("http://%s/v1/admin/repositories?wait=0&id=example.com/f%d", rs[i%3].http, i), bytes.NewReader(tufs[i].RootBytes()))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		resp, err := hc.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("register %d: %v %v", i, err, resp)
		}
		resp.Body.Close()
	}

	// Watch every replica's /checkpoint throughout.
	ctx, stop := context.WithCancel(context.Background())
	seen := map[uint64][]byte{}
	var seenMu sync.Mutex
	var bg sync.WaitGroup
	bg.Add(1)
	go func() {
		defer bg.Done()
		for ctx.Err() == nil {
			for _, r := range rs {
				resp, err := hc.Get("http://" + r.http + "/checkpoint")
				if err != nil {
					continue
				}
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				if resp.StatusCode != 200 {
					continue
				}
				cp, err := evidence.VerifyCheckpoint(b, pol)
				if err != nil {
					t.Errorf("replica served a checkpoint that does not verify: %v", err)
					continue
				}
				seenMu.Lock()
				if old, ok := seen[cp.Size]; ok && !bytes.Equal(body(old), body(b)) {
					t.Errorf("two checkpoints of size %d:\n%s\n%s", cp.Size, old, b)
				}
				seen[cp.Size] = b
				seenMu.Unlock()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()

	// A stream of publishes: one goroutine per repository, next version
	// once the previous one is acknowledged.
	fc := &faultClient{t: t, replicas: rs, hc: hc, codes: map[int]int{}}
	for i := 0; i < repos; i++ {
		bg.Add(1)
		go func() {
			defer bg.Done()
			for v := int64(1); ctx.Err() == nil; v++ {
				fc.publish(ctx, i+int(v), fmt.Sprintf("example.com/f%d", i), tufs[i].Targets(v))
			}
		}()
	}
	resumed := func(what string) {
		t.Helper()
		before := fc.acked.Load()
		deadline := time.Now().Add(3 * time.Minute) // generous: a loaded machine
		for fc.acked.Load() < before+int64(2*repos) {
			if time.Now().After(deadline) {
				t.Fatalf("publishing did not resume after %s came back (%d acks since)", what, fc.acked.Load()-before)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	resumed("the start")
	codesBefore := func() map[int]int {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		m := map[int]int{}
		for k, v := range fc.codes {
			m[k] = v
		}
		return m
	}
	for _, component := range []string{"replica", "log_server", "log_signer", "postgres"} {
		before := codesBefore()
		if component == "replica" {
			rs[0].kill()
		} else if err := c.Kill(component); err != nil {
			t.Fatal(err)
		}
		// Keep the component down until clients have seen the outage
		// (no fixed window: on a loaded machine requests may take longer
		// than any window to fail): a 503 from the ledger while Trillian or
		// PostgreSQL is down, an unanswered request while a replica is
		// down. The signer's outage only delays integration; it is held
		// for a while and nothing is asserted about it.
		outage := func() bool {
			now := codesBefore()
			switch component {
			case "log_server", "postgres":
				return now[503] > before[503]
			case "replica":
				return now[0] > before[0]
			}
			return true
		}
		held := time.Now().Add(2 * time.Second)
		deadline := time.Now().Add(2 * time.Minute)
		for !outage() || time.Now().Before(held) {
			if time.Now().After(deadline) {
				t.Errorf("no failed attempt while %s was down (codes before %v, now %v)", component, before, codesBefore())
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if component == "replica" {
			rs[0].start(t) // same ports
		} else if err := c.Restart(component); err != nil {
			t.Fatal(err)
		}
		resumed(component)
		after := codesBefore()
		t.Logf("%s down: %d answers 503, %d unanswered", component, after[503]-before[503], after[0]-before[0])
	}
	time.Sleep(500 * time.Millisecond)
	stop()
	bg.Wait()

	// Every acknowledged release is in the log at its index, under a
	// cosigned checkpoint.
	fc.mu.Lock()
	acks := fc.acks
	fc.mu.Unlock()
	var maxIdx uint64
	for _, a := range acks {
		maxIdx = max(maxIdx, a.index)
	}
	final := waitCheckpoint(t, hc, rs[1].http, pol, maxIdx+1)
	waitCheckpoint(t, hc, rs[2].http, pol, final.Size) // followers catch up
	entries := readEntries(t, hc, rs[2].http, final.Size)
	for _, a := range acks {
		if string(entries[a.index]) != a.entry {
			t.Errorf("acknowledged %s at %d is not in the log", a.repo, a.index)
		}
		e, _ := entry.Parse([]byte(a.entry))
		if resp, err := hc.Get("http://" + rs[0].http + "/metadata/" + hex.EncodeToString(e.SHA256[:])); err != nil || resp.StatusCode != 200 {
			t.Errorf("metadata of acknowledged entry %d is not served", a.index)
		} else {
			resp.Body.Close()
		}
	}
	// Every published checkpoint is consistent with the next.
	sizes := make([]uint64, 0, len(seen))
	for s := range seen {
		sizes = append(sizes, s)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
	for i := 1; i < len(sizes); i++ {
		a, _ := evidence.VerifyCheckpoint(seen[sizes[i-1]], pol)
		b, _ := evidence.VerifyCheckpoint(seen[sizes[i]], pol)
		if err := evidence.CheckConsistency(a.Signed, b.Signed, consistency(t, hc, rs[i%3].http, a.Size, b.Size)); err != nil {
			t.Errorf("checkpoint %d -> %d: %v", a.Size, b.Size, err)
		}
	}
	t.Logf("%d releases acknowledged, log size %d, %d checkpoints seen, failed attempts by status %v", len(acks), final.Size, len(sizes), fc.codes)
	if len(sizes) < 5 {
		t.Errorf("only %d checkpoints published", len(sizes))
	}
}

func body(note []byte) []byte {
	if i := bytes.Index(note, []byte("\n\n")); i >= 0 {
		return note[:i]
	}
	return note
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func waitCheckpoint(t *testing.T, hc *http.Client, addr string, pol *policy.Policy, size uint64) *evidence.Checkpoint {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if resp, err := hc.Get("http://" + addr + "/checkpoint"); err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if cp, err := evidence.VerifyCheckpoint(b, pol); err == nil && cp.Size >= size {
				return cp
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no cosigned checkpoint of size %d", size)
	return nil
}

func readEntries(t *testing.T, hc *http.Client, addr string, size uint64) [][]byte {
	t.Helper()
	var out [][]byte
	for n := uint64(0); n*256 < size; n++ {
		w := min(size-n*256, 256)
		p := fmt.Sprintf("%03d", n)
		if n >= 1000 {
			t.Fatal("log too large for this test")
		}
		if w < 256 {
			p += fmt.Sprintf(".p/%d", w)
		}
		resp, err := hc.Get("http://" + addr + "/tile/entries/" + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("entry bundle %s: %v %v", p, err, resp)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for len(b) >= 2 {
			l := int(b[0])<<8 | int(b[1])
			out = append(out, b[2:2+l])
			b = b[2+l:]
		}
	}
	if uint64(len(out)) != size {
		t.Fatalf("read %d entries, want %d", len(out), size)
	}
	return out
}

func consistency(t *testing.T, hc *http.Client, addr string, a, b uint64) [][sha256.Size]byte {
	t.Helper()
	resp, err := hc.Get(fmt.Sprintf("http://%s/v1/consistency?old=%d&new=%d", addr, a, b))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("consistency %d -> %d: %v %v", a, b, err, resp)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var hs [][sha256.Size]byte
	for _, l := range strings.Fields(string(raw)) {
		h, _ := base64.StdEncoding.DecodeString(l)
		hs = append(hs, [sha256.Size]byte(h))
	}
	return hs
}
