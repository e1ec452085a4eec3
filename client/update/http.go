package update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// HTTPRemote reads a repository over HTTP(S): metadata files under
// MetadataURL and target files under TargetsURL (for a shiplog repository
// directory DIR served at URL, URL/metadata and URL/targets).
//
// Every metadata request is bounded by MetadataTimeout (default 30 s) and
// its max size; target downloads are bounded by the caller's context, the
// target length and StallTimeout (no byte for that long fails the download),
// so that large payloads are not cut off but a stalled server is. A nil Client
// means NewHTTPClient(). It is safe for concurrent use.
type HTTPRemote struct {
	MetadataURL     string
	TargetsURL      string
	Client          *http.Client
	MetadataTimeout time.Duration
	// StallTimeout bounds how long a target download may go without
	// receiving a byte before it fails with ErrStalled (TUF's slow
	// retrieval attack); 0 means 30 s. A payload's total size is bounded by
	// its signed length, so a server cannot keep a device busy forever.
	StallTimeout time.Duration
}

// ErrStalled means a download received nothing for longer than the stall
// timeout.
var ErrStalled = errors.New("download stalled")

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

// Target implements Remote. The body fails with ErrStalled when no byte
// arrives for StallTimeout.
func (r *HTTPRemote) Target(ctx context.Context, ref TargetRef) (io.ReadCloser, error) {
	stall := r.StallTimeout
	if stall <= 0 {
		stall = 30 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	g := &stallGuard{stall: stall, cancel: cancel}
	g.timer = time.AfterFunc(stall, g.fire)
	body, err := r.get(ctx, join(r.TargetsURL, ref.Name))
	if err != nil {
		g.timer.Stop()
		cancel()
		if g.stalled.Load() {
			return nil, ErrStalled
		}
		return nil, err
	}
	g.rc = body
	return g, nil
}

// stallGuard cancels a download whose body yields nothing for too long.
type stallGuard struct {
	rc      io.ReadCloser
	stall   time.Duration
	timer   *time.Timer
	cancel  context.CancelFunc
	stalled atomic.Bool
}

func (g *stallGuard) fire() {
	g.stalled.Store(true)
	g.cancel()
}

func (g *stallGuard) Read(p []byte) (int, error) {
	n, err := g.rc.Read(p)
	if n > 0 && !g.stalled.Load() {
		g.timer.Reset(g.stall)
	}
	if err != nil && err != io.EOF && g.stalled.Load() {
		return n, fmt.Errorf("%w: nothing received for %v", ErrStalled, g.stall)
	}
	return n, err
}

func (g *stallGuard) Close() error {
	g.timer.Stop()
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
