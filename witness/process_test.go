package witness_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence/evidencetest"
	"github.com/shiplog/shiplog/witness"
	"github.com/shiplog/shiplog/witness/addcheckpoint"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// shiplogBinary builds cmd/shiplog once per test run.
func shiplogBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "shiplog-witness-test"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "shiplog")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/shiplog/shiplog/cmd/shiplog").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// witnessProcess is a running "shiplog witness serve".
type witnessProcess struct {
	cmd    *exec.Cmd
	url    string
	stderr *bytes.Buffer
	mu     *sync.Mutex
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(127\.0\.0\.1:\d+)`)

// initWitnessDir runs "shiplog witness init" and "add-log" for the logs and
// returns the witness's cosignature/v1 vkey.
func initWitnessDir(t testing.TB, dir, name string, logVKeys ...string) string {
	t.Helper()
	bin := shiplogBinary(t)
	out, err := exec.Command(bin, "witness", "init", "--data-dir", dir, "--name", name).CombinedOutput()
	if err != nil {
		t.Fatalf("witness init: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`cosignature/v1 vkey: (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("witness init printed no cosignature vkey:\n%s", out)
	}
	for _, vkey := range logVKeys {
		if out, err := exec.Command(bin, "witness", "add-log", "--data-dir", dir, vkey).CombinedOutput(); err != nil {
			t.Fatalf("witness add-log: %v\n%s", err, out)
		}
	}
	return string(m[1])
}

// startWitnessProcess starts "shiplog witness serve" on a free port.
func startWitnessProcess(t testing.TB, dir string) *witnessProcess {
	t.Helper()
	cmd := exec.Command(shiplogBinary(t), "witness", "serve", "--data-dir", dir, "--listen", "127.0.0.1:0")
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &witnessProcess{cmd: cmd, stderr: &bytes.Buffer{}, mu: &sync.Mutex{}}
	t.Cleanup(func() { p.kill() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		io.Copy(io.Discard, pipe)
	}()
	select {
	case a := <-addr:
		p.url = "http://" + a
	case <-time.After(2 * time.Minute):
		t.Fatalf("witness serve did not start:\n%s", p.log())
	}
	return p
}

func (p *witnessProcess) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// kill sends SIGKILL and reaps the process.
func (p *witnessProcess) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

// cosigned is a checkpoint the witness cosigned.
type cosigned struct {
	size uint64
	hash [32]byte
}

// TestAttackCrashRollback kills the witness process with SIGKILL while
// several clients stream add-checkpoint calls at it, restarts it, and checks
// that it never cosigns a checkpoint inconsistent with one it cosigned
// before the crash: its state did not roll back, a fork from any earlier
// size is refused, and every cosignature ever returned lies on one tree.
func TestAttackCrashRollback(t *testing.T) {
	l := evidencetest.NewLog("example.com/log", 0)
	dir := t.TempDir()
	cosigVKey := initWitnessDir(t, dir, "witness.test", l.VKey)
	wv, err := fnote.NewVerifierForCosignatureV1(cosigVKey)
	if err != nil {
		t.Fatal(err)
	}
	var logMu sync.Mutex // evidencetest.Log is not safe for concurrent use
	grow(l, 4000, "main")
	var all []cosigned
	var allMu sync.Mutex
	latest := uint64(0)
	rng := rand.New(rand.NewPCG(1, 2))

	for cycle := 0; cycle < 3; cycle++ {
		p := startWitnessProcess(t, dir)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				streamHonest(p.url, l, &logMu, wv, &latest, &all, &allMu, stop)
			}()
		}
		// Let at least a few cosignatures through (the machine may be
		// slow), then SIGKILL at a random moment mid-stream.
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			allMu.Lock()
			n := len(all)
			allMu.Unlock()
			if n >= 5*(cycle+1) {
				break
			}
		}
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		p.kill()
		close(stop)
		wg.Wait()

		allMu.Lock()
		maxBefore := uint64(0)
		for _, c := range all {
			maxBefore = max(maxBefore, c.size)
		}
		allMu.Unlock()
		if maxBefore == 0 {
			t.Fatalf("cycle %d: nothing cosigned before the crash:\n%s", cycle, p.log())
		}

		p = startWitnessProcess(t, dir)
		st := checkNoRollback(t, p.url, l, &logMu, wv, maxBefore)
		refuseForks(t, p.url, l, &logMu, st)
		latest = st
		p.kill()
		t.Logf("cycle %d: %d cosignatures before SIGKILL, up to size %d; restarted at size %d", cycle, len(all), maxBefore, st)
	}
	// Every cosignature ever returned is on the one honest tree.
	for _, c := range all {
		if c.hash != l.Body(c.size).Hash {
			t.Errorf("cosigned size %d with a root not on the log's tree", c.size)
		}
	}
}

// streamHonest sends growing checkpoints of l until stop, learning the
// witness's size from 409s, and records each cosignature (verified).
func streamHonest(url string, l *evidencetest.Log, logMu *sync.Mutex, wv note.Verifier, latest *uint64, all *[]cosigned, allMu *sync.Mutex, stop chan struct{}) {
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		select {
		case <-stop:
			return
		default:
		}
		allMu.Lock()
		old := *latest
		allMu.Unlock()
		logMu.Lock()
		size := min(old+1+uint64(rand.IntN(3)), l.Size())
		body := request(l, old, size)
		cp := l.CheckpointAt(size)
		hash := l.Body(size).Hash
		logMu.Unlock()
		resp, err := client.Post(url+"/add-checkpoint", "text/plain", bytes.NewReader(body))
		if err != nil {
			continue // killed
		}
		rb, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		allMu.Lock()
		switch resp.StatusCode {
		case http.StatusOK:
			if _, err := note.Open(append(cp, rb...), note.VerifierList(wv)); err == nil {
				*all = append(*all, cosigned{size, hash})
				*latest = max(*latest, size)
			}
		case http.StatusConflict:
			if n, err := addcheckpoint.ParseSize(rb); err == nil {
				*latest = n
			}
		}
		allMu.Unlock()
	}
}

// checkNoRollback checks that the restarted witness is at least at
// maxBefore, on the honest tree, and returns its size.
func checkNoRollback(t *testing.T, url string, l *evidencetest.Log, logMu *sync.Mutex, wv note.Verifier, maxBefore uint64) uint64 {
	t.Helper()
	logMu.Lock()
	defer logMu.Unlock()
	r := httpDo(t, http.MethodGet, url+"/"+witness.OriginPath(l.Origin)+"/checkpoint", nil)
	if r.code != http.StatusOK {
		t.Fatalf("monitoring endpoint after restart: %d", r.code)
	}
	logV, _ := note.NewVerifier(l.VKey)
	n, err := note.Open(r.body, note.VerifierList(logV, wv))
	if err != nil || len(n.Sigs) != 2 {
		t.Fatalf("served checkpoint does not verify: %v", err)
	}
	lines := strings.SplitN(n.Text, "\n", 3)
	var size uint64
	fmt.Sscan(lines[1], &size)
	if size < maxBefore {
		t.Fatalf("ROLLBACK: witness restarted at size %d after cosigning size %d", size, maxBefore)
	}
	if n.Text != string(l.Body(size).Format()) {
		t.Fatalf("restarted state at size %d is not the log's checkpoint", size)
	}
	return size
}

// refuseForks offers, from every size up to the witness's state st, a
// checkpoint that forks the log there. A witness that lost state would
// accept one.
func refuseForks(t *testing.T, url string, l *evidencetest.Log, logMu *sync.Mutex, st uint64) {
	t.Helper()
	logMu.Lock()
	defer logMu.Unlock()
	step := max(1, st/200) // bound the work: at most ~200 fork points per cycle
	for s := uint64(0); s < st; s += step {
		f := forkOf(l, s, int(s)+1)
		if r := httpDo(t, http.MethodPost, url+"/add-checkpoint", request(f, s, s+1)); r.code == http.StatusOK {
			t.Fatalf("FORK COSIGNED: extension of size %d after the witness cosigned size %d", s, st)
		}
	}
	same := forkOf(l, st-1, int(st))
	if r := httpDo(t, http.MethodPost, url+"/add-checkpoint", request(same, st, st)); r.code != http.StatusUnprocessableEntity {
		t.Fatalf("same-size fork at %d: status %d, want 422", st, r.code)
	}
}
