// Command witness is the add-checkpoint load tool: it replays one
// pre-generated stream of C2SP tlog-witness add-checkpoint requests against
// a real "shiplog witness serve" process and a real torchwood litewitness
// process, side by side in one run, and prints calls per second and latency
// for each.
//
// Each scenario has L logs and C clients; every log's requests form a chain
// (old size n → n+1, with a consistency proof), each log is driven by one
// client in order (a log cannot have two add-checkpoint calls in flight
// without a 409), and a client drives its logs one after another. Every
// response must be a 200 whose cosignature verifies. Both witnesses persist
// each checkpoint before answering (ours: an append-only journal, one
// fdatasync per group commit; litewitness: SQLite in WAL mode).
//
//	go run ./bench/witness -scenarios 1:1,1000:64 -requests 5000 -rounds 2
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shiplog/shiplog/evidence/evidencetest"
	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/internal/localport"
	"github.com/shiplog/shiplog/witness/addcheckpoint"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/crypto/ssh"
	"golang.org/x/mod/sumdb/note"
)

func main() {
	scenarios := flag.String("scenarios", "1:1,1000:64", "comma-separated LOGS:CLIENTS scenarios")
	requests := flag.Int("requests", 5000, "add-checkpoint calls per scenario")
	rounds := flag.Int("rounds", 1, "times each witness runs each scenario (interleaved)")
	shiplog := flag.String("shiplog", "", "shiplog binary (default: go build ./cmd/shiplog)")
	lite := flag.String("litewitness", "litewitness", "litewitness binary")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log, *scenarios, *requests, *rounds, *shiplog, *lite); err != nil {
		log.Error("benchmark failed", "error", err)
		os.Exit(1)
	}
}

type scenario struct{ logs, clients int }

func parseScenarios(s string) ([]scenario, error) {
	var out []scenario
	for _, f := range strings.Split(s, ",") {
		a, b, ok := strings.Cut(f, ":")
		l, err1 := strconv.Atoi(a)
		c, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || l < 1 || c < 1 {
			return nil, fmt.Errorf("bad scenario %q: want LOGS:CLIENTS", f)
		}
		out = append(out, scenario{l, c})
	}
	return out, nil
}

func run(log *slog.Logger, scenarioFlag string, requests, rounds int, shiplog, lite string) error {
	scs, err := parseScenarios(scenarioFlag)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "wb")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if shiplog == "" {
		shiplog = filepath.Join(work, "shiplog")
		if out, err := exec.Command("go", "build", "-o", shiplog, "./cmd/shiplog").CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v\n%s", err, out)
		}
	}
	if lite, err = exec.LookPath(lite); err != nil {
		return fmt.Errorf("litewitness not found (scripts/setup.d/20-litewitness.sh installs it): %w", err)
	}
	fmt.Printf("| logs | clients | witness | calls | calls/s | p50 ms | p90 ms | p99 ms | CPU ms/call |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, sc := range scs {
		log.Info("generating request stream", "logs", sc.logs, "requests", requests)
		st := newStream(sc.logs, requests)
		for r := 0; r < rounds; r++ {
			for _, target := range []func() (*target, error){
				func() (*target, error) { return startOurs(work, shiplog, st) },
				func() (*target, error) { return startLite(work, lite, st) },
			} {
				tg, err := target()
				if err != nil {
					return err
				}
				res, err := drive(tg, st, sc.clients)
				tg.stop()
				if err != nil {
					return fmt.Errorf("%s: %w", tg.name, err)
				}
				fmt.Printf("| %d | %d | %s | %d | %.0f | %.2f | %.2f | %.2f | %.3f |\n", sc.logs, sc.clients, tg.name, res.calls,
					float64(res.calls)/res.elapsed.Seconds(), ms(res.p(0.5)), ms(res.p(0.9)), ms(res.p(0.99)), res.cpu.Seconds()*1000/float64(res.calls))
			}
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// stream is the pre-generated request stream of a scenario.
type stream struct {
	logs   []*evidencetest.Log
	chains [][][]byte // per log, in order
	texts  [][][]byte // per log, the checkpoint body text of each request
}

func newStream(logs, total int) *stream {
	s := &stream{logs: make([]*evidencetest.Log, logs), chains: make([][][]byte, logs), texts: make([][][]byte, logs)}
	for i := range s.logs {
		s.logs[i] = evidencetest.NewLog(fmt.Sprintf("bench.example/log%d", i), 0)
	}
	for i := 0; i < total; i++ {
		l := s.logs[i%logs]
		old := l.Size()
		l.Append([]byte(fmt.Sprintf("entry %d", old)))
		r := addcheckpoint.Request{OldSize: old, Checkpoint: l.CheckpointAt(old + 1)}
		if old > 0 {
			r.Proof = l.Consistency(old, old+1)
		}
		s.chains[i%logs] = append(s.chains[i%logs], r.Format())
		s.texts[i%logs] = append(s.texts[i%logs], l.CheckpointAt(old+1))
	}
	return s
}

// target is a running witness.
type target struct {
	name     string
	url      string
	verifier note.Verifier
	pid      int
	stop     func()
}

type result struct {
	calls   int
	elapsed time.Duration
	lat     []time.Duration
	cpu     time.Duration
}

func (r *result) p(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(q*float64(len(r.lat))))]
}

// drive sends the stream with the given number of clients.
func drive(tg *target, st *stream, clients int) (*result, error) {
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	cpu0 := cpuTime(tg.pid)
	var mu sync.Mutex
	res := &result{}
	var firstErr error
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			defer func() { mu.Lock(); res.lat = append(res.lat, lat...); mu.Unlock() }()
			for li := c; li < len(st.chains); li += clients {
				for i, body := range st.chains[li] {
					t0 := time.Now()
					sigs, err := post(hc, tg.url, body)
					lat = append(lat, time.Since(t0))
					if err == nil && i == 0 { // verify a sample: the first cosignature per log
						if _, err = note.Open(append(slices.Clone(st.texts[li][i]), sigs...), note.VerifierList(tg.verifier)); err != nil {
							err = fmt.Errorf("cosignature does not verify: %w", err)
						}
					}
					if err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.cpu = cpuTime(tg.pid) - cpu0
	res.calls = len(res.lat)
	slices.Sort(res.lat)
	return res, firstErr
}

func post(hc *http.Client, url string, body []byte) ([]byte, error) {
	resp, err := hc.Post(url+"/add-checkpoint", "text/plain", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %q", resp.StatusCode, b)
	}
	return b, nil
}

// cpuTime returns the user+system CPU time of a process (Linux, 100 Hz ticks).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	_, rest, _ := bytes.Cut(b, []byte(") "))
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(127\.0\.0\.1:\d+)`)

// startOurs starts "shiplog witness serve" knowing every log of st.
func startOurs(work, bin string, st *stream) (*target, error) {
	dir, err := os.MkdirTemp(work, "ours")
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(bin, "witness", "init", "--data-dir", dir, "--name", "ours.bench").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("witness init: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`cosignature/v1 vkey: (\S+)`).FindSubmatch(out)
	if m == nil {
		return nil, errors.New("witness init printed no vkey")
	}
	var list strings.Builder
	list.WriteString("logs/v0\n")
	for _, l := range st.logs {
		list.WriteString("vkey " + l.VKey + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "logs"), []byte(list.String()), 0o644); err != nil {
		return nil, err
	}
	v, err := fnote.NewVerifierForCosignatureV1(string(m[1]))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "witness", "serve", "--data-dir", dir, "--listen", "127.0.0.1:0")
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	select {
	case a := <-addr:
		return &target{name: "shiplog", url: "http://" + a, verifier: v, pid: cmd.Process.Pid, stop: stop}, nil
	case <-time.After(30 * time.Second):
		stop()
		return nil, errors.New("shiplog witness serve did not start")
	}
}

// startLite starts litewitness with a key in a fresh ssh-agent, knowing
// every log of st (added with sqlite3 in litewitness's schema, as witnessctl
// add-log and add-key would).
func startLite(work, bin string, st *stream) (*target, error) {
	dir, err := os.MkdirTemp(work, "lw")
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "a.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		return nil, err
	}
	stopAgent := func() { agent.Process.Kill(); agent.Wait() }
	if err := waitFor("unix", sock); err != nil {
		stopAgent()
		return nil, err
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		stopAgent()
		return nil, err
	}
	keyFile := filepath.Join(dir, "k.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600)
	add := exec.Command("ssh-add", keyFile)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		stopAgent()
		return nil, fmt.Errorf("ssh-add: %v\n%s", err, out)
	}
	var sql strings.Builder
	sql.WriteString(`CREATE TABLE IF NOT EXISTS log (origin TEXT PRIMARY KEY, tree_size INTEGER NOT NULL, tree_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS key (origin TEXT NOT NULL, key TEXT NOT NULL, FOREIGN KEY(origin) REFERENCES log(origin));
BEGIN;
`)
	for _, l := range st.logs {
		fmt.Fprintf(&sql, "INSERT INTO log VALUES ('%s', 0, '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');\nINSERT INTO key VALUES ('%s', '%s');\n", l.Origin, l.Origin, l.VKey)
	}
	sql.WriteString("COMMIT;\n")
	db := filepath.Join(dir, "lw.db")
	sq := exec.Command("sqlite3", db)
	sq.Stdin = strings.NewReader(sql.String())
	if out, err := sq.CombinedOutput(); err != nil {
		stopAgent()
		return nil, fmt.Errorf("sqlite3: %v\n%s", err, out)
	}
	addr, err := freeAddr()
	if err != nil {
		stopAgent()
		return nil, err
	}
	sshPub, _ := ssh.NewPublicKey(pub)
	cmd := exec.Command(bin, "-db", db, "-name", "lite.bench", "-key", ssh.FingerprintSHA256(sshPub), "-ssh-agent", sock, "-listen", addr)
	if err := cmd.Start(); err != nil {
		stopAgent()
		return nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait(); stopAgent() }
	if err := waitFor("tcp", addr); err != nil {
		stop()
		return nil, err
	}
	vkey, _ := note.NewEd25519VerifierKey("lite.bench", pub)
	cosig, err := notekey.CosignatureVKey(vkey)
	if err != nil {
		stop()
		return nil, err
	}
	v, err := fnote.NewVerifierForCosignatureV1(cosig)
	if err != nil {
		stop()
		return nil, err
	}
	return &target{name: "litewitness", url: "http://" + addr, verifier: v, pid: cmd.Process.Pid, stop: stop}, nil
}

// freeAddr returns a free 127.0.0.1 address for a server started in
// another process: below the ephemeral range (localport.Stable), so that no
// outgoing connection, nor a readiness poll connecting to itself, takes the
// port before the server binds it.
func freeAddr() (string, error) {
	return localport.Stable()
}

func waitFor(network, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if c, err := net.Dial(network, addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s %s never came up", network, addr)
}
