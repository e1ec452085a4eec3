package kit

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/evidence/proof"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

// FakeLedger is an in-memory ledger for tests of the vendor side: a real
// HTTP server (httptest, on 127.0.0.1) implementing the publish, admin and
// proof calls of docs/spec/ledger-api.md and the attest and attestations
// calls of docs/spec/signoff.md, with a Merkle tree, a log key and
// one witness, so the proofs it returns are real C2SP tlog-proofs that
// verify under Policy. It checks what the API contract promises (token,
// sizes, roles, versions, thresholds against the logged root) and can inject
// the faults a client must survive, which the real ledger (package harness)
// cannot be made to show. It is not durable.
//
// Its exported fault fields may be set between requests; it is safe for
// concurrent use.
type FakeLedger struct {
	*httptest.Server
	// Token is the admin token.
	Token string
	// Policy is a tlog-policy text trusting this ledger and its witness.
	Policy string

	mu      sync.Mutex
	tree    *testonly.Tree
	entries [][]byte
	repos   map[string]*repoState
	logS    note.Signer
	witS    note.Signer
	// attested are the sign-off envelopes logged, in log order.
	attested []attested

	// FailNext answers the next FailCount requests with FailStatus.
	FailStatus, FailCount int
	// ProofLater leaves the proof out of publish responses (the client must
	// fetch /v1/proof).
	ProofLater bool
	// TamperProof flips a bit in every inclusion proof served.
	TamperProof bool
	// WitnessDown makes its one witness unreachable: no proof is ever
	// served (504), and /v1/witnesses says so.
	WitnessDown bool
	// Requests counts requests by path.
	Requests map[string]int
}

type repoState struct {
	root   *metadata.Metadata[metadata.RootType]
	latest map[string]logged
}

type logged struct {
	version int64
	sum     [32]byte
	index   uint64
	meta    *metadata.Metadata[metadata.TargetsType]
}

// NewFakeLedger starts a fake ledger on 127.0.0.1 with a fresh log and witness key.
func NewFakeLedger() *FakeLedger {
	skey, vkey, err := notekey.GenerateLog(rand.Reader, "fakeledger.example/log")
	if err != nil {
		panic(err)
	}
	wskey, _, wcosig, err := notekey.GenerateWitness(rand.Reader, "witness.example")
	if err != nil {
		panic(err)
	}
	s := &FakeLedger{Token: "secret-admin-token", tree: testonly.New(rfc6962.DefaultHasher), repos: map[string]*repoState{}, Requests: map[string]int{}}
	if s.logS, err = notekey.NewLogSigner(skey); err != nil {
		panic(err)
	}
	if s.witS, err = notekey.NewWitnessSigner(wskey); err != nil {
		panic(err)
	}
	s.Policy = fmt.Sprintf("log %s\nwitness w1 %s\ngroup all-witnesses all w1\nquorum all-witnesses\n", vkey, wcosig)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/publish", s.publish)
	mux.HandleFunc("POST /v1/admin/repositories", s.register)
	mux.HandleFunc("GET /v1/proof", s.proof)
	mux.HandleFunc("GET /v1/witnesses", s.witnesses)
	mux.HandleFunc("POST /v1/attest", s.attest)
	mux.HandleFunc("GET /v1/attestations", s.attestations)
	s.Server = httptest.NewServer(http.MaxBytesHandler(s.faults(mux), 5<<20+1))
	return s
}

func (s *FakeLedger) faults(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.Requests[r.URL.Path]++
		fail := 0
		if s.FailCount > 0 {
			s.FailCount--
			fail = s.FailStatus
		}
		s.mu.Unlock()
		if fail != 0 {
			http.Error(w, "injected failure", fail)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *FakeLedger) register(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+s.Token {
		http.Error(w, "invalid admin token", http.StatusUnauthorized)
		return
	}
	id := r.URL.Query().Get("id")
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	root, err := new(metadata.Metadata[metadata.RootType]).FromBytes(body)
	if err != nil || root.Signed.Version != 1 {
		http.Error(w, "body is not a root version 1", http.StatusBadRequest)
		return
	}
	if err := root.VerifyDelegate("root", root); err != nil {
		http.Error(w, "root is not signed by its threshold", http.StatusForbidden)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := sha256.Sum256(body)
	if rs := s.repos[id]; rs != nil {
		if l := rs.latest["root"]; l.version == 1 && l.sum == sum {
			s.respondLocked(w, id, "root", 1, body, l.index, true)
			return
		}
		http.Error(w, "repository exists with another root", http.StatusConflict)
		return
	}
	rs := &repoState{root: root, latest: map[string]logged{}}
	s.repos[id] = rs
	idx := s.appendLocked(id, "root", 1, body)
	rs.latest["root"] = logged{version: 1, sum: sum, index: idx}
	s.respondLocked(w, id, "root", 1, body, idx, false)
}

func (s *FakeLedger) publish(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id, role := q.Get("repo"), q.Get("role")
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.repos[id]
	if rs == nil {
		http.Error(w, "unknown repository", http.StatusNotFound)
		return
	}
	var version int64
	var expires time.Time
	var tm *metadata.Metadata[metadata.TargetsType]
	var rm *metadata.Metadata[metadata.RootType]
	var err error
	switch role {
	case "root":
		if rm, err = new(metadata.Metadata[metadata.RootType]).FromBytes(body); err == nil {
			version, expires = rm.Signed.Version, rm.Signed.Expires
		}
	case "snapshot", "timestamp":
		http.Error(w, "only root and targets roles are logged", http.StatusBadRequest)
		return
	default:
		if tm, err = new(metadata.Metadata[metadata.TargetsType]).FromBytes(body); err == nil {
			version, expires = tm.Signed.Version, tm.Signed.Expires
		}
	}
	if err != nil {
		http.Error(w, "malformed or wrong-role metadata", http.StatusBadRequest)
		return
	}
	sum := sha256.Sum256(body)
	prev := rs.latest[role]
	if version <= prev.version {
		if version == prev.version && sum == prev.sum {
			s.respondLocked(w, id, role, version, body, prev.index, true)
			return
		}
		http.Error(w, "version not above the latest logged version", http.StatusConflict)
		return
	}
	if !expires.After(time.Now()) {
		http.Error(w, "metadata expired", http.StatusGone)
		return
	}
	if err := s.checkSignaturesLocked(rs, role, rm, tm); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	idx := s.appendLocked(id, role, version, body)
	rs.latest[role] = logged{version: version, sum: sum, index: idx, meta: tm}
	if rm != nil {
		rs.root = rm
	}
	s.respondLocked(w, id, role, version, body, idx, false)
}

// checkSignaturesLocked applies the threshold rules against the logged
// history: a root by the previous root and itself, targets by the logged
// root, a delegated role by its logged delegator when one delegates it.
func (s *FakeLedger) checkSignaturesLocked(rs *repoState, role string, rm *metadata.Metadata[metadata.RootType], tm *metadata.Metadata[metadata.TargetsType]) error {
	switch {
	case rm != nil:
		if rm.Signed.Version != rs.root.Signed.Version+1 {
			return fmt.Errorf("root version must be %d", rs.root.Signed.Version+1)
		}
		if rs.root.VerifyDelegate("root", rm) != nil || rm.VerifyDelegate("root", rm) != nil {
			return fmt.Errorf("root not signed by the old and new thresholds")
		}
	case role == "targets":
		if rs.root.VerifyDelegate("targets", tm) != nil {
			return fmt.Errorf("targets signatures do not meet the threshold")
		}
	default:
		for _, l := range rs.latest {
			if l.meta != nil && l.meta.Signed.Delegations != nil {
				if err := l.meta.VerifyDelegate(role, tm); err == nil {
					return nil
				}
			}
		}
		return fmt.Errorf("no logged delegator verifies %s", role)
	}
	return nil
}

func (s *FakeLedger) appendLocked(id, role string, version int64, body []byte) uint64 {
	e, err := entry.New(id, role, uint64(version), body)
	if err != nil {
		panic(err)
	}
	s.tree.AppendData(e.Format())
	s.entries = append(s.entries, e.Format())
	return s.tree.Size() - 1
}

type response struct {
	Index     uint64 `json:"index"`
	LeafHash  string `json:"leaf_hash"`
	Entry     string `json:"entry"`
	Duplicate bool   `json:"duplicate"`
	Proof     string `json:"proof"`
}

func (s *FakeLedger) respondLocked(w http.ResponseWriter, id, role string, version int64, body []byte, idx uint64, dup bool) {
	leaf := entry.LeafHash(s.entries[idx])
	resp := response{Index: idx, LeafHash: hex.EncodeToString(leaf[:]), Entry: string(s.entries[idx]), Duplicate: dup}
	if !s.ProofLater && !s.WitnessDown {
		resp.Proof = string(s.proofLocked(idx))
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

// proofLocked returns a tlog-proof of entry idx under a fresh, cosigned
// checkpoint of the whole tree.
func (s *FakeLedger) proofLocked(idx uint64) []byte {
	size := s.tree.Size()
	cp := checkpoint.Checkpoint{Origin: s.logS.Name(), Size: size, Hash: [32]byte(s.tree.Hash())}
	signed, err := checkpoint.Sign(cp, s.logS)
	if err != nil {
		panic(err)
	}
	cosig, err := checkpoint.Cosign(cp.Format(), s.witS)
	if err != nil {
		panic(err)
	}
	hashes, err := s.tree.InclusionProof(idx, size)
	if err != nil {
		panic(err)
	}
	p := proof.Proof{Index: idx, Checkpoint: checkpoint.AddSignatures(signed, cosig)}
	for _, h := range hashes {
		p.Hashes = append(p.Hashes, [32]byte(h))
	}
	if s.TamperProof {
		if len(p.Hashes) > 0 {
			p.Hashes[0][0] ^= 1
		} else {
			p.Index++
		}
	}
	return p.Format()
}

// witnesses answers as the ledger's GET /v1/witnesses: the one witness,
// up to date unless WitnessDown.
func (s *FakeLedger) witnesses(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := map[string]any{"name": "w1", "cosigned_size": s.tree.Size()}
	if s.WitnessDown {
		st["cosigned_size"], st["last_error"] = 0, "dial tcp 127.0.0.1:9: connection refused"
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"witnesses": []any{st}})
}

func (s *FakeLedger) proof(w http.ResponseWriter, r *http.Request) {
	leaf := r.URL.Query().Get("leaf")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.WitnessDown {
		http.Error(w, "no cosigned checkpoint covers the entry yet", http.StatusGatewayTimeout)
		return
	}
	for i, e := range s.entries {
		h := entry.LeafHash(e)
		if hex.EncodeToString(h[:]) == leaf {
			w.Header().Set("Content-Type", "text/plain")
			w.Write(s.proofLocked(uint64(i)))
			return
		}
	}
	http.Error(w, "no such leaf", http.StatusNotFound)
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 5<<20+1))
	if err != nil || len(b) > 5<<20 {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return nil, false
	}
	return b, true
}

// Size returns the number of entries logged.
func (s *FakeLedger) Size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// Entry returns the encoded entry at index i.
func (s *FakeLedger) Entry(i int) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries[i]
}
