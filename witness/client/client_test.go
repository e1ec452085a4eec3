package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/evidencetest"
	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/witness"
	"github.com/shiplog/shiplog/witness/addcheckpoint"
	"github.com/shiplog/shiplog/witness/client"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// realWitness is our witness served on 127.0.0.1 with a bbolt store.
type realWitness struct {
	name     string
	vkey     string
	signer   note.Signer
	verifier note.Verifier
	w        *witness.Witness
	srv      *httptest.Server
	url      string
}

func startWitness(t *testing.T, name string, logs ...*evidencetest.Log) *realWitness {
	t.Helper()
	return startWitnessWith(t, name, nil, logs...)
}

// startWitnessWith is startWitness with the handler wrapped by wrap.
func startWitnessWith(t *testing.T, name string, wrap func(http.Handler) http.Handler, logs ...*evidencetest.Log) *realWitness {
	t.Helper()
	skey, _, cosig, err := notekey.GenerateWitness(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	rw := &realWitness{name: name, vkey: cosig}
	if rw.signer, err = notekey.NewWitnessSigner(skey); err != nil {
		t.Fatal(err)
	}
	if rw.verifier, err = fnote.NewVerifierForCosignatureV1(cosig); err != nil {
		t.Fatal(err)
	}
	store, err := witness.OpenStore(filepath.Join(t.TempDir(), "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	text := "logs/v0\n"
	for _, l := range logs {
		text += "vkey " + l.VKey + "\n"
	}
	list, err := witness.ParseLogList([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if rw.w, err = witness.New(witness.Config{Signer: rw.signer, Store: store, Logs: list}); err != nil {
		t.Fatal(err)
	}
	h := rw.w.Handler("/w", nil)
	if wrap != nil {
		h = wrap(h)
	}
	rw.srv = httptest.NewServer(h)
	t.Cleanup(rw.srv.Close)
	rw.url = rw.srv.URL + "/w"
	return rw
}

// policyText names l and the witnesses (with URLs) under a k-of-n quorum.
func policyText(l *evidencetest.Log, k int, ws ...*realWitness) string {
	var b strings.Builder
	fmt.Fprintf(&b, "log %s\n", l.VKey)
	var names []string
	for i, w := range ws {
		fmt.Fprintf(&b, "witness w%d %s %s\n", i, w.vkey, w.url)
		names = append(names, fmt.Sprintf("w%d", i))
	}
	fmt.Fprintf(&b, "group q %d %s\nquorum q\n", k, strings.Join(names, " "))
	return b.String()
}

// lockedLog makes an evidencetest log safe for the collector's concurrent
// proof requests.
type lockedLog struct {
	mu sync.Mutex
	*evidencetest.Log
}

func (l *lockedLog) proofs(ctx context.Context, old, size uint64) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [][]byte
	for _, h := range l.Consistency(old, size) {
		out = append(out, h[:])
	}
	return out, nil
}

func (l *lockedLog) grow(n int) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := 0; i < n; i++ {
		l.Append([]byte(fmt.Sprintf("entry %d", l.Size())))
	}
	return l.Checkpoint()
}

func newCollector(t *testing.T, text string, l *lockedLog, opts client.Options) (*client.Collector, *policy.Policy) {
	t.Helper()
	p, err := policy.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewCollector(p, l.proofs, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, p
}

func TestCollectorGathersQuorum(t *testing.T) {
	l := &lockedLog{Log: evidencetest.NewLog("example.com/log", 0)}
	ws := []*realWitness{startWitness(t, "w0.example", l.Log), startWitness(t, "w1.example", l.Log), startWitness(t, "w2.example", l.Log)}
	reg := prometheus.NewRegistry()
	c, p := newCollector(t, policyText(l.Log, 3, ws...), l, client.Options{Registerer: reg})
	for round := 0; round < 5; round++ {
		cp := l.grow(round + 1)
		out, err := c.Cosign(context.Background(), cp)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		v, err := evidence.VerifyCheckpoint(out, p)
		if err != nil || len(v.Cosigners) != 3 {
			t.Fatalf("round %d: %v, %d cosigners", round, err, len(v.Cosigners))
		}
		// Each cosignature verifies with transparency-dev/formats.
		for _, w := range ws {
			if _, err := note.Open(out, note.VerifierList(w.verifier)); err != nil {
				t.Errorf("round %d: %s's cosignature: %v", round, w.name, err)
			}
		}
		// Asking again for the same checkpoint adds nothing twice.
		again, err := c.Cosign(context.Background(), out)
		if err != nil || bytes.Count(again, []byte("— w0.example ")) != 1 {
			t.Fatalf("round %d: re-cosign: %v\n%s", round, err, again)
		}
	}
	if got := counterValue(t, reg, "shiplog_witness_client_requests_total", "w1"); got != 10 {
		t.Errorf("requests counted for w1 = %v, want 10", got)
	}
}

// counterValue returns the value of a counter by name and witness label.
func counterValue(t *testing.T, reg *prometheus.Registry, name, witnessName string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "witness" && lp.GetValue() == witnessName {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{witness=%q}", name, witnessName)
	return 0
}

// TestCollectorLearnsSizeFrom409: a witness that cosigned a larger size for
// another client answers 409 with its size; the collector retries once with
// the right proof.
func TestCollectorLearnsSizeFrom409(t *testing.T) {
	l := &lockedLog{Log: evidencetest.NewLog("example.com/log", 0)}
	w := startWitness(t, "w0.example", l.Log)
	l.grow(5)
	if _, err := w.w.AddCheckpoint(context.Background(), (&addcheckpoint.Request{Checkpoint: l.CheckpointAt(5)}).Format()); err != nil {
		t.Fatal(err)
	}
	c, _ := newCollector(t, policyText(l.Log, 1, w), l, client.Options{})
	if _, err := c.Cosign(context.Background(), l.grow(3)); err != nil {
		t.Fatalf("Cosign after a 409: %v", err)
	}
}

// TestCollectorWitnessDownDoesNotBlock: one witness hangs, one refuses
// connections; Cosign returns with the quorum of the healthy ones.
func TestCollectorWitnessDownDoesNotBlock(t *testing.T) {
	l := &lockedLog{Log: evidencetest.NewLog("example.com/log", 0)}
	w0, w1 := startWitness(t, "w0.example", l.Log), startWitness(t, "w1.example", l.Log)
	release := make(chan struct{})
	defer close(release)
	hang := startWitnessWith(t, "hang.example", func(http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
	}, l.Log)
	down := startWitness(t, "down.example", l.Log)
	down.srv.Close()
	c, p := newCollector(t, policyText(l.Log, 2, w0, w1, hang, down), l, client.Options{Timeout: 2 * time.Second})
	out, err := c.Cosign(context.Background(), l.grow(4))
	if err != nil {
		t.Fatalf("Cosign: %v", err)
	}
	if v, err := evidence.VerifyCheckpoint(out, p); err != nil || len(v.Cosigners) != 2 {
		t.Fatalf("VerifyCheckpoint: %v", err)
	}
}

// TestCollectorQuorumNotMet returns the gathered note with ErrQuorum.
func TestCollectorQuorumNotMet(t *testing.T) {
	l := &lockedLog{Log: evidencetest.NewLog("example.com/log", 0)}
	w0 := startWitness(t, "w0.example", l.Log)
	stranger := startWitness(t, "w1.example") // does not know the log: 404
	c, _ := newCollector(t, policyText(l.Log, 2, w0, stranger), l, client.Options{})
	out, err := c.Cosign(context.Background(), l.grow(2))
	if !errors.Is(err, evidence.ErrQuorum) {
		t.Fatalf("Cosign = %v, want ErrQuorum", err)
	}
	// The error names the witness that failed and why (a vendor's publish
	// prints it).
	var qe *client.QuorumError
	if !errors.As(err, &qe) || len(qe.Failed) != 1 || qe.Failed[0].Witness != "w1" || !strings.Contains(err.Error(), "w1: ") {
		t.Errorf("quorum error does not name w1 and its error: %v", err)
	}
	if _, err := note.Open(out, note.VerifierList(w0.verifier)); err != nil {
		t.Errorf("partial note lacks w0's cosignature: %v", err)
	}
	// A checkpoint of a log outside the policy is refused before any request.
	other := evidencetest.NewLog("example.com/other", 0)
	if _, err := c.Cosign(context.Background(), other.Checkpoint()); !errors.Is(err, evidence.ErrUnknownLog) {
		t.Errorf("foreign log: %v", err)
	}
	forged := evidencetest.NewLogWithKey(evidencetest.NewLog("example.com/log", 0), "example.com/log")
	if _, err := c.Cosign(context.Background(), forged.Checkpoint()); err == nil {
		t.Error("checkpoint signed by another key accepted")
	}
}

// TestAttackForkedLogGetsNoCosignature: a witness that cosigned one branch
// refuses the other (422), so a forking log cannot gather its quorum.
func TestAttackForkedLogGetsNoCosignature(t *testing.T) {
	l := &lockedLog{Log: evidencetest.NewLog("example.com/log", 0)}
	w := startWitness(t, "w0.example", l.Log)
	c, _ := newCollector(t, policyText(l.Log, 1, w), l, client.Options{})
	if _, err := c.Cosign(context.Background(), l.grow(4)); err != nil {
		t.Fatal(err)
	}
	fork := &lockedLog{Log: evidencetest.NewLogWithKey(l.Log, l.Origin)}
	fork.Append([]byte("another first entry"))
	fork.grow(3)
	cf, _ := newCollector(t, policyText(l.Log, 1, w), fork, client.Options{})
	if _, err := cf.Cosign(context.Background(), fork.Checkpoint()); !errors.Is(err, evidence.ErrQuorum) {
		t.Fatalf("fork at the same size: %v, want ErrQuorum", err)
	}
	if _, err := cf.Cosign(context.Background(), fork.grow(2)); !errors.Is(err, evidence.ErrQuorum) {
		t.Fatalf("fork extension: %v, want ErrQuorum", err)
	}
}

// TestCollectorRateLimitRetry: a 429 with Retry-After is retried.
func TestCollectorRateLimitRetry(t *testing.T) {
	l := &lockedLog{Log: evidencetest.NewLog("example.com/log", 0)}
	var calls atomic.Int32
	w := startWitnessWith(t, "w0.example", func(real http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				rw.Header().Set("Retry-After", "1")
				http.Error(rw, "slow down", http.StatusTooManyRequests)
				return
			}
			real.ServeHTTP(rw, r)
		})
	}, l.Log)
	c, _ := newCollector(t, policyText(l.Log, 1, w), l, client.Options{})
	if _, err := c.Cosign(context.Background(), l.grow(1)); err != nil {
		t.Fatalf("Cosign: %v", err)
	}
	if calls.Load() != 2 {
		t.Errorf("%d requests, want 2", calls.Load())
	}
	// With a deadline shorter than Retry-After, it gives up at once.
	calls.Store(0)
	l.grow(1)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Cosign(ctx, l.Checkpoint()); !errors.Is(err, evidence.ErrQuorum) {
		t.Errorf("Cosign with a short deadline: %v", err)
	}
}

// TestCollectorConcurrent runs Cosign from several goroutines (run with -race).
func TestCollectorConcurrent(t *testing.T) {
	l := &lockedLog{Log: evidencetest.NewLog("example.com/log", 0)}
	ws := []*realWitness{startWitness(t, "w0.example", l.Log), startWitness(t, "w1.example", l.Log)}
	c, _ := newCollector(t, policyText(l.Log, 1, ws...), l, client.Options{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		cp := l.grow(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Out-of-order calls may lose to a larger size; none may fail
			// in any other way or corrupt the note.
			out, err := c.Cosign(context.Background(), cp)
			if err != nil && !errors.Is(err, evidence.ErrQuorum) {
				t.Errorf("Cosign: %v", err)
			}
			if out != nil && !bytes.HasPrefix(out, cp) {
				t.Errorf("note changed")
			}
		}()
	}
	wg.Wait()
	if _, err := c.Cosign(context.Background(), l.grow(1)); err != nil {
		t.Errorf("after the burst: %v", err)
	}
}

func TestClientStatusErrors(t *testing.T) {
	l := evidencetest.NewLog("example.com/log", 0)
	v, _ := notekey.ParseWitnessVerifier(startWitness(t, "w.example").vkey)
	tests := []struct {
		code   int
		ct     string
		body   string
		header string
		check  func(error) bool
	}{
		{409, addcheckpoint.SizeContentType, "7\n", "", func(err error) bool {
			var ce *client.ConflictError
			return errors.As(err, &ce) && ce.Size == 7
		}},
		{409, "text/plain", "conflict\n", "", func(err error) bool {
			var se *client.StatusError
			return errors.As(err, &se) && se.Code == 409
		}},
		{409, addcheckpoint.SizeContentType, "07\n", "", func(err error) bool {
			var se *client.StatusError
			return errors.As(err, &se)
		}},
		{422, "text/plain", "bad proof\n", "", func(err error) bool { return errors.Is(err, client.ErrBadProof) }},
		{404, "text/plain", "", "", func(err error) bool { return errors.Is(err, client.ErrUnknownLog) }},
		{403, "text/plain", "", "", func(err error) bool { return errors.Is(err, client.ErrForbidden) }},
		{400, "text/plain", "", "", func(err error) bool { return errors.Is(err, client.ErrBadRequest) }},
		{429, "text/plain", "", "120", func(err error) bool {
			var re *client.RateLimitError
			return errors.As(err, &re) && re.RetryAfter == 2*time.Minute
		}},
		{500, "text/plain", strings.Repeat("x", 2000), "", func(err error) bool {
			var se *client.StatusError
			return errors.As(err, &se) && se.Code == 500 && len(se.Message) <= 512
		}},
		{200, "text/plain", "not a signature\n", "", func(err error) bool { return errors.Is(err, client.ErrBadCosignature) }},
		{200, "text/plain", strings.Repeat("x", 20000), "", func(err error) bool { return err != nil }},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %s", tt.code, tt.body[:min(len(tt.body), 10)]), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				rw.Header().Set("Content-Type", tt.ct)
				if tt.header != "" {
					rw.Header().Set("Retry-After", tt.header)
				}
				rw.WriteHeader(tt.code)
				rw.Write([]byte(tt.body))
			}))
			defer srv.Close()
			_, err := client.New(srv.URL, v, client.Options{}).AddCheckpoint(context.Background(), 0, nil, l.Checkpoint())
			if !tt.check(err) {
				t.Errorf("AddCheckpoint = %v", err)
			}
		})
	}
}

// TestAttackForgedCosignature: a response whose cosignature does not verify
// under the witness's key over this checkpoint is refused; lines by unknown
// keys (such as the spec's example response) are ignored.
func TestAttackForgedCosignature(t *testing.T) {
	l := evidencetest.NewLog("example.com/log", 0)
	l.Append([]byte("a"))
	w := startWitness(t, "w.example", l)
	impostor := startWitness(t, "w.example") // same name, another key
	specResp, err := os.ReadFile("../../testdata/witness/c2sp-example-response.txt")
	if err != nil {
		t.Fatal(err)
	}
	text := l.Body(1).Format()
	good, _ := checkpoint.Cosign(text, w.signer)
	forged, _ := checkpoint.Cosign(text, impostor.signer)
	l.Append([]byte("b"))
	otherCheckpoint, _ := checkpoint.Cosign(l.Body(2).Format(), w.signer)
	tests := map[string]struct {
		resp []byte
		ok   bool
	}{
		"valid":                             {good, true},
		"valid among unknown keys":          {append(append([]byte{}, specResp...), good...), true},
		"only unknown keys (spec example)":  {specResp, false},
		"same name, another key":            {forged, false},
		"cosignature of another checkpoint": {otherCheckpoint, false},
		"truncated":                         {good[:len(good)-5], false},
		"empty":                             {nil, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { rw.Write(tt.resp) }))
			defer srv.Close()
			sigs, err := client.New(srv.URL, w.verifier, client.Options{}).AddCheckpoint(context.Background(), 0, nil, l.CheckpointAt(1))
			if (err == nil) != tt.ok {
				t.Fatalf("AddCheckpoint = %q, %v; want ok=%v", sigs, err, tt.ok)
			}
			if tt.ok && !bytes.Equal(sigs, good) {
				t.Errorf("kept %q, want only the witness's line", sigs)
			}
		})
	}
}
