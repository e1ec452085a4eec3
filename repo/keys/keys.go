// Package keys manages TUF signing keys (TUF 1.0 §4.2 "keys") kept in files or,
// by reference, in a PKCS #11 token or a cloud KMS (internal/keyref):
// Ed25519 ("ed25519" keytype and scheme) and, for compatibility, ECDSA P-256
// ("ecdsa" keytype, "ecdsa-sha2-nistp256" scheme, as go-tuf v2 names it).
//
// A private key file holds a PKCS #8 private key in PEM. By default it is
// encrypted at rest with a passphrase using age's scrypt recipient
// (filippo.io/age, armored):
//
//	-----BEGIN AGE ENCRYPTED FILE-----
//	YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IHNjcnlwdCAuLi4K...
//	-----END AGE ENCRYPTED FILE-----
//
// A plaintext file ("-----BEGIN PRIVATE KEY-----") is accepted only when the
// user asked for it at generation time (--insecure-plaintext).
//
// The public key file beside it (<file>.pub) is the TUF key object, in the
// JSON that root and targets metadata embed:
//
//	{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"<hex>"}}
//
// Key IDs are computed as go-tuf v2 computes them: the hex SHA-256 of the
// canonical JSON of the key object.
package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/shiplog/shiplog/internal/capped"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/shiplog/shiplog/internal/durable"
	"github.com/shiplog/shiplog/internal/keyref"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Type is a key algorithm.
type Type string

// Supported key types.
const (
	Ed25519   Type = "ed25519"
	ECDSAP256 Type = "ecdsa-p256"
)

// Limits of the file formats. A PEM PKCS #8 key is well under 1 KiB; an age
// armored file adds its header and base64.
const (
	MaxPrivateKeyFile = 16 << 10
	MaxPublicKeyFile  = 4 << 10
	// DefaultWorkFactor is age's default scrypt work factor (log2 N).
	DefaultWorkFactor = 18
)

const (
	ageHeader = "-----BEGIN AGE ENCRYPTED FILE-----"
	pemHeader = "-----BEGIN PRIVATE KEY-----"
)

var (
	// ErrPassphrase means the passphrase does not decrypt the key file.
	ErrPassphrase = errors.New("wrong passphrase")
	// ErrNeedPassphrase means the key file is encrypted and no passphrase was given.
	ErrNeedPassphrase = errors.New("key file is encrypted and no passphrase was given")
	errMalformed      = errors.New("malformed key file: want an age-encrypted or PEM PKCS #8 private key written by `shiplog repo key generate`")
	errMalformedPub   = errors.New("malformed public key file: want a TUF key object such as {\"keytype\":\"ed25519\",...}")
)

// Private is a loaded private key with its TUF public key.
type Private struct {
	signer crypto.Signer
	Public *metadata.Key
	// ID is the TUF key ID of Public.
	ID string
}

// Generate returns a new private key of type t read from rand.
func Generate(rand io.Reader, t Type) (*Private, error) {
	var s crypto.Signer
	switch t {
	case Ed25519:
		_, priv, err := ed25519.GenerateKey(rand)
		if err != nil {
			return nil, err
		}
		s = priv
	case ECDSAP256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand)
		if err != nil {
			return nil, err
		}
		s = priv
	default:
		return nil, fmt.Errorf("unsupported key type %q: want %q or %q", t, Ed25519, ECDSAP256)
	}
	return fromSigner(s)
}

func fromSigner(s crypto.Signer) (*Private, error) {
	pub, err := metadata.KeyFromPublicKey(s.Public())
	if err != nil {
		return nil, err
	}
	id, err := pub.ID()
	if err != nil {
		return nil, err
	}
	return &Private{signer: s, Public: pub, ID: id}, nil
}

// Signer returns a signer for go-tuf's Metadata.Sign: Ed25519, or ECDSA
// P-256 with SHA-256 (ASN.1 DER signatures, as TUF clients expect). For a
// key held in a token or KMS, each signature is one request to it.
func (p *Private) Signer() (signature.Signer, error) {
	switch k := p.signer.(type) {
	case ed25519.PrivateKey:
		return signature.LoadED25519Signer(k)
	case *ecdsa.PrivateKey:
		return signature.LoadECDSASigner(k, crypto.SHA256)
	}
	switch p.signer.Public().(type) {
	case ed25519.PublicKey, *ecdsa.PublicKey:
		return heldSigner{p.signer}, nil
	}
	return nil, errors.New("unsupported key type")
}

// heldSigner signs TUF metadata with a key held in a token or KMS: the
// message itself for Ed25519, its SHA-256 digest for ECDSA P-256.
type heldSigner struct{ s crypto.Signer }

func (h heldSigner) PublicKey(...signature.PublicKeyOption) (crypto.PublicKey, error) {
	return h.s.Public(), nil
}

func (h heldSigner) SignMessage(message io.Reader, _ ...signature.SignOption) ([]byte, error) {
	msg, err := io.ReadAll(message)
	if err != nil {
		return nil, err
	}
	if _, ok := h.s.Public().(ed25519.PublicKey); ok {
		return h.s.Sign(rand.Reader, msg, crypto.Hash(0))
	}
	d := sha256.Sum256(msg)
	return h.s.Sign(rand.Reader, d[:], crypto.SHA256)
}

// Held reports whether the key is held in a token or KMS (opened by
// reference) rather than loaded from a file.
func (p *Private) Held() bool {
	switch p.signer.(type) {
	case ed25519.PrivateKey, *ecdsa.PrivateKey:
		return false
	}
	return true
}

// MarshalPublic returns the public key file content: the TUF key object.
func (p *Private) MarshalPublic() ([]byte, error) {
	b, err := json.Marshal(p.Public)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Marshal returns the private key file content, encrypted with passphrase
// under an age scrypt recipient with the given work factor (log2 N, 10-22;
// 0 means DefaultWorkFactor). An empty passphrase writes plaintext PEM:
// callers must make that an explicit, insecure choice.
func (p *Private) Marshal(passphrase string, workFactor int) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(p.signer)
	if err != nil {
		return nil, err
	}
	plain := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if passphrase == "" {
		return plain, nil
	}
	if workFactor == 0 {
		workFactor = DefaultWorkFactor
	}
	if workFactor < 10 || workFactor > 22 {
		return nil, fmt.Errorf("scrypt work factor %d out of range 10-22", workFactor)
	}
	r, err := age.NewScryptRecipient(passphrase)
	if err != nil {
		return nil, err
	}
	r.SetWorkFactor(workFactor)
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plain); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Encrypted reports whether a private key file's content is encrypted.
func Encrypted(b []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte(ageHeader))
}

// ParsePrivate parses a private key file's content. passphrase is called
// only if the file is encrypted; it may return ErrNeedPassphrase. A wrong
// passphrase gives ErrPassphrase.
func ParsePrivate(b []byte, passphrase func() (string, error)) (*Private, error) {
	if len(b) > MaxPrivateKeyFile {
		return nil, errMalformed
	}
	if Encrypted(b) {
		if passphrase == nil {
			return nil, ErrNeedPassphrase
		}
		pass, err := passphrase()
		if err != nil {
			return nil, err
		}
		if pass == "" {
			return nil, ErrNeedPassphrase
		}
		if b, err = decrypt(b, pass); err != nil {
			return nil, err
		}
	}
	block, rest := pem.Decode(bytes.TrimLeft(b, " \t\r\n"))
	if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 || len(block.Headers) != 0 {
		return nil, errMalformed
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errMalformed
	}
	switch k := k.(type) {
	case ed25519.PrivateKey:
		return fromSigner(k)
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("unsupported ECDSA curve: want P-256")
		}
		return fromSigner(k)
	}
	return nil, errors.New("unsupported private key type: want Ed25519 or ECDSA P-256")
}

func decrypt(b []byte, pass string) ([]byte, error) {
	id, err := age.NewScryptIdentity(pass)
	if err != nil {
		return nil, err
	}
	r, err := age.Decrypt(armor.NewReader(bytes.NewReader(bytes.TrimLeft(b, " \t\r\n"))), id)
	if err != nil {
		if errors.Is(err, age.ErrIncorrectIdentity) || strings.Contains(err.Error(), "incorrect passphrase") {
			return nil, ErrPassphrase
		}
		return nil, errMalformed
	}
	plain, err := io.ReadAll(io.LimitReader(r, MaxPrivateKeyFile+1))
	if err != nil || len(plain) > MaxPrivateKeyFile {
		return nil, errMalformed
	}
	return plain, nil
}

// ParsePublic parses a public key file: one TUF key object of a supported
// type (ed25519, or ecdsa/ecdsa-sha2-nistp256 with P-256), canonical enough
// that its key ID is well defined. Unknown fields are refused.
func ParsePublic(b []byte) (*metadata.Key, string, error) {
	if len(b) > MaxPublicKeyFile {
		return nil, "", errMalformedPub
	}
	var k metadata.Key
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&k); err != nil {
		return nil, "", errMalformedPub
	}
	if dec.More() || len(k.UnrecognizedFields) != 0 || len(k.Value.UnrecognizedFields) != 0 {
		return nil, "", errMalformedPub
	}
	pub, err := k.ToPublicKey()
	if err != nil {
		return nil, "", errMalformedPub
	}
	switch pk := pub.(type) {
	case ed25519.PublicKey:
		if len(pk) != ed25519.PublicKeySize || k.Scheme != metadata.KeySchemeEd25519 {
			return nil, "", errMalformedPub
		}
	case *ecdsa.PublicKey:
		if pk.Curve != elliptic.P256() || k.Scheme != metadata.KeySchemeECDSA_SHA2_P256 {
			return nil, "", errMalformedPub
		}
	default:
		return nil, "", errors.New("unsupported public key type: want Ed25519 or ECDSA P-256")
	}
	// Rebuild from the key material so the ID is the one go-tuf's Sign uses.
	norm, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return nil, "", errMalformedPub
	}
	if norm.Type != k.Type || norm.Value.PublicKey != k.Value.PublicKey {
		return nil, "", errors.New("public key file is not in the form go-tuf writes; regenerate it with `shiplog repo key show`")
	}
	id, err := norm.ID()
	if err != nil {
		return nil, "", err
	}
	return norm, id, nil
}

// ReadFile reads a whole file of at most max bytes.
func ReadFile(path string, max int64) ([]byte, error) {
	return capped.ReadFile(path, max)
}

// Load reads and parses a private key file, or opens the key a reference
// names (a pkcs11: or KMS URI, see internal/keyref): the private key then
// stays in its token or service.
func Load(path string, passphrase func() (string, error)) (*Private, error) {
	if keyref.IsReference(path) {
		s, err := keyref.Open(context.Background(), path)
		if err != nil {
			return nil, err
		}
		return fromSigner(s)
	}
	b, err := ReadFile(path, MaxPrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("couldn't read key: %w", err)
	}
	p, err := ParsePrivate(b, passphrase)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	return p, nil
}

// LoadPublic reads a public key file, or the public half of a private key
// file when path holds a plaintext private key. For an encrypted private
// key, it reads path + ".pub" instead. For a key reference (a pkcs11: or
// KMS URI), it asks the token or service for the public key.
func LoadPublic(path string) (*metadata.Key, string, error) {
	if keyref.IsReference(path) {
		p, err := Load(path, nil)
		if err != nil {
			return nil, "", err
		}
		return p.Public, p.ID, nil
	}
	b, err := ReadFile(path, MaxPrivateKeyFile)
	if err != nil {
		return nil, "", fmt.Errorf("couldn't read public key: %w", err)
	}
	if Encrypted(b) {
		return LoadPublic(path + ".pub")
	}
	if bytes.Contains(b, []byte(pemHeader)) {
		p, err := ParsePrivate(b, nil)
		if err != nil {
			return nil, "", fmt.Errorf("key %s: %w", path, err)
		}
		return p.Public, p.ID, nil
	}
	k, id, err := ParsePublic(b)
	if err != nil {
		return nil, "", fmt.Errorf("key %s: %w", path, err)
	}
	return k, id, nil
}

// WriteFiles writes p to path (mode 0600, encrypted unless passphrase is
// empty) and its public key to path + ".pub" (mode 0644), durably. It never
// overwrites: an existing file is an error and nothing is written.
func WriteFiles(p *Private, path, passphrase string, workFactor int) error {
	priv, err := p.Marshal(passphrase, workFactor)
	if err != nil {
		return err
	}
	pub, err := p.MarshalPublic()
	if err != nil {
		return err
	}
	if _, err := os.Stat(path + ".pub"); err == nil {
		return fmt.Errorf("%s.pub already exists: choose another file name", path)
	}
	if err := durable.CreateFile(path, priv, 0o600); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists: choose another file name (keys are never overwritten)", path)
		}
		return fmt.Errorf("couldn't write key: %w", err)
	}
	if err := durable.CreateFile(path+".pub", pub, 0o644); err != nil {
		os.Remove(path)
		return fmt.Errorf("couldn't write public key: %w", err)
	}
	return nil
}

// GenerateDefault is Generate with crypto/rand.
func GenerateDefault(t Type) (*Private, error) { return Generate(rand.Reader, t) }
