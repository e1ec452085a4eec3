// Command fleet simulates a fleet of devices polling a vendor's repository
// served by nginx (configured as deploy/nginx configures it) while the
// vendor publishes a release through the ledger and its witnesses, and
// reports how the release propagates (publish → X % of the fleet
// installed), the requests per second nginx served, and how many requests
// reached the ledger and the witnesses — none of them from a device.
// See docs/perf/fleet.md.
//
//	go run ./bench/fleet -devices 100000 -poll 60s
//
// A simulated device is a few bytes of state, not a process: a scheduler
// wakes each device once per -poll (at its own phase) and a pool of
// -workers goroutines makes its requests, in the order shiplog-device makes
// them (client/update): GET <root+1>.root.json (404 while the root is
// unchanged), GET timestamp.json; and when the timestamp changed, the
// snapshot, the targets metadata, its tlog-proof and the target file. The
// devices share the pool's keep-alive connections (real devices each have
// their own). They check nothing: the cost of verification is measured by
// the device benchmarks (docs/perf/device.md); this tool measures serving.
// Every address is on 127.0.0.1, and the run stops by itself after
// -timeout.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	devices := flag.Int("devices", 100000, "simulated devices")
	poll := flag.Duration("poll", 60*time.Second, "how often each device checks for an update")
	workers := flag.Int("workers", 128, "concurrent requests (the devices share them)")
	timeout := flag.Duration("timeout", 0, "stop waiting for the fleet to install after this long (default: 4 × -poll)")
	exe := flag.String("shiplog", "", "the shiplog binary (default: build ./cmd/shiplog)")
	nginx := flag.String("nginx", "/usr/sbin/nginx", "the nginx binary")
	deploy := flag.String("deploy", "deploy", "the repository's deploy directory (for nginx/shiplog.conf)")
	flag.Parse()
	if *timeout == 0 {
		*timeout = 4 * *poll
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *devices, *poll, *workers, *timeout, *exe, *nginx, *deploy); err != nil {
		fmt.Fprintln(os.Stderr, "bench/fleet:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, n int, poll time.Duration, workers int, timeout time.Duration, exe, nginx, deploy string) error {
	dir, err := os.MkdirTemp("", "shiplog-fleet")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if exe == "" {
		exe = filepath.Join(dir, "shiplog")
		if out, err := exec.Command("go", "build", "-o", exe, "./cmd/shiplog").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/shiplog (run from the repository root, or give -shiplog): %v\n%s", err, out)
		}
	}
	w := &world{exe: exe, dir: filepath.Join(dir, "world")}
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		return err
	}
	defer w.stop()
	fmt.Println("starting a ledger, 3 witnesses and nginx; registering the repository and logging release 1 ...")
	if err := w.build(ctx, nginx, deploy); err != nil {
		return err
	}
	f := newFleet(w, n, workers)
	if err := f.planCurrent(); err != nil {
		return err
	}
	for i := range f.devs { // every device starts on release 1
		f.devs[i].ts = f.current.tsSum
		f.devs[i].version = f.current.version
	}
	f.target.Store(int64(f.current.version + 1))
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fmt.Printf("%d devices polling every %v (≈ %.0f checks/s) through %d connections; nginx at %s\n", n, poll, float64(n)/poll.Seconds(), workers, w.nginxURL)
	start := time.Now()
	go f.schedule(fctx, poll)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); f.work(fctx) }()
	}
	time.Sleep(min(poll/2, 30*time.Second)) // the fleet at its steady rate before the release
	ledger0, wits0 := w.ledger.all.Load(), sumAll(w.wits)
	reqs0 := f.requests.Load()
	fmt.Println("the vendor publishes release 2 (sign, log, witness, expose) ...")
	t0 := time.Now()
	f.t0.Store(t0.UnixNano())
	if err := w.release(ctx, 2); err != nil {
		return err
	}
	published := time.Since(t0)
	deadline := time.After(timeout)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
wait:
	for f.installed.Load() < int64(n) {
		select {
		case <-deadline:
			break wait
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	elapsed := time.Since(t0)
	reqs := f.requests.Load() - reqs0
	ledgerN, witsN := w.ledger.all.Load()-ledger0, sumAll(w.wits)-wits0
	cancel()
	wg.Wait()

	f.mu.Lock()
	times := slices.Clone(f.installTimes)
	f.mu.Unlock()
	slices.Sort(times)
	fmt.Printf("release 2: publish command took %v (sign, log, 2-of-3 cosigned proof, expose)\n", published.Round(time.Millisecond))
	fmt.Printf("installed by %d of %d devices (%.2f %%) within %v of the publish starting\n", len(times), n, 100*float64(len(times))/float64(n), elapsed.Round(time.Second))
	for _, q := range []float64{0.5, 0.9, 0.99, 1} {
		k := int(q*float64(n)+0.5) - 1
		if k < len(times) {
			fmt.Printf("  %5.1f %% of the fleet installed %v after the publish started\n", 100*q, times[k].Round(100*time.Millisecond))
		} else {
			fmt.Printf("  %5.1f %% of the fleet: not within %v\n", 100*q, elapsed.Round(time.Second))
		}
	}
	total := time.Since(start)
	fmt.Printf("nginx served %d requests in %v: %.0f requests/s overall, %.0f/s after the publish; %d failed (not 200/404)\n",
		f.requests.Load(), total.Round(time.Second), float64(f.requests.Load())/total.Seconds(), float64(reqs)/elapsed.Seconds(), f.failed.Load())
	fmt.Printf("checks made: %d (%.0f/s, target %.0f/s); checks that found an update: %d\n",
		f.checks.Load(), float64(f.checks.Load())/total.Seconds(), float64(n)/poll.Seconds(), f.updates.Load())
	fmt.Printf("ledger: %d requests in the whole run (the vendor's registration and publishes; %d after release 2's publish started), %d from devices\n",
		w.ledger.all.Load(), ledgerN, w.ledger.fromFleet.Load())
	fmt.Printf("witnesses: %d requests in the whole run (the ledger's add-checkpoint calls; %d after release 2's publish started), %d from devices\n",
		sumAll(w.wits), witsN, sumFleet(w.wits))
	if f.failed.Load() > 0 {
		return fmt.Errorf("%d device requests failed", f.failed.Load())
	}
	if w.ledger.fromFleet.Load() != 0 || sumFleet(w.wits) != 0 {
		return errors.New("devices reached the ledger or a witness")
	}
	return nil
}

func sumAll(cs []*counter) (s int64) {
	for _, c := range cs {
		s += c.all.Load()
	}
	return s
}

func sumFleet(cs []*counter) (s int64) {
	for _, c := range cs {
		s += c.fromFleet.Load()
	}
	return s
}

// device is one simulated device: the hash of the timestamp it last saw
// and the targets version it installed.
type device struct {
	ts      [8]byte
	version int64
}

// plan is what a device fetches when it sees a timestamp: the files the
// update needs and the targets version they install.
type plan struct {
	tsSum   [8]byte
	version int64
	fetch   []string
}

type fleet struct {
	w      *world
	client *http.Client
	devs   []device
	due    chan int

	mu           sync.Mutex
	plans        map[[8]byte]*plan
	current      *plan
	installTimes []time.Duration

	target                                              atomic.Int64 // the version whose installs are timed
	t0                                                  atomic.Int64 // when its publish started (unix ns)
	installed, requests, failed, checks, updates, rootV atomic.Int64
}

func newFleet(w *world, n, workers int) *fleet {
	f := &fleet{w: w, devs: make([]device, n), due: make(chan int, workers), plans: map[[8]byte]*plan{},
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}}}
	f.rootV.Store(1)
	return f
}

// schedule wakes device i at start + i·poll/n + k·poll.
func (f *fleet) schedule(ctx context.Context, poll time.Duration) {
	defer close(f.due)
	n := len(f.devs)
	start := time.Now()
	for k := 0; ; k++ {
		for i := 0; i < n; i++ {
			at := start.Add(time.Duration(k)*poll + time.Duration(int64(poll)*int64(i)/int64(n)))
			if d := time.Until(at); d > 2*time.Millisecond {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
			select {
			case <-ctx.Done():
				return
			case f.due <- i:
			}
		}
	}
}

func (f *fleet) work(ctx context.Context) {
	for i := range f.due {
		if ctx.Err() != nil {
			return
		}
		f.check(ctx, i)
	}
}

// get fetches path from nginx as a device would and returns the body of a
// 200 (nil for a 404).
func (f *fleet) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", f.w.nginxURL+path, nil)
	if err != nil {
		return nil, err
	}
	req.Host = repoHost
	req.Header.Set("User-Agent", deviceUA)
	resp, err := f.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			f.failed.Add(1)
		}
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	f.requests.Add(1)
	switch {
	case err != nil:
		f.failed.Add(1)
		return nil, err
	case resp.StatusCode == http.StatusNotFound:
		return nil, nil
	case resp.StatusCode != http.StatusOK:
		f.failed.Add(1)
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return b, nil
}

// check is one device's update check.
func (f *fleet) check(ctx context.Context, i int) {
	f.checks.Add(1)
	if _, err := f.get(ctx, fmt.Sprintf("/metadata/%d.root.json", f.rootV.Load()+1)); err != nil {
		return
	}
	ts, err := f.get(ctx, "/metadata/timestamp.json")
	if err != nil || ts == nil {
		return
	}
	sum := sha256.Sum256(ts)
	d := &f.devs[i]
	if [8]byte(sum[:8]) == d.ts {
		return
	}
	p, err := f.plan(ts)
	if err != nil {
		f.failed.Add(1)
		return
	}
	f.updates.Add(1)
	for _, path := range p.fetch {
		if b, err := f.get(ctx, path); err != nil || b == nil {
			return // retried at the next check
		}
	}
	d.ts, d.version = p.tsSum, p.version
	if p.version >= f.target.Load() && f.t0.Load() != 0 {
		dt := time.Since(time.Unix(0, f.t0.Load()))
		f.mu.Lock()
		f.installTimes = append(f.installTimes, dt)
		f.mu.Unlock()
		f.installed.Add(1)
	}
}

// planCurrent plans the repository's current timestamp.
func (f *fleet) planCurrent() error {
	ts, err := os.ReadFile(f.w.path("repo", "metadata", "timestamp.json"))
	if err != nil {
		return err
	}
	p, err := f.plan(ts)
	f.current = p
	return err
}

// plan reads, once per timestamp, which files it leads to (from the
// repository directory nginx serves).
func (f *fleet) plan(ts []byte) (*plan, error) {
	sum := sha256.Sum256(ts)
	key := [8]byte(sum[:8])
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.plans[key]; ok {
		return p, nil
	}
	var doc struct {
		Signed struct {
			Meta map[string]struct {
				Version int64 `json:"version"`
			} `json:"meta"`
			Targets map[string]struct {
				Hashes map[string]string `json:"hashes"`
			} `json:"targets"`
		} `json:"signed"`
	}
	read := func(name string) error {
		b, err := os.ReadFile(f.w.path("repo", "metadata", name))
		if err != nil {
			return err
		}
		doc.Signed.Meta, doc.Signed.Targets = nil, nil
		return json.Unmarshal(b, &doc)
	}
	if err := json.Unmarshal(ts, &doc); err != nil {
		return nil, err
	}
	snap := fmt.Sprintf("%d.snapshot.json", doc.Signed.Meta["snapshot.json"].Version)
	if err := read(snap); err != nil {
		return nil, err
	}
	tv := doc.Signed.Meta["targets.json"].Version
	targets := fmt.Sprintf("%d.targets.json", tv)
	if err := read(targets); err != nil {
		return nil, err
	}
	h := doc.Signed.Targets["app.bin"].Hashes["sha256"]
	if h == "" {
		return nil, errors.New("targets metadata has no app.bin")
	}
	p := &plan{tsSum: key, version: tv, fetch: []string{
		"/metadata/" + snap, "/metadata/" + targets, "/metadata/" + targets + ".tlog-proof", "/targets/" + h + ".app.bin",
	}}
	f.plans[key] = p
	return p, nil
}
