package kit

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/http"

	"github.com/shiplog/shiplog/evidence/signoff"
)

// attested is one logged sign-off envelope.
type attested struct {
	repo    string
	subject [32]byte
	key     string // attester key id, hex
	env     []byte
	index   uint64
}

// attest answers as the ledger's POST /v1/attest: the envelope must open
// (signature and statement; 403 for a bad signature, 400 otherwise) and
// name the registered repository it is submitted to (404 unknown, 400
// another); the same bytes again are a duplicate.
func (s *FakeLedger) attest(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("repo")
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	env, err := signoff.OpenEnvelope(body)
	switch {
	case errors.Is(err, signoff.ErrBadSignature):
		http.Error(w, "bad signature", http.StatusForbidden)
		return
	case err != nil:
		http.Error(w, "malformed envelope", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.repos[id] == nil {
		http.Error(w, "unknown repository", http.StatusNotFound)
		return
	}
	if env.Statement.Repository != id {
		http.Error(w, "statement about another repository", http.StatusBadRequest)
		return
	}
	for _, a := range s.attested {
		if bytes.Equal(a.env, body) {
			s.respondLocked(w, id, "", 0, body, a.index, true)
			return
		}
	}
	e := env.Entry().Format()
	s.tree.AppendData(e)
	s.entries = append(s.entries, e)
	idx := s.tree.Size() - 1
	s.attested = append(s.attested, attested{repo: id, subject: env.Statement.Subject, key: env.Attester.ID.String(), env: body, index: idx})
	s.respondLocked(w, id, "", 0, body, idx, false)
}

// attestations answers as the ledger's GET /v1/attestations: the evidence
// file of repo and subject, kept to the key ids given, at most
// signoff.MaxAttestations, each with a fresh proof.
func (s *FakeLedger) attestations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id, sub := q.Get("repo"), q.Get("subject")
	raw, err := hex.DecodeString(sub)
	if err != nil || len(raw) != 32 || len(q["key"]) > 32 {
		http.Error(w, "bad parameters", http.StatusBadRequest)
		return
	}
	keys := map[string]bool{}
	for _, k := range q["key"] {
		keys[k] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.repos[id] == nil {
		http.Error(w, "unknown repository", http.StatusNotFound)
		return
	}
	ev := &signoff.Evidence{Subject: [32]byte(raw)}
	for _, a := range s.attested {
		if a.repo != id || a.subject != ev.Subject || (len(keys) > 0 && !keys[a.key]) {
			continue
		}
		if len(ev.Attestations) == signoff.MaxAttestations {
			ev.Truncated = true
			break
		}
		ev.Attestations = append(ev.Attestations, signoff.Attestation{Envelope: a.env, Proof: s.proofLocked(a.index)})
	}
	b, err := ev.Format()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}
