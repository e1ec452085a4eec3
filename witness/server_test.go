package witness_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/evidencetest"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/witness"
	"github.com/shiplog/shiplog/witness/addcheckpoint"
	"golang.org/x/mod/sumdb/note"
)

// TestStatusCodes walks one log through every status code of
// c2sp.org/tlog-witness add-checkpoint.
func TestStatusCodes(t *testing.T) {
	l := evidencetest.NewLog("example.com/log", 0)
	grow(l, 9, "main")
	tw := newTestWitness(t, logList(0, l))
	other := evidencetest.NewLog("example.com/other", 0)
	grow(other, 3, "other")
	impostor := evidencetest.NewLogWithKey(evidencetest.NewLog("example.com/log", 0), "example.com/log")
	grow(impostor, 5, "main")

	step := func(name string, body []byte, wantCode int) response {
		t.Helper()
		r := tw.post(body)
		if r.code != wantCode {
			t.Fatalf("%s: status %d %q, want %d", name, r.code, r.body, wantCode)
		}
		return r
	}
	r := step("first checkpoint (old 0)", request(l, 0, 3), http.StatusOK)
	tw.checkCosigned(l.CheckpointAt(3), r.body)

	r = step("stale old size", request(l, 0, 5), http.StatusConflict)
	if ct := r.header.Get("Content-Type"); ct != addcheckpoint.SizeContentType {
		t.Errorf("409 Content-Type = %q, want %q", ct, addcheckpoint.SizeContentType)
	}
	if string(r.body) != "3\n" {
		t.Errorf("409 body = %q, want %q", r.body, "3\n")
	}

	r = step("extension with consistency proof", request(l, 3, 5), http.StatusOK)
	tw.checkCosigned(l.CheckpointAt(5), r.body)
	step("same checkpoint again", request(l, 5, 5), http.StatusOK)
	step("old larger than checkpoint", (&addcheckpoint.Request{OldSize: 6, Checkpoint: l.CheckpointAt(5)}).Format(), http.StatusBadRequest)
	step("malformed body", []byte("old 5\nnot base64\n\n"+string(l.CheckpointAt(7))), http.StatusBadRequest)
	step("unknown origin", request(other, 0, 3), http.StatusNotFound)
	step("signed by another key", request(impostor, 0, 5), http.StatusForbidden)

	bad := addcheckpoint.Request{OldSize: 5, Checkpoint: l.CheckpointAt(7), Proof: l.Consistency(5, 7)}
	bad.Proof[0][0] ^= 1
	step("bad consistency proof", bad.Format(), http.StatusUnprocessableEntity)
	step("proof from old 0 must be empty", (&addcheckpoint.Request{OldSize: 0, Checkpoint: l.CheckpointAt(0), Proof: l.Consistency(1, 2)}).Format(), http.StatusConflict)

	fork := forkOf(l, 3, 5)
	step("same size, different root", request(fork, 5, 5), http.StatusUnprocessableEntity)

	r = httpDo(t, http.MethodPost, tw.url+"/add-checkpoint", bytes.Repeat([]byte("x"), addcheckpoint.MaxRequestSize+1))
	if r.code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: status %d, want 413", r.code)
	}
	if r := tw.get("/add-checkpoint"); r.code != http.StatusMethodNotAllowed {
		t.Errorf("GET add-checkpoint: status %d, want 405", r.code)
	}
	// The state is still size 5 with the main log's root.
	step("after all refusals", request(l, 5, 9), http.StatusOK)
}

// TestRateLimitIs429 exhausts a log's requests-per-day quota.
func TestAttackQuotaFloodIs429(t *testing.T) {
	l := evidencetest.NewLog("example.com/log", 0)
	grow(l, 3, "main")
	tw := newTestWitness(t, logList(1440, l)) // one a minute, burst 10
	for i := 0; i < 10; i++ {
		if r := tw.post(request(l, 0, 3)); r.code != http.StatusOK && r.code != http.StatusConflict {
			t.Fatalf("request %d: status %d %q", i, r.code, r.body)
		}
	}
	r := tw.post(request(l, 3, 3))
	if r.code != http.StatusTooManyRequests {
		t.Fatalf("11th request: status %d, want 429", r.code)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 61 {
		t.Errorf("Retry-After = %q, want 1-61 seconds", r.header.Get("Retry-After"))
	}
	tw.now = tw.now.Add(time.Minute)
	if r := tw.post(request(l, 3, 3)); r.code != http.StatusOK {
		t.Errorf("after a minute: status %d, want 200", r.code)
	}
	// An unknown or forged log does not spend the log's quota: it fails first.
	other := evidencetest.NewLog("example.com/other", 0)
	if r := tw.post(request(other, 0, 0)); r.code != http.StatusNotFound {
		t.Errorf("unknown log: status %d, want 404", r.code)
	}
}

// TestAttackForkIsRefusedAndRecorded shows a witness a checkpoint of the same
// size as the one it cosigned but another root: it must refuse it (422),
// keep both signed checkpoints as evidence that evidence.VerifyFork accepts,
// expose it on the read endpoints and count it in the metrics.
func TestAttackForkIsRefusedAndRecorded(t *testing.T) {
	l := evidencetest.NewLog("example.com/log", 0)
	grow(l, 6, "main")
	tw := newTestWitness(t, logList(0, l))
	if r := tw.post(request(l, 0, 6)); r.code != http.StatusOK {
		t.Fatalf("status %d", r.code)
	}
	fork := forkOf(l, 2, 6)
	if r := tw.post(request(fork, 6, 6)); r.code != http.StatusUnprocessableEntity {
		t.Fatalf("fork with old = size: status %d, want 422", r.code)
	}
	if r := tw.post(request(fork, 0, 6)); r.code != http.StatusConflict {
		t.Fatalf("fork with old 0: status %d, want 409", r.code)
	}
	grow(fork, 2, "fork")
	bad := addcheckpoint.Request{OldSize: 6, Checkpoint: fork.CheckpointAt(8), Proof: fork.Consistency(6, 8)}
	if r := tw.post(bad.Format()); r.code != http.StatusUnprocessableEntity {
		t.Fatalf("fork extension: status %d, want 422", r.code)
	}

	r := tw.get("/" + witness.OriginPath(l.Origin) + "/misbehaviour")
	var ms []witness.Misbehaviour
	if err := json.Unmarshal(r.body, &ms); err != nil || r.code != http.StatusOK {
		t.Fatalf("misbehaviour endpoint: %d %v %s", r.code, err, r.body)
	}
	kinds := map[string]int{}
	p, err := policy.Parse([]byte("log " + l.VKey + "\nquorum none\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		kinds[m.Kind]++
		f, err := evidence.ParseFork([]byte(m.Evidence))
		if err != nil {
			t.Fatalf("evidence does not parse: %v", err)
		}
		conclusive, err := evidence.VerifyFork(f, p)
		if err != nil {
			t.Errorf("%s evidence does not verify: %v", m.Kind, err)
		}
		if conclusive != (m.Kind == witness.KindFork) {
			t.Errorf("%s evidence conclusive = %v", m.Kind, conclusive)
		}
	}
	// The two same-size forks carry identical evidence and are kept once.
	if kinds[witness.KindFork] != 1 || kinds[witness.KindUnproven] != 1 {
		t.Errorf("kinds = %v, want one fork and one unproven", kinds)
	}
	if all := tw.get("/misbehaviour"); !bytes.Contains(all.body, []byte(`"kind":"fork"`)) {
		t.Errorf("GET /misbehaviour = %s", all.body)
	}
	metrics := string(tw.get("/metrics").body)
	for _, want := range []string{
		`shiplog_witness_misbehaviour_total{kind="fork",origin="example.com/log"} 2`,
		`shiplog_witness_misbehaviour_total{kind="unproven",origin="example.com/log"} 1`,
		`shiplog_witness_add_checkpoint_requests_total{code="422"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The witness still follows the real log.
	grow(l, 1, "main")
	if r := tw.post(request(l, 6, 7)); r.code != http.StatusOK {
		t.Errorf("honest extension: status %d", r.code)
	}
}

// TestAttackRaceSplitView sends two add-checkpoint requests with the same
// old size and different new checkpoints at once, many times: each time
// exactly one is cosigned (spec: the check and update are atomic), whether
// the two are a fork of each other or two honest sizes.
func TestAttackRaceSplitView(t *testing.T) {
	key := evidencetest.NewLog("example.com/log", 0)
	tw := newTestWitness(t, logList(0, key))
	const rounds = 40
	var main []string
	forks := 0
	for round := 0; round < rounds; round++ {
		size := uint64(len(main))
		var a, b []byte
		var ta, tb []string
		if round%2 == 0 {
			ta = append(slices.Clone(main), fmt.Sprintf("a %d", round))
			tb = append(slices.Clone(main), fmt.Sprintf("b %d", round))
			a, b = request(logFrom(key, ta), size, size+1), request(logFrom(key, tb), size, size+1)
			forks++
		} else {
			tb = append(slices.Clone(main), fmt.Sprintf("a %d", round), fmt.Sprintf("b %d", round))
			ta = tb[:size+1]
			lb := logFrom(key, tb)
			a, b = request(lb, size, size+1), request(lb, size, size+2)
		}
		var wg sync.WaitGroup
		codes := make([]int, 2)
		start := make(chan struct{})
		for i, body := range [][]byte{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				codes[i] = tw.post(body).code
			}()
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, c := range codes {
			if c == http.StatusOK {
				ok++
			} else if c != http.StatusConflict {
				t.Fatalf("round %d: status %d", round, c)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of 2 racing checkpoints cosigned (%v), want exactly 1", round, ok, codes)
		}
		// Continue from whichever won.
		st := tw.store.Latest(key.Origin)
		switch {
		case codes[0] == http.StatusOK && st.Hash == logFrom(key, ta).Body(st.Size).Hash:
			main = ta
		case codes[1] == http.StatusOK && st.Hash == logFrom(key, tb).Body(st.Size).Hash:
			main = tb
		default:
			t.Fatalf("round %d: stored state is not the checkpoint cosigned", round)
		}
	}
	ms, err := tw.store.Misbehaviour(key.Origin, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != forks {
		t.Errorf("%d forks recorded, want %d (every losing fork is evidence)", len(ms), forks)
	}
}

// logFrom returns a log with key's key and origin holding entries.
func logFrom(key *evidencetest.Log, entries []string) *evidencetest.Log {
	l := evidencetest.NewLogWithKey(key, key.Origin)
	for _, e := range entries {
		l.Append([]byte(e))
	}
	return l
}

// TestRestartKeepsState reopens the store: the witness resumes from the
// latest cosigned checkpoint, never from zero.
func TestAttackRollbackAfterRestart(t *testing.T) {
	l := evidencetest.NewLog("example.com/log", 0)
	grow(l, 4, "main")
	tw := newTestWitness(t, logList(0, l))
	if r := tw.post(request(l, 0, 4)); r.code != http.StatusOK {
		t.Fatal(r.code)
	}
	tw.store.Close()
	s, err := witness.OpenStore(tw.dir+"/"+witness.StateFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.Latest(l.Origin); st.Size != 4 || st.Hash != l.Body(4).Hash {
		t.Fatalf("after reopen: size %d", st.Size)
	}
	if _, err := s.Misbehaviour("", 10); err != nil {
		t.Fatal(err)
	}
	// A closed store refuses updates with ErrUnavailable (503), not a crash.
	if r := tw.post(request(l, 4, 4)); r.code != http.StatusServiceUnavailable {
		t.Errorf("closed store: status %d, want 503", r.code)
	}
	if r := tw.get("/readyz"); r.code != http.StatusServiceUnavailable {
		t.Errorf("readyz with closed store: %d", r.code)
	}
}

func TestMonitoringEndpoint(t *testing.T) {
	l := evidencetest.NewLog("example.com/log", 0)
	grow(l, 4, "main")
	tw := newTestWitness(t, logList(0, l))
	path := "/" + witness.OriginPath(l.Origin) + "/checkpoint"
	if r := tw.get(path); r.code != http.StatusNotFound {
		t.Errorf("before any cosignature: %d, want 404", r.code)
	}
	if r := tw.post(request(l, 0, 4)); r.code != http.StatusOK {
		t.Fatal(r.code)
	}
	r := tw.get(path)
	if r.code != http.StatusOK {
		t.Fatalf("status %d", r.code)
	}
	logV, err := note.NewVerifier(l.VKey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(r.body, note.VerifierList(logV, tw.verifier))
	if err != nil {
		t.Fatalf("served checkpoint does not verify: %v\n%s", err, r.body)
	}
	if len(n.Sigs) != 2 || n.Text != string(l.Body(4).Format()) {
		t.Errorf("served %q with %d signatures", n.Text, len(n.Sigs))
	}
	for _, p := range []string{"/" + strings.ToUpper(witness.OriginPath(l.Origin)) + "/checkpoint", "/zz/checkpoint", "/" + witness.OriginPath("nope") + "/checkpoint"} {
		if r := tw.get(p); r.code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, r.code)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := tw.get(p); r.code != http.StatusOK {
			t.Errorf("GET %s: %d", p, r.code)
		}
	}
}

// TestSpecExampleBodies sends the C2SP tlog-witness spec's example request.
// The spec does not publish the example log's key, so no witness can
// cosign it; ours parses it and answers 404 while the origin is unknown and
// 403 once the origin is configured with a key that did not sign it.
func TestSpecExampleBodies(t *testing.T) {
	body, err := os.ReadFile("../testdata/witness/c2sp-example-request.txt")
	if err != nil {
		t.Fatal(err)
	}
	tw := newTestWitness(t, "logs/v0\n")
	if r := tw.post(body); r.code != http.StatusNotFound {
		t.Errorf("unknown origin: %d %s, want 404", r.code, r.body)
	}
	other := evidencetest.NewLog("example.com/behind-the-sofa", 0)
	l, err := witness.ParseLogList([]byte(logList(0, other)))
	if err != nil {
		t.Fatal(err)
	}
	tw.SetLogs(l)
	if r := tw.post(body); r.code != http.StatusForbidden {
		t.Errorf("configured origin, other key: %d %s, want 403", r.code, r.body)
	}
}

// TestLitewitnessVectors replays torchwood's litewitness test requests (real
// Sigsum log signatures and proofs) against our witness.
func TestLitewitnessVectors(t *testing.T) {
	key, _ := hex.DecodeString("ffdc2d4d98e4124d3feaf788c0c2f9abfd796083d1f0495437f302ec79cf100f")
	kh := sha256.Sum256(key)
	origin := fmt.Sprintf("sigsum.org/v1/tree/%x", kh)
	vkey, err := note.NewEd25519VerifierKey(origin, ed25519.PublicKey(key))
	if err != nil {
		t.Fatal(err)
	}
	tw := newTestWitness(t, "logs/v0\nvkey "+vkey+"\n")
	manifest, err := os.ReadFile("../testdata/witness/litewitness-expected.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(manifest)), "\n") {
		file, code, _ := strings.Cut(line, " ")
		want, _ := strconv.Atoi(code)
		if file == "litewitness-02.txt" {
			want = http.StatusNotFound // unknown origin: the spec says 404, litewitness 403
		}
		body, err := os.ReadFile("../testdata/witness/" + file)
		if err != nil {
			t.Fatal(err)
		}
		r := tw.post(body)
		if r.code != want {
			t.Errorf("%s: status %d %q, want %d", file, r.code, r.body, want)
		}
		if r.code == http.StatusOK {
			req, _ := addcheckpoint.ParseRequest(body)
			tw.checkCosigned(req.Checkpoint, r.body)
		}
	}
}

// TestLogListReload runs Serve on a witness directory, adds a log with
// AddLog and sees it accepted without a restart; a broken list read on a
// forced reload (SIGHUP) leaves the previous one in force.
func TestLogListReload(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := witness.Init(dir, "witness.test"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := witness.Init(dir, "witness.test"); err == nil {
		t.Error("second Init in the same directory succeeded")
	}
	addr := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	reload := make(chan struct{}) // unbuffered: a second send returns once the first reload is done
	go func() {
		done <- witness.Serve(ctx, witness.ServeOptions{Dir: dir, Listen: "127.0.0.1:0", Logger: addrLogger(addr), ReloadInterval: 20 * time.Millisecond, Reload: reload})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	url := "http://" + <-addr
	l := evidencetest.NewLog("example.com/log", 0)
	grow(l, 2, "main")
	if r := httpDo(t, http.MethodPost, url+"/add-checkpoint", request(l, 0, 2)); r.code != http.StatusNotFound {
		t.Fatalf("before add-log: %d, want 404", r.code)
	}
	if err := witness.AddLog(dir, l.VKey, "", 0); err != nil {
		t.Fatal(err)
	}
	if err := witness.AddLog(dir, "not a key", "", 0); err == nil {
		t.Error("AddLog accepted a malformed key")
	}
	deadline := time.Now().Add(time.Minute)
	for {
		r := httpDo(t, http.MethodPost, url+"/add-checkpoint", request(l, 0, 2))
		if r.code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log not picked up after AddLog: %d", r.code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A broken list is ignored; the previous one stays in force. Two
	// forced reloads (as on SIGHUP): the second is taken only after the
	// first has read the broken list, however slow the machine.
	if err := os.WriteFile(dir+"/"+witness.LogListFile, []byte("logs/v0\nbogus line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	reload <- struct{}{}
	grow(l, 1, "main")
	if r := httpDo(t, http.MethodPost, url+"/add-checkpoint", request(l, 2, 3)); r.code != http.StatusOK {
		t.Errorf("after a broken list: %d, want 200 (previous list kept)", r.code)
	}
}
