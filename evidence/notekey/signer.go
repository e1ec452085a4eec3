package notekey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// ErrCosignatureNeedsEd25519 means a witness key is not Ed25519:
// c2sp.org/tlog-cosignature defines cosignature/v1 for Ed25519 keys only
// (type 0x04), so an ECDSA key cannot cosign checkpoints.
var ErrCosignatureNeedsEd25519 = errors.New("a witness key must be Ed25519: cosignature/v1 (c2sp.org/tlog-cosignature) has no ECDSA form")

// NewLogSignerFrom returns a note signer for a log key held behind s (a file
// key, a PKCS #11 token or a KMS), named name, and its verifier key:
//
//   - Ed25519: signature type 0x01 of c2sp.org/signed-note, key ID
//     SHA-256(name || 0x0A || 0x01 || key)[:4];
//   - ECDSA P-256: type 0x02 (ASN.1 DER ECDSA over SHA-256 of the note
//     text, the form Rekor's checkpoints use and transparency-dev/formats
//     verifies), key ID SHA-256(DER SubjectPublicKeyInfo)[:4].
//
// Both are accepted by ParseLogVerifier. s must be safe for concurrent use
// if the signer is; its Sign gets the message (Ed25519, crypto.Hash(0)) or
// its SHA-256 digest (ECDSA, crypto.SHA256).
func NewLogSignerFrom(name string, s crypto.Signer) (note.Signer, string, error) {
	if !validName(name) {
		return nil, "", fmt.Errorf("invalid key name %q: want non-empty UTF-8 without spaces or '+'", name)
	}
	switch pub := s.Public().(type) {
	case ed25519.PublicKey:
		vkey, err := note.NewEd25519VerifierKey(name, pub)
		if err != nil {
			return nil, "", err
		}
		typed := append([]byte{TypeEd25519}, pub...)
		return &cryptoNoteSigner{name: name, hash: KeyID(name, typed), sign: func(msg []byte) ([]byte, error) {
			return s.Sign(rand.Reader, msg, crypto.Hash(0))
		}}, vkey, nil
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, "", errors.New("unsupported ECDSA curve: want P-256")
		}
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return nil, "", err
		}
		h := sha256.Sum256(der)
		id := binary.BigEndian.Uint32(h[:4])
		vkey := name + "+" + fmt.Sprintf("%08x", id) + "+" + base64.StdEncoding.EncodeToString(append([]byte{TypeECDSA}, der...))
		return &cryptoNoteSigner{name: name, hash: id, sign: func(msg []byte) ([]byte, error) {
			d := sha256.Sum256(msg)
			return s.Sign(rand.Reader, d[:], crypto.SHA256)
		}}, vkey, nil
	}
	return nil, "", errors.New("unsupported log key type: want Ed25519 or ECDSA P-256")
}

// NewWitnessSignerFrom returns a signer of timestamped cosignature/v1
// signatures (c2sp.org/tlog-cosignature) for an Ed25519 key held behind s,
// named name, with its verifier keys in both published forms (0x01 and
// 0x04). Any other key type gives ErrCosignatureNeedsEd25519. The timestamp
// is the current time when Sign is called.
func NewWitnessSignerFrom(name string, s crypto.Signer) (signer note.Signer, vkey, cosignatureVKey string, err error) {
	pub, ok := s.Public().(ed25519.PublicKey)
	if !ok {
		return nil, "", "", ErrCosignatureNeedsEd25519
	}
	if !validName(name) {
		return nil, "", "", fmt.Errorf("invalid key name %q: want non-empty UTF-8 without spaces or '+'", name)
	}
	if vkey, err = note.NewEd25519VerifierKey(name, pub); err != nil {
		return nil, "", "", err
	}
	if cosignatureVKey, err = CosignatureVKey(vkey); err != nil {
		return nil, "", "", err
	}
	typed := append([]byte{TypeCosignatureV1}, pub...)
	return &cryptoNoteSigner{name: name, hash: KeyID(name, typed), sign: func(msg []byte) ([]byte, error) {
		t := uint64(time.Now().Unix())
		// c2sp.org/tlog-cosignature: the signed message is
		// "cosignature/v1\ntime <t>\n" followed by the checkpoint text, and
		// the signature is the big-endian timestamp followed by the
		// Ed25519 signature.
		m := append([]byte("cosignature/v1\ntime "+strconv.FormatUint(t, 10)+"\n"), msg...)
		sig, err := s.Sign(rand.Reader, m, crypto.Hash(0))
		if err != nil {
			return nil, err
		}
		return append(binary.BigEndian.AppendUint64(nil, t), sig...), nil
	}}, vkey, cosignatureVKey, nil
}

// cryptoNoteSigner is a note.Signer over a crypto.Signer.
type cryptoNoteSigner struct {
	name string
	hash uint32
	sign func([]byte) ([]byte, error)
}

func (s *cryptoNoteSigner) Name() string                    { return s.name }
func (s *cryptoNoteSigner) KeyHash() uint32                 { return s.hash }
func (s *cryptoNoteSigner) Sign(msg []byte) ([]byte, error) { return s.sign(msg) }
