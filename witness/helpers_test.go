package witness_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shiplog/shiplog/evidence/evidencetest"
	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/witness"
	"github.com/shiplog/shiplog/witness/addcheckpoint"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// testWitness is a witness served over real HTTP on 127.0.0.1 with its
// state in a real bbolt file.
type testWitness struct {
	*witness.Witness
	t        testing.TB
	store    *witness.Store
	dir      string
	url      string
	reg      *prometheus.Registry
	vkey     string // cosignature/v1 vkey
	verifier note.Verifier
	now      time.Time
}

// newTestWitness starts a witness for the given log list text.
func newTestWitness(t testing.TB, logList string) *testWitness {
	t.Helper()
	tw := &testWitness{t: t, dir: t.TempDir(), reg: prometheus.NewRegistry(), now: time.Unix(1_700_000_000, 0)}
	skey, _, cosig, err := notekey.GenerateWitness(rand.Reader, "witness.test")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := notekey.NewWitnessSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	tw.vkey = cosig
	// Verify with the ecosystem's verifier, not ours.
	if tw.verifier, err = fnote.NewVerifierForCosignatureV1(cosig); err != nil {
		t.Fatal(err)
	}
	list, err := witness.ParseLogList([]byte(logList))
	if err != nil {
		t.Fatal(err)
	}
	tw.openStore()
	tw.Witness, err = witness.New(witness.Config{Signer: signer, Store: tw.store, Logs: list, Registerer: tw.reg, Now: func() time.Time { return tw.now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(tw.Handler("", tw.reg))
	t.Cleanup(srv.Close)
	tw.url = srv.URL
	return tw
}

func (tw *testWitness) openStore() {
	s, err := witness.OpenStore(filepath.Join(tw.dir, witness.StateFile), nil)
	if err != nil {
		tw.t.Fatal(err)
	}
	tw.store = s
	tw.t.Cleanup(func() { s.Close() })
}

// logList returns log list text for the logs, with an optional qpd.
func logList(qpd uint64, logs ...*evidencetest.Log) string {
	var b strings.Builder
	b.WriteString("logs/v0\n")
	for _, l := range logs {
		fmt.Fprintf(&b, "vkey %s\n", l.VKey)
		if l.Origin != strings.SplitN(l.VKey, "+", 2)[0] {
			fmt.Fprintf(&b, "origin %s\n", l.Origin)
		}
		if qpd != 0 {
			fmt.Fprintf(&b, "qpd %d\n", qpd)
		}
	}
	return b.String()
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

func (tw *testWitness) post(body []byte) response {
	tw.t.Helper()
	return httpDo(tw.t, http.MethodPost, tw.url+"/add-checkpoint", body)
}

func (tw *testWitness) get(path string) response {
	tw.t.Helper()
	return httpDo(tw.t, http.MethodGet, tw.url+path, nil)
}

func httpDo(t testing.TB, method, url string, body []byte) response {
	req, err := http.NewRequestWithContext(context.Background(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// request returns the add-checkpoint body moving l's witness from old to
// size, with a correct consistency proof.
func request(l *evidencetest.Log, old, size uint64) []byte {
	r := addcheckpoint.Request{OldSize: old, Checkpoint: l.CheckpointAt(size)}
	if old > 0 && old < size {
		r.Proof = l.Consistency(old, size)
	}
	return r.Format()
}

// grow appends n entries to l.
func grow(l *evidencetest.Log, n int, tag string) {
	for i := 0; i < n; i++ {
		l.Append([]byte(fmt.Sprintf("%s entry %d", tag, l.Size())))
	}
}

// forkOf returns a log with l's key and origin whose first prefix entries
// are l's and whose later ones differ.
func forkOf(l *evidencetest.Log, prefix uint64, total int) *evidencetest.Log {
	f := evidencetest.NewLogWithKey(l, l.Origin)
	for i := uint64(0); i < prefix; i++ {
		f.Append([]byte(fmt.Sprintf("main entry %d", i)))
	}
	grow(f, total-int(prefix), "fork")
	return f
}

// checkCosigned checks that sigs are cosignature lines by the witness over
// checkpoint, with the transparency-dev/formats cosignature/v1 verifier.
func (tw *testWitness) checkCosigned(checkpoint, sigs []byte) {
	tw.t.Helper()
	n, err := note.Open(append(append([]byte{}, checkpoint...), sigs...), note.VerifierList(tw.verifier))
	if err != nil {
		tw.t.Fatalf("cosignature does not verify: %v\n%s%s", err, checkpoint, sigs)
	}
	if len(n.Sigs) != 1 || n.Sigs[0].Name != "witness.test" {
		tw.t.Fatalf("verified signatures = %+v", n.Sigs)
	}
}

// addrLogger returns a logger that sends the address of the "listening"
// record to addr.
func addrLogger(addr chan<- string) *slog.Logger {
	return slog.New(&addrHandler{addr: addr})
}

type addrHandler struct{ addr chan<- string }

func (h *addrHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *addrHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *addrHandler) WithGroup(string) slog.Handler            { return h }
func (h *addrHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "listening" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "addr" {
				select {
				case h.addr <- a.Value.String():
				default:
				}
			}
			return true
		})
	}
	return nil
}
