package sigstore

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
)

// Kind is the only Rekor entry kind the device accepts: a signature over
// an artifact's digest, with the verifying key.
const Kind = "hashedrekord"

var (
	errBadRekord = errors.New("malformed hashedrekord entry")
	// ErrUnsupportedKey means the entry's key or digest algorithm is not
	// one the device verifies: ECDSA P-256 with SHA-256, or Ed25519ph
	// (RFC 8032) with SHA-512.
	ErrUnsupportedKey = errors.New("unsupported hashedrekord key or digest algorithm")
)

// HashedRekord is a parsed hashedrekord entry body, version 0.0.1 (Rekor
// v1) or 0.0.2 (Rekor v2). It is unverified data until Verify has checked
// its inclusion and signature.
type HashedRekord struct {
	APIVersion string
	// Hash is the digest algorithm: crypto.SHA256 or crypto.SHA512.
	Hash      crypto.Hash
	Digest    []byte
	Signature []byte
	// PublicKey is the verifying key, *ecdsa.PublicKey (P-256) or
	// ed25519.PublicKey, taken from a public key or from a certificate.
	PublicKey crypto.PublicKey
	// Certificate is true when the key came in an X.509 certificate. The
	// device does not validate certificates: it trusts the key only if
	// its TUF role lists it.
	Certificate bool
}

// The canonical JSON encodings of the two versions. Fields are declared
// in lexical order so that json.Marshal writes the canonical (RFC 8785)
// form that Rekor logs, which parseHashedRekord compares against.
type rekordV001 struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Spec       struct {
		Data struct {
			Hash struct {
				Algorithm string `json:"algorithm"`
				Value     string `json:"value"`
			} `json:"hash"`
		} `json:"data"`
		Signature struct {
			Content   string `json:"content"`
			PublicKey struct {
				Content string `json:"content"`
			} `json:"publicKey"`
		} `json:"signature"`
	} `json:"spec"`
}

type rekordV002 struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Spec       struct {
		HashedRekordV002 struct {
			Data struct {
				Algorithm string `json:"algorithm"`
				Digest    string `json:"digest"`
			} `json:"data"`
			Signature struct {
				Content  string `json:"content"`
				Verifier struct {
					KeyDetails      string   `json:"keyDetails"`
					PublicKey       *jsonRaw `json:"publicKey,omitempty"`
					X509Certificate *jsonRaw `json:"x509Certificate,omitempty"`
				} `json:"verifier"`
			} `json:"signature"`
		} `json:"hashedRekordV002"`
	} `json:"spec"`
}

// ParseHashedRekord parses a canonicalized hashedrekord body of version
// 0.0.1 or 0.0.2. It accepts only the canonical encoding (the exact bytes
// it would write), at most MaxBodySize bytes, and only keys and digests the
// device can verify (see ErrUnsupportedKey). It checks no signature.
func ParseHashedRekord(body []byte) (*HashedRekord, error) {
	if len(body) > MaxBodySize {
		return nil, errBadRekord
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(body, &head); err != nil || head.Kind != Kind {
		return nil, errBadRekord
	}
	switch head.APIVersion {
	case "0.0.1":
		return parseV001(body)
	case "0.0.2":
		return parseV002(body)
	default:
		return nil, fmt.Errorf("%w: unknown hashedrekord version", errBadRekord)
	}
}

func parseV001(body []byte) (*HashedRekord, error) {
	var v rekordV001
	if err := decodeCanonical(body, &v); err != nil {
		return nil, err
	}
	h := &HashedRekord{APIVersion: v.APIVersion}
	switch v.Spec.Data.Hash.Algorithm {
	case "sha256":
		h.Hash = crypto.SHA256
	case "sha512":
		h.Hash = crypto.SHA512
	default:
		return nil, ErrUnsupportedKey
	}
	var err error
	h.Digest, err = hex.DecodeString(v.Spec.Data.Hash.Value)
	if err != nil || len(h.Digest) != h.Hash.Size() || hex.EncodeToString(h.Digest) != v.Spec.Data.Hash.Value {
		return nil, errBadRekord
	}
	if h.Signature, err = decodeB64(v.Spec.Signature.Content); err != nil || len(h.Signature) == 0 {
		return nil, errBadRekord
	}
	p, err := decodeB64(v.Spec.Signature.PublicKey.Content)
	if err != nil {
		return nil, errBadRekord
	}
	if h.PublicKey, h.Certificate, err = parsePEMKey(p); err != nil {
		return nil, err
	}
	return h, h.checkAlgorithms("")
}

func parseV002(body []byte) (*HashedRekord, error) {
	var v rekordV002
	if err := decodeCanonical(body, &v); err != nil {
		return nil, err
	}
	s := &v.Spec.HashedRekordV002
	h := &HashedRekord{APIVersion: v.APIVersion}
	switch s.Data.Algorithm {
	case "SHA2_256":
		h.Hash = crypto.SHA256
	case "SHA2_512":
		h.Hash = crypto.SHA512
	default:
		return nil, ErrUnsupportedKey
	}
	var err error
	if h.Digest, err = decodeB64(s.Data.Digest); err != nil || len(h.Digest) != h.Hash.Size() {
		return nil, errBadRekord
	}
	if h.Signature, err = decodeB64(s.Signature.Content); err != nil || len(h.Signature) == 0 {
		return nil, errBadRekord
	}
	ver := s.Signature.Verifier
	switch {
	case ver.PublicKey != nil && ver.X509Certificate == nil:
		der, err := decodeB64(ver.PublicKey.RawBytes)
		if err != nil {
			return nil, errBadRekord
		}
		if h.PublicKey, err = parseSPKI(der); err != nil {
			return nil, err
		}
	case ver.X509Certificate != nil && ver.PublicKey == nil:
		der, err := decodeB64(ver.X509Certificate.RawBytes)
		if err != nil {
			return nil, errBadRekord
		}
		if h.PublicKey, err = parseCertKey(der); err != nil {
			return nil, err
		}
		h.Certificate = true
	default:
		return nil, errBadRekord
	}
	return h, h.checkAlgorithms(ver.KeyDetails)
}

// checkAlgorithms pins the one digest each key type is used with, and, for
// 0.0.2, the declared key details.
func (h *HashedRekord) checkAlgorithms(keyDetails string) error {
	switch k := h.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() || h.Hash != crypto.SHA256 {
			return ErrUnsupportedKey
		}
		if keyDetails != "" && keyDetails != "PKIX_ECDSA_P256_SHA_256" {
			return ErrUnsupportedKey
		}
	case ed25519.PublicKey:
		if h.Hash != crypto.SHA512 {
			return ErrUnsupportedKey
		}
		if keyDetails != "" && keyDetails != "PKIX_ED25519_PH" {
			return ErrUnsupportedKey
		}
	default:
		return ErrUnsupportedKey
	}
	if h.APIVersion == "0.0.2" && keyDetails == "" {
		return errBadRekord
	}
	return nil
}

// VerifySignature checks the entry's signature over its digest with its
// key: ECDSA (ASN.1) over the SHA-256 digest, or Ed25519ph over the
// SHA-512 digest. It says nothing about whether the key is trusted.
func (h *HashedRekord) VerifySignature() error {
	ok := false
	switch k := h.PublicKey.(type) {
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(k, h.Digest, h.Signature)
	case ed25519.PublicKey:
		ok = ed25519.VerifyWithOptions(k, h.Digest, h.Signature, &ed25519.Options{Hash: crypto.SHA512}) == nil
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}

// Matches reports whether the entry's digest is the digest of b.
func (h *HashedRekord) Matches(b []byte) bool {
	var sum []byte
	switch h.Hash {
	case crypto.SHA256:
		s := sha256.Sum256(b)
		sum = s[:]
	case crypto.SHA512:
		s := sha512.Sum512(b)
		sum = s[:]
	default:
		return false
	}
	return bytes.Equal(sum, h.Digest)
}

// decodeCanonical decodes body into v strictly and requires that v encodes
// back to exactly body: no unknown or repeated fields, no whitespace, keys
// in canonical order.
func decodeCanonical(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errBadRekord
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return errBadRekord
	}
	if !bytes.Equal(bytes.TrimSuffix(out.Bytes(), []byte("\n")), body) {
		return fmt.Errorf("%w: not in canonical form", errBadRekord)
	}
	return nil
}

// parsePEMKey parses one PEM block, a PUBLIC KEY or a CERTIFICATE, with
// nothing after it but a newline.
func parsePEMKey(b []byte) (crypto.PublicKey, bool, error) {
	blk, rest := pem.Decode(b)
	if blk == nil || len(bytes.TrimSpace(rest)) != 0 || len(blk.Headers) != 0 {
		return nil, false, errBadRekord
	}
	switch blk.Type {
	case "PUBLIC KEY":
		k, err := parseSPKI(blk.Bytes)
		return k, false, err
	case "CERTIFICATE":
		k, err := parseCertKey(blk.Bytes)
		return k, true, err
	default:
		return nil, false, errBadRekord
	}
}

func parseSPKI(der []byte) (crypto.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, errBadRekord
	}
	return supportedKey(k)
}

func parseCertKey(der []byte) (crypto.PublicKey, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, errBadRekord
	}
	return supportedKey(c.PublicKey)
}

func supportedKey(k any) (crypto.PublicKey, error) {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return k, nil
		}
	case ed25519.PublicKey:
		return k, nil
	}
	return nil, ErrUnsupportedKey
}

// Format returns the canonical body of h as Rekor logs it: version
// APIVersion ("0.0.1" or "0.0.2") with the public key (never a
// certificate). It fails for a certificate-bound entry or an unsupported
// key. ParseHashedRekord(h.Format()) returns h.
func (h *HashedRekord) Format() ([]byte, error) {
	if h.Certificate {
		return nil, errors.New("cannot format a certificate-bound hashedrekord")
	}
	if _, err := supportedKey(h.PublicKey); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(h.PublicKey)
	if err != nil {
		return nil, ErrUnsupportedKey
	}
	var v any
	switch h.APIVersion {
	case "0.0.1":
		var r rekordV001
		r.APIVersion, r.Kind = "0.0.1", Kind
		r.Spec.Data.Hash.Algorithm = map[crypto.Hash]string{crypto.SHA256: "sha256", crypto.SHA512: "sha512"}[h.Hash]
		r.Spec.Data.Hash.Value = hex.EncodeToString(h.Digest)
		r.Spec.Signature.Content = b64(h.Signature)
		r.Spec.Signature.PublicKey.Content = b64(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		v = r
	case "0.0.2":
		var r rekordV002
		r.APIVersion, r.Kind = "0.0.2", Kind
		s := &r.Spec.HashedRekordV002
		s.Data.Algorithm = digestName(h.Hash)
		s.Data.Digest = b64(h.Digest)
		s.Signature.Content = b64(h.Signature)
		s.Signature.Verifier.PublicKey = &jsonRaw{RawBytes: b64(der)}
		s.Signature.Verifier.KeyDetails = "PKIX_ECDSA_P256_SHA_256"
		if _, ok := h.PublicKey.(ed25519.PublicKey); ok {
			s.Signature.Verifier.KeyDetails = "PKIX_ED25519_PH"
		}
		v = r
	default:
		return nil, errBadRekord
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// NewHashedRekord returns the hashedrekord of data signed by signer:
// ECDSA P-256 over the SHA-256 digest, or Ed25519ph over the SHA-512
// digest, at the given version ("0.0.1" for Rekor v1, "0.0.2" for v2).
func NewHashedRekord(version string, data []byte, signer crypto.Signer) (*HashedRekord, error) {
	h := &HashedRekord{APIVersion: version, PublicKey: signer.Public()}
	var opts crypto.SignerOpts
	switch k := signer.Public().(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, ErrUnsupportedKey
		}
		s := sha256.Sum256(data)
		h.Hash, h.Digest, opts = crypto.SHA256, s[:], crypto.SHA256
	case ed25519.PublicKey:
		s := sha512.Sum512(data)
		h.Hash, h.Digest, opts = crypto.SHA512, s[:], &ed25519.Options{Hash: crypto.SHA512}
	default:
		return nil, ErrUnsupportedKey
	}
	sig, err := signer.Sign(rand.Reader, h.Digest, opts)
	if err != nil {
		return nil, fmt.Errorf("couldn't sign: %w", err)
	}
	h.Signature = sig
	return h, nil
}
