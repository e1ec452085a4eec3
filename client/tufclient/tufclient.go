// Package tufclient is shiplog-device's plain TUF mode: the client side of
// the tuf-conformance suite's CLI protocol (CLIENT-CLI.md of
// theupdateframework/tuf-conformance), run by the same update loop as the
// device (client/update) with the transparency gate off.
//
// Metadata is kept in MetadataDir under unversioned names (root.json,
// timestamp.json, snapshot.json, targets.json, <escaped role>.json), each
// written durably as soon as the update loop trusts it, byte for byte as
// served. Targets are stored in TargetDir under their URL-escaped target
// path, and a stored target whose hashes match is not downloaded again.
package tufclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/internal/durable"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Client is one invocation of the protocol.
type Client struct {
	MetadataDir string
	MetadataURL string
	// TargetBaseURL is where target files are fetched.
	TargetBaseURL string
	TargetDir     string
	// Time is the reference time (the suite's faketime, which Go ignores,
	// is passed this way); zero means now.
	Time time.Time
}

// Init stores trustedRoot as the initial root. No request is made.
func (c *Client) Init(trustedRoot []byte) error {
	if err := os.MkdirAll(c.MetadataDir, 0o755); err != nil {
		return err
	}
	return durable.WriteFile(filepath.Join(c.MetadataDir, "root.json"), trustedRoot, 0o644)
}

// Refresh updates the top-level metadata (TUF §5.3–5.6.6).
func (c *Client) Refresh(ctx context.Context) (*update.Session, error) {
	trusted, err := c.load()
	if err != nil {
		return nil, err
	}
	u := &update.Client{
		Remote:    &update.HTTPRemote{MetadataURL: c.MetadataURL, TargetsURL: c.TargetBaseURL},
		Time:      c.Time,
		OnTrusted: c.persist,
	}
	return u.Refresh(ctx, trusted)
}

// Download refreshes, then resolves and downloads each target (TUF §5.7).
func (c *Client) Download(ctx context.Context, paths []string) error {
	if len(paths) == 0 {
		return errors.New("no target names")
	}
	s, err := c.Refresh(ctx)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.TargetDir, 0o755); err != nil {
		return err
	}
	for _, p := range paths {
		t, err := s.Target(ctx, p)
		if err != nil {
			return err
		}
		if err := c.fetch(ctx, s, t); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) fetch(ctx context.Context, s *update.Session, t *metadata.TargetFiles) error {
	final := filepath.Join(c.TargetDir, url.PathEscape(t.Path))
	if f, err := os.Open(final); err == nil {
		err := update.VerifyReader(t, io.Discard, f)
		f.Close()
		if err == nil {
			return nil // cached and valid
		}
	}
	tmp, err := durable.CreateTemp(c.TargetDir, ".download-*", durable.Public)
	if err != nil {
		return err
	}
	defer tmp.Discard()
	if err := s.Download(ctx, t, tmp); err != nil {
		return err
	}
	if err := tmp.Rename(final); err != nil {
		return err
	}
	return durable.SyncDir(c.TargetDir)
}

// load reads the trusted metadata files.
func (c *Client) load() (update.Trusted, error) {
	var t update.Trusted
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(c.MetadataDir, name))
		if err != nil {
			return nil
		}
		return b
	}
	t.Root = read("root.json")
	if t.Root == nil {
		return t, fmt.Errorf("no root.json in %s: run init first", c.MetadataDir)
	}
	t.Timestamp = read("timestamp.json")
	t.Snapshot = read("snapshot.json")
	t.Targets = map[string][]byte{}
	entries, err := os.ReadDir(c.MetadataDir)
	if err != nil {
		return t, err
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || name == "root" || name == "timestamp" || name == "snapshot" {
			continue
		}
		role, err := url.PathUnescape(name)
		if err != nil {
			continue
		}
		if b := read(e.Name()); b != nil {
			t.Targets[role] = b
		}
	}
	return t, nil
}

func (c *Client) persist(role string, data []byte) error {
	return durable.WriteFile(filepath.Join(c.MetadataDir, url.PathEscape(role)+".json"), data, 0o644)
}
