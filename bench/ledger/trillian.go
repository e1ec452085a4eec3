package main

// -mode trillian (docs/perf/ledger-trillian.md): in one run, on one
// machine, it measures
//
//   - raw Trillian: -publishers writers calling QueueLeaf on a fresh tree
//     for -duration, timed until Trillian's signer has sequenced every
//     queued leaf (leaves/s), before and after the ledger runs;
//   - the ledger on Trillian + PostgreSQL with each replica count of
//     -replicas (in-process servers on one tree, publishers spread round
//     robin over the replicas): publish throughput (wait=0: acknowledged
//     once sequenced and indexed) and publish→proof latency under a
//     checkpoint cosigned by 3 local witnesses (p50, p99);
//   - the same two figures for the embedded default (Tessera POSIX);
//   - with -best, raw Trillian and the ledger with 1 replica at each of
//     several writer counts (throughput only) and each side's best.
//
// The Trillian deployment is deploy/trillian/up.sh's: an existing one with
// -trillian-state, or a fresh one in a temporary directory (run from the
// repository root).

import (
	"bufio"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/client"
	"github.com/google/trillian/types"
	"github.com/shiplog/shiplog/log/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
)

var (
	trillianState = flag.String("trillian-state", "", "state directory of a running deploy/trillian/up.sh deployment (trillian; default: start one)")
	replicaCounts = flag.String("replicas", "1,2,3", "ledger replica counts to measure (trillian)")
	withEmbedded  = flag.Bool("embedded", true, "also measure the embedded default, Tessera POSIX (trillian)")
	bestCounts    = flag.String("best", "", "writer (and publisher) counts at which to measure raw Trillian and the ledger with 1 replica, throughput only, and print each side's best (trillian; empty: skip)")
)

// cluster is a running deploy/trillian deployment.
type cluster struct {
	dir  string
	cpu  cpuMeter
	env  map[string]string
	conn *grpc.ClientConn
	stop func()
}

func startCluster() (*cluster, error) {
	dir, stop := *trillianState, func() {}
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "bench-trillian-"); err != nil {
			return nil, err
		}
		fmt.Println("starting Trillian + PostgreSQL with deploy/trillian/up.sh ...")
		if out, err := exec.Command("bash", "deploy/trillian/up.sh", dir).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("up.sh: %v\n%s", err, out)
		}
		stop = func() { exec.Command("bash", "deploy/trillian/down.sh", dir).Run(); os.RemoveAll(dir) }
	}
	f, err := os.Open(filepath.Join(dir, "env"))
	if err != nil {
		stop()
		return nil, err
	}
	defer f.Close()
	c := &cluster{dir: dir, cpu: newCPUMeter(dir), env: map[string]string{}, stop: stop}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			c.env[k] = strings.Trim(v, "'")
		}
	}
	if c.conn, err = grpc.NewClient(c.env["TRILLIAN_ADDR"], grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		stop()
		return nil, err
	}
	return c, nil
}

func (c *cluster) newTree() (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tree, err := client.CreateAndInitTree(ctx, &trillian.CreateTreeRequest{Tree: &trillian.Tree{
		TreeState: trillian.TreeState_ACTIVE, TreeType: trillian.TreeType_LOG, MaxRootDuration: durationpb.New(0),
	}}, trillian.NewTrillianAdminClient(c.conn), trillian.NewTrillianLogClient(c.conn))
	if err != nil {
		return 0, err
	}
	return tree.TreeId, nil
}

// deleteTree deletes a tree once its phase is over: Trillian's signer runs
// a pass over every live tree each interval, so trees left from earlier
// phases would add a growing fixed cost to later ones.
func (c *cluster) deleteTree(tree int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := trillian.NewTrillianAdminClient(c.conn).DeleteTree(ctx, &trillian.DeleteTreeRequest{TreeId: tree}); err != nil {
		fmt.Fprintf(os.Stderr, "ledger-bench: couldn't delete tree %d: %v\n", tree, err)
	}
}

// rawTrillian queues leaves of size bytes from -publishers writers for
// -duration on a fresh tree and returns leaves per second until all are
// sequenced, and the CPU each leaf cost the deployment's processes.
func rawTrillian(c *cluster, size int) (float64, string, error) {
	return rawTrillianN(c, size, *publishers)
}

// rawTrillianN is rawTrillian with writers writers.
func rawTrillianN(c *cluster, size, writers int) (float64, string, error) {
	tree, err := c.newTree()
	if err != nil {
		return 0, "", err
	}
	defer c.deleteTree(tree)
	lc := trillian.NewTrillianLogClient(c.conn)
	ctx := context.Background()
	var seq atomic.Uint64
	start, cpu0 := time.Now(), c.cpu.sample()
	cnt, err := runFor(writers, *duration, func(int) error {
		v := make([]byte, size)
		copy(v, strconv.FormatUint(seq.Add(1), 10)+" "+strconv.FormatInt(tree, 10))
		_, err := lc.QueueLeaf(ctx, &trillian.QueueLeafRequest{LogId: tree, Leaf: &trillian.LogLeaf{LeafValue: v}})
		return err
	})
	if err != nil {
		return 0, "", err
	}
	for {
		resp, err := lc.GetLatestSignedLogRoot(ctx, &trillian.GetLatestSignedLogRootRequest{LogId: tree})
		if err != nil {
			return 0, "", err
		}
		var r types.LogRootV1
		if err := r.UnmarshalBinary(resp.GetSignedLogRoot().GetLogRoot()); err != nil {
			return 0, "", err
		}
		if r.TreeSize >= uint64(cnt) {
			return float64(cnt) / time.Since(start).Seconds(), c.cpu.sample().sub(cpu0).perOp(cnt), nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startReplicas initialises a ledger with cfg and a 3-witness policy
// (quorum all) and serves count replicas of it in this process.
func startReplicas(cfg server.Config, count int) ([]*node, func(), error) {
	dir, err := os.MkdirTemp("", "ledger-bench")
	if err != nil {
		return nil, nil, err
	}
	// Publishers all connect from 127.0.0.1: lift the per-client limit.
	cfg.RateLimit, cfg.MaxConnections, cfg.MaxConnectionsPerClient = -1, 8192, 8192
	ctx := context.Background()
	if err := server.Init(ctx, dir, server.InitOptions{Origin: "bench.test/log", Config: &cfg}); err != nil {
		return nil, nil, err
	}
	vkey, _ := os.ReadFile(filepath.Join(dir, server.VKeyFile))
	lines, stopWitnesses, err := startWitnesses(3, strings.TrimSpace(string(vkey)))
	if err != nil {
		return nil, nil, err
	}
	pol := "log " + strings.TrimSpace(string(vkey)) + "\n" + lines + "group q all w0 w1 w2\nquorum q\n"
	if err := os.WriteFile(filepath.Join(dir, server.PolicyFile), []byte(pol), 0o644); err != nil {
		return nil, nil, err
	}
	token, _ := os.ReadFile(filepath.Join(dir, server.TokenFile))
	var nodes []*node
	var stops []func()
	stopAll := func() {
		for _, s := range stops {
			s()
		}
		stopWitnesses()
		os.RemoveAll(dir)
	}
	for i := 0; i < count; i++ {
		addrFile := filepath.Join(dir, fmt.Sprintf("addr%d", i))
		n, err := server.Open(ctx, dir, server.Options{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", AddrFile: addrFile})
		if err != nil {
			stopAll()
			return nil, nil, err
		}
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { n.Serve(sctx); close(done) }()
		stops = append(stops, func() { cancel(); <-done })
		addrs, err := waitAddr(addrFile)
		if err != nil {
			stopAll()
			return nil, nil, err
		}
		nodes = append(nodes, &node{dir: dir, url: "http://" + addrs["http"], token: strings.TrimSpace(string(token))})
	}
	return nodes, stopAll, nil
}

// measureLedger returns publishes per second (wait=0) and the p50 and p99
// of publish→cosigned proof over the replicas, and prints what each
// publish of the throughput phase cost: CPU of the deployment's processes
// (c nil: this process only) and round trips to Trillian and PostgreSQL.
func measureLedger(c *cluster, nodes []*node) (float64, time.Duration, time.Duration, error) {
	return measureLedgerN(c, nodes, *publishers, true)
}

// measureLedgerN is measureLedger with pubs publishers, and without the
// latency phase unless latency is set (then p50 and p99 are 0).
func measureLedgerN(c *cluster, nodes []*node, pubs int, latency bool) (float64, time.Duration, time.Duration, error) {
	per := int(1500*duration.Seconds())/pubs + 2
	if latency {
		per += *requests / pubs
	}
	ps, err := newPublishers(nodes[0], pubs, func(int) int { return per })
	if err != nil {
		return 0, 0, 0, err
	}
	var calls atomic.Uint64
	pick := func() *node { return nodes[int(calls.Add(1))%len(nodes)] }
	m0, err := scrapeRoundTrips(nodes)
	if err != nil {
		return 0, 0, 0, err
	}
	meter := cpuMeter{}
	if c != nil {
		meter = c.cpu
	}
	start, cpu0 := time.Now(), meter.sample()
	cnt, err := runFor(pubs, *duration, func(i int) error { _, err := ps[i].publish(pick(), "0"); return err })
	if err != nil {
		return 0, 0, 0, err
	}
	rate := float64(cnt) / time.Since(start).Seconds()
	cpu := meter.sample().sub(cpu0)
	m1, err := scrapeRoundTrips(nodes)
	if err != nil {
		return 0, 0, 0, err
	}
	fmt.Printf("  %d publishes: CPU per publish %s\n  round trips: %s\n", cnt, cpu.perOp(cnt), roundTripsPerOp(m0, m1, cnt))
	if !latency {
		return rate, 0, 0, nil
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
			for started.Add(1) <= int64(*requests) {
				t0 := time.Now()
				proof, err := ps[i].publish(pick(), "10s")
				if err == nil && proof == "" {
					err = fmt.Errorf("no proof within 10 s")
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				mu.Lock()
				lat = append(lat, time.Since(t0))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return 0, 0, 0, *e
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration {
		return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(time.Millisecond)
	}
	return rate, q(0.50), q(0.99), nil
}

func trillianBench() error {
	c, err := startCluster()
	if err != nil {
		return err
	}
	defer c.stop()
	size := 470 // the size of the publishers' targets metadata
	raw1, cpu1, err := rawTrillian(c, size)
	if err != nil {
		return fmt.Errorf("raw trillian: %w", err)
	}
	fmt.Printf("raw Trillian QueueLeaf (%d writers, %d-byte leaves, until sequenced): %.0f leaves/s\n  CPU per leaf %s\n", *publishers, size, raw1, cpu1)
	type row struct {
		name     string
		rate     float64
		p50, p99 time.Duration
	}
	var rows []row
	run := func(name string, cfg server.Config, replicas int) error {
		nodes, stop, err := startReplicas(cfg, replicas)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Printf("%s:\n", name)
		rate, p50, p99, err := measureLedger(c, nodes)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Printf("%s: %.0f publishes/s; publish -> cosigned proof p50 %v, p99 %v\n", name, rate, p50, p99)
		rows = append(rows, row{name, rate, p50, p99})
		return nil
	}
	if *withEmbedded {
		if err := run("embedded (Tessera POSIX)", server.Config{Storage: "posix"}, 1); err != nil {
			return err
		}
	}
	for _, s := range strings.Split(*replicaCounts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("bad -replicas %q", *replicaCounts)
		}
		tree, err := c.newTree()
		if err != nil {
			return err
		}
		b := make([]byte, 4)
		rand.Read(b)
		cfg := server.Config{Storage: server.StorageTrillian, TrillianAddr: c.env["TRILLIAN_ADDR"], TrillianTreeID: tree,
			PostgresURI: c.env["SHIPLOG_PG_URI"], PostgresSchema: fmt.Sprintf("bench_%x", b)}
		err = run(fmt.Sprintf("Trillian, %d replica(s)", n), cfg, n)
		c.deleteTree(tree)
		if err != nil {
			return err
		}
	}
	if *bestCounts != "" {
		if err := bestOfEach(c, size); err != nil {
			return err
		}
	}
	raw2, cpu2, err := rawTrillian(c, size)
	if err != nil {
		return fmt.Errorf("raw trillian: %w", err)
	}
	fmt.Printf("raw Trillian QueueLeaf again: %.0f leaves/s\n  CPU per leaf %s\n\n", raw2, cpu2)
	fmt.Printf("| backend | publishes/s | vs raw Trillian (mean %.0f/s) | p50 | p99 |\n| --- | --- | --- | --- | --- |\n", (raw1+raw2)/2)
	for _, r := range rows {
		fmt.Printf("| %s | %.0f | %.2f | %v | %v |\n", r.name, r.rate, r.rate/((raw1+raw2)/2), r.p50, r.p99)
	}
	return nil
}

// bestOfEach measures raw Trillian and the ledger with one replica at each
// count of -best, in turn, throughput only, and prints each side's best:
// the two may peak at different concurrency (a publish waits for
// Trillian's signer before it is acknowledged, a raw QueueLeaf does not).
func bestOfEach(c *cluster, size int) error {
	var bestRaw, bestLedger float64
	var rawAt, ledgerAt int
	for _, f := range strings.Split(*bestCounts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("bad -best %q", *bestCounts)
		}
		raw, cpu, err := rawTrillianN(c, size, n)
		if err != nil {
			return fmt.Errorf("raw trillian: %w", err)
		}
		fmt.Printf("best-of-each, %d writers: raw Trillian %.0f leaves/s\n  CPU per leaf %s\n", n, raw, cpu)
		tree, err := c.newTree()
		if err != nil {
			return err
		}
		b := make([]byte, 4)
		rand.Read(b)
		nodes, stop, err := startReplicas(server.Config{Storage: server.StorageTrillian, TrillianAddr: c.env["TRILLIAN_ADDR"], TrillianTreeID: tree,
			PostgresURI: c.env["SHIPLOG_PG_URI"], PostgresSchema: fmt.Sprintf("bench_%x", b)}, 1)
		if err != nil {
			return err
		}
		fmt.Printf("best-of-each, %d publishers: ledger on Trillian, 1 replica:\n", n)
		rate, _, _, err := measureLedgerN(c, nodes, n, false)
		stop()
		c.deleteTree(tree)
		if err != nil {
			return err
		}
		fmt.Printf("  %.0f publishes/s (%.2f of raw Trillian at %d writers)\n", rate, rate/raw, n)
		if raw > bestRaw {
			bestRaw, rawAt = raw, n
		}
		if rate > bestLedger {
			bestLedger, ledgerAt = rate, n
		}
	}
	fmt.Printf("best of each: raw Trillian %.0f leaves/s (%d writers), ledger %.0f publishes/s (%d publishers): ratio %.2f\n\n",
		bestRaw, rawAt, bestLedger, ledgerAt, bestLedger/bestRaw)
	return nil
}
