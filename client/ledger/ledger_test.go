package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/client/update"
)

func TestParseConsistency(t *testing.T) {
	h := base64.StdEncoding.EncodeToString(make([]byte, 32))
	if got, err := ParseConsistency([]byte(h + "\n" + h + "\n")); err != nil || len(got) != 2 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"x\n", h[:10] + "\n", strings.Repeat(h+"\n", 65), base64.StdEncoding.EncodeToString(make([]byte, 31)) + "\n"} {
		if _, err := ParseConsistency([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestClientErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/proof":
			w.Write([]byte(strings.Repeat("x", 200<<10))) // endless proof
		default:
			http.Error(w, "no", http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	c := &Client{URL: srv.URL, HTTP: srv.Client()}
	if _, err := c.ProofByLeaf(context.Background(), [sha256.Size]byte{}); err == nil {
		t.Error("oversized proof accepted")
	}
	if _, err := c.Consistency(context.Background(), 1, 2); !errors.Is(err, update.ErrLedgerRefused) {
		t.Errorf("400: %v", err)
	}
}

func FuzzParseConsistency(f *testing.F) {
	h := base64.StdEncoding.EncodeToString(make([]byte, 32))
	f.Add([]byte(h + "\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := ParseConsistency(b)
		if err == nil && len(hs) > maxConsistencyHashes {
			t.Fatal("too many hashes")
		}
	})
}
