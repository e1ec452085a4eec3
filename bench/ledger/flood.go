package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shiplog/shiplog/log/server"
	ledgerv1 "github.com/shiplog/shiplog/proto/ledger/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// flood runs the real "shiplog ledger serve" binary (-shiplog) and holds
// three floods against it in turn, each from its own loopback address while
// well-behaved publishers publish from 127.0.0.1 over HTTP and gRPC (issue
// 14, docs/PERFORMANCE.md): -flood gRPC Publish calls and as many HTTP
// publishes that each declare a message of the largest size, send 4 MiB of
// it and stall; then -idle idle TCP connections to each port. It samples
// the server's RSS and open descriptors every 100 ms and reports the peak
// of each flood next to the idle baseline, and the publishes that
// succeeded during it. Every loop is bounded; it stops by itself.
func flood() error {
	if *shiplog == "" {
		return fmt.Errorf("-shiplog is required in flood mode")
	}
	dir, err := os.MkdirTemp("", "ledger-bench-flood")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ldir := filepath.Join(dir, "ledger")
	if out, err := exec.Command(*shiplog, "ledger", "init", ldir, "--origin", "bench.test/log", "--rate-limit", "-1").CombinedOutput(); err != nil {
		return fmt.Errorf("init: %v %s", err, out)
	}
	addrFile := filepath.Join(dir, "addr")
	cmd := exec.Command(*shiplog, "ledger", "serve", ldir, "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--addr-file", addrFile)
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
	ps, err := newPublishers(n, 2, func(int) int { return 0 })
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(addrs["grpc"], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	good := ledgerv1.NewLedgerClient(conn)
	pid := cmd.Process.Pid
	fmt.Printf("flood\tbaseline_rss_MiB\tpeak_rss_MiB\tbaseline_fds\tpeak_fds\tpublishes_ok\tpublishes_failed\n")
	for _, f := range []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{fmt.Sprintf("%d gRPC Publish streams, 4 MiB of 5 MiB each, stalled", *floodN), func(ctx context.Context) error { return stalledGRPC(ctx, addrs["grpc"], *floodN) }},
		{fmt.Sprintf("%d HTTP publishes, 4 MiB of 5 MiB each, stalled", *floodN), func(ctx context.Context) error { return stalledHTTP(ctx, n.url, *floodN) }},
		{fmt.Sprintf("%d idle TCP connections to each port", *idleN), func(ctx context.Context) error {
			return idleConns(ctx, []string{addrs["grpc"], strings.TrimPrefix(n.url, "http://")}, *idleN)
		}},
	} {
		time.Sleep(2 * time.Second) // let the previous flood's connections go
		baseRSS, baseFDs := procStatus(pid, "VmRSS"), openFDs(pid)
		ctx, cancel := context.WithTimeout(context.Background(), *floodFor)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); f.run(ctx) }()
		var peakRSS float64
		var peakFDs int
		var ok, failed atomic.Int64
		wg.Add(1)
		go func() { // well-behaved publishers, HTTP and gRPC in turn
			defer wg.Done()
			for i := 0; ctx.Err() == nil && i < 1000; i++ {
				var err error
				if i%2 == 0 {
					_, err = ps[0].publish(n, "0")
				} else {
					p := ps[1]
					cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
					_, err = good.Publish(cctx, &ledgerv1.PublishRequest{Repo: p.id, Role: "targets", Metadata: p.metadata()})
					ccancel()
					if err == nil {
						p.next++
					}
				}
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
				} else {
					ok.Add(1)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		for ctx.Err() == nil {
			peakRSS, peakFDs = max(peakRSS, procStatus(pid, "VmRSS")), max(peakFDs, openFDs(pid))
			time.Sleep(100 * time.Millisecond)
		}
		cancel()
		wg.Wait()
		fmt.Printf("%s\t%.1f\t%.1f\t%d\t%d\t%d\t%d\n", f.name, baseRSS/1024, peakRSS/1024, baseFDs, peakFDs, ok.Load(), failed.Load())
	}
	return nil
}

func openFDs(pid int) int {
	es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(es)
}

// dialerFrom dials from a loopback source address, so that the flood is
// one client address and the well-behaved publishers (127.0.0.1) another.
func dialerFrom(ip string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
}

// stallConn passes the first limit bytes written and then blocks writes
// until ctx ends: a client that sends most of a message and never the rest.
type stallConn struct {
	net.Conn
	ctx  context.Context
	left atomic.Int64
}

func (c *stallConn) Write(p []byte) (int, error) {
	if c.left.Add(-int64(len(p))) < 0 {
		<-c.ctx.Done()
		return 0, c.ctx.Err()
	}
	return c.Conn.Write(p)
}

const stallAfter = 4 << 20

func stalledGRPC(ctx context.Context, addr string, count int) error {
	big := make([]byte, server.MaxBody)
	var wg sync.WaitGroup
	for i := 0; i < count; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithContextDialer(func(dctx context.Context, a string) (net.Conn, error) {
					c, err := dialerFrom("127.0.0.2").DialContext(dctx, "tcp", a)
					if err != nil {
						return nil, err
					}
					sc := &stallConn{Conn: c, ctx: ctx}
					sc.left.Store(stallAfter)
					return sc, nil
				}))
			if err != nil {
				return
			}
			defer conn.Close()
			ledgerv1.NewLedgerClient(conn).Publish(ctx, &ledgerv1.PublishRequest{Repo: "flood.test/x", Role: "targets", Metadata: big})
		}()
	}
	wg.Wait()
	return nil
}

// stallReader yields limit zero bytes, then blocks until ctx ends.
type stallReader struct {
	ctx  context.Context
	left int
}

func (r *stallReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		<-r.ctx.Done()
		return 0, r.ctx.Err()
	}
	n := min(len(p), r.left)
	clear(p[:n])
	r.left -= n
	return n, nil
}

func stalledHTTP(ctx context.Context, base string, count int) error {
	client := &http.Client{Transport: &http.Transport{DialContext: dialerFrom("127.0.0.2").DialContext, MaxConnsPerHost: 0, DisableKeepAlives: true}}
	var wg sync.WaitGroup
	for i := 0; i < count; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/publish?repo=flood.test/x&role=targets&wait=0", &stallReader{ctx: ctx, left: stallAfter})
			req.ContentLength = server.MaxBody
			if resp, err := client.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	return nil
}

func idleConns(ctx context.Context, addrs []string, count int) error {
	var mu sync.Mutex
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	d := dialerFrom("127.0.0.3")
	for i := 0; i < count && ctx.Err() == nil; i++ {
		for _, a := range addrs {
			c, err := d.DialContext(ctx, "tcp", a)
			if err != nil {
				continue
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}
	<-ctx.Done()
	return nil
}
