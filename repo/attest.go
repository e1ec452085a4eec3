package repo

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/shiplog/shiplog/evidence/signoff"
)

// Attest submits a sign-off envelope (docs/spec/signoff.md) to the ledger
// at ledgerURL for repository repoID (POST /v1/attest) and waits up to wait
// (at most a minute, the ledger's limit) for its proof, asking again by leaf
// hash (GET /v1/proof) if the answer came without one; retries and limits
// are those of publish. hc nil means a client with a 90-second timeout. A
// refusal is a *LedgerError.
func Attest(ctx context.Context, ledgerURL string, hc *http.Client, repoID string, envelope []byte, wait time.Duration) (*PublishResponse, error) {
	c, err := newLedgerClient(ledgerURL, hc, nil, 0)
	if err != nil {
		return nil, err
	}
	if len(envelope) > signoff.MaxEnvelopeSize {
		return nil, &LedgerError{Op: "attest", Status: http.StatusRequestEntityTooLarge, Message: "envelope larger than 64 KiB"}
	}
	wait = min(wait, time.Minute)
	q := url.Values{"repo": {repoID}, "wait": {wait.String()}}
	resp, err := c.postJSON(ctx, "attest", c.url("/v1/attest", q), "", envelope)
	if err != nil || resp.Proof != "" {
		return resp, err
	}
	p, err := c.proof(ctx, resp.LeafHash, wait)
	if err != nil {
		return nil, fmt.Errorf("logged at index %d, but no proof under a cosigned checkpoint yet: %w", resp.Index, err)
	}
	resp.Proof = string(p)
	return resp, nil
}
