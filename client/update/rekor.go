package update

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/policy"
)

// RekorConsistency fetches RFC 6962 consistency proofs from Rekor v1 logs
// that the policy names with a URL ("log <vkey> https://rekor.example"):
// GET <url>/api/v1/log/proof?firstSize=<old>&lastSize=<new>&treeID=<id>.
// The gate uses it, when set, to move its view of a Rekor v1 log forward
// online; the answer is checked (evidence.CheckConsistency), never trusted.
// Rekor v1 has no witnesses, so without it a device whose policy has
// "quorum none" cannot accept a newer checkpoint than the one it holds.
// It only ever asks for consistency proofs, never about an entry. Each
// request is bounded by Timeout (default 30 s) and 64 KiB. HTTP nil means
// NewHTTPClient(). Safe for concurrent use.
type RekorConsistency struct {
	HTTP    *http.Client
	Timeout time.Duration
}

const maxConsistencyAnswer = 64 << 10

// Consistency returns the consistency proof from size old to size new of
// tree treeID of the Rekor v1 log at base.
func (r *RekorConsistency) Consistency(ctx context.Context, base string, treeID int64, old, new uint64) ([][32]byte, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	q := url.Values{"firstSize": {strconv.FormatUint(old, 10)}, "lastSize": {strconv.FormatUint(new, 10)}, "treeID": {strconv.FormatInt(treeID, 10)}}
	u := strings.TrimSuffix(base, "/") + "/api/v1/log/proof?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	hc := r.HTTP
	if hc == nil {
		hc = defaultHTTPClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxConsistencyAnswer+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	if len(b) > maxConsistencyAnswer {
		return nil, errors.New("Rekor consistency proof too large")
	}
	return parseConsistency(b)
}

// parseConsistency parses Rekor v1's consistency proof answer,
// {"hashes": ["<hex>", ...], "rootHash": "<hex>"}: at most 128 hashes of
// 32 bytes.
func parseConsistency(b []byte) ([][32]byte, error) {
	var ans struct {
		Hashes []string `json:"hashes"`
	}
	if err := json.Unmarshal(b, &ans); err != nil || len(ans.Hashes) > 128 {
		return nil, errors.New("malformed Rekor consistency proof")
	}
	out := make([][32]byte, len(ans.Hashes))
	for i, h := range ans.Hashes {
		raw, err := hex.DecodeString(h)
		if err != nil || len(raw) != 32 {
			return nil, errors.New("malformed hash in Rekor consistency proof")
		}
		out[i] = [32]byte(raw)
	}
	return out, nil
}

// rekorOnline checks old -> new of a log whose evidence came as Sigstore
// bundles, with a consistency proof from the log itself when it is a
// Rekor v1 log named with a URL and Gate.Rekor is set. It reports
// ok=false when it cannot ask or got no answer (then the offline rules
// apply).
func (v *logView) rekorOnline(ctx context.Context, old, new *checkpoint.Signed) (ok bool, err error) {
	l := v.gate.Policy.LogFor(old.Origin)
	_, treeID, isV1 := policy.ParseRekorV1Origin(old.Origin)
	if v.gate.Rekor == nil || l == nil || l.URL == "" || !isV1 || old.Size == 0 {
		return false, nil
	}
	p, err := v.gate.Rekor.Consistency(ctx, l.URL, treeID, old.Size, new.Size)
	if err != nil {
		v.log.Warn("Rekor gave no consistency proof; using offline rules", "origin", old.Origin, "old", old.Size, "new", new.Size, "err", err)
		return false, nil
	}
	return true, evidence.CheckConsistency(old, new, p)
}
