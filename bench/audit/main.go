// Command audit measures the auditor: entries audited per second (tree
// recomputation, metadata fetch and hash check, TUF signature checks
// included) on a log of -n releases served by a real Tessera POSIX log over
// HTTP on 127.0.0.1, next to the bare cost of fetching the same entry
// bundles, metadata bundles and hash tiles and hashing them, measured in the
// same run. See docs/perf/auditor.md.
//
//	go run ./bench/audit -n 100000
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/shiplog/shiplog/audit"
	"github.com/shiplog/shiplog/audit/store"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/harness"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	"golang.org/x/sync/errgroup"
)

func main() {
	n := flag.Int("n", 100000, "releases to log")
	repos := flag.Int("repos", 100, "repositories the releases are spread over")
	workers := flag.Int("workers", 8, "concurrent fetches (auditor and bare run alike)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the audit run to this file")
	flag.Parse()
	profile = *cpuprofile
	harness.QuietTessera()
	if err := run(*n, *repos, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "bench/audit:", err)
		os.Exit(1)
	}
}

var profile string

func run(n, nrepos, workers int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "shiplog-bench-audit")
	if err != nil {
		return err
	}
	if os.Getenv("KEEP") == "" {
		defer os.RemoveAll(dir)
	} else {
		fmt.Println("keeping", dir)
	}
	keys := kit.NewKeys("bench.example/ledger", 2)
	l, err := harness.NewBulkRawLedger(ctx, filepath.Join(dir, "log"), keys)
	if err != nil {
		return err
	}
	defer l.Close()
	t0 := time.Now()
	if err := build(ctx, l, n, nrepos); err != nil {
		return err
	}
	fmt.Printf("built a log of %d entries (%d repositories) in %s\n", n, nrepos, time.Since(t0).Round(time.Millisecond))
	srv := httptest.NewServer(l)
	defer srv.Close()
	p, err := policy.Parse(keys.PolicyAll())
	if err != nil {
		return err
	}
	c0 := cpuTime()
	bare, size, err := bareFetch(ctx, srv.URL, workers)
	if err != nil {
		return err
	}
	bareCPU := cpuTime() - c0
	db, err := store.Open(filepath.Join(dir, "audit.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	a, err := audit.New(audit.Config{Ledger: srv.URL, Policy: p, State: db, Workers: workers,
		Logger: slog.New(slog.DiscardHandler), Progress: os.Stderr})
	if err != nil {
		return err
	}
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
	}
	c1 := cpuTime()
	t1 := time.Now()
	res, err := a.Step(ctx)
	if profile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	full := time.Since(t1)
	fullCPU := cpuTime() - c1
	if res.Audited != size || len(res.Findings) != 0 {
		return fmt.Errorf("audit of the honest log: %d of %d entries, %d findings", res.Audited, size, len(res.Findings))
	}
	if file, used, err := db.Size(); err == nil {
		fmt.Printf("auditor state file: %d bytes = %.0f bytes/entry; pages in use %d bytes = %.0f bytes/entry\n",
			file, float64(file)/float64(size), used, float64(used)/float64(size))
	}
	verify, err := verifyCPU()
	if err != nil {
		return err
	}
	floor := float64(bareCPU.Microseconds())/float64(size) + verify
	fmt.Printf("machine: %d CPUs, %s\n", runtime.NumCPU(), runtime.Version())
	fmt.Printf("bare fetch + hash of tiles, entry and metadata bundles: %d entries in %s = %.0f entries/s\n", size, bare.Round(time.Millisecond), float64(size)/bare.Seconds())
	fmt.Printf("full audit (tree, metadata, TUF signatures, state):     %d entries in %s = %.0f entries/s\n", size, full.Round(time.Millisecond), float64(size)/full.Seconds())
	fmt.Printf("ratio full/bare: %.1fx wall\n", full.Seconds()/bare.Seconds())
	fmt.Printf("CPU time (this process, server included): bare %s = %.1f µs/entry; full %s = %.1f µs/entry; ratio %.1fx\n",
		bareCPU.Round(time.Millisecond), float64(bareCPU.Microseconds())/float64(size),
		fullCPU.Round(time.Millisecond), float64(fullCPU.Microseconds())/float64(size), fullCPU.Seconds()/bareCPU.Seconds())
	fmt.Printf("floor: bare %.1f µs + one Ed25519 verification %.1f µs = %.1f µs/entry; full audit %.2fx floor\n",
		float64(bareCPU.Microseconds())/float64(size), verify, floor, float64(fullCPU.Microseconds())/float64(size)/floor)
	return nil
}

// verifyCPU returns the CPU time, in µs, of one Ed25519 verification of a
// message the size of a release's signed part (1 KiB), measured in this
// process: every release of the log carries one signature.
func verifyCPU() (float64, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return 0, err
	}
	msg := make([]byte, 1024)
	sig := ed25519.Sign(priv, msg)
	const n = 4000
	c0 := cpuTime()
	for range n {
		if !ed25519.Verify(pub, msg, sig) {
			return 0, fmt.Errorf("ed25519 verification failed")
		}
	}
	return float64((cpuTime() - c0).Microseconds()) / n, nil
}

// build logs root v1 of every repository, then releases in rounds over the
// repositories. Each round holds one release per repository and is appended
// concurrently; the next starts once every release of the round has its
// index, so each repository's releases are logged in order however Tessera
// splits and flushes its batches (relying on the order of one goroutine's
// appends failed under load with "entries logged out of order").
func build(ctx context.Context, l *harness.RawLedger, n, nrepos int) error {
	rs := make([]*kit.Repo, nrepos)
	var batch []harness.Release
	flush := func() error {
		err := l.AppendUnordered(ctx, batch)
		batch = batch[:0]
		return err
	}
	exp := time.Now().Add(365 * 24 * time.Hour)
	for i := 0; i < n; i++ {
		r := i % nrepos
		var rel harness.Release
		if rs[r] == nil {
			rs[r] = kit.NewRepo(fmt.Sprintf("bench.example/repo-%03d", r), exp)
			rel = harness.Release{Repo: rs[r].ID, Role: "root", Version: 1, Metadata: rs[r].RootBytes()}
		} else {
			md := rs[r].Release(kit.Files("fw", 2, uint64(i)))
			rel = harness.Release{Repo: rs[r].ID, Role: "targets", Version: uint64(rs[r].Top.Signed.Version), Metadata: md}
		}
		batch = append(batch, rel)
		if len(batch) == nrepos {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if len(batch) > 0 {
		if err := flush(); err != nil {
			return err
		}
	}
	return l.Publish(ctx)
}

// bareFetch fetches every entry bundle, metadata bundle and level-0 tile of
// the log's latest checkpoint with the same concurrency, hashes the leaves
// and metadata, and checks the root: the floor under any auditor.
func bareFetch(ctx context.Context, base string, workers int) (time.Duration, uint64, error) {
	hc := &http.Client{Timeout: 30 * time.Second}
	raw, err := fetch(ctx, hc, base+"/checkpoint")
	if err != nil {
		return 0, 0, err
	}
	body := raw[:len(raw)]
	for i := 0; i+1 < len(raw); i++ {
		if raw[i] == '\n' && raw[i+1] == '\n' {
			body = raw[:i+1]
			break
		}
	}
	cp, err := checkpoint.ParseUnverified(body)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	nb := (cp.Size + 255) / 256
	leaves := make([][][]byte, nb)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for b := uint64(0); b < nb; b++ {
		w := uint8(0)
		if (b+1)*256 > cp.Size {
			w = uint8(cp.Size % 256)
		}
		g.Go(func() error {
			eb, err := fetch(gctx, hc, base+"/"+layout.EntriesPath(b, w))
			if err != nil {
				return err
			}
			if _, err := fetch(gctx, hc, base+"/"+layout.TilePath(0, b, w)); err != nil {
				return err
			}
			mb, err := fetch(gctx, hc, base+"/metadata/bundle/"+layout.NWithSuffix(0, b, w))
			if err != nil {
				return err
			}
			for len(mb) >= 4 { // hash every metadata file, as the auditor does
				m := binary.BigEndian.Uint32(mb)
				sha256.Sum256(mb[4 : 4+m])
				mb = mb[4+m:]
			}
			for len(eb) >= 2 {
				m := int(binary.BigEndian.Uint16(eb))
				leaves[b] = append(leaves[b], rfc6962.DefaultHasher.HashLeaf(eb[2:2+m]))
				eb = eb[2+m:]
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	cr := rf.NewEmptyRange(0)
	for _, bl := range leaves {
		for _, h := range bl {
			if err := cr.Append(h, nil); err != nil {
				return 0, 0, err
			}
		}
	}
	root, err := cr.GetRootHash(nil)
	if err != nil {
		return 0, 0, err
	}
	if string(root) != string(cp.Hash[:]) {
		return 0, 0, fmt.Errorf("bare fetch: root mismatch")
	}
	return time.Since(start), cp.Size, nil
}

// cpuTime returns the user+system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func fetch(ctx context.Context, hc *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}
