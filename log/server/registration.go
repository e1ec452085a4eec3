package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	ledger "github.com/shiplog/shiplog/log"
	"github.com/shiplog/shiplog/log/challenge"
)

// ScopedTokensFile holds operator tokens limited to repository id
// prefixes, one "<id prefix> <token>" per line ('#' starts a comment).
// Like TokenFile (all ids), it is read on every registration, so replacing
// either file rotates tokens without a restart.
const ScopedTokensFile = "admin.tokens"

// minTokenLength is the shortest token accepted from either file.
const minTokenLength = 32

// tokenAllows reports whether bearer is an operator token for id: the
// token of TokenFile (every id) or a token of ScopedTokensFile whose prefix
// starts id. Tokens shorter than 32 characters never match.
func (n *Node) tokenAllows(bearer, id string) bool {
	if len(bearer) < minTokenLength {
		return false
	}
	match := func(t string) bool { return subtle.ConstantTimeCompare([]byte(bearer), []byte(t)) == 1 }
	if t, err := readLine(filepath.Join(n.dir, TokenFile)); err == nil && len(t) >= minTokenLength && match(t) {
		return true
	}
	b, err := readLimited(filepath.Join(n.dir, ScopedTokensFile), 1<<20)
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		prefix, token, ok := strings.Cut(line, " ")
		token = strings.TrimSpace(token)
		if !ok || strings.HasPrefix(line, "#") || len(token) < minTokenLength {
			continue
		}
		if strings.HasPrefix(id, prefix) && match(token) {
			return true
		}
	}
	return false
}

// newFetcher builds the challenge fetcher from the config.
func newFetcher(dir string, cfg *Config) (*challenge.Fetcher, error) {
	f := &challenge.Fetcher{Hosts: cfg.ChallengeHosts}
	if cfg.ChallengeCAFile != "" {
		path := cfg.ChallengeCAFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("challenge_ca_file: %w", err)
		}
		f.Roots = x509.NewCertPool()
		if !f.Roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("challenge_ca_file %s: no PEM certificate", path)
		}
	}
	for _, s := range cfg.ChallengeAllowedNets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("challenge_allowed_nets: %w", err)
		}
		f.AllowedNets = append(f.AllowedNets, p)
	}
	return f, nil
}

// registrationStatus maps a registration error to its HTTP status: the
// challenge's errors here, the ledger's through ledger.HTTPStatus.
func registrationStatus(err error) int {
	switch {
	case errors.Is(err, challenge.ErrNotDNSName):
		return http.StatusBadRequest
	case errors.Is(err, challenge.ErrUnknown):
		return http.StatusNotFound
	case errors.Is(err, challenge.ErrFailed):
		return http.StatusForbidden
	case errors.Is(err, challenge.ErrTooMany):
		return http.StatusServiceUnavailable
	}
	return ledger.HTTPStatus(err)
}

// issueChallenge issues a challenge for registering id with root.
func (n *Node) issueChallenge(id string, root []byte) (*challenge.Challenge, error) {
	if len(root) == 0 {
		return nil, badRequest("the body must be the root.json to register")
	}
	return n.pending.Issue(id, root)
}

// registerWithChallenge completes a challenge: the token must have been
// issued for this id and root, the host must serve its key authorization
// over HTTPS, and then the id is registered as with the operator token.
func (n *Node) registerWithChallenge(ctx context.Context, id, token string, root []byte, wait time.Duration) (*ledger.Receipt, error) {
	if err := n.pending.Take(token, id, root); err != nil {
		return nil, err
	}
	if err := n.fetcher.Check(ctx, id, token, root); err != nil {
		n.log.Warn("registration challenge failed", "repo", id, "err", err)
		return nil, err
	}
	rc, err := n.ledger.Register(ctx, id, root, wait)
	if err == nil {
		n.log.Info("repository registered by challenge", "repo", id, "index", rc.Index, "duplicate", rc.Duplicate)
	}
	return rc, err
}

// failRegistration writes a registration error (registrationStatus).
func (n *Node) failRegistration(w http.ResponseWriter, r *http.Request, err error) {
	if code := registrationStatus(err); code != ledger.HTTPStatus(err) {
		text(w, code, err.Error())
		return
	}
	n.fail(w, r, err)
}

// postChallenge: POST /v1/registrations/challenge?id=ID, body root.json.
func (n *Node) postChallenge(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	c, err := n.issueChallenge(r.URL.Query().Get("id"), body)
	if err != nil {
		n.failRegistration(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(c)
}

// postRegistration: POST /v1/registrations?id=ID&token=T[&wait=], body
// root.json.
func (n *Node) postRegistration(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	wait, err := parseWait(q, DefaultWait)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	body, err := readBody(r)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	rc, err := n.registerWithChallenge(r.Context(), q.Get("id"), q.Get("token"), body, wait)
	if err != nil {
		n.failRegistration(w, r, err)
		return
	}
	writeReceipt(w, rc)
}
