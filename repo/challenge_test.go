package repo

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/log/server"
	"github.com/shiplog/shiplog/repo/keys"
)

// challengeLedger starts the real ledger trusting the certificate of site
// (an HTTPS server on 127.0.0.1) for the host example.com, which the
// fixture's repository id (example.com/fw) starts with.
func challengeLedger(t *testing.T, site *httptest.Server) ledgerEndpoint {
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: site.Certificate().Raw})
	return realLedgerWith(t, server.Config{
		ChallengeCAFile:      "vendor-ca.pem",
		ChallengeHosts:       map[string]string{"example.com": strings.TrimPrefix(site.URL, "https://")},
		ChallengeAllowedNets: []string{"127.0.0.1/32"},
	}, map[string][]byte{"vendor-ca.pem": ca})
}

// TestRegisterByProofOfControl: a vendor with no operator token registers
// example.com/fw by serving the ledger's challenge from the web root of
// example.com, and the challenge file is gone afterwards.
func TestRegisterByProofOfControl(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real ledger")
	}
	webRoot := t.TempDir()
	site := httptest.NewTLSServer(http.FileServer(http.Dir(webRoot)))
	defer site.Close()
	f := newRepoOn(t, keys.Ed25519, challengeLedger(t, site))
	f.sign(f.keys["root"], "root")
	o := f.opts(false)
	o.Token, o.ChallengeDir = "", webRoot
	le, err := Register(context.Background(), f.dir, o)
	if err != nil {
		t.Fatalf("register by proof of control: %v", err)
	}
	if le.Version != 1 || le.Role != "root" {
		t.Errorf("registered %+v, want root v1", le)
	}
	left, err := os.ReadDir(filepath.Join(webRoot, ".well-known", "shiplog-challenge"))
	if err != nil || len(left) != 0 {
		t.Errorf("challenge files left in the web root: %v, %v", left, err)
	}
}

// TestAttackRegisterWithoutControllingTheHost: a challenge written where
// the id's host does not serve it registers nothing.
func TestAttackRegisterWithoutControllingTheHost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real ledger")
	}
	served := t.TempDir()
	site := httptest.NewTLSServer(http.FileServer(http.Dir(served)))
	defer site.Close()
	f := newRepoOn(t, keys.Ed25519, challengeLedger(t, site))
	f.sign(f.keys["root"], "root")
	o := f.opts(false)
	o.Token, o.ChallengeDir = "", t.TempDir() // not what example.com serves
	_, err := Register(context.Background(), f.dir, o)
	var le *LedgerError
	if !errors.As(err, &le) || le.Status != http.StatusForbidden {
		t.Fatalf("register with an unserved challenge: %v, want the ledger's 403", err)
	}
	r := f.open()
	defer r.Close()
	if r.root != nil {
		t.Error("a refused registration committed root v1")
	}
}

// FuzzParseChallenge: the ledger's challenge answer is parsed strictly and
// never yields a token that could name a path outside the challenge
// directory.
func FuzzParseChallenge(f *testing.F) {
	f.Add([]byte(`{"token":"AAAAAAAAAAAAAAAAAAAAAA","url":"https://example.com/.well-known/shiplog-challenge/AAAAAAAAAAAAAAAAAAAAAA","key_authorization":"AAAAAAAAAAAAAAAAAAAAAA.00","expires":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"token":"../x","url":"https://e/.well-known/shiplog-challenge/../x","key_authorization":"../x.0","expires":"2026-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ch, err := parseChallenge(b)
		if err != nil {
			return
		}
		if filepath.Base(ch.Token) != ch.Token || strings.ContainsAny(ch.Token, "/\\.") {
			t.Fatalf("token %q names a path", ch.Token)
		}
	})
}
