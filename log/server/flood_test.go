package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/shiplog/shiplog/log/server"
	ledgerv1 "github.com/shiplog/shiplog/proto/ledger/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

// rawCodec sends []byte as the request as is, to send malformed protobuf.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error { return nil }
func (rawCodec) Name() string                                { return "proto" }

// TestAttackMalformedProtobuf: a request that is not protobuf is answered
// InvalidArgument (grpc-go alone says Internal) and changes nothing.
func TestAttackMalformedProtobuf(t *testing.T) {
	f := newFixture(t)
	before := f.size()
	conn, err := grpc.NewClient(f.addrs["grpc"], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, b := range [][]byte{{0xff, 0xff, 0xff}, {0x0a, 0x10, 'x'}, []byte("not protobuf at all")} {
		err := conn.Invoke(context.Background(), "/shiplog.ledger.v1.Ledger/Publish", b, new([]byte), grpc.ForceCodecV2(rawCodec{}))
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%q: %v, want InvalidArgument", b, err)
		}
	}
	// A well-formed request still works on the same server.
	if _, err := f.grpc.Publish(context.Background(), &ledgerv1.PublishRequest{Repo: fw, Role: "targets", Metadata: f.t3}); err != nil {
		t.Errorf("well-formed request after malformed ones: %v", err)
	}
	if got := f.size(); got != before {
		t.Errorf("log size changed from %d to %d", before, got)
	}
}

// floodNode is a ledger with small flood limits: 24 MiB in flight (6 MiB,
// one largest request, per client address) and 4 connections per client.
func floodNode(t *testing.T) (*testNode, *kit.Repo) {
	n := startNode(t, nodeOptions{config: server.Config{MaxBytesInFlight: 4 * (server.MaxBody + 4096), MaxConnectionsPerClient: 4}})
	repo := kit.NewRandomRepo(expires)
	if _, r := n.register(fw, repo.RootBytes()); r.code != 200 {
		t.Fatalf("register: %d %s", r.code, r.body)
	}
	return n, repo
}

func dialFrom(ip string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return d.DialContext
}

// stalledWriter passes the first limit bytes written, then blocks until
// ctx ends: a client that sends most of a request and never the rest.
type stalledWriter struct {
	net.Conn
	ctx  context.Context
	left atomic.Int64
}

func (c *stalledWriter) Write(p []byte) (int, error) {
	if c.left.Add(-int64(len(p))) < 0 {
		<-c.ctx.Done()
		c.Conn.Close() // the attacker goes away
		return 0, c.ctx.Err()
	}
	return c.Conn.Write(p)
}

func grpcFrom(t *testing.T, addr, ip string, ctx context.Context, stallAfter int64) ledgerv1.LedgerClient {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(dctx context.Context, a string) (net.Conn, error) {
			c, err := dialFrom(ip)(dctx, "tcp", a)
			if err != nil || stallAfter == 0 {
				return c, err
			}
			w := &stalledWriter{Conn: c, ctx: ctx}
			w.left.Store(stallAfter)
			return w, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return ledgerv1.NewLedgerClient(conn)
}

// waitFor retries cond until it holds, for at most a generous minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 600 {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAttackStalledGRPCPublishFlood: Publish calls that declare the largest
// message and never finish sending it (300 of them took the ledger from
// 24 MB to 1.63 GB) are weighed against the in-flight budget when their
// headers arrive, before the message is read: past a client's share, that
// client's calls get ResourceExhausted, other clients keep publishing, and
// the share comes back when the stalled calls end.
func TestAttackStalledGRPCPublishFlood(t *testing.T) {
	n, repo := floodNode(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	big := make([]byte, server.MaxBody)
	stalled := grpcFrom(t, n.addrs["grpc"], "127.0.0.2", ctx, 1<<20)
	go func() {
		// Publish returns only when refused (a connection that came while
		// the client's others were open, on a loaded machine) or when the
		// test ends: call again until it ends, so the share stays held.
		for ctx.Err() == nil {
			stalled.Publish(ctx, &ledgerv1.PublishRequest{Repo: fw, Role: "targets", Metadata: big})
			time.Sleep(20 * time.Millisecond)
		}
	}()
	attacker := grpcFrom(t, n.addrs["grpc"], "127.0.0.2", context.Background(), 0)
	waitFor(t, "the attacker's share to be taken", func() bool {
		_, err := attacker.Checkpoint(context.Background(), &ledgerv1.CheckpointRequest{})
		return status.Code(err) == codes.ResourceExhausted
	})
	good := grpcFrom(t, n.addrs["grpc"], "127.0.0.1", context.Background(), 0)
	if _, err := good.Publish(context.Background(), &ledgerv1.PublishRequest{Repo: fw, Role: "targets", Metadata: repo.Targets(1)}); err != nil {
		t.Fatalf("well-behaved publish during the flood: %v", err)
	}
	cancel()
	waitFor(t, "the attacker's share to come back", func() bool {
		_, err := attacker.Checkpoint(context.Background(), &ledgerv1.CheckpointRequest{})
		return status.Code(err) != codes.ResourceExhausted
	})
}

// stalledBody yields limit zero bytes, then blocks until ctx ends.
type stalledBody struct {
	ctx  context.Context
	left int
}

func (r *stalledBody) Read(p []byte) (int, error) {
	if r.left <= 0 {
		<-r.ctx.Done()
		return 0, r.ctx.Err()
	}
	k := min(len(p), r.left)
	clear(p[:k])
	r.left -= k
	return k, nil
}

// TestAttackStalledHTTPBodyFlood: the same over HTTP: a publish declaring
// the largest body and stalling holds its client's share; that client's
// next body is refused with 503 before it is read; other clients publish.
func TestAttackStalledHTTPBodyFlood(t *testing.T) {
	n, repo := floodNode(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DialContext: dialFrom("127.0.0.2"), DisableKeepAlives: true}}
	go func() {
		// The stalled publish returns only when it is refused (its
		// connection may come while the probes below hold the client's
		// connections, on a loaded machine) or the test ends: try again
		// until the test ends, so the share is always held.
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, "POST", n.url+"/v1/publish?repo="+fw+"&role=targets&wait=0", &stalledBody{ctx: ctx, left: 1 << 20})
			req.ContentLength = server.MaxBody
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	// A small body (8 KiB, past the 4 KiB left of the client's share) is
	// written whole before the answer, so the 503 is always read.
	post := func() int {
		resp, err := client.Post(n.url+"/v1/publish?repo="+fw+"&role=targets&wait=0", "application/json", strings.NewReader(strings.Repeat(" ", 8<<10)))
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, "the attacker's next body to be refused", func() bool { return post() == http.StatusServiceUnavailable })
	if rc, r := n.publish(fw, "targets", repo.Targets(1), "0"); r.code != 200 || rc.Index == 0 {
		t.Fatalf("well-behaved publish during the flood: %d %s", r.code, r.body)
	}
	cancel()
	waitFor(t, "the attacker's share to come back", func() bool { return post() != http.StatusServiceUnavailable })
}

// openIdle opens a connection from 127.0.0.3 to port and makes it an idle
// connection of its protocol (HTTP/2 preface and settings for gRPC, one
// keep-alive request for HTTP); it reports whether the server kept it.
func openIdle(t *testing.T, n *testNode, port string) (net.Conn, bool) {
	c, err := dialFrom("127.0.0.3")(context.Background(), "tcp", n.addrs[port])
	if err != nil {
		t.Fatal(err)
	}
	hello := "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"
	if port == "http" {
		hello = "GET /healthz HTTP/1.1\r\nHost: ledger\r\n\r\n"
	}
	c.Write([]byte(hello))
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = c.Read(make([]byte, 9))
	c.SetReadDeadline(time.Time{})
	return c, err == nil
}

// TestAttackIdleConnectionFlood: connections past a client's limit are
// closed as soon as they are accepted (20,000 idle HTTP/2 connections
// exhausted the ledger's descriptors), other clients still connect, and a
// closed connection frees its place.
func TestAttackIdleConnectionFlood(t *testing.T) {
	n, _ := floodNode(t)
	for _, port := range []string{"grpc", "http"} {
		var held []net.Conn
		for i := 0; i < 4; i++ {
			c, ok := openIdle(t, n, port)
			if !ok {
				t.Fatalf("%s: connection %d refused", port, i)
			}
			held = append(held, c)
		}
		for i := 0; i < 20; i++ {
			c, ok := openIdle(t, n, port)
			c.Close()
			if ok {
				t.Fatalf("%s: connection %d from one client was kept", port, 5+i)
			}
		}
		if _, err := n.grpc.Checkpoint(context.Background(), &ledgerv1.CheckpointRequest{}); status.Code(err) == codes.Unavailable {
			t.Errorf("%s: another client could not connect during the flood: %v", port, err)
		}
		if r := n.do("GET", "/healthz", nil); r.code != 200 {
			t.Errorf("%s: another client's HTTP request during the flood: %d", port, r.code)
		}
		held[0].Close()
		waitFor(t, port+": a closed connection's place to come back", func() bool {
			c, ok := openIdle(t, n, port)
			if ok {
				held[0] = c
			} else {
				c.Close()
			}
			return ok
		})
		for _, c := range held {
			c.Close()
		}
	}
}

// TestBurstyClientClosingItsConnectionsKeepsConnecting: the per-client
// connection limit counts open connections, and one the client closes frees
// its place once the server has read the end of it (an idle HTTP/1.1 or
// HTTP/2 connection is always being read), so a legitimate client that opens
// bursts of connections and drops them keeps being served, however many it
// opens in all: ten bursts of 32 concurrent requests, each on its own
// connection, closed by the client after the burst (320 connections, five
// times the default limit of 64). Between bursts it waits until the server
// counts the dropped connections as closed (shiplog_ledger_connections_open),
// which on a loaded machine can come after the client's next burst would
// have: with the release dropped, the count never comes down.
func TestBurstyClientClosingItsConnectionsKeepsConnecting(t *testing.T) {
	n := startNode(t, nodeOptions{config: server.Config{RateLimit: -1}})
	for burst := 0; burst < 10; burst++ {
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		hc := &http.Client{Transport: tr, Timeout: time.Minute}
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for i := 0; i < 32; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := hc.Get(n.url + "/healthz")
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("status %d", resp.StatusCode)
				}
			}()
		}
		wg.Wait()
		tr.CloseIdleConnections() // the client drops its connections
		close(errs)
		for err := range errs {
			t.Errorf("burst %d: %v", burst, err)
		}
		// The test's other clients hold a few connections; the burst's 32
		// must all be gone.
		waitFor(t, fmt.Sprintf("burst %d's connections to be counted closed", burst), func() bool {
			return n.metric(`shiplog_ledger_connections_open{listener="http"}`) <= 8
		})
	}
	if got := n.metric(`shiplog_ledger_connections_refused_total{listener="http"}`); got != 0 {
		t.Errorf("%v connections refused", got)
	}
}
