// Command ledger-bench measures the shiplog ledger (docs/perf/ledger.md):
//
//	-mode throughput: publishes per second with -publishers concurrent
//	  publishers of small valid targets metadata (each its own repository,
//	  wait=0: acknowledged once durable, integrated and indexed), and, in the
//	  same run, raw Tessera POSIX appends of entries of the same size with
//	  as many concurrent writers and the same batching; reports both and the
//	  ratio.
//	-mode latency: publish→proof latency under a checkpoint cosigned by 3
//	  local witnesses (real shiplog witnesses, durable state, HTTP on
//	  127.0.0.1); reports p50/p90/p99/max.
//	-mode memory: runs the real "shiplog ledger serve" binary (-shiplog),
//	  streams -entries publishes into it and samples the server's resident
//	  memory and Go heap (from its /metrics) every -sample entries.
//	-mode trillian: the ledger on Trillian + PostgreSQL with 1, 2 and 3
//	  replicas next to raw Trillian QueueLeaf and the embedded default, in
//	  one run (trillian.go, docs/perf/ledger-trillian.md).
//
// Everything listens on 127.0.0.1 only and stops by itself.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/log/server"
	"github.com/shiplog/shiplog/log/tuftest"
	"github.com/shiplog/shiplog/witness"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"k8s.io/klog/v2"
)

var (
	mode       = flag.String("mode", "throughput", "throughput, latency, memory or trillian")
	publishers = flag.Int("publishers", 64, "concurrent publishers")
	duration   = flag.Duration("duration", 10*time.Second, "measuring time per side (throughput)")
	requests   = flag.Int("requests", 400, "publishes to time (latency)")
	entries    = flag.Int("entries", 200000, "entries to publish (memory)")
	sample     = flag.Int("sample", 25000, "sample memory every this many entries (memory)")
	shiplog    = flag.String("shiplog", "", "path of the shiplog binary (memory)")
	rounds     = flag.Int("rounds", 2, "alternating rounds of raw Tessera and shiplog (throughput)")
)

var httpClient = &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

func main() {
	flag.Parse()
	klog.SetSlogLogger(slog.New(slog.DiscardHandler))
	var err error
	switch *mode {
	case "throughput":
		err = throughput()
	case "latency":
		err = latency()
	case "memory":
		err = memory()
	case "trillian":
		err = trillianBench()
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ledger-bench:", err)
		os.Exit(1)
	}
}

// node is an in-process ledger served on 127.0.0.1.
type node struct {
	dir, url, token string
	stop            func()
}

func startNode(policy func(vkey string) string) (*node, error) {
	dir, err := os.MkdirTemp("", "ledger-bench")
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if err := server.Init(ctx, dir, server.InitOptions{Origin: "bench.test/log", Config: &server.Config{RateLimit: -1}}); err != nil {
		return nil, err
	}
	if policy != nil {
		vkey, _ := os.ReadFile(filepath.Join(dir, server.VKeyFile))
		if err := os.WriteFile(filepath.Join(dir, server.PolicyFile), []byte(policy(strings.TrimSpace(string(vkey)))), 0o644); err != nil {
			return nil, err
		}
	}
	addrFile := filepath.Join(dir, "addr")
	n, err := server.Open(ctx, dir, server.Options{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", AddrFile: addrFile})
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { n.Serve(sctx); close(done) }()
	addrs, err := waitAddr(addrFile)
	if err != nil {
		cancel()
		return nil, err
	}
	token, _ := os.ReadFile(filepath.Join(dir, server.TokenFile))
	return &node{dir: dir, url: "http://" + addrs["http"], token: strings.TrimSpace(string(token)), stop: func() {
		cancel()
		<-done
		os.RemoveAll(dir)
	}}, nil
}

func waitAddr(file string) (map[string]string, error) {
	var addrs map[string]string
	for i := 0; i < 3000; i++ {
		b, err := os.ReadFile(file)
		if err == nil && json.Unmarshal(b, &addrs) == nil {
			return addrs, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil, fmt.Errorf("ledger did not start")
}

func post(u string, body []byte, token string) (int, []byte, error) {
	req, err := http.NewRequest("POST", u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// publisher owns one repository and publishes its targets versions in order.
type publisher struct {
	id   string
	repo *tuftest.Repo
	next int64
	pre  [][]byte // pre-signed versions next, next+1, ...
}

func newPublishers(n *node, count, presign int) ([]*publisher, error) {
	ps := make([]*publisher, count)
	for i := range ps {
		p := &publisher{id: fmt.Sprintf("bench.test/repo%d", i), repo: tuftest.NewRepo(time.Now().Add(24 * time.Hour)), next: 1}
		if code, b, err := post(n.url+"/v1/admin/repositories?wait=0&id="+url.QueryEscape(p.id), p.repo.RootBytes(), n.token); err != nil || code != 200 {
			return nil, fmt.Errorf("register: %d %s %v", code, b, err)
		}
		for v := int64(1); v <= int64(presign); v++ {
			p.pre = append(p.pre, p.repo.Targets(v))
		}
		ps[i] = p
	}
	return ps, nil
}

// metadata returns the next version to publish: pre-signed if available.
func (p *publisher) metadata() []byte {
	if i := p.next - 1; i < int64(len(p.pre)) {
		return p.pre[i]
	}
	return p.repo.Targets(p.next)
}

func (p *publisher) publish(n *node, wait string) (receiptProof string, err error) {
	u := fmt.Sprintf("%s/v1/publish?repo=%s&role=targets&wait=%s", n.url, url.QueryEscape(p.id), wait)
	code, b, err := post(u, p.metadata(), "")
	if err != nil {
		return "", err
	}
	if code != 200 {
		return "", fmt.Errorf("publish %s v%d: %d %s", p.id, p.next, code, b)
	}
	var r struct {
		Proof string `json:"proof"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return "", err
	}
	p.next++
	return r.Proof, nil
}

// runFor runs f in count goroutines until d passes and returns the number
// of successful calls.
func runFor(count int, d time.Duration, f func(i int) error) (int64, error) {
	var n atomic.Int64
	var firstErr atomic.Pointer[error]
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := 0; i < count; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := f(i); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return n.Load(), *e
	}
	return n.Load(), nil
}

func throughput() error {
	n, err := startNode(nil)
	if err != nil {
		return err
	}
	defer n.stop()
	presign := int(3000 * duration.Seconds() * float64(*rounds) / float64(*publishers))
	fmt.Printf("pre-signing %d targets versions for %d publishers...\n", presign**publishers, *publishers)
	ps, err := newPublishers(n, *publishers, presign)
	if err != nil {
		return err
	}
	size := len(ps[0].metadata())
	fmt.Printf("metadata size %d bytes; raw Tessera entries of %d bytes; %d writers each; batching 256/50ms, checkpoint interval 100ms\n", size, size, *publishers)
	var rawTotal, shipTotal float64
	for r := 0; r < *rounds; r++ {
		raw, err := rawTessera(size)
		if err != nil {
			return err
		}
		start := time.Now()
		cnt, err := runFor(*publishers, *duration, func(i int) error { _, err := ps[i].publish(n, "0"); return err })
		if err != nil {
			return err
		}
		ship := float64(cnt) / time.Since(start).Seconds()
		fmt.Printf("round %d: raw Tessera %.0f appends/s, shiplog %.0f publishes/s, ratio %.2f\n", r+1, raw, ship, ship/raw)
		rawTotal += raw
		shipTotal += ship
	}
	fmt.Printf("mean: raw Tessera %.0f appends/s, shiplog %.0f publishes/s, ratio %.2f\n", rawTotal/float64(*rounds), shipTotal/float64(*rounds), shipTotal/rawTotal)
	return nil
}

// rawTessera appends entries of size bytes to a fresh Tessera POSIX log
// with the ledger's batching, from -publishers writers each waiting for
// its entry to be durably integrated, and returns appends per second.
func rawTessera(size int) (float64, error) {
	dir, err := os.MkdirTemp("", "raw-tessera")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	skey, _, err := notekey.GenerateLog(rand.Reader, "raw.test/log")
	if err != nil {
		return 0, err
	}
	signer, err := notekey.NewLogSigner(skey)
	if err != nil {
		return 0, err
	}
	d, err := posix.New(ctx, posix.Config{Path: dir, HTTPClient: &http.Client{Timeout: time.Second}})
	if err != nil {
		return 0, err
	}
	a, shutdown, _, err := tessera.NewAppender(ctx, d, tessera.NewAppendOptions().WithCheckpointSigner(signer).
		WithBatching(256, 50*time.Millisecond).WithCheckpointInterval(100*time.Millisecond))
	if err != nil {
		return 0, err
	}
	defer shutdown(ctx)
	var seq atomic.Uint64
	start := time.Now()
	cnt, err := runFor(*publishers, *duration, func(int) error {
		e := make([]byte, size)
		copy(e, strconv.FormatUint(seq.Add(1), 10))
		_, err := a.Add(ctx, tessera.NewEntry(e))()
		return err
	})
	return float64(cnt) / time.Since(start).Seconds(), err
}

// startWitnesses serves n real shiplog witnesses of the log with vkey on
// 127.0.0.1 (durable bbolt state) and returns their policy lines.
func startWitnesses(count int, vkey string) (string, func(), error) {
	var b strings.Builder
	var stops []func()
	for i := 0; i < count; i++ {
		skey, _, cosig, err := notekey.GenerateWitness(rand.Reader, fmt.Sprintf("w%d.bench.test", i))
		if err != nil {
			return "", nil, err
		}
		signer, err := notekey.NewWitnessSigner(skey)
		if err != nil {
			return "", nil, err
		}
		list, err := witness.ParseLogList([]byte("logs/v0\nvkey " + vkey + "\n"))
		if err != nil {
			return "", nil, err
		}
		dir, err := os.MkdirTemp("", "bench-witness")
		if err != nil {
			return "", nil, err
		}
		store, err := witness.OpenStore(filepath.Join(dir, witness.StateFile), nil)
		if err != nil {
			return "", nil, err
		}
		w, err := witness.New(witness.Config{Signer: signer, Store: store, Logs: list})
		if err != nil {
			return "", nil, err
		}
		srv := httptest.NewServer(w.Handler("", nil))
		stops = append(stops, func() { srv.Close(); store.Close(); os.RemoveAll(dir) })
		fmt.Fprintf(&b, "witness w%d %s %s\n", i, cosig, srv.URL)
	}
	return b.String(), func() {
		for _, s := range stops {
			s()
		}
	}, nil
}

func latency() error {
	var stopWitnesses func()
	n, err := startNode(func(vkey string) string {
		lines, stop, err := startWitnesses(3, vkey)
		if err != nil {
			panic(err)
		}
		stopWitnesses = stop
		return "log " + vkey + "\n" + lines + "group q all w0 w1 w2\nquorum q\n"
	})
	if err != nil {
		return err
	}
	defer stopWitnesses()
	defer n.stop()
	per := *requests / *publishers + 1
	ps, err := newPublishers(n, *publishers, per)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	var started atomic.Int64
	for i := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < per && started.Add(1) <= int64(*requests); j++ {
				start := time.Now()
				proof, err := ps[i].publish(n, "10s")
				if err == nil && proof == "" {
					err = fmt.Errorf("no proof within 10 s")
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				mu.Lock()
				lat = append(lat, time.Since(start))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return *e
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	fmt.Printf("publish -> proof under a checkpoint cosigned by 3 witnesses (quorum: all 3), %d publishers, %d publishes: p50 %v, p90 %v, p99 %v, max %v\n",
		*publishers, len(lat), q(0.50).Round(time.Millisecond), q(0.90).Round(time.Millisecond), q(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	return nil
}
