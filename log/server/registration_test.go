package server_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/shiplog/shiplog/log/challenge"
	"github.com/shiplog/shiplog/log/server"
	ledgerv1 "github.com/shiplog/shiplog/proto/ledger/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// vendorSite is a vendor's HTTPS site on 127.0.0.1 (certificate for
// example.com from a test CA) serving the challenges it is given.
type vendorSite struct {
	srv    *httptest.Server
	mu     sync.Mutex
	served map[string]string // token -> body
}

func newVendorSite(t *testing.T) *vendorSite {
	v := &vendorSite{served: map[string]string{}}
	v.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		body, ok := v.served[strings.TrimPrefix(r.URL.Path, challenge.Path)]
		v.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(body))
	}))
	t.Cleanup(v.srv.Close)
	return v
}

func (v *vendorSite) serve(token, body string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.served[token] = body
}

// challengeNode is a ledger that trusts the vendor site's CA, resolves
// example.com to it, and may connect to 127.0.0.1 when allowLoopback.
func challengeNode(t *testing.T, v *vendorSite, allowLoopback bool) *testNode {
	dir := t.TempDir()
	ca := filepath.Join(dir, "vendor-ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: v.srv.Certificate().Raw}), 0o644)
	cfg := server.Config{ChallengeCAFile: ca, ChallengeHosts: map[string]string{"example.com": strings.TrimPrefix(v.srv.URL, "https://")}}
	if allowLoopback {
		cfg.ChallengeAllowedNets = []string{"127.0.0.1/32"}
	}
	return startNode(t, nodeOptions{config: cfg})
}

func (n *testNode) askChallenge(id string, root []byte) (challenge.Challenge, response) {
	n.t.Helper()
	r := n.do("POST", "/v1/registrations/challenge?id="+url.QueryEscape(id), root)
	var c challenge.Challenge
	if r.code == 200 {
		if err := json.Unmarshal(r.body, &c); err != nil {
			n.t.Fatal(err)
		}
	}
	return c, r
}

func (n *testNode) completeChallenge(id, token string, root []byte) response {
	n.t.Helper()
	return n.do("POST", "/v1/registrations?wait=0&id="+url.QueryEscape(id)+"&token="+url.QueryEscape(token), root)
}

// TestRegistrationByChallengeHTTP: a vendor that controls example.com
// registers example.com/firmware without any operator token, by serving
// the challenge over HTTPS; then it publishes.
func TestRegistrationByChallengeHTTP(t *testing.T) {
	v := newVendorSite(t)
	n := challengeNode(t, v, true)
	repo := kit.NewRandomRepo(expires)
	const id = "example.com/firmware"
	c, r := n.askChallenge(id, repo.RootBytes())
	if r.code != 200 || c.URL != "https://example.com/.well-known/shiplog-challenge/"+c.Token {
		t.Fatalf("challenge: %d %s", r.code, r.body)
	}
	v.serve(c.Token, c.KeyAuthorization+"\n")
	if r := n.completeChallenge(id, c.Token, repo.RootBytes()); r.code != 200 {
		t.Fatalf("registration: %d %s", r.code, r.body)
	}
	if _, r := n.publish(id, "targets", repo.Targets(1), "0"); r.code != 200 {
		t.Fatalf("publish after registration: %d %s", r.code, r.body)
	}
	// The token was used up.
	if r := n.completeChallenge(id, c.Token, repo.RootBytes()); r.code != 404 {
		t.Errorf("replayed challenge: %d %s", r.code, r.body)
	}
}

// TestRegistrationByChallengeGRPC: the same over gRPC, and the operator
// token in metadata for an id that is not a DNS name.
func TestRegistrationByChallengeGRPC(t *testing.T) {
	v := newVendorSite(t)
	n := challengeNode(t, v, true)
	repo := kit.NewRandomRepo(expires)
	ctx := context.Background()
	c, err := n.grpc.RegisterChallenge(ctx, &ledgerv1.RegisterChallengeRequest{Repo: "example.com/fw", Root: repo.RootBytes()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.grpc.Register(ctx, &ledgerv1.RegisterRequest{Repo: "example.com/fw", Root: repo.RootBytes(), ChallengeToken: c.Token}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("challenge not served: %v, want PermissionDenied", err)
	}
	c, _ = n.grpc.RegisterChallenge(ctx, &ledgerv1.RegisterChallengeRequest{Repo: "example.com/fw", Root: repo.RootBytes()})
	v.serve(c.Token, c.KeyAuthorization)
	if _, err := n.grpc.Register(ctx, &ledgerv1.RegisterRequest{Repo: "example.com/fw", Root: repo.RootBytes(), ChallengeToken: c.Token, WaitMs: new(uint32)}); err != nil {
		t.Fatalf("registration: %v", err)
	}
	if _, err := n.grpc.RegisterChallenge(ctx, &ledgerv1.RegisterChallengeRequest{Repo: "firmware", Root: repo.RootBytes()}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("challenge for an id that is not a DNS name: %v", err)
	}
	if _, err := n.grpc.Register(ctx, &ledgerv1.RegisterRequest{Repo: "firmware", Root: repo.RootBytes()}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no token: %v, want Unauthenticated", err)
	}
	octx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+n.token)
	if _, err := n.grpc.Register(octx, &ledgerv1.RegisterRequest{Repo: "firmware", Root: repo.RootBytes(), WaitMs: new(uint32)}); err != nil {
		t.Errorf("operator token: %v", err)
	}
}

// TestAttackRepositoryIdClaimedWithoutControl: someone who does not control
// example.com cannot register example.com/firmware: the challenge is not
// served, or served for another root (the key authorization binds the
// root's hash), or a token issued for another id or root is replayed; the
// ledger never fetches from a private address it was not configured to
// reach (server-side request forgery).
func TestAttackRepositoryIdClaimedWithoutControl(t *testing.T) {
	v := newVendorSite(t)
	n := challengeNode(t, v, true)
	vendor, attacker := kit.NewRandomRepo(expires), kit.NewRandomRepo(expires)
	const id = "example.com/firmware"
	c, _ := n.askChallenge(id, attacker.RootBytes())
	if r := n.completeChallenge(id, c.Token, attacker.RootBytes()); r.code != 403 {
		t.Errorf("challenge not served: %d %s", r.code, r.body)
	}
	// The vendor's genuine challenge is served; the attacker presents it
	// with its own root.
	c, _ = n.askChallenge(id, vendor.RootBytes())
	v.serve(c.Token, c.KeyAuthorization)
	if r := n.completeChallenge(id, c.Token, attacker.RootBytes()); r.code != 404 {
		t.Errorf("vendor's token with the attacker's root: %d %s", r.code, r.body)
	}
	if r := n.completeChallenge("example.com/other", c.Token, vendor.RootBytes()); r.code != 404 {
		t.Errorf("vendor's token for another id: %d %s", r.code, r.body)
	}
	if r := n.do("GET", "/v1/repositories/"+url.PathEscape(id)+"/roles/root", nil); r.code != 404 {
		t.Errorf("the id was registered: %d %s", r.code, r.body)
	}
	// Without challenge_allowed_nets, 127.0.0.1 is never fetched from.
	strict := challengeNode(t, v, false)
	c, _ = strict.askChallenge(id, vendor.RootBytes())
	v.serve(c.Token, c.KeyAuthorization)
	if r := strict.completeChallenge(id, c.Token, vendor.RootBytes()); r.code != 403 || !strings.Contains(string(r.body), "not a global address") {
		t.Errorf("fetch from loopback without configuration: %d %s", r.code, r.body)
	}
}

// TestScopedOperatorTokens: admin.tokens gives tokens limited to id
// prefixes; both token files are read on every registration, so replacing
// them rotates tokens without a restart.
func TestScopedOperatorTokens(t *testing.T) {
	n := startNode(t, nodeOptions{})
	scoped := strings.Repeat("s", 40)
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(n.dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(server.ScopedTokensFile, "# vendor A\nvendor-a/ "+scoped+"\n")
	reg := func(id, token string) int {
		return n.do("POST", "/v1/admin/repositories?wait=0&id="+id, kit.NewRandomRepo(expires).RootBytes(), "Authorization", "Bearer "+token).code
	}
	if code := reg("vendor-a/fw", scoped); code != 200 {
		t.Errorf("scoped token in its prefix: %d", code)
	}
	if code := reg("vendor-b/fw", scoped); code != 401 {
		t.Errorf("scoped token outside its prefix: %d", code)
	}
	if code := reg("vendor-b/fw", n.token); code != 200 {
		t.Errorf("operator token: %d", code)
	}
	rotated := strings.Repeat("r", 40)
	write(server.TokenFile, rotated+"\n")
	write(server.ScopedTokensFile, "")
	if code := reg("vendor-c/fw", n.token); code != 401 {
		t.Errorf("old operator token after rotation: %d", code)
	}
	if code := reg("vendor-a/fw2", scoped); code != 401 {
		t.Errorf("removed scoped token: %d", code)
	}
	if code := reg("vendor-c/fw", rotated); code != 200 {
		t.Errorf("rotated operator token: %d", code)
	}
}
