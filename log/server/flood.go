package server

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
)

// Defaults of the flood limits (Config): connections in all and per client
// address on each listener, concurrent gRPC streams per connection, and
// request bytes in flight in all and per client address.
const (
	DefaultMaxConnections          = 4096
	DefaultMaxConnectionsPerClient = 64
	DefaultMaxStreamsPerConnection = 16
	DefaultMaxBytesInFlight        = 256 << 20
)

// floodLimits are the configured limits with defaults applied.
type floodLimits struct {
	conns, connsPerClient int
	streams               uint32
	inFlight              int64
}

func (c *Config) floodLimits() floodLimits {
	l := floodLimits{conns: c.MaxConnections, connsPerClient: c.MaxConnectionsPerClient, streams: uint32(c.MaxStreamsPerConnection), inFlight: c.MaxBytesInFlight}
	if l.conns <= 0 {
		l.conns = DefaultMaxConnections
	}
	if l.connsPerClient <= 0 {
		l.connsPerClient = DefaultMaxConnectionsPerClient
	}
	if l.streams == 0 {
		l.streams = DefaultMaxStreamsPerConnection
	}
	if l.inFlight <= 0 {
		l.inFlight = DefaultMaxBytesInFlight
	}
	return l
}

// clientOf returns the client's address without the port.
func clientOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// connMetrics count, per listener ("http", "grpc"), the connections held
// open against the flood limits and those closed at accept for being past
// them.
type connMetrics struct {
	open    *prometheus.GaugeVec
	refused *prometheus.CounterVec
}

func newConnMetrics(reg prometheus.Registerer) *connMetrics {
	m := &connMetrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "shiplog_ledger_connections_open",
			Help: "Connections open on each listener (http, grpc), as the flood limits count them: until the server has read a closed connection's end.",
		}, []string{"listener"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shiplog_ledger_connections_refused_total",
			Help: "Connections closed as soon as accepted, past max_connections or max_connections_per_client, on each listener (http, grpc).",
		}, []string{"listener"}),
	}
	reg.MustRegister(m.open, m.refused)
	return m
}

// connLimit is a listener that closes, as soon as they are accepted,
// connections beyond max in all or perClient from one client address, so
// that idle connections cannot exhaust the process's file descriptors. A
// connection counts until it is closed: for one the client closed, once
// the server has read its end.
type connLimit struct {
	net.Listener
	max, perClient int
	open           prometheus.Gauge
	refused        prometheus.Counter
	mu             sync.Mutex
	total          int
	byClient       map[string]int
}

func (m *connMetrics) limit(l net.Listener, name string, max, perClient int) net.Listener {
	return &connLimit{Listener: l, max: max, perClient: perClient, byClient: map[string]int{},
		open: m.open.WithLabelValues(name), refused: m.refused.WithLabelValues(name)}
}

func (l *connLimit) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		client := clientOf(c.RemoteAddr().String())
		l.mu.Lock()
		ok := l.total < l.max && l.byClient[client] < l.perClient
		if ok {
			l.total++
			l.byClient[client]++
			l.open.Inc()
		}
		l.mu.Unlock()
		if !ok {
			l.refused.Inc()
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, release: func() { l.release(client) }}, nil
	}
}

func (l *connLimit) release(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	l.open.Dec()
	if l.byClient[client]--; l.byClient[client] <= 0 {
		delete(l.byClient, client)
	}
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// budget caps request bytes in flight (received or about to be), in all
// and per client address (a quarter of the total), so that requests held
// open half-sent cannot exhaust memory. Requests are weighed before their
// body is read: an HTTP request by its Content-Length (MaxBody when it has
// none), a gRPC stream by the largest message it may send. Safe for
// concurrent use.
type budget struct {
	max, perClient int64
	mu             sync.Mutex
	used           int64
	byClient       map[string]int64
}

func newBudget(max int64) *budget {
	return &budget{max: max, perClient: max / 4, byClient: map[string]int64{}}
}

// acquire takes n bytes for client, or reports false without waiting.
func (b *budget) acquire(client string, n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max || b.byClient[client]+n > b.perClient {
		return false
	}
	b.used += n
	b.byClient[client] += n
	return true
}

func (b *budget) release(client string, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	if b.byClient[client] -= n; b.byClient[client] <= 0 {
		delete(b.byClient, client)
	}
}

// wrapHTTP refuses, with 503 and before reading it, a request body that
// would take the bytes in flight past the budget.
func (b *budget) wrapHTTP(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		n := r.ContentLength
		if n < 0 || n > MaxBody {
			n = MaxBody
		}
		client := clientOf(r.RemoteAddr)
		if !b.acquire(client, n) {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Connection", "close")
			text(w, http.StatusServiceUnavailable, "too many requests in flight")
			return
		}
		defer b.release(client, n)
		h.ServeHTTP(w, r)
	})
}

// grpcStreamTimeout bounds one gRPC call from its headers: the longest
// publish wait plus time to send the request.
const grpcStreamTimeout = MaxWait + 30*time.Second

// grpcTap runs when a gRPC stream's headers arrive, before any message is
// read: it applies the per-client rate limit, takes the largest message's
// weight from the budget (released when the stream ends), and bounds the
// stream's life. It must not block: it runs under the transport's lock.
func (n *Node) grpcTap(ctx context.Context, _ *tap.Info) (context.Context, error) {
	addr := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	if !n.limiter.allow(addr) {
		return nil, status.Error(codes.ResourceExhausted, "rate limited")
	}
	client := clientOf(addr)
	if !n.budget.acquire(client, maxGRPCMessage) {
		return nil, status.Error(codes.ResourceExhausted, "too many requests in flight")
	}
	ctx, cancel := context.WithTimeout(ctx, grpcStreamTimeout)
	context.AfterFunc(ctx, func() {
		cancel()
		n.budget.release(client, maxGRPCMessage)
	})
	return ctx, nil
}

// grpcFloodOptions bound connections and streams: streams per connection,
// keepalive (a dead peer is dropped), idle connections closed after two
// minutes, every connection recycled after ten.
func grpcFloodOptions(l floodLimits) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxConcurrentStreams(l.streams),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle:     2 * time.Minute,
			MaxConnectionAge:      10 * time.Minute,
			MaxConnectionAgeGrace: grpcStreamTimeout,
			Time:                  time.Minute,
			Timeout:               20 * time.Second,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 20 * time.Second}),
	}
}

// strictCodec is the proto codec, except that a request that does not
// decode is answered InvalidArgument instead of grpc-go's Internal: the
// failure is recorded against the message and reported by
// checkDecoded, the first interceptor, which every unary call reaches
// right after decoding. Safe for concurrent use.
type strictCodec struct {
	base encoding.CodecV2
	bad  sync.Map // message -> decoding error
}

func newStrictCodec() *strictCodec {
	return &strictCodec{base: encoding.GetCodecV2("proto")}
}

func (c *strictCodec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }
func (c *strictCodec) Name() string                           { return c.base.Name() }

func (c *strictCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if err := c.base.Unmarshal(data, v); err != nil {
		c.bad.Store(v, err)
	}
	return nil
}

// checkDecoded answers InvalidArgument for a request that did not decode.
func (c *strictCodec) checkDecoded(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if _, bad := c.bad.LoadAndDelete(req); bad {
		return nil, status.Error(codes.InvalidArgument, "malformed request: not a valid protobuf message")
	}
	return h(ctx, req)
}
