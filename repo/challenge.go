package repo

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/shiplog/shiplog/internal/durable"
)

// registerByChallenge registers root for repoID by proof of control
// (docs/spec/ledger-api.md): it asks the ledger for a challenge, writes the
// key authorization to webRoot/.well-known/shiplog-challenge/<token>
// (world-readable, so any static server of webRoot serves it), asks the
// ledger to fetch it and register, and removes the file again whatever
// the outcome. webRoot must be what https://<host>/ serves for the id's
// first segment; the ledger fetches over TLS on port 443 only.
func registerByChallenge(ctx context.Context, lc *ledgerClient, repoID string, root []byte, webRoot string, log *slog.Logger) (*PublishResponse, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if fi, err := os.Stat(webRoot); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("challenge directory %s is not a directory (it must be the web root of the id's host)", webRoot)
	}
	ch, err := lc.challenge(ctx, repoID, root)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(webRoot, filepath.FromSlash(challengePath))
	if err := durable.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("couldn't create %s: %w", dir, err)
	}
	file := filepath.Join(dir, ch.Token) // the token's alphabet has no separators (parseChallenge)
	if err := durable.WriteFile(file, []byte(ch.KeyAuthorization+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("couldn't write the challenge: %w", err)
	}
	defer os.Remove(file)
	log.Info("serving the registration challenge", "url", ch.URL, "file", file, "expires", ch.Expires)
	resp, err := lc.registerWithChallenge(ctx, repoID, ch.Token, root)
	if err != nil {
		return nil, fmt.Errorf("%w (the ledger fetched %s: it must serve %s)", err, ch.URL, file)
	}
	return resp, nil
}
