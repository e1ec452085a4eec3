package repo

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/shiplog/shiplog/evidence/signoff"
)

// Attest submits a sign-off envelope (docs/spec/signoff.md) to the ledger
// at ledgerURL for repository repoID (POST /v1/attest) and waits up to wait
// for its proof; retries and limits are those of publish. hc nil means a
// client with a 90-second timeout. A refusal is a *LedgerError.
func Attest(ctx context.Context, ledgerURL string, hc *http.Client, repoID string, envelope []byte, wait time.Duration) (*PublishResponse, error) {
	c, err := newLedgerClient(ledgerURL, hc, nil, 0)
	if err != nil {
		return nil, err
	}
	if len(envelope) > signoff.MaxEnvelopeSize {
		return nil, &LedgerError{Op: "attest", Status: http.StatusRequestEntityTooLarge, Message: "envelope larger than 64 KiB"}
	}
	q := url.Values{"repo": {repoID}, "wait": {wait.String()}}
	return c.postJSON(ctx, "attest", c.url("/v1/attest", q), "", envelope)
}
