package update

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestAttackSlowRetrieval: a server that sends the start of a target and then
// nothing (TUF's slow retrieval attack) cannot hold the device: the download
// fails with ErrStalled after the stall timeout, while a slow but steady one
// completes.
func TestAttackSlowRetrieval(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "8")
		switch r.URL.Path {
		case "/targets/stall":
			w.Write([]byte("abcd"))
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/targets/steady":
			for _, c := range []byte("abcdefgh") {
				w.Write([]byte{c})
				w.(http.Flusher).Flush()
				time.Sleep(50 * time.Millisecond)
			}
		}
	}))
	defer srv.Close()
	defer close(release)
	r := &HTTPRemote{TargetsURL: srv.URL + "/targets", StallTimeout: 200 * time.Millisecond}

	body, err := r.Target(context.Background(), TargetRef{Name: "stall"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(body)
	body.Close()
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("stalled download: err = %v, want ErrStalled", err)
	}

	// A download with gaps well under its stall timeout completes. The
	// timeout is generous so that a loaded machine's scheduling delays
	// are never mistaken for a stall.
	steady := &HTTPRemote{TargetsURL: srv.URL + "/targets", StallTimeout: time.Minute}
	body, err = steady.Target(context.Background(), TargetRef{Name: "steady"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(body)
	body.Close()
	if err != nil || string(b) != "abcdefgh" {
		t.Errorf("slow but steady download: %q, %v", b, err)
	}
}

// drip serves n bytes, chunk bytes every interval, until the client goes.
func drip(n, chunk int, interval time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(n))
		for sent := 0; sent < n; sent += chunk {
			w.Write(bytes.Repeat([]byte{'x'}, min(chunk, n-sent)))
			w.(http.Flusher).Flush()
			select {
			case <-time.After(interval):
			case <-r.Context().Done():
				return
			}
		}
	}
}

// TestAttackSlowDrip: a mirror that sends a byte now and then stays under
// the stall timeout but cannot hold the device: the download fails with
// ErrTooSlow once a window's average falls below the minimum rate, or at
// the overall deadline derived from the signed length; a download that
// keeps the rate completes. (Small configured windows; nothing timed is
// asserted.)
func TestAttackSlowDrip(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/targets/drip", drip(1024, 1, 100*time.Millisecond))
	mux.Handle("/targets/steady", drip(4096, 64, 20*time.Millisecond))
	mux.Handle("/targets/short-drip", drip(8, 1, 400*time.Millisecond))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	fetch := func(r *HTTPRemote, name string, length int64) ([]byte, error) {
		body, err := r.Target(context.Background(), TargetRef{Name: name, Length: length})
		if err != nil {
			return nil, err
		}
		defer body.Close()
		return io.ReadAll(body)
	}
	// 2 bytes per window against 10 needed; never 1 s without a byte.
	r := &HTTPRemote{TargetsURL: srv.URL + "/targets", StallTimeout: 10 * time.Second, RateWindow: 200 * time.Millisecond, MinRate: 50}
	if _, err := fetch(r, "drip", 1024); !errors.Is(err, ErrTooSlow) {
		t.Errorf("drip below the minimum rate: err = %v, want ErrTooSlow", err)
	}
	if b, err := fetch(r, "steady", 4096); err != nil || len(b) != 4096 {
		t.Errorf("download keeping the rate: %d bytes, %v", len(b), err)
	}
	// A window too long to trip: the deadline (100 ms + 8 bytes at 10
	// bytes/s) ends the 3.2 s drip.
	r = &HTTPRemote{TargetsURL: srv.URL + "/targets", StallTimeout: 10 * time.Second, RateWindow: time.Hour, MinRate: 10, DeadlineSlack: 100 * time.Millisecond}
	if _, err := fetch(r, "short-drip", 8); !errors.Is(err, ErrTooSlow) {
		t.Errorf("drip past the deadline: err = %v, want ErrTooSlow", err)
	}
}
