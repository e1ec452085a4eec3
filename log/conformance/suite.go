package conformance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shiplog/shiplog/audit"
	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/audit/store"
	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/shiplog/shiplog/internal/harness/kit"
	ledgerv1 "github.com/shiplog/shiplog/proto/ledger/v1"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// httpClient keeps its connections (Go's default transport keeps only two
// idle per host, so forty concurrent publishers churn through new ones)
// and stays under the ledger's default of 64 connections per client
// address, as a well-behaved client does; past it the ledger closes new
// connections at accept.
var httpClient = &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{
	MaxConnsPerHost:     48,
	MaxIdleConnsPerHost: 48,
	IdleConnTimeout:     90 * time.Second,
}}

var expires = time.Now().Add(365 * 24 * time.Hour)

// suite is one run of Run against one ledger.
type suite struct {
	t    *testing.T
	l    *Ledger
	fw   *kit.Repo
	last uint64 // index of the last entry appended by a sequential step
}

const fw = "example.com/fw"

// Run runs the suite against a ledger from start. The steps share the
// ledger and run in order; a failed step stops the suite.
func Run(t *testing.T, start Factory) {
	s := &suite{t: t, l: start(t), fw: kit.NewRandomRepo(expires)}
	steps := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"register", s.register},
		{"publish-and-prove", s.publishAndProve},
		{"refused-submissions-change-nothing", s.refused},
		{"dedup", s.dedup},
		{"conflicting-versions-across-replicas", s.conflictingVersions},
		{"root-rotation-and-delegation", s.rotationAndDelegation},
		{"sign-off-attestations", s.attestations},
		{"many-repositories-concurrently", s.manyRepositories},
		{"read-api", s.readAPI},
		{"auditor-replays-everything", s.auditor},
	}
	for _, st := range steps {
		if !t.Run(st.name, st.f) {
			t.Fatalf("step %s failed; later steps depend on it", st.name)
		}
	}
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, u string, body []byte, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

type receipt struct {
	Index     uint64 `json:"index"`
	LeafHash  string `json:"leaf_hash"`
	Entry     string `json:"entry"`
	Duplicate bool   `json:"duplicate"`
	Proof     string `json:"proof"`
}

func decode(t *testing.T, r response) receipt {
	t.Helper()
	var rc receipt
	if r.code == 200 {
		if err := json.Unmarshal(r.body, &rc); err != nil {
			t.Fatal(err)
		}
	}
	return rc
}

func (s *suite) registerAt(t *testing.T, base, repo string, root []byte, token string) (receipt, response) {
	t.Helper()
	r := do(t, "POST", base+"/v1/admin/repositories?wait=0&id="+url.QueryEscape(repo), root, "Authorization", "Bearer "+token)
	return decode(t, r), r
}

func (s *suite) publishAt(t *testing.T, base, repo, role string, data []byte, wait string) (receipt, response) {
	t.Helper()
	r := do(t, "POST", fmt.Sprintf("%s/v1/publish?repo=%s&role=%s&wait=%s", base, url.QueryEscape(repo), url.QueryEscape(role), wait), data)
	return decode(t, r), r
}

func (s *suite) register(t *testing.T) {
	l := s.l
	rc, r := s.registerAt(t, l.replica(0), fw, s.fw.RootBytes(), l.Token)
	if r.code != 200 || rc.Duplicate {
		t.Fatalf("register: %d %s", r.code, r.body)
	}
	s.last = rc.Index
	for i := range l.URLs {
		again, r := s.registerAt(t, l.replica(i), fw, s.fw.RootBytes(), l.Token)
		if r.code != 200 || !again.Duplicate || again.Index != rc.Index {
			t.Errorf("replica %d: registering the same root again: %d %+v", i, r.code, again)
		}
	}
	if _, r := s.registerAt(t, l.replica(1), fw, kit.NewRandomRepo(expires).RootBytes(), l.Token); r.code != 409 {
		t.Errorf("registering another root for %s: %d, want 409", fw, r.code)
	}
	if _, r := s.registerAt(t, l.replica(0), "example.com/other", kit.NewRandomRepo(expires).RootBytes(), "wrong"); r.code != 401 {
		t.Errorf("registering with a wrong token: %d, want 401", r.code)
	}
}

// publishAndProve publishes targets v1..v3 through each replica in turn
// and checks each receipt's proof: included under a checkpoint cosigned by
// the witness quorum.
func (s *suite) publishAndProve(t *testing.T) {
	for v := int64(1); v <= 3; v++ {
		b := s.fw.Targets(v)
		rc, r := s.publishAt(t, s.l.replica(int(v)), fw, "targets", b, "20s")
		if r.code != 200 || rc.Duplicate || rc.Index != s.last+1 {
			t.Fatalf("targets v%d: %d %s (want index %d)", v, r.code, r.body, s.last+1)
		}
		s.last = rc.Index
		if rc.Proof == "" {
			t.Fatalf("targets v%d: no proof within the wait", v)
		}
		inc, err := evidence.VerifyEntry(fw, "targets", uint64(v), b, []byte(rc.Proof), s.l.Policy)
		if err != nil {
			t.Fatalf("targets v%d: proof does not verify: %v", v, err)
		}
		if n := len(inc.Checkpoint.Cosignatures); n < 2 {
			t.Errorf("targets v%d: %d cosignatures, want both witnesses", v, n)
		}
	}
}

// refused submits every kind of bad submission to every replica; each
// gets its status and nothing is logged.
func (s *suite) refused(t *testing.T) {
	f := s.fw
	cases := []struct {
		name       string
		repo, role string
		body       []byte
		code       int
	}{
		{"malformed", fw, "targets", []byte("{not json"), 400},
		{"empty", fw, "targets", nil, 400},
		{"oversized", fw, "targets", bytes.Repeat([]byte(" "), 5<<20+1), 413},
		{"signed-by-wrong-key", fw, "targets", f.Targets(4, kit.NewKey()), 403},
		{"under-signed-root-rotation", fw, "root", f.UnderSignedRotation(), 403},
		{"wrong-role-root-as-targets", fw, "targets", f.RootBytes(), 400},
		{"wrong-role-targets-as-root", fw, "root", f.Targets(4), 400},
		{"snapshot-refused", fw, "snapshot", f.Snapshot(1), 400},
		{"timestamp-refused", fw, "timestamp", f.Snapshot(1), 400},
		{"rolled-back", fw, "targets", f.Targets(2, f.TargetsKeys[0], kit.NewKey()), 409},
		{"replayed-different-bytes", fw, "targets", f.Targets(3, f.TargetsKeys[0], kit.NewKey()), 409},
		{"expired", fw, "targets", f.TargetsExpiring(4, time.Now().Add(-time.Hour)), 410},
		{"unknown-repository", "example.com/nobody", "targets", f.Targets(4), 404},
		{"not-delegated", fw, "apps", f.DelegatedTargets("apps", 1, kit.NewKey()), 403},
		{"bad-role-name", fw, "has space", f.Targets(4), 400},
	}
	for i, c := range cases {
		for j := range s.l.URLs {
			if _, r := s.publishAt(t, s.l.replica(i+j), c.repo, c.role, c.body, "0"); r.code != c.code {
				t.Errorf("%s on replica %d: %d %s, want %d", c.name, (i+j)%len(s.l.URLs), r.code, r.body, c.code)
			}
		}
	}
	role := do(t, "GET", s.l.replica(0)+"/v1/repositories/"+fw+"/roles/targets", nil)
	if role.code != 200 || !strings.Contains(string(role.body), `"version":3`) {
		t.Errorf("targets after refusals: %d %s", role.code, role.body)
	}
}

// dedup resubmits logged bytes to every replica, and one new version to
// all replicas at once: one entry each, every caller gets its index.
func (s *suite) dedup(t *testing.T) {
	for i := range s.l.URLs {
		rc, r := s.publishAt(t, s.l.replica(i), fw, "targets", s.fw.Targets(3), "0")
		if r.code != 200 || !rc.Duplicate || rc.Index != s.last {
			t.Errorf("replica %d: resubmitted v3: %d %+v, want duplicate of %d", i, r.code, rc, s.last)
		}
	}
	v4 := s.fw.Targets(4)
	rcs := make([]receipt, 4*len(s.l.URLs))
	codes := make([]int, len(rcs))
	var wg sync.WaitGroup
	for i := range rcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r response
			rcs[i], r = s.publishAt(t, s.l.replica(i), fw, "targets", v4, "0")
			codes[i] = r.code
		}()
	}
	wg.Wait()
	fresh := 0
	for i, rc := range rcs {
		if codes[i] != 200 || rc.Index != s.last+1 {
			t.Errorf("concurrent v4 #%d: %d index %d, want 200 and %d", i, codes[i], rc.Index, s.last+1)
		}
		if !rc.Duplicate {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("concurrent identical v4: %d fresh entries, want 1", fresh)
	}
	s.last++
}

// conflictingVersions sends two different, validly signed copies of the
// same version to two replicas at once, several times: exactly one is
// logged, the other refused as a replay (409), so the log never holds two
// versions of one role — the split view a vendor's stolen key would need.
func (s *suite) conflictingVersions(t *testing.T) {
	for v := int64(5); v <= 9; v++ {
		a, b := s.fw.Targets(v, s.fw.TargetsKeys[0], kit.NewKey()), s.fw.Targets(v, s.fw.TargetsKeys[0], kit.NewKey())
		var ra, rb response
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _, ra = s.publishAt(t, s.l.replica(0), fw, "targets", a, "0") }()
		go func() { defer wg.Done(); _, rb = s.publishAt(t, s.l.replica(1), fw, "targets", b, "0") }()
		wg.Wait()
		if !(ra.code == 200 && rb.code == 409 || ra.code == 409 && rb.code == 200) {
			t.Fatalf("two copies of v%d: %d and %d, want one 200 and one 409", v, ra.code, rb.code)
		}
		s.last++
	}
}

func (s *suite) rotationAndDelegation(t *testing.T) {
	rot := s.fw.RotateRoot()
	if rc, r := s.publishAt(t, s.l.replica(0), fw, "root", rot, "0"); r.code != 200 || rc.Index != s.last+1 {
		t.Fatalf("root v2: %d %s", r.code, r.body)
	}
	s.last++
	s.fw.Delegate("apps")
	if _, r := s.publishAt(t, s.l.replica(1), fw, "targets", s.fw.Targets(10), "0"); r.code != 200 {
		t.Fatalf("targets v10 delegating apps: %d %s", r.code, r.body)
	}
	s.last++
	apps := s.fw.DelegatedTargets("apps", 1)
	rc, r := s.publishAt(t, s.l.replica(2), fw, "apps", apps, "20s")
	if r.code != 200 || rc.Index != s.last+1 || rc.Proof == "" {
		t.Fatalf("apps v1: %d %s", r.code, r.body)
	}
	s.last++
	if _, err := evidence.VerifyEntry(fw, "apps", 1, apps, []byte(rc.Proof), s.l.Policy); err != nil {
		t.Fatal(err)
	}
	if _, r := s.publishAt(t, s.l.replica(0), fw, "apps", s.fw.DelegatedTargets("apps", 2, kit.NewKey()), "0"); r.code != 403 {
		t.Errorf("apps v2 signed by a key apps does not have: %d", r.code)
	}
}

// manyRepositories registers repositories and publishes ten versions of
// each concurrently through all replicas, past one full tile.
func (s *suite) manyRepositories(t *testing.T) {
	const repos, versions = 40, 8
	seen := make(chan uint64, repos*(versions+1))
	var wg sync.WaitGroup
	for i := 0; i < repos; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("example.com/r%02d", i)
			repo := kit.NewRandomRepo(expires)
			rc, r := s.registerAt(t, s.l.replica(i), name, repo.RootBytes(), s.l.Token)
			if r.code != 200 {
				t.Errorf("register %s: %d %s", name, r.code, r.body)
				return
			}
			seen <- rc.Index
			for v := int64(1); v <= versions; v++ {
				rc, r := s.publishAt(t, s.l.replica(i+int(v)), name, "targets", repo.Targets(v), "0")
				if r.code != 200 || rc.Duplicate {
					t.Errorf("%s targets v%d: %d %s", name, v, r.code, r.body)
					return
				}
				seen <- rc.Index
			}
		}()
	}
	wg.Wait()
	close(seen)
	got := map[uint64]bool{}
	for idx := range seen {
		if got[idx] {
			t.Errorf("index %d given twice", idx)
		}
		got[idx] = true
	}
	if len(got) != repos*(versions+1) {
		t.Fatalf("%d entries, want %d", len(got), repos*(versions+1))
	}
	s.last += uint64(len(got))
}

// checkpointAt waits until the replica serves a cosigned checkpoint of at
// least size, and returns it verified under the policy.
func (s *suite) checkpointAt(t *testing.T, base string, size uint64) (*evidence.Checkpoint, []byte) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := do(t, "GET", base+"/checkpoint", nil)
		if r.code == 200 {
			cp, err := evidence.VerifyCheckpoint(r.body, s.l.Policy)
			if err != nil {
				t.Fatalf("%s/checkpoint does not verify under the policy: %v", base, err)
			}
			if cp.Size >= size {
				return cp, r.body
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no cosigned checkpoint of size %d within 30s", base, size)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readAPI checks the tlog-tiles read API of every replica against the
// cosigned checkpoint: entry bundles rebuild its root hash, level-0 tiles
// are the leaf hashes, metadata bundles and files match the entries,
// proofs verify, and nothing beyond the checkpoint is served.
func (s *suite) readAPI(t *testing.T) {
	size := s.last + 1
	first, _ := s.checkpointAt(t, s.l.replica(0), 1)
	if first.Size < size {
		first, _ = s.checkpointAt(t, s.l.replica(0), size)
	}
	size = first.Size
	base := s.l.replica(0)
	entries := s.entries(t, base, size)
	leaves := make([][]byte, len(entries))
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	cr := rf.NewEmptyRange(0)
	for i, e := range entries {
		leaves[i] = rfc6962.DefaultHasher.HashLeaf(e)
		if err := cr.Append(leaves[i], nil); err != nil {
			t.Fatal(err)
		}
	}
	root, err := cr.GetRootHash(nil)
	if err != nil || !bytes.Equal(root, first.Hash[:]) {
		t.Fatalf("entry bundles do not rebuild the checkpoint's root (%v)", err)
	}
	for i, u := range s.l.URLs {
		cp, raw := s.checkpointAt(t, u, size)
		if cp.Size == size && cp.Hash != first.Hash {
			t.Fatalf("replica %d serves another root for size %d: %s", i, size, raw)
		}
		s.checkTiles(t, u, size, leaves)
		s.checkMetadata(t, u, size, entries)
		for _, path := range []string{
			fmt.Sprintf("/tile/0/%s", tileIndex(size/256+1, 0)),
			fmt.Sprintf("/tile/entries/%s", tileIndex(size/256+1, 0)),
			fmt.Sprintf("/metadata/bundle/%s", tileIndex(size/256+1, 0)),
			"/tile/1/000", "/metadata/" + strings.Repeat("00", 32),
		} {
			if r := do(t, "GET", u+path, nil); r.code != 404 {
				t.Errorf("replica %d: GET %s beyond the checkpoint: %d, want 404", i, path, r.code)
			}
		}
	}
	// Proofs by index and by leaf hash, on every replica, over HTTP and gRPC.
	for k, idx := range []uint64{0, 1, 255, 256, size - 1} {
		if idx >= size {
			continue
		}
		u := s.l.replica(k)
		p := do(t, "GET", fmt.Sprintf("%s/v1/proof?index=%d", u, idx), nil)
		q := do(t, "GET", fmt.Sprintf("%s/v1/proof?leaf=%s", u, hex.EncodeToString(leaves[idx])), nil)
		for _, r := range []response{p, q} {
			if r.code != 200 {
				t.Fatalf("proof of %d: %d %s", idx, r.code, r.body)
			}
			if _, err := evidence.VerifyInclusion(entries[idx], r.body, s.l.Policy); err != nil {
				t.Fatalf("proof of %d: %v", idx, err)
			}
		}
		s.grpcProof(t, s.l.GRPC[k%len(s.l.GRPC)], idx, entries[idx])
	}
	// Consistency from the first cosigned checkpoint of the suite.
	early, _ := s.checkpointAt(t, base, 1)
	if early.Size > 1 {
		c := do(t, "GET", fmt.Sprintf("%s/v1/consistency?old=%d&new=%d", base, 2, early.Size), nil)
		if c.code != 200 {
			t.Fatalf("consistency: %d %s", c.code, c.body)
		}
		var hs [][sha256.Size]byte
		for _, l := range strings.Fields(string(c.body)) {
			h, _ := base64.StdEncoding.DecodeString(l)
			hs = append(hs, [sha256.Size]byte(h))
		}
		old := rf.NewEmptyRange(0)
		old.Append(leaves[0], nil)
		old.Append(leaves[1], nil)
		oldRoot, _ := old.GetRootHash(nil)
		a := *early.Signed
		a.Size, a.Hash = 2, [sha256.Size]byte(oldRoot)
		if err := evidence.CheckConsistency(&a, early.Signed, hs); err != nil {
			t.Errorf("consistency proof 2 -> %d: %v", early.Size, err)
		}
	}
	if r := do(t, "GET", fmt.Sprintf("%s/v1/consistency?old=1&new=%d", base, size+1000), nil); r.code != 400 {
		t.Errorf("consistency beyond the cosigned size: %d, want 400", r.code)
	}
}

// entries reads all entries below size from the entry bundles.
func (s *suite) entries(t *testing.T, base string, size uint64) [][]byte {
	t.Helper()
	var out [][]byte
	for n := uint64(0); n*256 < size; n++ {
		w := min(size-n*256, 256)
		r := do(t, "GET", base+"/tile/entries/"+tileIndex(n, w), nil)
		if r.code != 200 {
			t.Fatalf("entry bundle %d: %d %s", n, r.code, r.body)
		}
		if cc := r.header.Get("Cache-Control"); (w == 256) != strings.Contains(cc, "immutable") {
			t.Errorf("entry bundle %d width %d: Cache-Control %q", n, w, cc)
		}
		es := split(t, r.body, 2)
		if uint64(len(es)) != w {
			t.Fatalf("entry bundle %d: %d entries, want %d", n, len(es), w)
		}
		out = append(out, es...)
	}
	return out
}

func (s *suite) checkTiles(t *testing.T, base string, size uint64, leaves [][]byte) {
	t.Helper()
	for n := uint64(0); n*256 < size; n++ {
		w := min(size-n*256, 256)
		r := do(t, "GET", base+"/tile/0/"+tileIndex(n, w), nil)
		want := bytes.Join(leaves[n*256:n*256+w], nil)
		if r.code != 200 || !bytes.Equal(r.body, want) {
			t.Fatalf("%s: hash tile 0/%d width %d: %d, %d bytes; not the leaf hashes", base, n, w, r.code, len(r.body))
		}
		if w == 256 { // a narrower partial of a full tile is its prefix
			p := do(t, "GET", base+"/tile/0/"+tileIndex(n, 7), nil)
			if p.code != 200 || !bytes.Equal(p.body, want[:7*32]) {
				t.Errorf("%s: tile 0/%d.p/7: %d", base, n, p.code)
			}
		}
	}
	// Level 1: the root hashes of the full level-0 tiles.
	if full := size / 256; full > 0 {
		var want []byte
		rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
		for n := uint64(0); n < full; n++ {
			cr := rf.NewEmptyRange(0)
			for _, l := range leaves[n*256 : (n+1)*256] {
				cr.Append(l, nil)
			}
			root, _ := cr.GetRootHash(nil)
			want = append(want, root...)
		}
		r := do(t, "GET", base+"/tile/1/"+tileIndex(0, full), nil)
		if r.code != 200 || !bytes.Equal(r.body, want) {
			t.Fatalf("%s: hash tile 1/0 width %d: %d; not the roots of the level-0 tiles", base, full, r.code)
		}
	}
}

func (s *suite) checkMetadata(t *testing.T, base string, size uint64, entries [][]byte) {
	t.Helper()
	for n := uint64(0); n*256 < size; n++ {
		w := min(size-n*256, 256)
		r := do(t, "GET", base+"/metadata/bundle/"+tileIndex(n, w), nil)
		if r.code != 200 {
			t.Fatalf("metadata bundle %d: %d %s", n, r.code, r.body)
		}
		ms := split(t, r.body, 4)
		if uint64(len(ms)) != w {
			t.Fatalf("metadata bundle %d: %d files, want %d", n, len(ms), w)
		}
		for i, m := range ms {
			raw := entries[n*256+uint64(i)]
			if entry.Kind(raw) == entry.AttestationHeader { // the envelope it commits to
				a, err := signoff.ParseEntry(raw)
				if err != nil || sha256.Sum256(m) != a.SHA256 || uint64(len(m)) != a.Length {
					t.Fatalf("envelope %d does not match its entry (%v)", n*256+uint64(i), err)
				}
				continue
			}
			e, err := entry.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !e.Matches(e.Repo, e.Role, m) {
				t.Fatalf("metadata %d does not match its entry", n*256+uint64(i))
			}
		}
	}
	e, _ := entry.Parse(entries[0])
	m := do(t, "GET", base+"/metadata/"+hex.EncodeToString(e.SHA256[:]), nil)
	if m.code != 200 || !e.Matches(e.Repo, e.Role, m.body) {
		t.Errorf("metadata of entry 0: %d", m.code)
	}
}

func (s *suite) grpcProof(t *testing.T, addr string, idx uint64, e []byte) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := ledgerv1.NewLedgerClient(conn).Proof(ctx, &ledgerv1.ProofRequest{Entry: &ledgerv1.ProofRequest_Index{Index: idx}})
	if err != nil {
		t.Fatalf("gRPC proof of %d: %v", idx, err)
	}
	if _, err := evidence.VerifyInclusion(e, g.Proof, s.l.Policy); err != nil {
		t.Fatalf("gRPC proof of %d: %v", idx, err)
	}
}

// auditor replays the whole log with the auditor through every replica in
// turn and expects no warning or critical finding.
func (s *suite) auditor(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cp, _ := s.checkpointAt(t, s.l.replica(0), s.last+1)
	for i, u := range s.l.URLs {
		a, err := audit.New(audit.Config{Ledger: u, Policy: s.l.Policy, State: db})
		if err != nil {
			t.Fatal(err)
		}
		res, err := a.Step(context.Background())
		if err != nil {
			t.Fatalf("audit through replica %d: %v", i, err)
		}
		if res.Audited < cp.Size {
			t.Fatalf("audit through replica %d: %d audited, want %d", i, res.Audited, cp.Size)
		}
		for _, f := range res.Findings {
			if f.Severity >= alert.Warning {
				t.Errorf("audit through replica %d: %s finding %+v", i, f.Severity, f)
			}
		}
	}
}

// tileIndex encodes a tlog-tiles index with an optional width (256: full).
func tileIndex(n, w uint64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n /= 1000; n > 0; n /= 1000 {
		s = fmt.Sprintf("x%03d/%s", n%1000, s)
	}
	if w > 0 && w < 256 {
		s += fmt.Sprintf(".p/%d", w)
	}
	return s
}

// split splits a bundle of length-prefixed items (2- or 4-byte lengths).
func split(t *testing.T, b []byte, lenBytes int) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		if len(b) < lenBytes {
			t.Fatal("truncated bundle")
		}
		n := int(binary.BigEndian.Uint16(b))
		if lenBytes == 4 {
			n = int(binary.BigEndian.Uint32(b))
		}
		b = b[lenBytes:]
		if len(b) < n {
			t.Fatal("truncated bundle")
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}
