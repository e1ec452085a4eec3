package sigstore

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits of ParseBundle. A bundle of one hashedrekord entry with a Fulcio
// certificate is about 10 KiB; the cap leaves room for a certificate chain.
const (
	MaxBundleSize = 1 << 20
	MaxEntries    = 8
	MaxBodySize   = 64 << 10
	maxProofLen   = 63
)

// Media types of Sigstore bundles that ParseBundle accepts.
var mediaTypes = map[string]bool{
	"application/vnd.dev.sigstore.bundle+json;version=0.1": true,
	"application/vnd.dev.sigstore.bundle+json;version=0.2": true,
	"application/vnd.dev.sigstore.bundle+json;version=0.3": true,
	"application/vnd.dev.sigstore.bundle.v0.3+json":        true,
}

// MediaType is the media type of the bundles shiplog writes.
const MediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"

var (
	errMalformed = errors.New("malformed Sigstore bundle")
	errTooLarge  = errors.New("Sigstore bundle too large")
)

// UnverifiedBundle is a parsed Sigstore bundle whose log entries,
// checkpoints and signatures have not been checked. Only the fields the
// device uses are kept.
type UnverifiedBundle struct {
	MediaType string
	// KeyHint is verificationMaterial.publicKey.hint ("" if the bundle
	// carries a certificate instead). shiplog writes the TUF key ID.
	KeyHint string
	Entries []UnverifiedEntry
	// Signature is messageSignature.signature; nil if the bundle has none
	// (then it is a DSSE bundle, which the device does not accept).
	Signature []byte
	// Digest and DigestAlgorithm are messageSignature.messageDigest.
	Digest          []byte
	DigestAlgorithm string
}

// UnverifiedEntry is one transparency log entry of a bundle
// (verificationMaterial.tlogEntries[i]).
type UnverifiedEntry struct {
	LogIndex int64  // the entry's index in the whole log (all shards)
	LogKeyID []byte // logId.keyId
	Kind     string // kindVersion.kind
	Version  string // kindVersion.version
	// IntegratedTime (Unix seconds) and SignedEntryTimestamp (the
	// inclusion promise) are Rekor v1's; zero and nil when absent. The
	// device does not rely on them.
	IntegratedTime       int64
	SignedEntryTimestamp []byte
	// Body is the canonicalized entry body: the exact log leaf.
	Body []byte
	// Proof is nil when the bundle carries no inclusion proof.
	Proof *InclusionProof
}

// InclusionProof is an entry's RFC 6962 inclusion proof and the signed
// checkpoint it is proven against.
type InclusionProof struct {
	// Index is the leaf's index in the tree the checkpoint describes (for
	// Rekor v1, relative to the shard).
	Index    uint64
	TreeSize uint64
	RootHash [32]byte
	Hashes   [][32]byte
	// Checkpoint is the signed note, as received; nil if absent.
	Checkpoint []byte
}

// The JSON encoding (protobuf JSON of dev.sigstore.bundle.v1.Bundle).
// Every known field is listed so that decoding can refuse unknown ones.
type jsonBundle struct {
	MediaType            string          `json:"mediaType"`
	VerificationMaterial *jsonMaterial   `json:"verificationMaterial,omitempty"`
	MessageSignature     *jsonMessageSig `json:"messageSignature,omitempty"`
	DSSEEnvelope         json.RawMessage `json:"dsseEnvelope,omitempty"`
}

type jsonMaterial struct {
	PublicKey                 *jsonHint       `json:"publicKey,omitempty"`
	Certificate               *jsonRaw        `json:"certificate,omitempty"`
	X509CertificateChain      *jsonChain      `json:"x509CertificateChain,omitempty"`
	TlogEntries               []jsonEntry     `json:"tlogEntries"`
	TimestampVerificationData json.RawMessage `json:"timestampVerificationData,omitempty"`
}

type jsonHint struct {
	Hint string `json:"hint"`
}

type jsonChain struct {
	Certificates []jsonRaw `json:"certificates"`
}

type jsonRaw struct {
	RawBytes string `json:"rawBytes"`
}

type jsonEntry struct {
	LogIndex         string       `json:"logIndex"`
	LogID            *jsonLogID   `json:"logId,omitempty"`
	KindVersion      *jsonKind    `json:"kindVersion,omitempty"`
	IntegratedTime   string       `json:"integratedTime,omitempty"`
	InclusionPromise *jsonPromise `json:"inclusionPromise,omitempty"`
	InclusionProof   *jsonProof   `json:"inclusionProof,omitempty"`
	// CanonicalizedBody is the entry body in base64.
	CanonicalizedBody string `json:"canonicalizedBody"`
}

type jsonLogID struct {
	KeyID string `json:"keyId"`
}

type jsonKind struct {
	Kind    string `json:"kind"`
	Version string `json:"version"`
}

type jsonPromise struct {
	SignedEntryTimestamp string `json:"signedEntryTimestamp"`
}

type jsonProof struct {
	LogIndex   string          `json:"logIndex"`
	RootHash   string          `json:"rootHash"`
	TreeSize   string          `json:"treeSize"`
	Hashes     []string        `json:"hashes"`
	Checkpoint *jsonCheckpoint `json:"checkpoint,omitempty"`
}

type jsonCheckpoint struct {
	Envelope string `json:"envelope"`
}

type jsonMessageSig struct {
	MessageDigest *jsonDigest `json:"messageDigest,omitempty"`
	Signature     string      `json:"signature"`
}

type jsonDigest struct {
	Algorithm string `json:"algorithm"`
	Digest    string `json:"digest"`
}

// ParseBundle parses a Sigstore bundle (JSON of dev.sigstore.bundle.v1,
// media types 0.1 to 0.3) strictly: at most MaxBundleSize bytes, no unknown
// or duplicate fields, 64-bit integers as canonical decimal strings (as
// protobuf JSON writes them), canonical base64, 32-byte hashes, 1 to
// MaxEntries log entries of at most MaxBodySize bytes each, and inclusion
// proofs of at most 63 hashes. It verifies nothing.
func ParseBundle(b []byte) (*UnverifiedBundle, error) {
	if len(b) > MaxBundleSize {
		return nil, errTooLarge
	}
	var jb jsonBundle
	if err := decodeStrict(b, &jb); err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	if !mediaTypes[jb.MediaType] {
		return nil, fmt.Errorf("%w: unknown media type", errMalformed)
	}
	m := jb.VerificationMaterial
	if m == nil || len(m.TlogEntries) == 0 || len(m.TlogEntries) > MaxEntries {
		return nil, fmt.Errorf("%w: want 1 to %d transparency log entries", errMalformed, MaxEntries)
	}
	ub := &UnverifiedBundle{MediaType: jb.MediaType}
	if m.PublicKey != nil {
		ub.KeyHint = m.PublicKey.Hint
	}
	for i := range m.TlogEntries {
		e, err := parseEntry(&m.TlogEntries[i])
		if err != nil {
			return nil, fmt.Errorf("%w: tlog entry %d: %w", errMalformed, i, err)
		}
		ub.Entries = append(ub.Entries, *e)
	}
	if ms := jb.MessageSignature; ms != nil {
		var err error
		if ub.Signature, err = decodeB64(ms.Signature); err != nil || len(ub.Signature) == 0 {
			return nil, fmt.Errorf("%w: message signature", errMalformed)
		}
		if ms.MessageDigest != nil {
			ub.DigestAlgorithm = ms.MessageDigest.Algorithm
			if ub.Digest, err = decodeB64(ms.MessageDigest.Digest); err != nil {
				return nil, fmt.Errorf("%w: message digest", errMalformed)
			}
		}
	}
	return ub, nil
}

func parseEntry(je *jsonEntry) (*UnverifiedEntry, error) {
	e := &UnverifiedEntry{}
	var err error
	if e.LogIndex, err = parseInt(je.LogIndex); err != nil {
		return nil, errors.New("logIndex")
	}
	if je.LogID != nil {
		if e.LogKeyID, err = decodeB64(je.LogID.KeyID); err != nil {
			return nil, errors.New("logId")
		}
	}
	if je.KindVersion == nil || je.KindVersion.Kind == "" || je.KindVersion.Version == "" {
		return nil, errors.New("kindVersion")
	}
	e.Kind, e.Version = je.KindVersion.Kind, je.KindVersion.Version
	if je.IntegratedTime != "" {
		if e.IntegratedTime, err = parseInt(je.IntegratedTime); err != nil {
			return nil, errors.New("integratedTime")
		}
	}
	if je.InclusionPromise != nil {
		if e.SignedEntryTimestamp, err = decodeB64(je.InclusionPromise.SignedEntryTimestamp); err != nil {
			return nil, errors.New("inclusionPromise")
		}
	}
	if e.Body, err = decodeB64(je.CanonicalizedBody); err != nil || len(e.Body) == 0 || len(e.Body) > MaxBodySize {
		return nil, errors.New("canonicalizedBody")
	}
	if je.InclusionProof != nil {
		if e.Proof, err = parseProof(je.InclusionProof); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func parseProof(jp *jsonProof) (*InclusionProof, error) {
	p := &InclusionProof{}
	idx, err1 := parseInt(jp.LogIndex)
	size, err2 := parseInt(jp.TreeSize)
	if err1 != nil || err2 != nil {
		return nil, errors.New("inclusion proof index or tree size")
	}
	p.Index, p.TreeSize = uint64(idx), uint64(size)
	if err := decodeHash(jp.RootHash, &p.RootHash); err != nil {
		return nil, errors.New("inclusion proof root hash")
	}
	if len(jp.Hashes) > maxProofLen {
		return nil, errors.New("inclusion proof too long")
	}
	p.Hashes = make([][32]byte, len(jp.Hashes))
	for i, h := range jp.Hashes {
		if err := decodeHash(h, &p.Hashes[i]); err != nil {
			return nil, errors.New("inclusion proof hash")
		}
	}
	if jp.Checkpoint != nil {
		if jp.Checkpoint.Envelope == "" {
			return nil, errors.New("empty checkpoint")
		}
		p.Checkpoint = []byte(jp.Checkpoint.Envelope)
	}
	return p, nil
}

// decodeStrict decodes one JSON value into v, refusing unknown fields,
// duplicate keys and trailing data.
func decodeStrict(b []byte, v any) error {
	if err := checkNoDuplicateKeys(b); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

// checkNoDuplicateKeys refuses a JSON text in which an object repeats a
// key: encoding/json would keep the last one silently, so two parsers could
// read one bundle two ways. Keys differing only in case count as the
// same, since encoding/json matches field names case-insensitively. Nesting is bounded by the size cap.
func checkNoDuplicateKeys(b []byte) error {
	type frame struct {
		keys      map[string]bool // nil for an array
		expectKey bool
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].keys != nil {
				stack[len(stack)-1].expectKey = true
			}
			continue
		}
		if top != nil && top.keys != nil && top.expectKey {
			k, _ := tok.(string)   // the decoder only yields strings here
			k = strings.ToLower(k) // encoding/json matches field names case-insensitively
			if top.keys[k] {
				return errors.New("duplicate key")
			}
			top.keys[k] = true
			top.expectKey = false
			continue
		}
		if d, ok := tok.(json.Delim); ok {
			if len(stack) >= 64 {
				return errors.New("nested too deeply")
			}
			f := &frame{}
			if d == '{' {
				f.keys, f.expectKey = map[string]bool{}, true
			}
			stack = append(stack, f)
			continue
		}
		if top != nil && top.keys != nil {
			top.expectKey = true
		}
	}
}

// parseInt parses a canonical non-negative decimal int64 ("0", "735").
// The empty string (the field was absent) is 0, since protobuf JSON omits
// fields holding their zero value.
func parseInt(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, errMalformed
	}
	return n, nil
}

// decodeB64 decodes canonical standard base64 (padded), as protobuf JSON
// writes bytes fields.
func decodeB64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || base64.StdEncoding.EncodeToString(b) != s {
		return nil, errMalformed
	}
	return b, nil
}

func decodeHash(s string, h *[32]byte) error {
	b, err := decodeB64(s)
	if err != nil || len(b) != len(h) {
		return errMalformed
	}
	copy(h[:], b)
	return nil
}

// Format returns the protobuf JSON encoding of b as a bundle of MediaType
// (v0.3), with the public key hint, every log entry and the message
// signature. ParseBundle(b.Format()) returns b.
func (b *UnverifiedBundle) Format() []byte {
	jb := jsonBundle{MediaType: MediaType, VerificationMaterial: &jsonMaterial{}}
	if b.KeyHint != "" {
		jb.VerificationMaterial.PublicKey = &jsonHint{Hint: b.KeyHint}
	}
	for _, e := range b.Entries {
		jb.VerificationMaterial.TlogEntries = append(jb.VerificationMaterial.TlogEntries, formatEntry(&e))
	}
	if b.Signature != nil {
		jb.MessageSignature = &jsonMessageSig{Signature: b64(b.Signature)}
		if b.Digest != nil {
			jb.MessageSignature.MessageDigest = &jsonDigest{Algorithm: b.DigestAlgorithm, Digest: b64(b.Digest)}
		}
	}
	out, err := json.Marshal(jb)
	if err != nil {
		panic("sigstore: " + err.Error()) // plain strings and slices always encode
	}
	return out
}

func formatEntry(e *UnverifiedEntry) jsonEntry {
	je := jsonEntry{
		LogIndex:          strconv.FormatInt(e.LogIndex, 10),
		KindVersion:       &jsonKind{Kind: e.Kind, Version: e.Version},
		CanonicalizedBody: b64(e.Body),
	}
	if e.LogKeyID != nil {
		je.LogID = &jsonLogID{KeyID: b64(e.LogKeyID)}
	}
	if e.IntegratedTime != 0 {
		je.IntegratedTime = strconv.FormatInt(e.IntegratedTime, 10)
	}
	if e.SignedEntryTimestamp != nil {
		je.InclusionPromise = &jsonPromise{SignedEntryTimestamp: b64(e.SignedEntryTimestamp)}
	}
	if p := e.Proof; p != nil {
		jp := &jsonProof{
			LogIndex: strconv.FormatUint(p.Index, 10), TreeSize: strconv.FormatUint(p.TreeSize, 10),
			RootHash: b64(p.RootHash[:]), Hashes: []string{},
		}
		for _, h := range p.Hashes {
			jp.Hashes = append(jp.Hashes, b64(h[:]))
		}
		if p.Checkpoint != nil {
			jp.Checkpoint = &jsonCheckpoint{Envelope: string(p.Checkpoint)}
		}
		je.InclusionProof = jp
	}
	return je
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
