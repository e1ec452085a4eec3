package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shiplog/shiplog/log/server"
)

// memory streams -entries publishes into the real "shiplog ledger serve"
// process and samples its memory.
func memory() error {
	if *shiplog == "" {
		return fmt.Errorf("-shiplog is required in memory mode")
	}
	dir, err := os.MkdirTemp("", "ledger-bench-mem")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ldir := filepath.Join(dir, "ledger")
	if out, err := exec.Command(*shiplog, "ledger", "init", "-d", ldir, "--origin", "bench.test/log", "--rate-limit", "-1").CombinedOutput(); err != nil {
		return fmt.Errorf("init: %v %s", err, out)
	}
	addrFile := filepath.Join(dir, "addr")
	cmd := exec.Command(*shiplog, "ledger", "serve", "-d", ldir, "--http-listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--addr-file", addrFile)
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	addrs, err := waitAddr(addrFile)
	if err != nil {
		return err
	}
	token, _ := os.ReadFile(filepath.Join(ldir, server.TokenFile))
	n := &node{dir: ldir, url: "http://" + addrs["http"], token: strings.TrimSpace(string(token))}
	ps, err := newPublishers(n, *publishers, func(int) int { return 0 })
	if err != nil {
		return err
	}
	fmt.Printf("entries\trss_MiB\tanon_MiB\tfile_MiB\tpeak_rss_MiB\tgo_heap_inuse_MiB\tindex_db_MiB\tpublishes/s\n")
	report(cmd.Process.Pid, n, 0, 0)
	var done atomic.Int64
	for done.Load() < int64(*entries) {
		target := min(done.Load()+int64(*sample), int64(*entries))
		start, before := time.Now(), done.Load()
		var wg sync.WaitGroup
		var firstErr atomic.Pointer[error]
		for i := range ps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for done.Add(1) <= target {
					if _, err := ps[i].publish(n, "0"); err != nil {
						firstErr.CompareAndSwap(nil, &err)
						return
					}
				}
				done.Add(-1)
			}()
		}
		wg.Wait()
		if e := firstErr.Load(); e != nil {
			return *e
		}
		report(cmd.Process.Pid, n, done.Load(), float64(done.Load()-before)/time.Since(start).Seconds())
	}
	return nil
}

func report(pid int, n *node, count int64, rate float64) {
	time.Sleep(time.Second) // let the server settle (GC, checkpoint)
	rss, hwm := procStatus(pid, "VmRSS"), procStatus(pid, "VmHWM")
	anon, file := procStatus(pid, "RssAnon"), procStatus(pid, "RssFile")
	heap := scrape(n.url+"/metrics", "go_memstats_heap_inuse_bytes")
	var idx float64
	if fi, err := os.Stat(filepath.Join(n.dir, server.IndexFile)); err == nil {
		idx = float64(fi.Size()) / (1 << 20)
	}
	fmt.Printf("%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.0f\n", count, rss/1024, anon/1024, file/1024, hwm/1024, heap/(1<<20), idx, rate)
}

// procStatus returns a kB field of /proc/<pid>/status.
func procStatus(pid int, field string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb
		}
	}
	return -1
}

// scrape returns a gauge's value from a Prometheus text endpoint.
func scrape(u, name string) float64 {
	req, _ := httpNewRequest(u)
	resp, err := httpClient.Do(req.WithContext(context.Background()))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

func httpNewRequest(u string) (*http.Request, error) { return http.NewRequest("GET", u, nil) }
