package signoff

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/shiplog/shiplog/evidence/proof"
)

// Limits of an evidence file.
const (
	MaxEvidenceSize = 1 << 20
	MaxAttestations = 64
)

var errMalformedEvidence = errors.New("malformed sign-off evidence")

// Evidence is the evidence file of one target digest (docs/spec/signoff.md,
// "The evidence file"): what a device reads, a repository serves at
// metadata/signoff/<hex>.json, a bundle carries and GET /v1/attestations
// answers. Its attestations are unverified.
type Evidence struct {
	// Subject is the target digest the evidence is about.
	Subject [sha256.Size]byte
	// Attestations are at most MaxAttestations, in log order.
	Attestations []Attestation
	// Truncated reports that the source held more attestations than it
	// returned.
	Truncated bool
}

// Attestation is one envelope with its tlog-proof, both unverified.
type Attestation struct {
	// Envelope is the exact envelope bytes, at most MaxEnvelopeSize.
	Envelope []byte
	// Proof is a c2sp.org/tlog-proof of the envelope's entry, at most
	// proof.MaxSize bytes.
	Proof []byte
}

// Format returns the JSON encoding of e. It fails when e holds more than
// MaxAttestations, an empty or oversized envelope or proof, or the encoding
// exceeds MaxEvidenceSize.
func (e *Evidence) Format() ([]byte, error) {
	type att struct {
		Envelope string `json:"envelope"`
		Proof    string `json:"proof"`
	}
	v := struct {
		Subject      string `json:"subject"`
		Attestations []att  `json:"attestations"`
		Truncated    bool   `json:"truncated"`
	}{Subject: hex.EncodeToString(e.Subject[:]), Attestations: []att{}, Truncated: e.Truncated}
	if len(e.Attestations) > MaxAttestations {
		return nil, errors.New("sign-off evidence: too many attestations")
	}
	for _, a := range e.Attestations {
		if len(a.Envelope) == 0 || len(a.Envelope) > MaxEnvelopeSize || len(a.Proof) == 0 || len(a.Proof) > proof.MaxSize {
			return nil, errors.New("sign-off evidence: empty or oversized envelope or proof")
		}
		v.Attestations = append(v.Attestations, att{base64.StdEncoding.EncodeToString(a.Envelope), string(a.Proof)})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if b.Len() > MaxEvidenceSize {
		return nil, errors.New("sign-off evidence: encoding too large")
	}
	return b.Bytes(), nil
}

// ParseEvidence parses an evidence file strictly: at most MaxEvidenceSize
// bytes; exactly the fields subject (64 lowercase hex), attestations (at
// most MaxAttestations, each exactly envelope, canonical standard base64 of
// 1 to MaxEnvelopeSize bytes, and proof, a tlog-proof that parses) and
// truncated; unknown and duplicate keys and trailing data refused. It
// verifies nothing: Check does.
func ParseEvidence(b []byte) (*Evidence, error) {
	if len(b) > MaxEvidenceSize {
		return nil, fmt.Errorf("%w: too large", errMalformedEvidence)
	}
	e, err := parseEvidence(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformedEvidence, err)
	}
	return e, nil
}

func parseEvidence(b []byte) (*Evidence, error) {
	v, err := parseJSON(b)
	if err != nil {
		return nil, err
	}
	f, err := object(v, []string{"subject", "attestations", "truncated"}, nil)
	if err != nil {
		return nil, err
	}
	e := &Evidence{}
	s, err := str(f["subject"])
	if err != nil {
		return nil, err
	}
	if e.Subject, err = sha256Hex(s); err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	if e.Truncated, err = boolean(f["truncated"]); err != nil {
		return nil, fmt.Errorf("truncated: %w", err)
	}
	atts, err := array(f["attestations"], MaxAttestations)
	if err != nil {
		return nil, fmt.Errorf("attestations: %w", err)
	}
	for i, raw := range atts {
		af, err := object(raw, []string{"envelope", "proof"}, nil)
		if err != nil {
			return nil, fmt.Errorf("attestation %d: %w", i, err)
		}
		env, err1 := str(af["envelope"])
		pr, err2 := str(af["proof"])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("attestation %d: want strings", i)
		}
		var a Attestation
		if a.Envelope, err = base64Std(env, MaxEnvelopeSize); err != nil || len(a.Envelope) == 0 {
			return nil, fmt.Errorf("attestation %d: envelope: want canonical base64 of 1 to %d bytes", i, MaxEnvelopeSize)
		}
		if _, err := proof.Parse([]byte(pr)); err != nil {
			return nil, fmt.Errorf("attestation %d: %w", i, err)
		}
		a.Proof = []byte(pr)
		e.Attestations = append(e.Attestations, a)
	}
	return e, nil
}
