package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/shiplog/shiplog/client/tufcheck"
	"github.com/shiplog/shiplog/evidence/proof"
)

// Limits of the ledger client.
const (
	maxResponseSize = 1 << 20
	maxErrorSize    = 4 << 10
	maxAttempts     = 5
	// MaxMetadataUpload is the ledger's publish body limit (docs/spec/ledger-api.md).
	MaxMetadataUpload = 5 << 20
)

// LedgerError is a refusal by the ledger: its HTTP status and one-line
// message, with what the vendor should do next.
type LedgerError struct {
	Op      string
	Status  int
	Message string
}

func (e *LedgerError) Error() string {
	return fmt.Sprintf("ledger refused %s: %d %s: %s%s", e.Op, e.Status, http.StatusText(e.Status), e.Message, ledgerHint(e.Op, e.Status, e.Message))
}

func ledgerHint(op string, status int, msg string) string {
	if strings.HasPrefix(op, "attest") {
		switch status {
		case http.StatusNotFound:
			return " (the repository is not registered with this ledger: check its id and the ledger URL)"
		case http.StatusForbidden:
			return " (the envelope's signature does not verify under the key it names)"
		case http.StatusRequestEntityTooLarge:
			return " (a sign-off envelope is at most 64 KiB)"
		}
		return ""
	}
	switch status {
	case http.StatusNotFound:
		return " (register the repository with `shiplog repo register` first)"
	case http.StatusConflict:
		return " (the ledger already logged this or a later version with other bytes: stage a new version with `shiplog repo renew` and sign it; if the ledger holds the largest version, rotate the role's keys first: docs/vendor.md, \"Incident\")"
	case http.StatusForbidden:
		if strings.Contains(msg, tufcheck.ErrNoDelegation.Error()) {
			return " (the ledger's latest logged delegators do not delegate this role, or no longer meet their own current keys: publish the delegating role, signed by its current keys, first; `shiplog publish` submits delegators before the roles they delegate)"
		}
		return " (the signatures do not meet the threshold the ledger's logged root requires: check `shiplog repo status`)"
	case http.StatusUnauthorized:
		return " (check the admin token file)"
	case http.StatusGone:
		return " (the metadata expired: stage a new version with `shiplog repo renew` and sign it)"
	case http.StatusRequestEntityTooLarge:
		return " (metadata larger than the ledger accepts: split targets into delegated roles or hash bins)"
	}
	return ""
}

// PublishResponse is the ledger's answer to publish and register.
type PublishResponse struct {
	Index     uint64 `json:"index"`
	LeafHash  string `json:"leaf_hash"`
	Entry     string `json:"entry"`
	Duplicate bool   `json:"duplicate"`
	Proof     string `json:"proof"`
}

// ledgerClient speaks the ledger's HTTP API (docs/spec/ledger-api.md).
type ledgerClient struct {
	base       *url.URL
	hc         *http.Client
	log        *slog.Logger
	retryDelay time.Duration
}

func newLedgerClient(base string, hc *http.Client, log *slog.Logger, retryDelay time.Duration) (*ledgerClient, error) {
	if base == "" {
		return nil, errors.New("no ledger URL: pass --ledger URL or set \"ledger\" in " + ConfigFile)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid ledger URL %q: want http(s)://host[:port][/prefix]", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if hc == nil {
		hc = &http.Client{Timeout: 90 * time.Second}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if retryDelay == 0 {
		retryDelay = time.Second
	}
	return &ledgerClient{base: u, hc: hc, log: log, retryDelay: retryDelay}, nil
}

func (c *ledgerClient) url(path string, q url.Values) string {
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	return u.String()
}

// publish submits the exact bytes of version of role and waits up to wait
// for a proof.
func (c *ledgerClient) publish(ctx context.Context, repoID, role string, body []byte, wait time.Duration) (*PublishResponse, error) {
	q := url.Values{"repo": {repoID}, "role": {role}, "wait": {wait.String()}}
	return c.postJSON(ctx, "publish "+role, c.url("/v1/publish", q), "", body)
}

// WitnessStatus is the ledger's account of one witness (GET /v1/witnesses):
// the largest checkpoint size it cosigned and the last error of a round it
// did not cosign.
type WitnessStatus struct {
	Name         string `json:"name"`
	URL          string `json:"url,omitempty"`
	CosignedSize uint64 `json:"cosigned_size"`
	LastError    string `json:"last_error,omitempty"`
}

// maxWitnesses bounds the witnesses read from the ledger's answer.
const maxWitnesses = 256

// witnesses asks the ledger what it last heard from each witness. A ledger
// without the endpoint (older versions) answers an error; callers only
// use it to report progress.
func (c *ledgerClient) witnesses(ctx context.Context) ([]WitnessStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/v1/witnesses", nil), nil)
	if err != nil {
		return nil, err
	}
	b, _, err := c.once(req, "witnesses", 64<<10)
	if err != nil {
		return nil, err
	}
	var out struct {
		Witnesses []WitnessStatus `json:"witnesses"`
	}
	if err := json.Unmarshal(b, &out); err != nil || len(out.Witnesses) > maxWitnesses {
		return nil, errors.New("malformed witness status")
	}
	for i := range out.Witnesses {
		out.Witnesses[i].Name = sanitize([]byte(out.Witnesses[i].Name))
		out.Witnesses[i].LastError = sanitize([]byte(out.Witnesses[i].LastError))
	}
	return out.Witnesses, nil
}

// quorumReport says, for an entry at index, which witnesses cosigned a
// checkpoint covering it and which did not (with their last error).
func quorumReport(ws []WitnessStatus, index uint64) (cosigned, missing []string) {
	for _, w := range ws {
		if w.CosignedSize > index {
			cosigned = append(cosigned, w.Name)
			continue
		}
		m := w.Name
		if w.LastError != "" {
			m += " (" + w.LastError + ")"
		} else {
			m += fmt.Sprintf(" (cosigned up to size %d)", w.CosignedSize)
		}
		missing = append(missing, m)
	}
	return cosigned, missing
}

// register submits the initial root with the admin token.
func (c *ledgerClient) register(ctx context.Context, repoID, token string, root []byte) (*PublishResponse, error) {
	return c.postJSON(ctx, "register", c.url("/v1/admin/repositories", url.Values{"id": {repoID}}), token, root)
}

// RegistrationChallenge is the ledger's answer to a request for a
// registration challenge (docs/spec/ledger-api.md, "Registration by proof
// of control"): serve KeyAuthorization at URL over HTTPS, then register
// with Token before Expires.
type RegistrationChallenge struct {
	Token            string    `json:"token"`
	URL              string    `json:"url"`
	KeyAuthorization string    `json:"key_authorization"`
	Expires          time.Time `json:"expires"`
}

// maxChallengeResponse caps the ledger's challenge answer (a token, a URL
// of at most a DNS name and the token, and a key authorization).
const maxChallengeResponse = 4 << 10

// challenge asks the ledger for a registration challenge for repoID and
// root.
func (c *ledgerClient) challenge(ctx context.Context, repoID string, root []byte) (*RegistrationChallenge, error) {
	u := c.url("/v1/registrations/challenge", url.Values{"id": {repoID}})
	b, err := c.do(ctx, "challenge", func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(root))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		return req, nil
	}, maxChallengeResponse)
	if err != nil {
		return nil, err
	}
	return parseChallenge(b)
}

// parseChallenge decodes the ledger's challenge strictly: the token is
// what the URL ends in, and the key authorization starts with the token.
func parseChallenge(b []byte) (*RegistrationChallenge, error) {
	var ch RegistrationChallenge
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ch); err != nil || dec.More() {
		return nil, errors.New("malformed challenge from the ledger")
	}
	if !challengeTokenRE.MatchString(ch.Token) || !strings.HasSuffix(ch.URL, challengePath+ch.Token) ||
		!strings.HasPrefix(ch.URL, "https://") || !strings.HasPrefix(ch.KeyAuthorization, ch.Token+".") ||
		len(ch.KeyAuthorization) > 512 || strings.ContainsAny(ch.KeyAuthorization, "\r\n") {
		return nil, errors.New("malformed challenge from the ledger")
	}
	return &ch, nil
}

// challengePath is where a registration challenge is served on the id's
// host (RFC 8615 well-known URI).
const challengePath = "/.well-known/shiplog-challenge/"

// challengeTokenRE is the token alphabet the challenge file may be named
// with (base64url), so a token can never name a path outside the
// challenge directory.
var challengeTokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{16,128}$`)

// registerWithChallenge completes a challenge: the ledger fetches the key
// authorization and registers the root.
func (c *ledgerClient) registerWithChallenge(ctx context.Context, repoID, token string, root []byte) (*PublishResponse, error) {
	return c.postJSON(ctx, "register", c.url("/v1/registrations", url.Values{"id": {repoID}, "token": {token}}), "", root)
}

// proof fetches the tlog-proof of a leaf, waiting up to wait for a cosigned
// checkpoint to cover it.
func (c *ledgerClient) proof(ctx context.Context, leafHex string, wait time.Duration) ([]byte, error) {
	u := c.url("/v1/proof", url.Values{"leaf": {leafHex}, "wait": {wait.String()}})
	return c.do(ctx, "proof", func() (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	}, proof.MaxSize)
}

func (c *ledgerClient) postJSON(ctx context.Context, op, u, token string, body []byte) (*PublishResponse, error) {
	if len(body) > MaxMetadataUpload {
		return nil, &LedgerError{Op: op, Status: http.StatusRequestEntityTooLarge, Message: "metadata larger than 5 MiB"}
	}
	b, err := c.do(ctx, op, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return req, nil
	}, maxResponseSize)
	if err != nil {
		return nil, err
	}
	return parsePublishResponse(b)
}

// parsePublishResponse decodes the ledger's JSON answer strictly.
func parsePublishResponse(b []byte) (*PublishResponse, error) {
	if len(b) > maxResponseSize {
		return nil, errors.New("ledger response too large")
	}
	var r PublishResponse
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil || dec.More() {
		return nil, errors.New("malformed ledger response")
	}
	if len(r.LeafHash) != 64 || len(r.Proof) > proof.MaxSize {
		return nil, errors.New("malformed ledger response")
	}
	return &r, nil
}

// do sends a request, retrying (with exponential backoff, at most
// maxAttempts times) on network errors, 429 and 503, and returns a 200
// body of at most max bytes.
func (c *ledgerClient) do(ctx context.Context, op string, mk func() (*http.Request, error), max int64) ([]byte, error) {
	delay := c.retryDelay
	var last error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		req, err := mk()
		if err != nil {
			return nil, err
		}
		b, retry, err := c.once(req, op, max)
		if err == nil {
			return b, nil
		}
		if !retry || attempt == maxAttempts {
			return nil, err
		}
		last = err
		c.log.Info("ledger busy, retrying", "op", op, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
		case <-time.After(delay):
		}
		delay *= 2
	}
	return nil, last
}

func (c *ledgerClient) once(req *http.Request, op string, max int64) ([]byte, bool, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, req.Context().Err() == nil, fmt.Errorf("couldn't reach the ledger for %s: %w", op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorSize))
		retry := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable
		return nil, retry, &LedgerError{Op: op, Status: resp.StatusCode, Message: sanitize(msg)}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, true, fmt.Errorf("couldn't read ledger response: %w", err)
	}
	if int64(len(b)) > max {
		return nil, false, fmt.Errorf("ledger response to %s larger than %d bytes", op, max)
	}
	return b, false, nil
}

// sanitize keeps the first line of an error body, printable ASCII only.
func sanitize(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	out := make([]byte, 0, len(line))
	for _, c := range line {
		if c >= 0x20 && c < 0x7f {
			out = append(out, c)
		}
	}
	if len(out) > 200 {
		out = append(out[:200], "..."...)
	}
	return string(out)
}
