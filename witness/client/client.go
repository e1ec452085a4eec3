// Package client is the log side of C2SP tlog-witness
// (c2sp.org/tlog-witness): it asks witnesses to cosign a log's checkpoints
// with add-checkpoint requests and keeps only the cosignatures
// (c2sp.org/tlog-cosignature, cosignature/v1) that verify against each
// witness's key.
//
// Client talks to one witness and maps its answers to typed errors;
// Collector fans a checkpoint out to every witness of a tlog-policy that has
// a URL, keeps track of the size each witness last cosigned, and gathers the
// cosignatures until the policy's quorum can be judged.
package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shiplog/shiplog/witness/addcheckpoint"
	"golang.org/x/mod/sumdb/note"
)

// Limits on what a witness may send back.
const (
	maxResponseSize = 16 << 10
	maxErrorSize    = 512
	maxSigLines     = 16
	defaultTimeout  = 5 * time.Second
)

// Errors of AddCheckpoint, one per status code of c2sp.org/tlog-witness.
var (
	// ErrBadProof is a 422: the consistency proof did not verify, or (in the
	// spec's main branch) the witness holds a different checkpoint of the
	// same size.
	ErrBadProof = errors.New("witness refused the consistency proof (422)")
	// ErrUnknownLog is a 404: the witness does not know the log's origin.
	ErrUnknownLog = errors.New("witness does not know the log (404)")
	// ErrForbidden is a 403: the witness found no valid signature by a key
	// it trusts for the log.
	ErrForbidden = errors.New("witness found no valid log signature (403)")
	// ErrBadRequest is a 400: the witness found the request malformed or the
	// old size larger than the checkpoint's.
	ErrBadRequest = errors.New("witness refused a malformed request (400)")
	// ErrBadCosignature means a 200 response carried no valid cosignature by
	// the witness's key, or a malformed or invalid one.
	ErrBadCosignature = errors.New("witness response has no valid cosignature")
)

// ConflictError is a 409 with a text/x.tlog.size body: the old size sent is
// not the size of the latest checkpoint the witness cosigned, which is Size.
type ConflictError struct {
	Size uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("witness's latest cosigned size is %d (409)", e.Size)
}

// RateLimitError is a 429. RetryAfter is the witness's Retry-After, or 0 if
// it sent none.
type RateLimitError struct {
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("witness rate limited the log (429), retry after %v", e.RetryAfter)
}

// StatusError is any other unexpected response, including a 409 without a
// size body (which older witnesses send for a same-size different root).
type StatusError struct {
	Code    int
	Message string // the first line of the body, at most 512 bytes
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("witness answered %d %s: %q", e.Code, http.StatusText(e.Code), e.Message)
}

// ProofFunc returns the RFC 6962 consistency proof between two sizes of the log.
type ProofFunc func(ctx context.Context, oldSize, newSize uint64) ([][]byte, error)

// Options configures a Client or a Collector.
type Options struct {
	HTTPClient *http.Client  // nil: a client with Timeout
	Timeout    time.Duration // per request; 0: 5s
	Logger     *slog.Logger  // nil: discard
	// Registerer, if not nil, receives the shiplog_witness_client_requests_total
	// and shiplog_witness_client_errors_total counters labelled by witness name.
	Registerer prometheus.Registerer
}

func (o Options) timeout() time.Duration {
	if o.Timeout <= 0 {
		return defaultTimeout
	}
	return o.Timeout
}

func (o Options) httpClient() *http.Client {
	if o.HTTPClient != nil {
		return o.HTTPClient
	}
	return &http.Client{Timeout: o.timeout()}
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Client sends add-checkpoint requests to one witness. It is safe for
// concurrent use.
type Client struct {
	url      string
	name     string
	witness  note.Verifier
	hc       *http.Client
	timeout  time.Duration
	log      *slog.Logger
	requests prometheus.Counter
	errors   prometheus.Counter
}

// New returns a client for the witness whose submission prefix is url and
// whose cosignatures verify with witness (a cosignature/v1 verifier, as
// notekey.ParseWitnessVerifier returns). If its counters cannot be
// registered with opts.Registerer it logs why and counts unregistered.
func New(url string, witness note.Verifier, opts Options) *Client {
	return newClient(url, witness.Name(), witness, opts, metricsOrUnregistered(opts.Registerer, opts.logger()))
}

func newClient(url, name string, witness note.Verifier, opts Options, m *clientMetrics) *Client {
	return &Client{
		url:      strings.TrimSuffix(url, "/") + "/add-checkpoint",
		name:     name,
		witness:  witness,
		hc:       opts.httpClient(),
		timeout:  opts.timeout(),
		log:      opts.logger(),
		requests: m.requests.WithLabelValues(name),
		errors:   m.errors.WithLabelValues(name),
	}
}

// AddCheckpoint asks the witness to cosign signedCheckpoint (a log-signed
// checkpoint note), given the size the witness last cosigned and the
// consistency proof from that size (empty when oldSize is 0 or equal to the
// checkpoint's size). It returns the witness's cosignature lines that verify
// against its key over the checkpoint body, ignoring lines by other keys. On
// failure it returns *ConflictError, ErrBadProof, *RateLimitError,
// ErrUnknownLog, ErrForbidden, ErrBadRequest, ErrBadCosignature, a
// *StatusError or a transport error.
func (c *Client) AddCheckpoint(ctx context.Context, oldSize uint64, proof [][]byte, signedCheckpoint []byte) (sigLines []byte, err error) {
	c.requests.Inc()
	defer func() {
		if err != nil {
			c.errors.Inc()
		}
	}()
	body, text, err := requestBody(oldSize, proof, signedCheckpoint)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("couldn't reach witness %s: %w", c.name, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("couldn't read witness %s response: %w", c.name, err)
	}
	if len(rb) > maxResponseSize {
		return nil, fmt.Errorf("witness %s response larger than %d bytes", c.name, maxResponseSize)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp, rb)
	}
	return verifiedLines(text, rb, c.witness)
}

// requestBody returns the add-checkpoint body and the checkpoint's body text.
func requestBody(oldSize uint64, proof [][]byte, signedCheckpoint []byte) (body, text []byte, err error) {
	if len(proof) > addcheckpoint.MaxProofLines {
		return nil, nil, fmt.Errorf("consistency proof of %d hashes: at most %d", len(proof), addcheckpoint.MaxProofLines)
	}
	split := bytes.LastIndex(signedCheckpoint, []byte("\n\n"))
	if split < 0 || len(signedCheckpoint) > addcheckpoint.MaxNoteSize {
		return nil, nil, errors.New("malformed or oversized signed checkpoint")
	}
	r := addcheckpoint.Request{OldSize: oldSize, Checkpoint: signedCheckpoint}
	for _, h := range proof {
		if len(h) != sha256.Size {
			return nil, nil, errors.New("consistency proof hash is not 32 bytes")
		}
		r.Proof = append(r.Proof, [sha256.Size]byte(h))
	}
	return r.Format(), signedCheckpoint[:split+1], nil
}

// statusError maps a non-200 response to the package's errors.
func statusError(resp *http.Response, body []byte) error {
	switch resp.StatusCode {
	case http.StatusConflict:
		ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
		if strings.TrimSpace(ct) == addcheckpoint.SizeContentType {
			if size, err := addcheckpoint.ParseSize(body); err == nil {
				return &ConflictError{Size: size}
			}
		}
	case http.StatusUnprocessableEntity:
		return ErrBadProof
	case http.StatusNotFound:
		return ErrUnknownLog
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusBadRequest:
		return ErrBadRequest
	case http.StatusTooManyRequests:
		return &RateLimitError{RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	line, _, _ := bytes.Cut(body, []byte("\n"))
	if len(line) > maxErrorSize {
		line = line[:maxErrorSize]
	}
	return &StatusError{Code: resp.StatusCode, Message: strings.ToValidUTF8(string(line), "?")}
}

// retryAfter parses a Retry-After header (delay in seconds or HTTP date),
// capped at one hour.
func retryAfter(v string, now time.Time) time.Duration {
	var d time.Duration
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), time.Hour)
}

// verifiedLines returns the lines of resp that are signatures by witness
// that verify over text. Lines by other keys are ignored (spec: "The client
// MUST ignore any cosignatures from unknown keys"); a malformed line, or a
// line by the witness's key that does not verify, fails the whole response.
func verifiedLines(text, resp []byte, witness note.Verifier) ([]byte, error) {
	if len(resp) == 0 || resp[len(resp)-1] != '\n' {
		return nil, ErrBadCosignature
	}
	lines := bytes.SplitAfter(resp, []byte("\n"))
	lines = lines[:len(lines)-1] // the empty string after the final newline
	if len(lines) > maxSigLines {
		return nil, ErrBadCosignature
	}
	var out []byte
	for _, line := range lines {
		name, sig, ok := parseSigLine(line)
		if !ok {
			return nil, ErrBadCosignature
		}
		if name != witness.Name() || len(sig) < 4 || uint32(sig[0])<<24|uint32(sig[1])<<16|uint32(sig[2])<<8|uint32(sig[3]) != witness.KeyHash() {
			continue
		}
		if !witness.Verify(text, sig[4:]) {
			return nil, ErrBadCosignature
		}
		out = append(out, line...)
	}
	if out == nil {
		return nil, ErrBadCosignature
	}
	return out, nil
}

// parseSigLine parses "— <name> <base64>\n" (c2sp.org/signed-note).
func parseSigLine(line []byte) (name string, sig []byte, ok bool) {
	rest, ok := bytes.CutPrefix(line, []byte("— "))
	if !ok {
		return "", nil, false
	}
	rest = bytes.TrimSuffix(rest, []byte("\n"))
	n, b64, ok := bytes.Cut(rest, []byte(" "))
	if !ok || len(n) == 0 {
		return "", nil, false
	}
	sig, err := base64.StdEncoding.DecodeString(string(b64))
	if err != nil || len(sig) < 5 {
		return "", nil, false
	}
	return string(n), sig, true
}
