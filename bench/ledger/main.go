// Command ledger-bench measures the shiplog ledger (docs/perf/ledger.md):
//
//	-mode throughput: for each count of -writers, publishes per second
//	  from that many concurrent publishers of small valid targets metadata
//	  (each its own repository, wait=0: acknowledged once durable,
//	  integrated and indexed) and, alternating in the same run, raw Tessera
//	  POSIX appends of entries of the same size from as many writers with
//	  the same batching; the CPU per operation of each; each side's best
//	  rate and their ratio; and the publish CPU as a multiple of its floor
//	  (one Ed25519 verification + the metadata's SHA-256 + one raw append's
//	  CPU, measured in the same run).
//	-mode latency: publish→proof latency under a checkpoint cosigned by 3
//	  local witnesses (real shiplog witnesses, durable state, HTTP on
//	  127.0.0.1); reports p50/p90/p99/max.
//	-mode memory: runs the real "shiplog ledger serve" binary (-shiplog),
//	  streams -entries publishes into it and samples the server's resident
//	  memory and Go heap (from its /metrics) every -sample entries.
//	-mode flood: runs the real "shiplog ledger serve" binary (-shiplog) under
//	  stalled-body floods on gRPC and HTTP and an idle-connection flood,
//	  each from another loopback address, while publishers on 127.0.0.1
//	  keep publishing; reports the server's peak RSS and descriptors
//	  (flood.go).
//	-mode trillian: the ledger on Trillian + PostgreSQL with 1, 2 and 3
//	  replicas next to raw Trillian QueueLeaf and the embedded default, in
//	  one run (trillian.go, docs/perf/ledger-trillian.md).
//
// Everything listens on 127.0.0.1 only and stops by itself.
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
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
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/shiplog/shiplog/log/server"
	"github.com/shiplog/shiplog/witness"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"k8s.io/klog/v2"
)

var (
	mode       = flag.String("mode", "throughput", "throughput, latency, memory, trillian or flood")
	publishers = flag.Int("publishers", 64, "concurrent publishers")
	duration   = flag.Duration("duration", 10*time.Second, "measuring time per side (throughput)")
	requests   = flag.Int("requests", 400, "publishes to time (latency)")
	entries    = flag.Int("entries", 200000, "entries to publish (memory)")
	sample     = flag.Int("sample", 25000, "sample memory every this many entries (memory)")
	shiplog    = flag.String("shiplog", "", "path of the shiplog binary (memory)")
	cpuProfile = flag.String("cpuprofile", "", "write a CPU profile to this file: of the shiplog side at the largest writer count (throughput), else of the whole run")
	mutexProf  = flag.String("mutexprofile", "", "write a mutex contention profile of the shiplog side at the largest writer count to this file (throughput)")
	traceFile  = flag.String("trace", "", "write an execution trace of the shiplog side at the largest writer count to this file (throughput; read with go tool trace -pprof=sched)")
	blockProf  = flag.String("blockprofile", "", "write a blocking profile of the shiplog side at the largest writer count to this file (throughput)")
	rounds     = flag.Int("rounds", 1, "alternating rounds of raw Tessera and shiplog per writer count (throughput)")
	floodN     = flag.Int("flood", 300, "stalled requests per body flood (flood)")
	idleN      = flag.Int("idle", 10000, "idle connections to each port (flood)")
	floodFor   = flag.Duration("flood-for", 20*time.Second, "how long each flood is held (flood)")
)

var httpClient = &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4096}}

func main() {
	flag.Parse()
	klog.SetSlogLogger(slog.New(slog.DiscardHandler))
	if *cpuProfile != "" && *mode != "throughput" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ledger-bench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
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
	case "flood":
		err = flood()
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		pprof.StopCPUProfile()
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
	if err := server.Init(ctx, dir, server.InitOptions{Origin: "bench.test/log", Config: &server.Config{RateLimit: -1, MaxConnections: 8192, MaxConnectionsPerClient: 8192}}); err != nil {
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
	repo *kit.Repo
	next int64
	pre  [][]byte // pre-signed versions next, next+1, ...
}

// newPublishers registers count repositories and pre-signs presign(i)
// targets versions for publisher i.
func newPublishers(n *node, count int, presign func(i int) int) ([]*publisher, error) {
	ps := make([]*publisher, count)
	for i := range ps {
		p := &publisher{id: fmt.Sprintf("bench.test/repo%d", i), repo: kit.NewRandomRepo(time.Now().Add(24 * time.Hour)), next: 1}
		if code, b, err := post(n.url+"/v1/admin/repositories?wait=0&id="+url.QueryEscape(p.id), p.repo.RootBytes(), n.token); err != nil || code != 200 {
			return nil, fmt.Errorf("register: %d %s %v", code, b, err)
		}
		for v := int64(1); v <= int64(presign(i)); v++ {
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

// throughput measures, for each writer count of -writers, raw Tessera
// appends and shiplog publishes side by side (alternating, -rounds rounds),
// with the process's CPU time per operation, and reports each side's best
// rate; then the publish floor (one Ed25519 verification, the metadata's
// SHA-256 and the CPU of one raw append at the best writer count) and, for
// scale, the CPU of one HTTP round trip with the same body.
func throughput() error {
	counts, err := parseCounts(*writers)
	if err != nil {
		return err
	}
	n, err := startNode(nil)
	if err != nil {
		return err
	}
	defer n.stop()
	maxCount := slices.Max(counts)
	presign := func(i int) int { // publisher i takes part in every count above i
		v := 0.0
		for _, c := range counts {
			if i < c {
				v += *presignRate * duration.Seconds() * float64(*rounds) / float64(c)
			}
		}
		return int(v) + 1
	}
	fmt.Printf("registering %d repositories and pre-signing their targets versions...\n", maxCount)
	ps, err := newPublishers(n, maxCount, presign)
	if err != nil {
		return err
	}
	size := len(ps[0].metadata())
	fmt.Printf("metadata size %d bytes; raw Tessera entries of %d bytes; batching 256/50ms, checkpoint interval 100ms; %v per side\n", size, size, *duration)
	type best struct {
		rate, cpu float64
		count     int
	}
	var bestRaw, bestShip best
	for _, c := range counts {
		for r := 0; r < *rounds; r++ {
			raw, rawCPU, err := rawTessera(size, c)
			if err != nil {
				return err
			}
			profiling := *cpuProfile != "" && c == maxCount && r == 0
			if profiling {
				f, err := os.Create(*cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				pprof.StartCPUProfile(f)
			}
			contention := c == maxCount && r == 0 && (*mutexProf != "" || *blockProf != "")
			if contention {
				startContention()
			}
			if *traceFile != "" && c == maxCount && r == 0 {
				f, err := os.Create(*traceFile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := trace.Start(f); err != nil {
					return err
				}
				time.AfterFunc(*duration/2, trace.Stop)
			}
			cpu0, wait0 := processCPU(), runQueueWait()
			start := time.Now()
			cnt, err := runFor(c, *duration, func(i int) error { _, err := ps[i].publish(n, "0"); return err })
			if profiling {
				pprof.StopCPUProfile()
			}
			if contention {
				if err := stopContention(); err != nil {
					return err
				}
			}
			if err != nil {
				return err
			}
			wall := time.Since(start).Seconds()
			ship := float64(cnt) / wall
			used := (processCPU() - cpu0).Seconds()
			shipCPU := used / float64(cnt)
			fmt.Printf("%4d writers, round %d: raw Tessera %6.0f appends/s (%5.0f µs CPU each), shiplog %6.0f publishes/s (%5.0f µs CPU each), ratio %.2f; shiplog side used %.2f cores, its threads waited %.2f s/s for a CPU\n",
				c, r+1, raw, rawCPU*1e6, ship, shipCPU*1e6, ship/raw, used/wall, (runQueueWait()-wait0).Seconds()/wall)
			if raw > bestRaw.rate {
				bestRaw = best{raw, rawCPU, c}
			}
			if ship > bestShip.rate {
				bestShip = best{ship, shipCPU, c}
			}
		}
	}
	fmt.Printf("best of each: raw Tessera %.0f appends/s (%d writers), shiplog %.0f publishes/s (%d publishers): ratio %.2f\n",
		bestRaw.rate, bestRaw.count, bestShip.rate, bestShip.count, bestShip.rate/bestRaw.rate)
	verify, hash := verifyCost(ps[0].metadata())
	transport, err := httpCost(size)
	if err != nil {
		return err
	}
	floor := verify + hash + bestRaw.cpu
	fmt.Printf("floor per publish: Ed25519 verify %.0f µs + SHA-256 %.1f µs + raw append %.0f µs = %.0f µs; publish %.0f µs CPU = %.2f× the floor (an HTTP round trip with the same body costs %.0f µs CPU of it)\n",
		verify*1e6, hash*1e6, bestRaw.cpu*1e6, floor*1e6, bestShip.cpu*1e6, bestShip.cpu/floor, transport*1e6)
	return nil
}

// startContention starts recording mutex contention and blocking events
// (every event: the profiles are of one side's run only).
func startContention() {
	if *mutexProf != "" {
		runtime.SetMutexProfileFraction(1)
	}
	if *blockProf != "" {
		runtime.SetBlockProfileRate(1)
	}
}

// stopContention stops recording and writes the -mutexprofile and
// -blockprofile files.
func stopContention() error {
	runtime.SetMutexProfileFraction(0)
	runtime.SetBlockProfileRate(0)
	for _, p := range []struct{ name, file string }{{"mutex", *mutexProf}, {"block", *blockProf}} {
		if p.file == "" {
			continue
		}
		f, err := os.Create(p.file)
		if err != nil {
			return err
		}
		err = pprof.Lookup(p.name).WriteTo(f, 0)
		if e := f.Close(); err == nil {
			err = e
		}
		if err != nil {
			return err
		}
	}
	return nil
}

var (
	writers     = flag.String("writers", "64,256,1024", "writer (and publisher) counts to measure, comma-separated (throughput)")
	presignRate = flag.Float64("presign-rate", 6000, "publishes per second to pre-sign versions for (throughput)")
)

func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 {
			return nil, fmt.Errorf("bad count %q", f)
		}
		out = append(out, c)
	}
	return out, nil
}

// processCPU returns the user and system CPU time of this process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runQueueWait returns the time this process's threads have spent
// runnable but waiting for a CPU (Linux: the second field of each
// /proc/self/task/*/schedstat; 0 elsewhere). Over a run, divided by its
// wall time, it tells whether the machine's other load starved the
// process: a process that could use both cores but waits a second per
// second for them is bound by the machine, not by its own locks.
func runQueueWait() time.Duration {
	tasks, _ := filepath.Glob("/proc/self/task/*/schedstat")
	var total int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) >= 2 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			total += n
		}
	}
	return time.Duration(total)
}

// verifyCost returns the CPU seconds of one Ed25519 verification and of
// one SHA-256 of data, measured on one goroutine.
func verifyCost(data []byte) (verify, hash float64) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := sha256.Sum256(data)
	sig := ed25519.Sign(priv, msg[:])
	const n = 2000
	c0 := processCPU()
	for i := 0; i < n; i++ {
		if !ed25519.Verify(pub, msg[:], sig) {
			panic("verify")
		}
	}
	c1 := processCPU()
	for i := 0; i < 20*n; i++ {
		msg = sha256.Sum256(data)
	}
	c2 := processCPU()
	return (c1 - c0).Seconds() / n, (c2 - c1).Seconds() / (20 * n)
}

// httpCost returns the CPU seconds of one HTTP POST round trip of size
// bytes to a handler that reads the body and answers a small JSON object,
// both ends in this process, from 64 concurrent clients.
func httpCost(size int) (float64, error) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"index":1,"leaf_hash":"` + strings.Repeat("ab", 32) + `"}`))
	}))
	defer srv.Close()
	body := make([]byte, size)
	c0 := processCPU()
	cnt, err := runFor(64, 2*time.Second, func(int) error {
		code, _, err := post(srv.URL, body, "")
		if err == nil && code != 200 {
			err = fmt.Errorf("echo: %d", code)
		}
		return err
	})
	return (processCPU() - c0).Seconds() / float64(cnt), err
}

// rawTessera appends entries of size bytes to a fresh Tessera POSIX log
// with the ledger's batching, from count writers each waiting for its
// entry to be durably integrated, and returns appends per second and the
// process's CPU seconds per append.
func rawTessera(size, count int) (float64, float64, error) {
	dir, err := os.MkdirTemp("", "raw-tessera")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	skey, _, err := notekey.GenerateLog(rand.Reader, "raw.test/log")
	if err != nil {
		return 0, 0, err
	}
	signer, err := notekey.NewLogSigner(skey)
	if err != nil {
		return 0, 0, err
	}
	d, err := posix.New(ctx, posix.Config{Path: dir, HTTPClient: &http.Client{Timeout: time.Second}})
	if err != nil {
		return 0, 0, err
	}
	a, shutdown, _, err := tessera.NewAppender(ctx, d, tessera.NewAppendOptions().WithCheckpointSigner(signer).
		WithBatching(256, 50*time.Millisecond).WithCheckpointInterval(100*time.Millisecond))
	if err != nil {
		return 0, 0, err
	}
	defer shutdown(ctx)
	var seq atomic.Uint64
	cpu0, wait0 := processCPU(), runQueueWait()
	start := time.Now()
	cnt, err := runFor(count, *duration, func(int) error {
		e := make([]byte, size)
		copy(e, strconv.FormatUint(seq.Add(1), 10))
		_, err := a.Add(ctx, tessera.NewEntry(e))()
		return err
	})
	wall := time.Since(start).Seconds()
	rate := float64(cnt) / wall
	used := (processCPU() - cpu0).Seconds()
	fmt.Printf("%4d writers: raw Tessera used %.2f cores, its threads waited %.2f s/s for a CPU\n", count, used/wall, (runQueueWait()-wait0).Seconds()/wall)
	return rate, used / float64(max(cnt, 1)), err
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
	ps, err := newPublishers(n, *publishers, func(int) int { return per })
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
