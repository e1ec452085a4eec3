package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
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

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/evidence/signoff"
	ledger "github.com/shiplog/shiplog/log"
	"github.com/transparency-dev/tessera/api/layout"
)

// Limits of the HTTP API.
const (
	// MaxBody is the largest request body: a metadata file.
	MaxBody = ledger.MaxMetadataSize
	// DefaultWait and MaxWait bound how long publish waits for a proof.
	DefaultWait = 10 * time.Second
	MaxWait     = 60 * time.Second
)

const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cachePartial   = "public, max-age=60"
)

// Handler returns the ledger's HTTP API (docs/spec/ledger-api.md). Every
// body is capped at MaxBody bytes; the /v1/ API is rate limited per
// client address, and a request body is refused (503) before it is read
// when it would take the bytes in flight past the budget.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkpoint", n.getCheckpoint)
	mux.HandleFunc("GET /tile/", n.getTile)
	mux.HandleFunc("GET /metadata/bundle/", n.getMetadataBundle)
	mux.HandleFunc("GET /metadata/{sum}", n.getMetadata)
	v1 := http.NewServeMux()
	v1.HandleFunc("POST /v1/publish", n.postPublish)
	v1.HandleFunc("POST /v1/attest", n.postAttest)
	v1.HandleFunc("GET /v1/attestations", n.getAttestations)
	v1.HandleFunc("GET /v1/proof", n.getProof)
	v1.HandleFunc("GET /v1/consistency", n.getConsistency)
	v1.HandleFunc("GET /v1/witnesses", n.getWitnesses)
	v1.HandleFunc("GET /v1/repositories/", n.getRole)
	v1.HandleFunc("POST /v1/admin/repositories", n.postRegister)
	v1.HandleFunc("POST /v1/registrations/challenge", n.postChallenge)
	v1.HandleFunc("POST /v1/registrations", n.postRegistration)
	mux.Handle("/v1/", n.limiter.wrapHTTP(n.budget.wrapHTTP(v1)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { text(w, http.StatusOK, "ok") })
	mux.HandleFunc("GET /readyz", n.getReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{}))
	return http.MaxBytesHandler(mux, MaxBody)
}

// text writes a one-line text/plain message.
func text(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, strings.ReplaceAll(msg, "\n", " ")+"\n")
}

// fail maps a ledger error to its status (one switch: ledger.HTTPStatus)
// and writes its message; internal errors are not described to clients.
func (n *Node) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := ledger.HTTPStatus(err)
	msg := err.Error()
	if code == http.StatusInternalServerError {
		n.log.Error("request failed", "path", r.URL.Path, "err", err)
		msg = "internal error"
	}
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	text(w, code, msg)
}

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ledger.ErrBadRequest}, args...)...)
}

// getWitnesses answers what the ledger last heard from each policy witness
// (WitnessStatus), so that a vendor waiting for a cosigned checkpoint can
// report which witnesses cosigned and which did not answer.
func (n *Node) getWitnesses(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Witnesses []WitnessStatus `json:"witnesses"`
	}{Witnesses: []WitnessStatus{}}
	if wr, ok := n.cos.(interface{ Witnesses() []WitnessStatus }); ok {
		out.Witnesses = wr.Witnesses()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(out)
}

// getReady answers 200 only when the ledger accepts submissions and its
// log engine answers (for Trillian: the log server and its database).
func (n *Node) getReady(w http.ResponseWriter, r *http.Request) {
	if err := n.ledger.Ready(); err != nil {
		n.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := n.store.IntegratedSize(ctx); err != nil {
		n.log.Warn("readiness: log engine not answering", "err", err)
		text(w, http.StatusServiceUnavailable, "log engine unavailable")
		return
	}
	text(w, http.StatusOK, "ready")
}

func (n *Node) getCheckpoint(w http.ResponseWriter, r *http.Request) {
	cp, err := n.ledger.Checkpoint()
	if err != nil {
		text(w, http.StatusNotFound, "no cosigned checkpoint yet")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(cp)
}

// cosignedSize is the size readers may see: that of /checkpoint.
func (n *Node) cosignedSize() uint64 {
	s, _ := n.ledger.CosignedSize()
	return s
}

// tileRef is a parsed tlog-tiles resource path.
type tileRef struct {
	entries      bool
	level, index uint64
	width        uint8
}

// parseTilePath parses the part of a /tile/ path after "/tile/":
// "<L>/<N>[.p/<W>]" or "entries/<N>[.p/<W>]", in canonical form only (the
// encoding of c2sp.org/tlog-tiles: 3-digit groups with x prefixes, level
// 0-63, width 1-255).
func parseTilePath(rest string) (tileRef, bool) {
	level, idxPath, ok := strings.Cut(rest, "/")
	if !ok || len(rest) > 128 {
		return tileRef{}, false
	}
	if level == "entries" {
		index, width, err := layout.ParseTileIndexPartial(idxPath)
		if err != nil || layout.EntriesPath(index, width) != "tile/entries/"+idxPath {
			return tileRef{}, false
		}
		return tileRef{entries: true, index: index, width: width}, true
	}
	l, index, width, err := layout.ParseTileLevelIndexPartial(level, idxPath)
	if err != nil || layout.TilePath(l, index, width) != "tile/"+rest {
		return tileRef{}, false
	}
	return tileRef{level: l, index: index, width: width}, true
}

// getTile serves /tile/<L>/<N>[.p/<W>] and /tile/entries/<N>[.p/<W>]
// (c2sp.org/tlog-tiles) for resources within the cosigned tree only, so
// the read API never reveals entries no published checkpoint covers.
func (n *Node) getTile(w http.ResponseWriter, r *http.Request) {
	ref, ok := parseTilePath(strings.TrimPrefix(r.URL.Path, "/tile/"))
	if !ok || !n.covers(ref.level, ref.index, ref.width) {
		text(w, http.StatusNotFound, "no such tile")
		return
	}
	var b []byte
	var err error
	if ref.entries {
		b, err = n.store.ReadEntryBundle(r.Context(), ref.index, ref.width)
	} else {
		b, err = n.store.ReadTile(r.Context(), ref.level, ref.index, ref.width)
	}
	n.serveResource(w, r, b, err, ref.width)
}

// covers reports whether the tile (level, index, width) is part of the
// tree of the cosigned size: its last hash is a complete subtree of it.
func (n *Node) covers(level, index uint64, width uint8) bool {
	w := uint64(width)
	if w == 0 {
		w = 256
	}
	if level > 7 { // 256^8 leaves exceed any size
		return false
	}
	need := (index*256 + w) << (8 * level)
	if need>>(8*level) != index*256+w { // overflow
		return false
	}
	return need <= n.cosignedSize()
}

func (n *Node) serveResource(w http.ResponseWriter, r *http.Request, b []byte, err error, width uint8) {
	if err != nil {
		if errors.Is(err, ledger.ErrNotFound) {
			text(w, http.StatusNotFound, "not found")
			return
		}
		n.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if width == 0 {
		w.Header().Set("Cache-Control", cacheImmutable)
	} else {
		w.Header().Set("Cache-Control", cachePartial)
	}
	w.Write(b)
}

func (n *Node) getMetadata(w http.ResponseWriter, r *http.Request) {
	sum, err := parseHash(r.PathValue("sum"))
	if err != nil {
		text(w, http.StatusNotFound, "no such metadata")
		return
	}
	b, err := n.ledger.Metadata(sum)
	if err != nil {
		if errors.Is(err, ledger.ErrNotFound) {
			text(w, http.StatusNotFound, "no such metadata")
			return
		}
		n.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", cacheImmutable)
	w.Write(b)
}

// getMetadataBundle serves /metadata/bundle/<N>[.p/<W>]: for each entry of
// entry bundle N (of width W), a uint32 big-endian length and the bytes
// the entry commits to (a metadata file, or a sign-off envelope), streamed
// one file at a time.
func (n *Node) getMetadataBundle(w http.ResponseWriter, r *http.Request) {
	ref, ok := parseTilePath("entries/" + strings.TrimPrefix(r.URL.Path, "/metadata/bundle/"))
	if !ok || !n.covers(0, ref.index, ref.width) {
		text(w, http.StatusNotFound, "no such metadata bundle")
		return
	}
	index, width := ref.index, ref.width
	b, err := n.store.ReadEntryBundle(r.Context(), index, width)
	if err != nil {
		n.serveResource(w, r, nil, err, width)
		return
	}
	raw, err := ledger.ParseBundle(b)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	sums := make([][sha256.Size]byte, len(raw))
	for i, e := range raw {
		pe, err := ledger.ParseRecord(index*256+uint64(i), e)
		if err != nil {
			n.fail(w, r, fmt.Errorf("entry %d: %w", index*256+uint64(i), err))
			return
		}
		sums[i] = pe.Content() // metadata or a sign-off envelope
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if width == 0 {
		w.Header().Set("Cache-Control", cacheImmutable)
	} else {
		w.Header().Set("Cache-Control", cachePartial)
	}
	for _, s := range sums {
		m, err := n.ledger.MetadataStore().Get(s)
		if err != nil { // headers are sent: abort the response
			n.log.Error("metadata bundle: missing logged metadata", "sha256", hex.EncodeToString(s[:]), "err", err)
			panic(http.ErrAbortHandler)
		}
		w.Write(binary.BigEndian.AppendUint32(nil, uint32(len(m))))
		w.Write(m)
	}
}

func parseHash(s string) ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	if len(s) != 2*sha256.Size || strings.ToLower(s) != s {
		return h, badRequest("want 64 lowercase hex digits")
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, badRequest("want 64 lowercase hex digits")
	}
	return h, nil
}

// parseWait reads the wait parameter: a Go duration, 0 to MaxWait.
func parseWait(q url.Values, def time.Duration) (time.Duration, error) {
	s := q.Get("wait")
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > MaxWait {
		return 0, badRequest("wait must be a duration from 0 to %s", MaxWait)
	}
	return d, nil
}

func parseUint(s, name string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(v, 10) != s {
		return 0, badRequest("%s must be a decimal number", name)
	}
	return v, nil
}

// readBody reads a request body of at most MaxBody bytes: into one buffer
// of its declared length when it has one (no growth, so a body held
// half-sent costs its declared size once), else growing as it arrives.
func readBody(r *http.Request) ([]byte, error) {
	if n := r.ContentLength; n > MaxBody {
		return nil, ledger.ErrTooLarge
	} else if n >= 0 {
		b := make([]byte, n)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, badRequest("couldn't read body")
		}
		return b, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || len(b) > MaxBody {
		return nil, ledger.ErrTooLarge
	}
	if err != nil {
		return nil, badRequest("couldn't read body")
	}
	return b, nil
}

type receiptJSON struct {
	Index     uint64 `json:"index"`
	LeafHash  string `json:"leaf_hash"`
	Entry     string `json:"entry"`
	Duplicate bool   `json:"duplicate"`
	Proof     string `json:"proof"`
}

func writeReceipt(w http.ResponseWriter, rc *ledger.Receipt) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(receiptJSON{
		Index: rc.Index, LeafHash: hex.EncodeToString(rc.LeafHash[:]), Entry: string(rc.Entry),
		Duplicate: rc.Duplicate, Proof: string(rc.Proof),
	})
}

func (n *Node) postPublish(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	wait, err := parseWait(q, DefaultWait)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	body, err := readBody(r)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	rc, err := n.ledger.Publish(r.Context(), q.Get("repo"), q.Get("role"), body, wait)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	writeReceipt(w, rc)
}

func (n *Node) postRegister(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !n.tokenAllows(auth, q.Get("id")) {
		w.Header().Set("WWW-Authenticate", "Bearer")
		text(w, http.StatusUnauthorized, "an operator token for this repository id is required")
		return
	}
	wait, err := parseWait(q, DefaultWait)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	body, err := readBody(r)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	rc, err := n.ledger.Register(r.Context(), q.Get("id"), body, wait)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	n.log.Info("repository registered", "repo", q.Get("id"), "index", rc.Index, "duplicate", rc.Duplicate)
	writeReceipt(w, rc)
}

// proofIndex resolves the index= or leaf= parameter.
func (n *Node) proofIndex(q url.Values) (uint64, error) {
	switch {
	case q.Has("index") && !q.Has("leaf"):
		return parseUint(q.Get("index"), "index")
	case q.Has("leaf") && !q.Has("index"):
		h, err := parseHash(q.Get("leaf"))
		if err != nil {
			return 0, err
		}
		return n.ledger.LeafIndex(h)
	default:
		return 0, badRequest("want exactly one of index= or leaf=")
	}
}

func (n *Node) getProof(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	wait, err := parseWait(q, 0)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	idx, err := n.proofIndex(q)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	var p []byte
	if wait > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		p, err = n.ledger.WaitProof(ctx, idx)
		cancel()
	} else {
		p, err = n.ledger.Proof(r.Context(), idx)
	}
	if err != nil {
		n.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(p)
}

func (n *Node) getConsistency(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	oldSize, err := parseUint(q.Get("old"), "old")
	if err != nil {
		n.fail(w, r, err)
		return
	}
	newSize, err := parseUint(q.Get("new"), "new")
	if err != nil {
		n.fail(w, r, err)
		return
	}
	hs, err := n.ledger.Consistency(r.Context(), oldSize, newSize)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", cacheImmutable)
	var b strings.Builder
	for _, h := range hs {
		b.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	io.WriteString(w, b.String())
}

// validRoleQuery checks a repository id and role name against the entry
// alphabet and its limits (1-255 bytes each) before any lookup.
func validRoleQuery(repo, role string) error {
	probe := entry.Entry{Repo: repo, Role: role, Version: 1, Length: 1}
	if probe.Validate() != nil {
		return badRequest("the repository id and the role name must be 1-255 printable ASCII characters without spaces")
	}
	return nil
}

// getRole serves /v1/repositories/<id>/roles/<role>; the id and role may be
// percent-encoded (an id holding "/roles/" must encode its slashes).
func (n *Node) getRole(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.EscapedPath(), "/v1/repositories/")
	i := strings.LastIndex(p, "/roles/")
	if i < 0 {
		text(w, http.StatusNotFound, "want /v1/repositories/<id>/roles/<role>")
		return
	}
	repo, err1 := url.PathUnescape(p[:i])
	role, err2 := url.PathUnescape(p[i+len("/roles/"):])
	if err1 != nil || err2 != nil {
		n.fail(w, r, badRequest("malformed path"))
		return
	}
	if err := validRoleQuery(repo, role); err != nil {
		n.fail(w, r, err)
		return
	}
	st, err := n.ledger.Role(repo, role)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	json.NewEncoder(w).Encode(map[string]any{"version": st.Version, "sha256": hex.EncodeToString(st.SHA256[:]), "index": st.Index})
}

func (n *Node) postAttest(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	wait, err := parseWait(q, DefaultWait)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	if r.ContentLength > signoff.MaxEnvelopeSize {
		n.fail(w, r, fmt.Errorf("%w: a sign-off envelope is at most %d bytes", ledger.ErrTooLarge, signoff.MaxEnvelopeSize))
		return
	}
	body, err := readBody(r)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	rc, err := n.ledger.Attest(r.Context(), q.Get("repo"), body, wait)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	writeReceipt(w, rc)
}

// parseAttestationsQuery reads repo=, subject= and the repeatable key=
// of GET /v1/attestations; no other parameter is accepted.
func parseAttestationsQuery(q url.Values) (repo string, subject [sha256.Size]byte, keys []signoff.KeyID, err error) {
	for k, v := range q {
		if (k != "key" && len(v) != 1) || (k != "repo" && k != "subject" && k != "key") {
			return "", subject, nil, badRequest("want repo=, subject= and key= parameters only")
		}
	}
	if subject, err = parseHash(q.Get("subject")); err != nil {
		return "", subject, nil, badRequest("subject: want 64 lowercase hex digits")
	}
	if len(q["key"]) > ledger.MaxAttestationKeys {
		return "", subject, nil, badRequest("at most %d key= parameters", ledger.MaxAttestationKeys)
	}
	for _, k := range q["key"] {
		id, err := signoff.ParseKeyID(k)
		if err != nil {
			return "", subject, nil, badRequest("key: want 64 lowercase hex digits")
		}
		keys = append(keys, id)
	}
	return q.Get("repo"), subject, keys, nil
}

// getAttestations serves the evidence file of one target digest
// (docs/spec/signoff.md, "The ledger").
func (n *Node) getAttestations(w http.ResponseWriter, r *http.Request) {
	repo, subject, keys, err := parseAttestationsQuery(r.URL.Query())
	if err != nil {
		n.fail(w, r, err)
		return
	}
	ev, err := n.ledger.Attestations(r.Context(), repo, subject, keys)
	if err != nil {
		n.fail(w, r, err)
		return
	}
	b, err := ev.Format()
	if err != nil {
		n.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b)
}
