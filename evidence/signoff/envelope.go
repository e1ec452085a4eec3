package signoff

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/shiplog/shiplog/evidence/notekey"
	"golang.org/x/mod/sumdb/note"
)

// PayloadType is the DSSE payload type of a sign-off envelope.
const PayloadType = "application/vnd.in-toto+json"

// MaxEnvelopeSize is the largest envelope, in bytes.
const MaxEnvelopeSize = 64 << 10

// maxVKeyLength bounds an attester vkey.
const maxVKeyLength = 1024

var (
	errMalformedEnvelope = errors.New("malformed sign-off envelope")
	errBadVKey           = errors.New("malformed attester key: want a C2SP signed-note Ed25519 (0x01) vkey")
	// ErrBadSignature means an envelope's signature does not verify under
	// the key the envelope names.
	ErrBadSignature = errors.New("sign-off envelope signature does not verify")
)

// KeyID identifies an attester: the SHA-256 of its typed public key (0x01
// followed by the 32-byte Ed25519 key), independent of the vkey's name.
type KeyID [sha256.Size]byte

// String returns the key id as 64 lowercase hex digits.
func (k KeyID) String() string { return hex.EncodeToString(k[:]) }

// ParseKeyID parses 64 lowercase hex digits.
func ParseKeyID(s string) (KeyID, error) {
	d, err := sha256Hex(s)
	if err != nil {
		return KeyID{}, errors.New("malformed key id: want 64 lowercase hex digits")
	}
	return KeyID(d), nil
}

// Attester is a parsed attester verifier key. It is immutable and safe for
// concurrent use.
type Attester struct {
	// Name is the vkey's name (by convention a DNS name): how summaries
	// and findings name the attester. The ID decides.
	Name string
	// VKey is the vkey as given.
	VKey string
	// ID is the attester's key id.
	ID  KeyID
	pub ed25519.PublicKey
}

// ParseAttester parses an attester's C2SP signed-note verifier key
// "name+hash+base64(0x01 || key)": Ed25519 only, canonical base64, at most
// 1,024 bytes, and the key hash written in it must match name and key.
func ParseAttester(vkey string) (*Attester, error) {
	if len(vkey) > maxVKeyLength {
		return nil, errBadVKey
	}
	name, rest, ok1 := strings.Cut(vkey, "+")
	hash, b64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || name == "" || len(hash) != 8 || strings.ToLower(hash) != hash {
		return nil, errBadVKey
	}
	want, err := strconv.ParseUint(hash, 16, 32)
	if err != nil {
		return nil, errBadVKey
	}
	typed, err := base64Std(b64, 1+ed25519.PublicKeySize)
	if err != nil || len(typed) != 1+ed25519.PublicKeySize || typed[0] != notekey.TypeEd25519 {
		return nil, errBadVKey
	}
	// note.NewVerifier checks the name's alphabet and the key hash.
	if _, err := note.NewVerifier(vkey); err != nil || notekey.KeyID(name, typed) != uint32(want) {
		return nil, errBadVKey
	}
	return &Attester{Name: name, VKey: vkey, ID: sha256.Sum256(typed), pub: ed25519.PublicKey(typed[1:])}, nil
}

// ParseKeyList parses a list of trusted attester vkeys, one per line;
// blank lines and lines starting with '#' are ignored, surrounding spaces
// trimmed. At most 1,024 keys; the same key (by key id, whatever its name)
// twice is refused, so that a list of n lines is n attesters.
func ParseKeyList(b []byte) ([]*Attester, error) {
	if len(b) > 1<<20 {
		return nil, errors.New("attester key list too large")
	}
	var keys []*Attester
	seen := map[KeyID]bool{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		a, err := ParseAttester(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		if seen[a.ID] {
			return nil, fmt.Errorf("line %d: the same key as an earlier line", i+1)
		}
		if len(keys) == 1024 {
			return nil, errors.New("more than 1024 attester keys")
		}
		seen[a.ID] = true
		keys = append(keys, a)
	}
	return keys, nil
}

// PAE returns DSSE's pre-authentication encoding of a payload:
// "DSSEv1" SP len(type) SP type SP len(payload) SP payload, decimal lengths.
// It is what the envelope signature covers.
func PAE(payloadType string, payload []byte) []byte {
	b := make([]byte, 0, 32+len(payloadType)+len(payload))
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ' ')
	return append(b, payload...)
}

// Sign returns a DSSE envelope of s signed by signer, whose verifier key is
// vkey. signer may be any note.Signer of an Ed25519 key (a file key or a
// PKCS #11 token, evidence/notekey) whose Sign returns the bare Ed25519
// signature of its message; the signature is checked under vkey before the
// envelope is returned, so a signer that does not match vkey is an error.
func Sign(s *Statement, signer note.Signer, vkey string) ([]byte, error) {
	a, err := ParseAttester(vkey)
	if err != nil {
		return nil, err
	}
	payload, err := s.Format()
	if err != nil {
		return nil, err
	}
	sig, err := signer.Sign(PAE(PayloadType, payload))
	if err != nil {
		return nil, fmt.Errorf("couldn't sign statement: %w", err)
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(a.pub, PAE(PayloadType, payload), sig) {
		return nil, errors.New("couldn't sign statement: the signer does not hold the key of the vkey")
	}
	type signature struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	}
	env, err := json.Marshal(struct {
		PayloadType string      `json:"payloadType"`
		Payload     string      `json:"payload"`
		Signatures  []signature `json:"signatures"`
	}{PayloadType, base64.StdEncoding.EncodeToString(payload), []signature{{vkey, base64.StdEncoding.EncodeToString(sig)}}})
	if err != nil {
		return nil, err
	}
	if len(env) > MaxEnvelopeSize {
		return nil, errors.New("couldn't sign statement: envelope too large")
	}
	return env, nil
}

// UnverifiedEnvelope is a parsed envelope whose signature has not been
// checked: its payload is not parsed yet.
type UnverifiedEnvelope struct {
	// Raw is the exact envelope bytes.
	Raw []byte
	// Attester is the key the envelope names (the DSSE keyid).
	Attester *Attester
	Payload  []byte
	Sig      []byte
}

// ParseEnvelope parses a DSSE envelope strictly: at most MaxEnvelopeSize
// bytes, exactly the fields payloadType (PayloadType), payload (canonical
// standard base64 of at most MaxStatementSize bytes) and signatures (exactly
// one, with exactly keyid, an attester vkey, and sig, 64 bytes in canonical
// standard base64); unknown and duplicate keys and trailing data refused.
// It checks no signature: see UnverifiedEnvelope.Verify or OpenEnvelope.
func ParseEnvelope(b []byte) (*UnverifiedEnvelope, error) {
	if len(b) > MaxEnvelopeSize {
		return nil, fmt.Errorf("%w: too large", errMalformedEnvelope)
	}
	u, err := parseEnvelope(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformedEnvelope, err)
	}
	return u, nil
}

func parseEnvelope(b []byte) (*UnverifiedEnvelope, error) {
	v, err := parseJSON(b)
	if err != nil {
		return nil, err
	}
	f, err := object(v, []string{"payloadType", "payload", "signatures"}, nil)
	if err != nil {
		return nil, err
	}
	if t, err := str(f["payloadType"]); err != nil || t != PayloadType {
		return nil, errors.New("payloadType: want " + PayloadType)
	}
	u := &UnverifiedEnvelope{Raw: b}
	p, err := str(f["payload"])
	if err != nil {
		return nil, err
	}
	if u.Payload, err = base64Std(p, MaxStatementSize); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	sigs, err := array(f["signatures"], 1)
	if err != nil || len(sigs) != 1 {
		return nil, errors.New("want exactly one signature")
	}
	sf, err := object(sigs[0], []string{"keyid", "sig"}, nil)
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	vkey, err := str(sf["keyid"])
	if err != nil {
		return nil, err
	}
	if u.Attester, err = ParseAttester(vkey); err != nil {
		return nil, err
	}
	s, err := str(sf["sig"])
	if err != nil {
		return nil, err
	}
	if u.Sig, err = base64Std(s, ed25519.SignatureSize); err != nil || len(u.Sig) != ed25519.SignatureSize {
		return nil, errors.New("sig: want a 64-byte Ed25519 signature in canonical base64")
	}
	return u, nil
}

// Envelope is an envelope whose signature verified under the key it names,
// with its parsed statement. Whether that key is trusted is the caller's
// decision (Check decides for a device).
type Envelope struct {
	// Raw is the exact envelope bytes.
	Raw       []byte
	Attester  *Attester
	Statement *Statement
}

// Verify checks the signature over PAE(PayloadType, payload) under the
// envelope's key (ErrBadSignature), then parses the payload as a statement.
func (u *UnverifiedEnvelope) Verify() (*Envelope, error) {
	// Verify the signature over the raw bytes first; parse the payload
	// only after its key signed it.
	if !ed25519.Verify(u.Attester.pub, PAE(PayloadType, u.Payload), u.Sig) {
		return nil, ErrBadSignature
	}
	s, err := ParseStatement(u.Payload)
	if err != nil {
		return nil, err
	}
	return &Envelope{Raw: u.Raw, Attester: u.Attester, Statement: s}, nil
}

// OpenEnvelope is ParseEnvelope followed by Verify: what the ledger checks
// of an envelope submitted to it.
func OpenEnvelope(b []byte) (*Envelope, error) {
	u, err := ParseEnvelope(b)
	if err != nil {
		return nil, err
	}
	return u.Verify()
}

// Entry returns the shiplog/attestation/v1 log entry of e: the statement's
// repository, subject and verdict, the attester's key id, and the digest
// and length of the envelope bytes.
func (e *Envelope) Entry() Entry {
	return Entry{Repo: e.Statement.Repository, Subject: e.Statement.Subject, Verdict: e.Statement.Verdict,
		Key: e.Attester.ID, SHA256: sha256.Sum256(e.Raw), Length: uint64(len(e.Raw))}
}
