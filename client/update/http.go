package update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// HTTPRemote reads a repository over HTTP(S): metadata files under
// MetadataURL and target files under TargetsURL (for a shiplog repository
// directory DIR served at URL, URL/metadata and URL/targets).
//
// Every metadata request is bounded by MetadataTimeout (default 30 s) and
// its max size. Target downloads are bounded by the caller's context, the
// target's signed length, and three guards against TUF's slow retrieval
// attack, so that large payloads are not cut off but a server that drips
// cannot hold the device (and its state lock) for hours: StallTimeout (no
// byte for that long fails), MinRate over RateWindow (fewer than
// MinRate×RateWindow bytes in any window fails, once a whole window has
// passed), and an overall deadline of DeadlineSlack + length/MinRate. Each
// fails the download with ErrStalled or ErrTooSlow. A nil Client means
// NewHTTPClient(). It is safe for concurrent use.
type HTTPRemote struct {
	MetadataURL     string
	TargetsURL      string
	Client          *http.Client
	MetadataTimeout time.Duration
	// StallTimeout bounds how long a target download may go without
	// receiving a byte before it fails with ErrStalled; 0 means 30 s.
	StallTimeout time.Duration
	// MinRate is the least average rate, in bytes per second, a target
	// download must keep over every RateWindow; 0 means DefaultMinRate.
	MinRate int64
	// RateWindow is the sliding window MinRate is averaged over; 0 means
	// DefaultRateWindow. It is checked every tenth of a window.
	RateWindow time.Duration
	// DeadlineSlack is added to length/MinRate to give a download's
	// overall deadline; 0 means DefaultDeadlineSlack.
	DeadlineSlack time.Duration
}

// Defaults of HTTPRemote's slow-retrieval guards: a download must average
// at least 1 KiB/s over every minute, and complete within 10 minutes plus
// its signed length at 1 KiB/s (a 100 MiB target: 1 d 5 h at most).
const (
	DefaultMinRate       = 1024
	DefaultRateWindow    = time.Minute
	DefaultDeadlineSlack = 10 * time.Minute
)

// ErrStalled means a download received nothing for longer than the stall
// timeout.
var ErrStalled = errors.New("download stalled")

// ErrTooSlow means a download averaged less than the minimum rate over a
// window, or missed its overall deadline (a slow drip).
var ErrTooSlow = errors.New("download too slow")

// NewHTTPClient returns the HTTP client HTTPRemote uses by default: no
// overall timeout (payloads can be large), but bounded dialing, TLS
// handshakes and time to response headers.
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
	}}
}

func (r *HTTPRemote) client() *http.Client {
	if r.Client != nil {
		return r.Client
	}
	return defaultHTTPClient
}

var defaultHTTPClient = NewHTTPClient()

// Metadata implements Remote.
func (r *HTTPRemote) Metadata(ctx context.Context, name string, max int64) ([]byte, error) {
	timeout := r.MetadataTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := r.get(ctx, join(r.MetadataURL, name))
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, max+1))
	if err != nil {
		return nil, fmt.Errorf("couldn't read %s: %w", name, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", name, ErrTooLarge, max)
	}
	return b, nil
}

// Target implements Remote. The body fails with ErrStalled or ErrTooSlow
// when a guard (see HTTPRemote) trips.
func (r *HTTPRemote) Target(ctx context.Context, ref TargetRef) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	g := newGuard(r.guardLimits(ref.Length), cancel)
	body, err := r.get(ctx, join(r.TargetsURL, ref.Name))
	if err != nil {
		g.stop()
		cancel()
		if gerr := g.failure(); gerr != nil {
			return nil, gerr
		}
		return nil, err
	}
	g.rc = body
	return g, nil
}

// guardLimits are the guards of one download of length bytes.
type guardLimits struct {
	stall, window, deadline time.Duration
	minRate                 int64
}

func (r *HTTPRemote) guardLimits(length int64) guardLimits {
	l := guardLimits{stall: r.StallTimeout, window: r.RateWindow, minRate: r.MinRate}
	if l.stall <= 0 {
		l.stall = 30 * time.Second
	}
	if l.window <= 0 {
		l.window = DefaultRateWindow
	}
	if l.minRate <= 0 {
		l.minRate = DefaultMinRate
	}
	slack := r.DeadlineSlack
	if slack <= 0 {
		slack = DefaultDeadlineSlack
	}
	// length/minRate seconds, capped so that it cannot overflow (about
	// 30 years: no deadline in practice for absurd lengths, which the
	// signed metadata would have to state).
	secs := min(max(length, 0)/l.minRate+1, 1<<30)
	l.deadline = slack + time.Duration(secs)*time.Second
	return l
}

// guard fails a download that stalls, drips below the minimum rate over a
// sliding window, or misses its deadline, by cancelling its context. The
// window is kept as ten slots of bytes received, rotated by a timer.
type guard struct {
	rc     io.ReadCloser
	lim    guardLimits
	cancel context.CancelFunc
	timers [3]*time.Timer // stall, window tick, deadline

	mu     sync.Mutex
	err    error     // the guard that tripped, if any
	slots  [10]int64 // bytes received per tenth of a window
	cur    int
	ticks  int
	closed bool
}

func newGuard(lim guardLimits, cancel context.CancelFunc) *guard {
	g := &guard{lim: lim, cancel: cancel}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.timers[0] = time.AfterFunc(lim.stall, func() {
		g.fail(fmt.Errorf("%w: nothing received for %v", ErrStalled, lim.stall))
	})
	g.timers[1] = time.AfterFunc(lim.window/time.Duration(len(g.slots)), g.tick)
	g.timers[2] = time.AfterFunc(lim.deadline, func() {
		g.fail(fmt.Errorf("%w: not complete within %v (its length at %d bytes/s, plus slack)", ErrTooSlow, lim.deadline, lim.minRate))
	})
	return g
}

// tick closes the current slot: once a whole window has passed, the bytes
// of the last window must reach minRate×window.
func (g *guard) tick() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.err != nil {
		return
	}
	g.ticks++
	if g.ticks >= len(g.slots) {
		var sum int64
		for _, n := range g.slots {
			sum += n
		}
		if want := int64(float64(g.lim.minRate) * g.lim.window.Seconds()); sum < want {
			g.failLocked(fmt.Errorf("%w: %d bytes in the last %v, less than %d bytes/s", ErrTooSlow, sum, g.lim.window, g.lim.minRate))
			return
		}
	}
	g.cur = (g.cur + 1) % len(g.slots)
	g.slots[g.cur] = 0
	g.timers[1].Reset(g.lim.window / time.Duration(len(g.slots)))
}

func (g *guard) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failLocked(err)
}

func (g *guard) failLocked(err error) {
	if g.err == nil && !g.closed {
		g.err = err
		g.cancel()
	}
}

func (g *guard) failure() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

func (g *guard) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for _, t := range g.timers {
		t.Stop()
	}
}

func (g *guard) Read(p []byte) (int, error) {
	n, err := g.rc.Read(p)
	g.mu.Lock()
	if n > 0 && g.err == nil {
		g.slots[g.cur] += int64(n)
		g.timers[0].Reset(g.lim.stall)
	}
	gerr := g.err
	g.mu.Unlock()
	if err != nil && err != io.EOF && gerr != nil {
		return n, gerr
	}
	return n, err
}

func (g *guard) Close() error {
	g.stop()
	g.cancel()
	return g.rc.Close()
}

func (r *HTTPRemote) get(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.client().Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp.Body, nil
	}
	resp.Body.Close()
	return nil, &StatusError{URL: url, Code: resp.StatusCode}
}

// StatusError is an HTTP answer other than 200 OK. It names the status the
// server gave, so that a file the web server may not read (403) is not
// reported as a file that does not exist. It matches ErrNotFound for 404
// and 403, since static hosts (S3, GCS) answer 403 for a missing object.
type StatusError struct {
	URL  string
	Code int
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("GET %s: %d %s", e.URL, e.Code, http.StatusText(e.Code))
	if e.Code == http.StatusForbidden {
		msg += " (the server refuses to serve it: a missing object on some static hosts, otherwise a file the web server may not read: check its permissions)"
	}
	return msg
}

// Is reports whether the status means the file is not there.
func (e *StatusError) Is(target error) bool {
	return target == ErrNotFound && (e.Code == http.StatusNotFound || e.Code == http.StatusForbidden)
}

func join(base, name string) string {
	return strings.TrimSuffix(base, "/") + "/" + name
}
