package challenge

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestHost(t *testing.T) {
	for id, want := range map[string]string{
		"example.com/firmware":      "example.com",
		"fw.vendor.co.uk/a/b":       "fw.vendor.co.uk",
		"xn--bcher-kva.example.org": "xn--bcher-kva.example.org",
		"example.com":               "example.com",
	} {
		if got, err := Host(id); err != nil || got != want {
			t.Errorf("Host(%q) = %q, %v; want %q", id, got, err, want)
		}
	}
	for _, id := range []string{
		"", "firmware", "localhost/x", "intranet/x", "127.0.0.1/x", "10.0.0.1/x", "[::1]/x", "Example.com/x",
		"a..b/x", "-a.com/x", "a-.com/x", "a.localhost/x", "printer.local/x", "db.internal/x", "a.test/x",
		"1.2.3.4.in-addr.arpa/x", "a_b.com/x", "a.com:8443/x", "user@a.com/x", strings.Repeat("a", 64) + ".com/x",
	} {
		if _, err := Host(id); !errors.Is(err, ErrNotDNSName) {
			t.Errorf("Host(%q): %v, want ErrNotDNSName", id, err)
		}
	}
}

func FuzzHost(f *testing.F) {
	f.Add("example.com/firmware")
	f.Add("127.0.0.1/x")
	f.Fuzz(func(t *testing.T, id string) {
		h, err := Host(id)
		if err != nil {
			return
		}
		if !strings.HasPrefix(id, h) || strings.ContainsAny(h, "/:@[] ") {
			t.Fatalf("Host(%q) = %q", id, h)
		}
		if _, err := netip.ParseAddr(h); err == nil {
			t.Fatalf("Host(%q) accepted an IP literal", id)
		}
	})
}

func TestGlobal(t *testing.T) {
	for s, want := range map[string]bool{
		"8.8.8.8": true, "2606:4700::1111": true,
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false, "169.254.169.254": false,
		"100.64.0.1": false, "0.0.0.0": false, "::1": false, "fd00::1": false, "fe80::1": false, "::ffff:127.0.0.1": false,
		"224.0.0.1": false, "64:ff9b::a00:1": false, "2002:a00:1::": false, "255.255.255.255": false,
	} {
		if got := Global(netip.MustParseAddr(s)); got != want {
			t.Errorf("Global(%s) = %v, want %v", s, got, want)
		}
	}
}

func TestPending(t *testing.T) {
	now := time.Unix(1e9, 0)
	p := &Pending{Now: func() time.Time { return now }}
	root := []byte(`{"signed":{}}`)
	c, err := p.Issue("example.com/fw", root)
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "https://example.com"+Path+c.Token || c.KeyAuthorization != KeyAuthorization(c.Token, root) {
		t.Errorf("challenge %+v", c)
	}
	if err := p.Take(c.Token, "example.com/fw", []byte("other root")); !errors.Is(err, ErrUnknown) {
		t.Errorf("another root: %v", err)
	}
	if err := p.Take(c.Token, "example.com/other", root); !errors.Is(err, ErrUnknown) {
		t.Errorf("another id: %v", err)
	}
	if err := p.Take(c.Token, "example.com/fw", root); err != nil {
		t.Errorf("take: %v", err)
	}
	if err := p.Take(c.Token, "example.com/fw", root); !errors.Is(err, ErrUnknown) {
		t.Errorf("second take: %v", err)
	}
	c, _ = p.Issue("example.com/fw", root)
	now = now.Add(TTL)
	if err := p.Take(c.Token, "example.com/fw", root); !errors.Is(err, ErrUnknown) {
		t.Errorf("expired: %v", err)
	}
	if _, err := p.Issue("firmware", root); !errors.Is(err, ErrNotDNSName) {
		t.Errorf("not a DNS name: %v", err)
	}
	for i := 0; i < MaxPending; i++ {
		if _, err := p.Issue("example.com/fw", root); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Issue("example.com/fw", root); !errors.Is(err, ErrTooMany) {
		t.Errorf("past MaxPending: %v", err)
	}
}

// TestAttackChallengeSSRF: the fetch never reaches a non-global address
// unless configured, follows no redirect, and checks the certificate and
// the body.
func TestAttackChallengeSSRF(t *testing.T) {
	root := []byte("root")
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := strings.TrimPrefix(r.URL.Path, Path)
		switch token {
		case "redirect":
			http.Redirect(w, r, "https://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "big":
			w.Write([]byte(strings.Repeat("x", 4096)))
		default:
			w.Write([]byte(KeyAuthorization(token, root) + "\n"))
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	allowed := &Fetcher{Roots: roots, Hosts: map[string]string{"example.com": addr}, AllowedNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	ctx := context.Background()
	if err := allowed.Check(ctx, "example.com/fw", "good", root); err != nil {
		t.Fatalf("served key authorization: %v", err)
	}
	for name, tc := range map[string]struct {
		f            *Fetcher
		token        string
		root         []byte
		wantInReason string
	}{
		"loopback without allowed nets": {&Fetcher{Roots: roots, Hosts: allowed.Hosts}, "good", root, "not a global address"},
		"untrusted certificate":         {&Fetcher{Hosts: allowed.Hosts, AllowedNets: allowed.AllowedNets}, "good", root, "certificate"},
		"redirect":                      {allowed, "redirect", root, "redirect"},
		"too large":                     {allowed, "big", root, "larger"},
		"other root":                    {allowed, "good", []byte("other"), "does not hold"},
	} {
		err := tc.f.Check(ctx, "example.com/fw", tc.token, tc.root)
		if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), tc.wantInReason) {
			t.Errorf("%s: %v, want ErrFailed with %q", name, err, tc.wantInReason)
		}
	}
	if err := allowed.Check(ctx, "127.0.0.1/fw", "good", root); !errors.Is(err, ErrNotDNSName) {
		t.Errorf("IP literal id: %v", err)
	}
}
