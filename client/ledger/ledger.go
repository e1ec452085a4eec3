// Package ledger is the device's client of the ledger's online proof API
// (docs/spec/ledger-api.md): tlog-proofs by leaf hash and RFC 6962
// consistency proofs. It implements update.Ledger. Responses are size-capped
// (a tlog-proof at proof.MaxSize, a consistency proof at 64 hashes) and every
// request is bounded by Timeout. Safe for concurrent use.
package ledger

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/evidence/proof"
)

// Client talks to one ledger at URL (e.g. "https://ledger.example").
type Client struct {
	URL string
	// HTTP is the client to use; nil means one with a 30 s timeout.
	HTTP *http.Client
}

var defaultClient = &http.Client{Timeout: 30 * time.Second}

const maxConsistencyHashes = 64

func (c *Client) get(ctx context.Context, path string, max int64) ([]byte, error) {
	hc := c.HTTP
	if hc == nil {
		hc = defaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.URL, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
		return nil, fmt.Errorf("ledger: GET %s: HTTP %d: %w", path, resp.StatusCode, update.ErrLedgerRefused)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ledger: GET %s: HTTP %d", path, resp.StatusCode)
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("ledger: GET %s: response larger than %d bytes", path, max)
	}
	return body, nil
}

// ProofByLeaf returns the tlog-proof of the entry with leaf hash leaf
// against the ledger's latest cosigned checkpoint. It does not verify it.
func (c *Client) ProofByLeaf(ctx context.Context, leaf [sha256.Size]byte) ([]byte, error) {
	return c.get(ctx, "/v1/proof?leaf="+hex.EncodeToString(leaf[:]), proof.MaxSize)
}

// MaxEvidence is the largest evidence file (docs/spec/signoff.md) read
// from the ledger.
const MaxEvidence = 1 << 20

// Attestations returns the ledger's evidence file of the sign-off
// statements logged for repository repo about the target with SHA-256
// subject (lowercase hex), kept to the attesters with the given key ids (at
// most 32; none: every attester), each with a tlog-proof. It neither
// parses nor verifies it: the caller does (evidence/signoff).
func (c *Client) Attestations(ctx context.Context, repo, subject string, keyIDs []string) ([]byte, error) {
	if len(keyIDs) > 32 {
		return nil, errors.New("ledger: at most 32 key ids per attestations query")
	}
	q := url.Values{"repo": {repo}, "subject": {subject}}
	for _, k := range keyIDs {
		q.Add("key", k)
	}
	return c.get(ctx, "/v1/attestations?"+q.Encode(), MaxEvidence)
}

// Consistency returns the consistency proof between tree sizes old and new.
// It parses strictly (canonical base64, 32-byte hashes, at most 64) and
// does not verify it.
func (c *Client) Consistency(ctx context.Context, old, new uint64) ([][sha256.Size]byte, error) {
	body, err := c.get(ctx, "/v1/consistency?old="+strconv.FormatUint(old, 10)+"&new="+strconv.FormatUint(new, 10), maxConsistencyHashes*46)
	if err != nil {
		return nil, err
	}
	return ParseConsistency(body)
}

// ParseConsistency parses a consistency proof body: one base64 hash per
// line.
func ParseConsistency(body []byte) ([][sha256.Size]byte, error) {
	var out [][sha256.Size]byte
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		h, err := base64.StdEncoding.DecodeString(line)
		if err != nil || len(h) != sha256.Size || base64.StdEncoding.EncodeToString(h) != line {
			return nil, errors.New("ledger: malformed consistency proof")
		}
		if len(out) == maxConsistencyHashes {
			return nil, errors.New("ledger: consistency proof too long")
		}
		out = append(out, [sha256.Size]byte(h))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
