// Package signoff implements independent sign-off (docs/spec/signoff.md):
// rebuilders and reviewers state, in an in-toto Statement v1
// (https://in-toto.io/Statement/v1) with the predicate
// https://github.com/shiplog/shiplog/signoff/v1, that they reproduced a
// target's bytes from its declared source ("reproduced"), built other bytes
// ("mismatch"), or checked the release ("reviewed"). The statement is signed
// in a DSSE envelope (payload type application/vnd.in-toto+json, one Ed25519
// signature over PAE) whose keyid is the attester's C2SP signed-note vkey,
// logged in the ledger as a shiplog/attestation/v1 entry, and carried with
// its tlog-proof in an evidence file. Check is the device's k-of-n rule.
//
// A statement (the DSSE payload):
//
//	{"_type":"https://in-toto.io/Statement/v1",
//	 "subject":[{"name":"app.bin","digest":{"sha256":"<64 hex>"}}],
//	 "predicateType":"https://github.com/shiplog/shiplog/signoff/v1",
//	 "predicate":{"verdict":"reproduced","repository":"example.com/firmware",
//	  "target":"app.bin","targets_role":"targets","targets_version":3,
//	  "built":{"sha256":"<64 hex>"},"provenance":{…},"time":"2026-12-03T12:00:00Z"}}
//
// ("source_local":true before "time" when the rebuilder built from a local
// copy of the source instead of fetching it.)
//
// The log entry of an accepted envelope (seven lines):
//
//	shiplog/attestation/v1
//	repo example.com/firmware
//	subject <target sha256>
//	verdict reproduced
//	key <attester key id: sha256 of 0x01 || Ed25519 public key>
//	sha256 <sha256 of the envelope bytes>
//	length <envelope length>
//
// It is a pure core: bytes in, verified values out; no network, no clock.
// Parsers are strict (unknown fields, duplicate keys, non-canonical numbers
// and base64 are refused) and bounded (MaxStatementSize, MaxEnvelopeSize,
// MaxEvidenceSize). Nothing signed is re-encoded: an envelope's bytes are
// what is logged, stored and carried.
package signoff

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/shiplog/shiplog/evidence/entry"
)

// Types of the in-toto statement and its predicate.
const (
	StatementType = "https://in-toto.io/Statement/v1"
	PredicateType = "https://github.com/shiplog/shiplog/signoff/v1"
)

// Verdicts a statement may carry.
const (
	// Reproduced: the rebuilder built bytes with the subject's digest.
	Reproduced = "reproduced"
	// Mismatch: the rebuilder built other bytes (Statement.Built).
	Mismatch = "mismatch"
	// Reviewed: a reviewer checked the release (docs/reviewer.md).
	Reviewed = "reviewed"
)

// Limits of the formats.
const (
	MaxStatementSize = 32 << 10
	// MaxTargetsVersion is the largest targets_version (2^63-1).
	MaxTargetsVersion = 1<<63 - 1
)

var errMalformedStatement = errors.New("malformed sign-off statement")

// Statement is a sign-off statement about one target. A Statement from
// ParseStatement is unverified data unless it came from Envelope.Statement.
type Statement struct {
	// SubjectName is the subject's name, the target path (informational:
	// the digest is what the statement is about). Non-empty.
	SubjectName string
	// Subject is the SHA-256 of the target's bytes.
	Subject [sha256.Size]byte
	// Verdict is Reproduced, Mismatch or Reviewed.
	Verdict string
	// Repository is the repository id, in the alphabet of log entries
	// (1-255 printable ASCII bytes, no space).
	Repository string
	// Target, TargetsRole and TargetsVersion name the target of the signed
	// targets version that was checked (informational). Target is
	// non-empty, TargetsRole in the entry alphabet, TargetsVersion 1 to
	// MaxTargetsVersion.
	Target         string
	TargetsRole    string
	TargetsVersion uint64
	// Built is the SHA-256 of what the rebuilder built: equal to Subject
	// for Reproduced, different for Mismatch, zero (absent) for Reviewed.
	Built [sha256.Size]byte
	// Provenance is the target's provenance object as the rebuilder
	// followed it (docs/spec/provenance.md), a JSON object; nil for
	// Reviewed. This package checks only that it is a JSON object without
	// duplicate keys; evidence/provenance parses it.
	Provenance json.RawMessage
	// SourceLocal says that the rebuilder built from a local copy of the
	// source it was given (shiplog attest rebuild --source-dir) instead of
	// fetching the declared source and checking it against the declared
	// digest or commit: whoever counts the statement relies on the
	// rebuilder's copy being that source. Encoded as "source_local": true,
	// absent when false; only for Reproduced and Mismatch.
	SourceLocal bool
	// Time is when the statement was made, UTC, whole seconds
	// (informational: no device decision depends on it).
	Time time.Time
}

// Validate reports whether s can be encoded: every field within its rules
// (docs/spec/signoff.md, "The statement").
func (s *Statement) Validate() error {
	if s.SubjectName == "" || s.Target == "" {
		return errors.New("statement: empty subject name or target")
	}
	if !validName(s.Repository) || !validName(s.TargetsRole) {
		return fmt.Errorf("statement: invalid repository id or targets role: want 1-%d printable ASCII characters without spaces", entry.MaxIDLength)
	}
	if s.TargetsVersion < 1 || s.TargetsVersion > MaxTargetsVersion {
		return errors.New("statement: targets_version out of range")
	}
	if s.Time.IsZero() || s.Time.Location() != time.UTC || s.Time.Nanosecond() != 0 {
		return errors.New("statement: time must be UTC whole seconds")
	}
	switch s.Verdict {
	case Reproduced:
		if s.Built != s.Subject {
			return errors.New("statement: reproduced but built digest differs from the subject")
		}
	case Mismatch:
		if s.Built == s.Subject {
			return errors.New("statement: mismatch but built digest equals the subject")
		}
	case Reviewed:
		if s.Built != ([sha256.Size]byte{}) || s.Provenance != nil || s.SourceLocal {
			return errors.New("statement: reviewed carries no built digest, provenance nor source_local")
		}
		return nil
	default:
		return errors.New("statement: unknown verdict")
	}
	if err := checkObjectDeep(s.Provenance); err != nil {
		return fmt.Errorf("statement: provenance: %w", err)
	}
	return nil
}

// validName is the entry alphabet: 1-255 bytes of U+0021 to U+007E.
func validName(s string) bool {
	if len(s) == 0 || len(s) > entry.MaxIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Format returns the JSON encoding of s (the DSSE payload): fields in the
// order of docs/spec/signoff.md, no insignificant space, the provenance
// object compacted. It fails if s does not validate or the encoding would
// exceed MaxStatementSize.
func (s *Statement) Format() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	type digest struct {
		SHA256 string `json:"sha256"`
	}
	type subject struct {
		Name   string `json:"name"`
		Digest digest `json:"digest"`
	}
	type predicate struct {
		Verdict        string          `json:"verdict"`
		Repository     string          `json:"repository"`
		Target         string          `json:"target"`
		TargetsRole    string          `json:"targets_role"`
		TargetsVersion uint64          `json:"targets_version"`
		Built          *digest         `json:"built,omitempty"`
		Provenance     json.RawMessage `json:"provenance,omitempty"`
		SourceLocal    bool            `json:"source_local,omitempty"`
		Time           string          `json:"time"`
	}
	p := predicate{Verdict: s.Verdict, Repository: s.Repository, Target: s.Target, TargetsRole: s.TargetsRole,
		TargetsVersion: s.TargetsVersion, Provenance: s.Provenance, SourceLocal: s.SourceLocal, Time: s.Time.Format(time.RFC3339)}
	if s.Verdict != Reviewed {
		p.Built = &digest{hex.EncodeToString(s.Built[:])}
	}
	v := struct {
		Type          string    `json:"_type"`
		Subject       []subject `json:"subject"`
		PredicateType string    `json:"predicateType"`
		Predicate     predicate `json:"predicate"`
	}{StatementType, []subject{{s.SubjectName, digest{hex.EncodeToString(s.Subject[:])}}}, PredicateType, p}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	if len(out) > MaxStatementSize {
		return nil, errors.New("statement: encoding too large")
	}
	return out, nil
}

// ParseStatement parses a statement strictly: at most MaxStatementSize
// bytes, exactly the fields of docs/spec/signoff.md (unknown, missing and
// duplicate keys refused, also inside subject, digests and predicate),
// exactly one subject with exactly a sha256 digest, the in-toto and
// predicate types above, and field values as Statement.Validate requires.
// Whitespace between tokens is accepted: the statement is signed bytes and
// is never re-encoded. It verifies no signature.
func ParseStatement(b []byte) (*Statement, error) {
	if len(b) > MaxStatementSize {
		return nil, fmt.Errorf("%w: too large", errMalformedStatement)
	}
	s, err := parseStatement(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformedStatement, err)
	}
	return s, nil
}

func parseStatement(b []byte) (*Statement, error) {
	v, err := parseJSON(b)
	if err != nil {
		return nil, err
	}
	top, err := object(v, []string{"_type", "subject", "predicateType", "predicate"}, nil)
	if err != nil {
		return nil, err
	}
	if t, err := str(top["_type"]); err != nil || t != StatementType {
		return nil, errors.New("not an in-toto Statement v1")
	}
	if t, err := str(top["predicateType"]); err != nil || t != PredicateType {
		return nil, errors.New("not a shiplog sign-off predicate")
	}
	subjects, err := array(top["subject"], 1)
	if err != nil || len(subjects) != 1 {
		return nil, errors.New("want exactly one subject")
	}
	sub, err := object(subjects[0], []string{"name", "digest"}, nil)
	if err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	s := &Statement{}
	if s.SubjectName, err = str(sub["name"]); err != nil {
		return nil, fmt.Errorf("subject name: %w", err)
	}
	if s.Subject, err = digestObject(sub["digest"]); err != nil {
		return nil, fmt.Errorf("subject digest: %w", err)
	}
	if err := parsePredicate(top["predicate"], s); err != nil {
		return nil, fmt.Errorf("predicate: %w", err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

func parsePredicate(v *jvalue, s *Statement) error {
	p, err := object(v, []string{"verdict", "repository", "target", "targets_role", "targets_version", "time"}, []string{"built", "provenance", "source_local"})
	if err != nil {
		return err
	}
	for k, dst := range map[string]*string{"verdict": &s.Verdict, "repository": &s.Repository, "target": &s.Target, "targets_role": &s.TargetsRole} {
		if *dst, err = str(p[k]); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	if s.TargetsVersion, err = decimal(p["targets_version"], 1, MaxTargetsVersion); err != nil {
		return fmt.Errorf("targets_version: %w", err)
	}
	ts, err := str(p["time"])
	if err != nil {
		return fmt.Errorf("time: %w", err)
	}
	// RFC 3339 UTC, whole seconds: the one form Format writes.
	if s.Time, err = time.Parse(time.RFC3339, ts); err != nil || s.Time.UTC().Format(time.RFC3339) != ts {
		return errors.New("time: want RFC 3339 UTC, whole seconds")
	}
	s.Time = s.Time.UTC()
	// built and provenance: present exactly when the verdict is not
	// reviewed (Validate checks the values).
	_, hasBuilt := p["built"]
	_, hasProvenance := p["provenance"]
	if want := s.Verdict != Reviewed; hasBuilt != want || hasProvenance != want {
		return errors.New("built and provenance: present for reproduced and mismatch only")
	}
	if hasBuilt {
		if s.Built, err = digestObject(p["built"]); err != nil {
			return fmt.Errorf("built: %w", err)
		}
		if p["provenance"].kind != '{' { // its keys were checked by parseJSON
			return errors.New("provenance: want a JSON object")
		}
		s.Provenance = json.RawMessage(p["provenance"].raw)
	}
	// source_local: true or absent (one encoding: false is refused), and
	// only where there is a rebuild (Validate refuses it for reviewed).
	if v, ok := p["source_local"]; ok {
		if b, err := boolean(v); err != nil || !b {
			return errors.New("source_local: want true, or no field")
		}
		s.SourceLocal = true
	}
	return nil
}
