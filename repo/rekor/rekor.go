// Package rekor logs a shiplog repository's metadata in a Sigstore Rekor v1
// log (github.com/sigstore/rekor, API /api/v1): it signs the exact bytes of
// a metadata file with a key its TUF role lists, submits a hashedrekord
// 0.0.1 entry with Rekor's own client (github.com/sigstore/rekor/pkg/client),
// waits for the entry's inclusion proof and signed checkpoint, and returns
// them as a Sigstore bundle (client/sigstore's format, media type
// application/vnd.dev.sigstore.bundle.v0.3+json) that repo.PublishRekor
// verifies under the policy and writes beside the file as
// <version>.<role>.json.sigstore.json.
//
// ECDSA P-256 keys sign the SHA-256 digest; Ed25519 keys sign with
// Ed25519ph over the SHA-512 digest, as Rekor v1 verifies hashedrekord.
//
// Limits: each request is bounded by Client.Timeout (default 60 s) and
// retried at most Client.Retries times by Rekor's client; the bundle built
// from a response is refused above sigstore.MaxBundleSize. Rekor's client
// reads response bodies without a size cap: the timeout bounds them.
package rekor

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"strings"
	"time"

	"crypto/x509"

	"github.com/go-openapi/strfmt"
	"github.com/shiplog/shiplog/client/sigstore"
	"github.com/shiplog/shiplog/repo/keys"
	rekorclient "github.com/sigstore/rekor/pkg/client"
	"github.com/sigstore/rekor/pkg/generated/client"
	"github.com/sigstore/rekor/pkg/generated/client/entries"
	"github.com/sigstore/rekor/pkg/generated/models"
)

// Client submits entries to one Rekor v1 server. It is safe for concurrent
// use.
type Client struct {
	url     string
	rc      *client.Rekor
	timeout time.Duration
	log     *slog.Logger
}

// Options configure New. Zero fields take the defaults.
type Options struct {
	// Timeout bounds each request; default 60 s.
	Timeout time.Duration
	// Retries is the number of retries of a failed request; default 3.
	Retries uint
	// Logger receives progress; nil discards.
	Logger *slog.Logger
}

// New returns a client of the Rekor server at base URL rawURL
// (https://rekor.example, or http:// for a local test server).
func New(rawURL string, o Options) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid Rekor URL %q: want http(s)://host", rawURL)
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Retries == 0 {
		o.Retries = 3
	}
	rc, err := rekorclient.GetRekorClient(rawURL, rekorclient.WithRetryCount(o.Retries), rekorclient.WithUserAgent("shiplog"))
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{url: rawURL, rc: rc, timeout: o.Timeout, log: log}, nil
}

// Submit implements repo.RekorSubmitter: it signs body with key, logs a
// hashedrekord 0.0.1 entry (or finds the existing one when Rekor answers
// 409, so a rerun after a crash is safe), waits until the entry has an
// inclusion proof with a checkpoint, and returns the Sigstore bundle.
func (c *Client) Submit(ctx context.Context, body []byte, key *keys.Private) ([]byte, error) {
	h, err := sigstore.NewHashedRekord("0.0.1", body, key.CryptoSigner())
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(h.PublicKey)
	if err != nil {
		return nil, err
	}
	alg := models.HashedrekordV001SchemaDataHashAlgorithmSha256
	if h.Hash.Size() == 64 {
		alg = models.HashedrekordV001SchemaDataHashAlgorithmSha512
	}
	apiVersion := "0.0.1"
	entry := &models.Hashedrekord{APIVersion: &apiVersion, Spec: models.HashedrekordV001Schema{
		Data: &models.HashedrekordV001SchemaData{Hash: &models.HashedrekordV001SchemaDataHash{
			Algorithm: &alg, Value: ptr(hex.EncodeToString(h.Digest)),
		}},
		Signature: &models.HashedrekordV001SchemaSignature{
			Content:   strfmt.Base64(h.Signature),
			PublicKey: &models.HashedrekordV001SchemaSignaturePublicKey{Content: strfmt.Base64(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))},
		},
	}}
	payload, err := c.create(ctx, entry)
	if err != nil {
		return nil, err
	}
	e, err := toEntry(payload)
	if err != nil {
		return nil, err
	}
	b := &sigstore.UnverifiedBundle{
		KeyHint: key.ID, Entries: []sigstore.UnverifiedEntry{*e},
		Signature: h.Signature, Digest: h.Digest, DigestAlgorithm: digestName(h.Hash.Size()),
	}
	out := b.Format()
	if len(out) > sigstore.MaxBundleSize {
		return nil, errors.New("Rekor entry too large for a bundle")
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }

func digestName(size int) string {
	if size == 64 {
		return "SHA2_512"
	}
	return "SHA2_256"
}

// create posts the entry; on 409 (already logged) it reads the existing
// one. It polls until the entry has an inclusion proof with a checkpoint.
func (c *Client) create(ctx context.Context, entry models.ProposedEntry) (models.LogEntry, error) {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	params := entries.NewCreateLogEntryParamsWithContext(rctx).WithTimeout(c.timeout).WithProposedEntry(entry)
	resp, err := c.rc.Entries.CreateLogEntry(params)
	var conflict *entries.CreateLogEntryConflict
	switch {
	case errors.As(err, &conflict):
		uuid := path.Base(conflict.Location.String())
		c.log.Debug("entry already in Rekor", "uuid", uuid)
		return c.await(ctx, uuid)
	case err != nil:
		return nil, fmt.Errorf("couldn't submit to Rekor %s: %w", c.url, err)
	}
	if e, ok := single(resp.Payload); ok && hasProof(e) {
		return resp.Payload, nil
	}
	for uuid := range resp.Payload {
		return c.await(ctx, uuid)
	}
	return nil, errors.New("Rekor returned no entry")
}

// await reads entry uuid until it has an inclusion proof with a checkpoint,
// at most Timeout in all.
func (c *Client) await(ctx context.Context, uuid string) (models.LogEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		params := entries.NewGetLogEntryByUUIDParamsWithContext(ctx).WithTimeout(c.timeout).WithEntryUUID(uuid)
		resp, err := c.rc.Entries.GetLogEntryByUUID(params)
		if err != nil {
			return nil, fmt.Errorf("couldn't read Rekor entry %s: %w", uuid, err)
		}
		if e, ok := single(resp.Payload); ok && hasProof(e) {
			return resp.Payload, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("Rekor entry %s has no inclusion proof yet: %w", uuid, ctx.Err())
		case <-time.After(delay):
		}
	}
}

func single(le models.LogEntry) (models.LogEntryAnon, bool) {
	if len(le) != 1 {
		return models.LogEntryAnon{}, false
	}
	for _, e := range le {
		return e, true
	}
	return models.LogEntryAnon{}, false
}

func hasProof(e models.LogEntryAnon) bool {
	return e.Verification != nil && e.Verification.InclusionProof != nil && e.Verification.InclusionProof.Checkpoint != nil
}

// toEntry converts Rekor's API answer into a bundle's tlog entry. Hex
// becomes base64; the inclusion proof's index stays the shard-relative one.
// Nothing is verified here.
func toEntry(le models.LogEntry) (*sigstore.UnverifiedEntry, error) {
	e, ok := single(le)
	if !ok || !hasProof(e) || e.LogIndex == nil || e.IntegratedTime == nil || e.LogID == nil {
		return nil, errors.New("Rekor answered with an incomplete entry")
	}
	bodyB64, ok := e.Body.(string)
	if !ok {
		return nil, errors.New("Rekor entry body is not base64 text")
	}
	body, err := base64.StdEncoding.DecodeString(bodyB64)
	if err != nil || len(body) > sigstore.MaxBodySize {
		return nil, errors.New("malformed Rekor entry body")
	}
	logID, err := hex.DecodeString(*e.LogID)
	if err != nil {
		return nil, errors.New("malformed Rekor log ID")
	}
	ip := e.Verification.InclusionProof
	if ip.LogIndex == nil || ip.TreeSize == nil || ip.RootHash == nil || *ip.LogIndex < 0 || *ip.TreeSize < 0 || len(ip.Hashes) > 63 {
		return nil, errors.New("malformed Rekor inclusion proof")
	}
	p := &sigstore.InclusionProof{Index: uint64(*ip.LogIndex), TreeSize: uint64(*ip.TreeSize), Checkpoint: []byte(*ip.Checkpoint)}
	if err := unhex(*ip.RootHash, &p.RootHash); err != nil {
		return nil, err
	}
	p.Hashes = make([][32]byte, len(ip.Hashes))
	for i, h := range ip.Hashes {
		if err := unhex(h, &p.Hashes[i]); err != nil {
			return nil, err
		}
	}
	if !strings.HasSuffix(*ip.Checkpoint, "\n") {
		return nil, errors.New("malformed Rekor checkpoint")
	}
	return &sigstore.UnverifiedEntry{
		LogIndex: *e.LogIndex, LogKeyID: logID, Kind: sigstore.Kind, Version: "0.0.1",
		IntegratedTime: *e.IntegratedTime, SignedEntryTimestamp: e.Verification.SignedEntryTimestamp,
		Body: body, Proof: p,
	}, nil
}

func unhex(s string, h *[32]byte) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return errors.New("malformed hash in Rekor inclusion proof")
	}
	copy(h[:], b)
	return nil
}
