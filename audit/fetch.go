package audit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/shiplog/shiplog/client/tufcheck"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/transparency-dev/tessera/api/layout"
)

// Size caps of the ledger's read API, derived from the formats.
const (
	// maxTileSize is a full hash tile: 256 hashes of 32 bytes.
	maxTileSize = layout.TileWidth * sha256.Size
	// maxEntryBundleSize is 256 entries of at most 65,535 bytes with their
	// uint16 length prefixes (c2sp.org/tlog-tiles).
	maxEntryBundleSize = layout.EntryBundleWidth * (2 + 65535)
	// maxMetadataSize is the largest metadata file (go-tuf's targets cap).
	maxMetadataSize = tufcheck.MaxSize
	// maxMetadataBundleSize bounds one metadata bundle; a larger bundle is
	// not read, and its metadata are fetched one by one instead.
	maxMetadataBundleSize = 64 << 20
)

// errNotFound wraps os.ErrNotExist, as Tessera's fetcher contracts require.
var errNotFound = fmt.Errorf("not found: %w", os.ErrNotExist)

// ledgerClient reads the ledger's tlog-tiles API and metadata store.
type ledgerClient struct {
	base *url.URL
	hc   *http.Client
}

func newLedgerClient(base string, hc *http.Client) (*ledgerClient, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid ledger URL %q: want http(s)://host[/prefix]", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &ledgerClient{base: u, hc: hc}, nil
}

// get fetches base/p, reading at most max bytes. A 404 is errNotFound; a
// larger body is an error.
func get(ctx context.Context, hc *http.Client, u string, max int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: %w", u, errNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("GET %s: response larger than %d bytes", u, max)
	}
	return b, nil
}

func (c *ledgerClient) get(ctx context.Context, p string, max int64) ([]byte, error) {
	return get(ctx, c.hc, c.base.String()+"/"+p, max)
}

// Checkpoint fetches the latest cosigned checkpoint.
func (c *ledgerClient) Checkpoint(ctx context.Context) ([]byte, error) {
	return c.get(ctx, "checkpoint", checkpoint.MaxNoteSize)
}

// Tile fetches hash tile (level, index) of width p (0 for full). When a
// partial tile is missing it falls back to the full tile and truncates it,
// as tlog-tiles clients must. It implements Tessera's TileFetcherFunc.
func (c *ledgerClient) Tile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	b, err := c.get(ctx, layout.TilePath(level, index, p), maxTileSize)
	if errors.Is(err, os.ErrNotExist) && p > 0 {
		b, err = c.get(ctx, layout.TilePath(level, index, 0), maxTileSize)
		if err == nil && len(b) >= int(p)*sha256.Size {
			b = b[:int(p)*sha256.Size]
		}
	}
	if err != nil {
		return nil, err
	}
	w := int(p)
	if w == 0 {
		w = layout.TileWidth
	}
	if len(b) != w*sha256.Size {
		return nil, fmt.Errorf("tile %d/%d: %d bytes, want %d", level, index, len(b), w*sha256.Size)
	}
	return b, nil
}

// EntryBundle fetches entry bundle n with w entries (w < 256 for a
// partial bundle) and splits it. A missing partial bundle falls back to the
// full one.
func (c *ledgerClient) EntryBundle(ctx context.Context, n uint64, w int) ([][]byte, error) {
	p := uint8(w % layout.EntryBundleWidth)
	b, err := c.get(ctx, layout.EntriesPath(n, p), maxEntryBundleSize)
	if errors.Is(err, os.ErrNotExist) && p > 0 {
		b, err = c.get(ctx, layout.EntriesPath(n, 0), maxEntryBundleSize)
	}
	if err != nil {
		return nil, err
	}
	entries, err := splitEntryBundle(b)
	if err != nil {
		return nil, fmt.Errorf("entry bundle %d: %w", n, err)
	}
	if len(entries) < w {
		return nil, fmt.Errorf("entry bundle %d: %d entries, want %d", n, len(entries), w)
	}
	return entries[:w], nil
}

var errBadBundle = errors.New("malformed bundle")

// splitEntryBundle splits a tlog-tiles entry bundle: uint16 big-endian
// length || entry, repeated, at most 256 entries.
func splitEntryBundle(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 || len(out) == layout.EntryBundleWidth {
			return nil, errBadBundle
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return nil, errBadBundle
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out, nil
}

// MetadataBundle fetches metadata bundle n of w entries: uint32 big-endian
// length || bytes per entry (docs/spec/ledger-api.md).
func (c *ledgerClient) MetadataBundle(ctx context.Context, n uint64, w int) ([][]byte, error) {
	p := uint8(w % layout.EntryBundleWidth)
	b, err := c.get(ctx, "metadata/bundle/"+layout.NWithSuffix(0, n, p), maxMetadataBundleSize)
	if err != nil {
		return nil, err
	}
	return splitMetadataBundle(b, w)
}

// splitMetadataBundle splits a metadata bundle of exactly w files: uint32
// big-endian length || bytes, each at most maxMetadataSize.
func splitMetadataBundle(b []byte, w int) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 4 || len(out) == w {
			return nil, errBadBundle
		}
		m := binary.BigEndian.Uint32(b)
		if m > maxMetadataSize || uint64(len(b)) < 4+uint64(m) {
			return nil, errBadBundle
		}
		out = append(out, b[4:4+m])
		b = b[4+m:]
	}
	if len(out) != w {
		return nil, errBadBundle
	}
	return out, nil
}

// Metadata fetches the metadata file with the given SHA-256; nil, nil when
// the ledger does not have it.
func (c *ledgerClient) Metadata(ctx context.Context, sum [sha256.Size]byte) ([]byte, error) {
	b, err := c.get(ctx, "metadata/"+hex.EncodeToString(sum[:]), maxMetadataSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// metadataFor fetches the metadata file with the given SHA-256 from the
// ledger, for the dashboard's entry pages, and checks that its bytes hash
// to it. It returns nil, nil when the ledger does not serve it.
func (a *Auditor) metadataFor(ctx context.Context, sum [sha256.Size]byte) ([]byte, error) {
	b, err := a.ledger.Metadata(ctx, sum)
	if err != nil || b == nil {
		return nil, err
	}
	if sha256.Sum256(b) != sum {
		return nil, errors.New("the ledger served metadata that does not hash to the entry's sha256")
	}
	return b, nil
}
