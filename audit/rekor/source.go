package rekor

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/shiplog/shiplog/client/sigstore"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/transparency-dev/tessera/api/layout"
	"golang.org/x/sync/errgroup"
)

// Size caps of what the auditor reads, derived from the formats.
const (
	// maxEntryBundle is 256 entries of at most 65,535 bytes with their
	// uint16 length prefixes (c2sp.org/tlog-tiles).
	maxEntryBundle = layout.EntryBundleWidth * (2 + 65535)
	// maxV1Entry bounds one Rekor v1 API entry answer: a body of at most
	// sigstore.MaxBodySize in base64 plus its verification data.
	maxV1Entry = 4*sigstore.MaxBodySize/3 + 64<<10
	// maxV1LogInfo bounds GET /api/v1/log (a checkpoint and inactive shards).
	maxV1LogInfo = checkpoint.MaxNoteSize + 64<<10
)

// source is where a log's checkpoint and entries come from: Rekor v2's
// tlog-tiles (tilesSource) or Rekor v1's API (apiSource). Neither is
// trusted: the auditor checks the checkpoint under the policy and that the
// entries hash to its root.
type source interface {
	// Checkpoint returns the latest signed checkpoint note.
	Checkpoint(ctx context.Context) ([]byte, error)
	// Entries returns the bodies of leaves [start, end) of the tree of the
	// given size, in order.
	Entries(ctx context.Context, start, end, size uint64) ([][]byte, error)
}

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

// tilesSource reads a Rekor v2 log (or any c2sp.org/tlog-tiles log) under
// base: /checkpoint and /tile/entries/<N>[.p/<W>].
type tilesSource struct {
	base string
	hc   *http.Client
}

func (s *tilesSource) Checkpoint(ctx context.Context) ([]byte, error) {
	return get(ctx, s.hc, s.base+"/checkpoint", checkpoint.MaxNoteSize)
}

func (s *tilesSource) Entries(ctx context.Context, start, end, size uint64) ([][]byte, error) {
	var out [][]byte
	for n := start / layout.EntryBundleWidth; n*layout.EntryBundleWidth < end; n++ {
		p := layout.PartialTileSize(0, n, size)
		b, err := get(ctx, s.hc, s.base+"/"+layout.EntriesPath(n, p), maxEntryBundle)
		if err != nil {
			return nil, err
		}
		es, err := splitBundle(b)
		if err != nil {
			return nil, fmt.Errorf("entry bundle %d: %w", n, err)
		}
		want := int(p)
		if want == 0 {
			want = layout.EntryBundleWidth
		}
		if len(es) != want {
			return nil, fmt.Errorf("entry bundle %d has %d entries, want %d", n, len(es), want)
		}
		for i, e := range es {
			if idx := n*layout.EntryBundleWidth + uint64(i); idx >= start && idx < end {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// splitBundle splits a tlog-tiles entry bundle: uint16 big-endian length,
// then the entry, repeated.
func splitBundle(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, errors.New("truncated entry bundle")
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return nil, errors.New("truncated entry bundle")
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
		if len(out) > layout.EntryBundleWidth {
			return nil, errors.New("entry bundle has more than 256 entries")
		}
	}
	return out, nil
}

// apiSource reads a Rekor v1 log through its REST API: GET /api/v1/log
// for the signed checkpoint of the active shard, and GET
// /api/v1/log/entries?logIndex=<global index> for each entry. A leaf's
// global index is its index in the active tree plus the sizes of the
// inactive shards the server reports.
type apiSource struct {
	base    string
	hc      *http.Client
	workers int
	offset  int64 // sum of the inactive shards' sizes, from the last Checkpoint
}

type v1LogInfo struct {
	SignedTreeHead string `json:"signedTreeHead"`
	InactiveShards []struct {
		TreeSize int64 `json:"treeSize"`
	} `json:"inactiveShards"`
}

func (s *apiSource) Checkpoint(ctx context.Context) ([]byte, error) {
	b, err := get(ctx, s.hc, s.base+"/api/v1/log", maxV1LogInfo)
	if err != nil {
		return nil, err
	}
	var info v1LogInfo
	if err := json.Unmarshal(b, &info); err != nil || info.SignedTreeHead == "" {
		return nil, errors.New("malformed Rekor log info")
	}
	var off int64
	for _, sh := range info.InactiveShards {
		if sh.TreeSize < 0 || off+sh.TreeSize < off {
			return nil, errors.New("malformed Rekor shard size")
		}
		off += sh.TreeSize
	}
	s.offset = off
	return []byte(info.SignedTreeHead), nil
}

func (s *apiSource) Entries(ctx context.Context, start, end, _ uint64) ([][]byte, error) {
	out := make([][]byte, end-start)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(s.workers, 1))
	for i := start; i < end; i++ {
		g.Go(func() error {
			body, err := s.entry(ctx, s.offset+int64(i))
			out[i-start] = body
			return err
		})
	}
	return out, g.Wait()
}

// entry returns the body of the entry at global index i.
func (s *apiSource) entry(ctx context.Context, i int64) ([]byte, error) {
	u := s.base + "/api/v1/log/entries?logIndex=" + url.QueryEscape(strconv.FormatInt(i, 10))
	b, err := get(ctx, s.hc, u, maxV1Entry)
	if err != nil {
		return nil, err
	}
	return parseV1Entry(b, i)
}

// parseV1Entry parses Rekor v1's answer for the entry at global index i:
// a JSON object of one entry, whose logIndex must be i, and its body.
func parseV1Entry(b []byte, i int64) ([]byte, error) {
	var m map[string]struct {
		Body     string `json:"body"`
		LogIndex int64  `json:"logIndex"`
	}
	if err := json.Unmarshal(b, &m); err != nil || len(m) != 1 {
		return nil, fmt.Errorf("entry %d: malformed Rekor answer", i)
	}
	for _, e := range m {
		if e.LogIndex != i {
			return nil, fmt.Errorf("asked for entry %d, Rekor answered with entry %d", i, e.LogIndex)
		}
		body, err := base64.StdEncoding.DecodeString(e.Body)
		if err != nil || len(body) == 0 || len(body) > sigstore.MaxBodySize {
			return nil, fmt.Errorf("entry %d: malformed body", i)
		}
		return body, nil
	}
	return nil, nil // unreachable: len(m) == 1
}

func trimBase(u string) (string, error) {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return "", fmt.Errorf("invalid log URL %q: want http(s)://host[/prefix]", u)
	}
	return strings.TrimSuffix(u, "/"), nil
}
