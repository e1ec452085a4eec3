// Package challenge proves control of a repository id that is a DNS name
// before the ledger registers it, as ACME's http-01 challenge proves control
// of a domain (RFC 8555 §8.3), but over HTTPS only.
//
// A repository id whose first path segment is a DNS name (for example
// "example.com/firmware": host "example.com") may be registered without the
// operator's token: the ledger issues a random token T bound to the id and
// the SHA-256 of the root.json to register, the vendor serves
//
//	https://example.com/.well-known/shiplog-challenge/T
//
// with the body (its key authorization, one line, a final newline allowed)
//
//	T.<lowercase hex SHA-256 of root.json>
//
// and the ledger fetches it over TLS (certificate verified for the host,
// port 443, no redirects, at most 1 KiB, 10 s) and registers the id with
// that root only if it matches. Binding the root's hash means that someone
// who sees the challenge cannot register another root with it.
//
// The fetch is the ledger reaching out to a name chosen by whoever asks,
// so it is guarded against server-side request forgery: only DNS names
// (no IP literals, no single-label or ".localhost"/".local"/".internal"
// names), only https on port 443, and every address the name resolves to
// is checked when the connection is made (so DNS rebinding cannot slip a
// private address in between): loopback, private (RFC 1918, RFC 4193),
// link-local, CGNAT, multicast, unspecified and other non-global
// addresses are refused unless listed in Fetcher.AllowedNets.
package challenge

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Path is the URL path prefix a challenge is served under.
const Path = "/.well-known/shiplog-challenge/"

// Limits.
const (
	// TTL is how long an issued challenge can be completed.
	TTL = 10 * time.Minute
	// MaxPending bounds the challenges held at once; past it, new ones are
	// refused until some expire or complete.
	MaxPending = 1024
	// maxBody caps the fetched key authorization.
	maxBody = 1024
	// fetchTimeout bounds one fetch, from dialing to the last byte.
	fetchTimeout = 10 * time.Second
)

// Errors callers branch on.
var (
	// ErrNotDNSName means the id's first segment is not a public DNS name:
	// such ids are registered with an operator token only.
	ErrNotDNSName = errors.New("repository id does not start with a DNS name")
	// ErrUnknown means no pending challenge has this token (never issued,
	// expired, completed, or for another id or root).
	ErrUnknown = errors.New("unknown or expired challenge")
	// ErrTooMany means MaxPending challenges are pending.
	ErrTooMany = errors.New("too many pending challenges")
	// ErrFailed means the fetched key authorization was missing or wrong.
	ErrFailed = errors.New("challenge not met")
)

// Host returns the DNS name an id proves control with: its first path
// segment, if that is a syntactically valid, fully qualified public-looking
// DNS name (at least two labels of letters, digits and hyphens, 1-63
// characters each, not starting or ending with a hyphen, at most 253 in
// all, lower case, a top-level label that is not all digits and not one of
// localhost, local, internal, arpa, invalid, test, example), else
// ErrNotDNSName.
func Host(id string) (string, error) {
	host, _, _ := strings.Cut(id, "/")
	if len(host) == 0 || len(host) > 253 || host != strings.ToLower(host) {
		return "", ErrNotDNSName
	}
	labels := strings.Split(host, ".")
	if len(labels) < 2 {
		return "", ErrNotDNSName
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", ErrNotDNSName
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", ErrNotDNSName
			}
		}
	}
	tld := labels[len(labels)-1]
	if strings.Trim(tld, "0123456789") == "" {
		return "", ErrNotDNSName // an IPv4 literal or a numeric TLD
	}
	switch tld {
	case "localhost", "local", "internal", "arpa", "invalid", "test", "example", "home", "lan", "corp":
		return "", ErrNotDNSName
	}
	return host, nil
}

// KeyAuthorization is the body the vendor serves for token and root.
func KeyAuthorization(token string, root []byte) string {
	sum := sha256.Sum256(root)
	return token + "." + hex.EncodeToString(sum[:])
}

// Challenge is one issued challenge.
type Challenge struct {
	Token string `json:"token"`
	// URL is where the ledger will fetch the key authorization.
	URL string `json:"url"`
	// KeyAuthorization is the exact body to serve there.
	KeyAuthorization string `json:"key_authorization"`
	// Expires is when the challenge can no longer be completed.
	Expires time.Time `json:"expires"`
}

type pending struct {
	id      string
	root    [32]byte
	expires time.Time
}

// Pending holds issued challenges in memory (a restart forgets them: ask
// again). Safe for concurrent use.
type Pending struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	mu  sync.Mutex
	m   map[string]pending
}

func (p *Pending) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Issue returns a new challenge for registering id with root, or
// ErrNotDNSName or ErrTooMany.
func (p *Pending) Issue(id string, root []byte) (*Challenge, error) {
	host, err := Host(id)
	if err != nil {
		return nil, err
	}
	var b [32]byte
	rand.Read(b[:])
	token := base64.RawURLEncoding.EncodeToString(b[:])
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]pending{}
	}
	for t, c := range p.m {
		if !now.Before(c.expires) {
			delete(p.m, t)
		}
	}
	if len(p.m) >= MaxPending {
		return nil, ErrTooMany
	}
	p.m[token] = pending{id: id, root: sha256.Sum256(root), expires: now.Add(TTL)}
	return &Challenge{Token: token, URL: "https://" + host + Path + token, KeyAuthorization: KeyAuthorization(token, root), Expires: now.Add(TTL)}, nil
}

// Take removes and returns the pending challenge token if it was issued
// for id and root and has not expired, else ErrUnknown. A challenge is
// completed once: a failed fetch needs a new challenge.
func (p *Pending) Take(token, id string, root []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.m[token]
	if !ok || c.id != id || c.root != sha256.Sum256(root) || !p.now().Before(c.expires) {
		return ErrUnknown
	}
	delete(p.m, token)
	return nil
}

// Fetcher fetches key authorizations. The zero value trusts the system's
// roots and refuses every non-global address.
type Fetcher struct {
	// Roots, if not nil, replaces the system's trusted CA certificates.
	Roots *x509.CertPool
	// AllowedNets are address ranges the fetch may connect to although
	// they are not global (for a ledger whose vendors are on a private
	// network, or a test on 127.0.0.1).
	AllowedNets []netip.Prefix
	// Hosts maps a DNS name to the "host:port" to connect to instead of
	// resolving it on port 443 (split-horizon setups and tests); the
	// address is still checked against AllowedNets and the certificate
	// against the name.
	Hosts map[string]string
}

// Check fetches https://host/.well-known/shiplog-challenge/token for id's
// host and compares it with KeyAuthorization(token, root); ErrFailed (with
// the reason) if it does not match or cannot be fetched.
func (f *Fetcher) Check(ctx context.Context, id, token string, root []byte) error {
	host, err := Host(id)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	body, err := f.fetch(ctx, host, token)
	if err != nil {
		return fmt.Errorf("%w: couldn't fetch https://%s%s%s: %v", ErrFailed, host, Path, token, err)
	}
	if strings.TrimSuffix(string(body), "\n") != KeyAuthorization(token, root) {
		return fmt.Errorf("%w: https://%s%s%s does not hold the key authorization for this root", ErrFailed, host, Path, token)
	}
	return nil
}

func (f *Fetcher) fetch(ctx context.Context, host, token string) ([]byte, error) {
	dialer := &net.Dialer{Timeout: fetchTimeout, Control: f.control}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if a, ok := f.Hosts[host]; ok {
				addr = a
			}
			return dialer.DialContext(ctx, network, addr)
		},
		TLSClientConfig:       &tls.Config{RootCAs: f.Roots, ServerName: host, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   fetchTimeout,
		ResponseHeaderTimeout: fetchTimeout,
		DisableKeepAlives:     true,
		Proxy:                 nil, // never through a proxy: the address check must see the real peer
	}
	client := &http.Client{Transport: tr, Timeout: fetchTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return errors.New("redirects are not followed") }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+Path+token, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("larger than %d bytes", maxBody)
	}
	return b, nil
}

// control refuses, at connect time, an address that is not global unless
// it is in AllowedNets.
func (f *Fetcher) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refusing to connect to %q: %w", address, err)
	}
	return f.allowed(ap.Addr().Unmap())
}

func (f *Fetcher) allowed(a netip.Addr) error {
	for _, p := range f.AllowedNets {
		if p.Contains(a) {
			return nil
		}
	}
	if !Global(a) {
		return fmt.Errorf("refusing to connect to %v: not a global address", a)
	}
	return nil
}

var nonGlobal = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // CGNAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 could reach private IPv4
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"), // 6to4 embeds IPv4
}

// Global reports whether a is a global unicast address: not loopback,
// private, link-local, multicast, unspecified, CGNAT, documentation,
// benchmarking, reserved, or an IPv6 prefix that embeds IPv4.
func Global(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() {
		return false
	}
	for _, p := range nonGlobal {
		if p.Contains(a) {
			return false
		}
	}
	return true
}
