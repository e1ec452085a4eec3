package update

import (
	"context"
	"errors"
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
	start := time.Now()
	_, err = io.ReadAll(body)
	body.Close()
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("stalled download: err = %v, want ErrStalled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stalled download held the device for %v", d)
	}

	body, err = r.Target(context.Background(), TargetRef{Name: "steady"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(body)
	body.Close()
	if err != nil || string(b) != "abcdefgh" {
		t.Errorf("slow but steady download: %q, %v", b, err)
	}
}
