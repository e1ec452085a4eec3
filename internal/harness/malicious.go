package harness

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/transparency-dev/tessera/api/layout"
)

// Malicious is an HTTP wrapper in front of a ledger that misbehaves on
// demand: it can switch to another backend (a rewritten history), serve a
// given checkpoint, drop an entry from the entry bundles, and serve
// metadata that does not match its hash. The zero misbehaviour is honest.
// It is safe for concurrent use.
type Malicious struct {
	mu         sync.Mutex
	backend    http.Handler
	checkpoint []byte
	drop       int64 // index of the entry to drop, -1 for none
	corrupt    bool
	badTiles   bool
}

// NewMalicious wraps backend, honest until told otherwise.
func NewMalicious(backend http.Handler) *Malicious {
	return &Malicious{backend: backend, drop: -1}
}

// SetBackend serves another log from now on (a history rewrite when it is
// signed with the same key).
func (m *Malicious) SetBackend(h http.Handler) { m.mu.Lock(); m.backend = h; m.mu.Unlock() }

// ServeCheckpoint serves cp as the checkpoint from now on (nil: the
// backend's).
func (m *Malicious) ServeCheckpoint(cp []byte) { m.mu.Lock(); m.checkpoint = cp; m.mu.Unlock() }

// DropEntry removes the entry at index from the entry bundles served.
func (m *Malicious) DropEntry(index int64) { m.mu.Lock(); m.drop = index; m.mu.Unlock() }

// CorruptTiles flips a byte of every hash tile served (not entry bundles).
func (m *Malicious) CorruptTiles(on bool) { m.mu.Lock(); m.badTiles = on; m.mu.Unlock() }

// CorruptMetadata makes every metadata file served differ from its hash
// (one byte appended), in bundles and singly.
func (m *Malicious) CorruptMetadata(on bool) { m.mu.Lock(); m.corrupt = on; m.mu.Unlock() }

// ServeHTTP serves the backend with the misbehaviours switched on.
func (m *Malicious) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	backend, cp, drop, corrupt, badTiles := m.backend, m.checkpoint, m.drop, m.corrupt, m.badTiles
	m.mu.Unlock()
	p := r.URL.Path
	switch {
	case badTiles && strings.HasPrefix(p, "/tile/") && !strings.HasPrefix(p, "/tile/entries/"):
		body, code := record(backend, r)
		if code != http.StatusOK {
			w.WriteHeader(code)
			return
		}
		if len(body) > 0 {
			body[len(body)-1] ^= 1
		}
		w.Write(body)
		return
	case p == "/checkpoint" && cp != nil:
		w.Write(cp)
		return
	case strings.HasPrefix(p, "/tile/entries/") && drop >= 0:
		n, _, err := layout.ParseTileIndexPartial(strings.TrimPrefix(p, "/tile/entries/"))
		if err == nil && uint64(drop)/layout.EntryBundleWidth == n {
			body, code := record(backend, r)
			if code != http.StatusOK {
				w.WriteHeader(code)
				return
			}
			w.Write(dropFromBundle(body, int(uint64(drop)%layout.EntryBundleWidth)))
			return
		}
	case strings.HasPrefix(p, "/metadata/") && corrupt:
		body, code := record(backend, r)
		if code != http.StatusOK {
			w.WriteHeader(code)
			return
		}
		if strings.HasPrefix(p, "/metadata/bundle/") {
			w.Write(corruptBundle(body))
		} else {
			w.Write(append(body, ' '))
		}
		return
	}
	backend.ServeHTTP(w, r)
}

func record(h http.Handler, r *http.Request) ([]byte, int) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec.Body.Bytes(), rec.Code
}

// dropFromBundle removes entry i of an entry bundle and repeats the last
// entry at the end, so that the bundle keeps its width.
func dropFromBundle(b []byte, i int) []byte {
	var entries [][]byte
	for len(b) >= 2 {
		n := int(binary.BigEndian.Uint16(b))
		entries = append(entries, b[2:2+n])
		b = b[2+n:]
	}
	if i >= len(entries) {
		return b
	}
	entries = append(append(entries[:i:i], entries[i+1:]...), entries[len(entries)-1])
	var out bytes.Buffer
	for _, e := range entries {
		binary.Write(&out, binary.BigEndian, uint16(len(e)))
		out.Write(e)
	}
	return out.Bytes()
}

func corruptBundle(b []byte) []byte {
	var out bytes.Buffer
	for len(b) >= 4 {
		n := binary.BigEndian.Uint32(b)
		md := append(bytes.Clone(b[4:4+n]), ' ')
		binary.Write(&out, binary.BigEndian, uint32(len(md)))
		out.Write(md)
		b = b[4+n:]
	}
	return out.Bytes()
}

// WitnessServer serves one checkpoint at a witness monitoring endpoint,
// GET /<hex sha256(origin)>/checkpoint, like a C2SP witness.
type WitnessServer struct {
	Origin string
	mu     sync.Mutex
	cp     []byte
}

// Set sets the checkpoint served.
func (s *WitnessServer) Set(cp []byte) { s.mu.Lock(); s.cp = cp; s.mu.Unlock() }

// ServeHTTP serves the monitoring endpoint; anything else is 404.
func (s *WitnessServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sum := sha256.Sum256([]byte(s.Origin))
	s.mu.Lock()
	cp := s.cp
	s.mu.Unlock()
	if r.URL.Path != "/"+hex.EncodeToString(sum[:])+"/checkpoint" || cp == nil {
		http.NotFound(w, r)
		return
	}
	w.Write(cp)
}
