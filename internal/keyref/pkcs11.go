//go:build cgo

package keyref

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/pkcs11"
)

// PKCS #11 3.0 identifiers that github.com/miekg/pkcs11 v1.1.2 does not
// name (PKCS #11 Specification Version 3.0, §6.3.5 and §2.3.14).
const (
	ckkECEdwards           = 0x40
	ckmECEdwardsKeyPairGen = 0x1055
	ckmEdDSA               = 0x1057
)

// DER encodings of the curve OIDs in CKA_EC_PARAMS: id-Ed25519 (RFC 8410)
// and prime256v1; some tokens name Ed25519 by the PrintableString
// "edwards25519" instead.
var (
	oidEd25519       = []byte{0x06, 0x03, 0x2b, 0x65, 0x70}
	nameEd25519      = append([]byte{0x13, 0x0c}, "edwards25519"...)
	oidP256          = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
	errNotFound      = errors.New("no such key on the token")
	modulesMu        sync.Mutex
	modules          = map[string]*pkcs11.Ctx{}
	maxPINSourceSize = int64(1024)
)

// loadModule loads and initialises a PKCS #11 library once per process
// (C_Initialize may be called only once per library).
func loadModule(path string) (*pkcs11.Ctx, error) {
	modulesMu.Lock()
	defer modulesMu.Unlock()
	if c, ok := modules[path]; ok {
		return c, nil
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("PKCS #11 module: %w", err)
	}
	c := pkcs11.New(path)
	if c == nil {
		return nil, fmt.Errorf("couldn't load PKCS #11 module %s", path)
	}
	if err := c.Initialize(); err != nil && !isCKR(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		c.Destroy()
		return nil, fmt.Errorf("couldn't initialise PKCS #11 module %s: %w", path, err)
	}
	modules[path] = c
	return c, nil
}

func isCKR(err error, code uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == code
}

// session opens a session on the one token u names and logs in if u gives
// a PIN.
func session(u *PKCS11URI, rw bool) (*pkcs11.Ctx, pkcs11.SessionHandle, error) {
	c, err := loadModule(u.ModulePath)
	if err != nil {
		return nil, 0, err
	}
	found, err := findSlots(c, u)
	if err != nil {
		return nil, 0, err
	}
	flags := uint(pkcs11.CKF_SERIAL_SESSION)
	if rw {
		flags |= pkcs11.CKF_RW_SESSION
	}
	sh, err := c.OpenSession(found, flags)
	if err != nil {
		return nil, 0, fmt.Errorf("couldn't open a PKCS #11 session: %w", err)
	}
	pin, err := u.pin()
	if err != nil {
		c.CloseSession(sh)
		return nil, 0, err
	}
	if pin != "" {
		if err := c.Login(sh, pkcs11.CKU_USER, pin); err != nil && !isCKR(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
			c.CloseSession(sh)
			return nil, 0, fmt.Errorf("couldn't log in to the token: %w", err)
		}
	}
	return c, sh, nil
}

// findSlots returns the one slot whose token u names. When none matches it
// looks again for up to a second: a token shared by several processes can be
// briefly unreadable, or read as uninitialised, while another one writes to
// it (SoftHSM2's file store does this), so a misspelt token name costs a
// second before it is reported.
func findSlots(c *pkcs11.Ctx, u *PKCS11URI) (uint, error) {
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		if attempt > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		slots, err := c.GetSlotList(true)
		if err != nil {
			return 0, fmt.Errorf("couldn't list PKCS #11 slots: %w", err)
		}
		var found []uint
		lastErr = nil
		for _, s := range slots {
			ti, err := c.GetTokenInfo(s)
			if err != nil {
				lastErr = err
				continue
			}
			if matches(u.Token, ti.Label) && matches(u.Serial, ti.SerialNumber) && matches(u.Manufacturer, ti.ManufacturerID) &&
				matches(u.Model, ti.Model) && (u.SlotID == nil || *u.SlotID == s) {
				found = append(found, s)
			}
		}
		switch {
		case len(found) == 1:
			return found[0], nil
		case len(found) > 1:
			return 0, fmt.Errorf("the URI matches %d tokens, want exactly 1", len(found))
		}
	}
	if lastErr != nil {
		return 0, fmt.Errorf("the URI matches no readable token (last error: %w)", lastErr)
	}
	return 0, errors.New("the URI matches no token")
}

func matches(want, got string) bool { return want == "" || want == strings.TrimRight(got, " \x00") }

func (u *PKCS11URI) pin() (string, error) {
	if u.PINSource == "" {
		return u.PINValue, nil
	}
	f, err := os.Open(u.PINSource)
	if err != nil {
		return "", fmt.Errorf("couldn't read pin-source: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPINSourceSize))
	if err != nil {
		return "", fmt.Errorf("couldn't read pin-source: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSuffix(line, "\r"), nil
}

// findObjects returns the handles of the objects of class on the token
// with u's label and ID.
func findObjects(c *pkcs11.Ctx, sh pkcs11.SessionHandle, class uint, u *PKCS11URI) ([]pkcs11.ObjectHandle, error) {
	tmpl := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class)}
	if u.Object != "" {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_LABEL, u.Object))
	}
	if len(u.ID) > 0 {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_ID, u.ID))
	}
	if err := c.FindObjectsInit(sh, tmpl); err != nil {
		return nil, err
	}
	objs, _, err := c.FindObjects(sh, 2)
	if ferr := c.FindObjectsFinal(sh); err == nil {
		err = ferr
	}
	return objs, err
}

func findOne(c *pkcs11.Ctx, sh pkcs11.SessionHandle, class uint, u *PKCS11URI) (pkcs11.ObjectHandle, error) {
	objs, err := findObjects(c, sh, class, u)
	if err != nil {
		return 0, fmt.Errorf("couldn't search the token: %w", err)
	}
	switch len(objs) {
	case 0:
		return 0, errNotFound
	case 1:
		return objs[0], nil
	}
	return 0, errors.New("the URI matches more than one key on the token")
}

// publicKey reads an EC or Edwards public key object.
func publicKey(c *pkcs11.Ctx, sh pkcs11.SessionHandle, o pkcs11.ObjectHandle) (crypto.PublicKey, error) {
	attrs, err := c.GetAttributeValue(sh, o, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil),
		pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil),
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't read the public key: %w", err)
	}
	var kt uint64
	for i, b := range attrs[0].Value {
		kt |= uint64(b) << (8 * i) // CK_ULONG in host (little-endian) order
	}
	params, point := attrs[1].Value, attrs[2].Value
	// CKA_EC_POINT is a DER OCTET STRING; some tokens give the raw point.
	var raw []byte
	if rest, err := asn1.Unmarshal(point, &raw); err != nil || len(rest) != 0 {
		raw = point
	}
	switch {
	case kt == ckkECEdwards && (bytes.Equal(params, oidEd25519) || bytes.Equal(params, nameEd25519)) && len(raw) == ed25519.PublicKeySize:
		return ed25519.PublicKey(raw), nil
	case kt == pkcs11.CKK_EC && bytes.Equal(params, oidP256):
		x, y := elliptic.Unmarshal(elliptic.P256(), raw) //nolint:staticcheck // the uncompressed point of CKA_EC_POINT
		if x == nil {
			return nil, errors.New("malformed EC point on the token")
		}
		return &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}, nil
	}
	return nil, errors.New("unsupported key on the token: want Ed25519 or ECDSA P-256")
}

// tokenKey is a private key on a PKCS #11 token. One session, guarded by
// mu (PKCS #11 sessions are not safe for concurrent use), serves all
// signatures; if the token is reset the process must reopen the key.
type tokenKey struct {
	mu   sync.Mutex
	c    *pkcs11.Ctx
	sh   pkcs11.SessionHandle
	priv pkcs11.ObjectHandle
	pub  crypto.PublicKey
}

func openPKCS11(ref string) (crypto.Signer, error) {
	u, err := ParsePKCS11URI(ref)
	if err != nil {
		return nil, err
	}
	c, sh, err := session(u, false)
	if err != nil {
		return nil, err
	}
	k, err := openTokenKey(c, sh, u)
	if err != nil {
		c.CloseSession(sh)
		return nil, err
	}
	return k, nil
}

func openTokenKey(c *pkcs11.Ctx, sh pkcs11.SessionHandle, u *PKCS11URI) (*tokenKey, error) {
	priv, err := findOne(c, sh, pkcs11.CKO_PRIVATE_KEY, u)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	pubObj, err := findOne(c, sh, pkcs11.CKO_PUBLIC_KEY, u)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	pub, err := publicKey(c, sh, pubObj)
	if err != nil {
		return nil, err
	}
	return &tokenKey{c: c, sh: sh, priv: priv, pub: pub}, nil
}

func (k *tokenKey) Public() crypto.PublicKey { return k.pub }

// Sign signs msg with CKM_EDDSA (Ed25519: msg is the message, opts.HashFunc()
// must be 0) or CKM_ECDSA (P-256: msg is a SHA-256 digest), returning an
// Ed25519 signature or an ASN.1 DER ECDSA signature.
func (k *tokenKey) Sign(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	var mech uint
	switch k.pub.(type) {
	case ed25519.PublicKey:
		if opts.HashFunc() != 0 {
			return nil, errors.New("Ed25519 token keys sign messages, not digests")
		}
		mech = ckmEdDSA
	case *ecdsa.PublicKey:
		if opts.HashFunc() != crypto.SHA256 || len(msg) != 32 {
			return nil, errors.New("ECDSA P-256 token keys sign SHA-256 digests")
		}
		mech = pkcs11.CKM_ECDSA
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.c.SignInit(k.sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, k.priv); err != nil {
		return nil, fmt.Errorf("token: couldn't start signing: %w", err)
	}
	sig, err := k.c.Sign(k.sh, msg)
	if err != nil {
		return nil, fmt.Errorf("token: couldn't sign: %w", err)
	}
	if mech != pkcs11.CKM_ECDSA {
		return sig, nil
	}
	if len(sig) != 64 { // PKCS #11 §2.3.1: r || s, each the size of the order
		return nil, errors.New("token returned a malformed ECDSA signature")
	}
	return asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
}

// GeneratePKCS11 creates a new key pair inside the token that ref names,
// labelled with the URI's object (required) and ID (a random 16-byte CKA_ID
// if the URI gives none): Ed25519 (CKM_EC_EDWARDS_KEY_PAIR_GEN) or, with
// ecdsa true, ECDSA P-256. The private key is created sensitive and not
// extractable: it never leaves the token. It refuses a label or ID already
// used by a key on the token. It returns the public key.
func GeneratePKCS11(ref string, ecdsaP256 bool) (crypto.PublicKey, error) {
	u, err := ParsePKCS11URI(ref)
	if err != nil {
		return nil, err
	}
	if u.Object == "" {
		return nil, errors.New("name the new key with object=<label> in the URI")
	}
	c, sh, err := session(u, true)
	if err != nil {
		return nil, err
	}
	defer c.CloseSession(sh)
	for _, class := range []uint{pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_PUBLIC_KEY} {
		for _, q := range []*PKCS11URI{{Object: u.Object}, {ID: u.ID}} {
			if q.Object == "" && len(q.ID) == 0 {
				continue
			}
			objs, err := findObjects(c, sh, class, q)
			if err != nil {
				return nil, fmt.Errorf("couldn't search the token: %w", err)
			}
			if len(objs) > 0 {
				return nil, errors.New("the token already holds a key with this object label or id: keys are never replaced")
			}
		}
	}
	id := u.ID
	if len(id) == 0 {
		id = make([]byte, 16)
		if _, err := io.ReadFull(randReader, id); err != nil {
			return nil, err
		}
	}
	mech, params, kt := uint(ckmECEdwardsKeyPairGen), oidEd25519, uint(ckkECEdwards)
	if ecdsaP256 {
		mech, params, kt = pkcs11.CKM_EC_KEY_PAIR_GEN, oidP256, pkcs11.CKK_EC
	}
	pubTmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, kt),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, u.Object),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
	privTmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, kt),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, u.Object),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	}
	pubObj, _, err := c.GenerateKeyPair(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, pubTmpl, privTmpl)
	if err != nil {
		if isCKR(err, pkcs11.CKR_MECHANISM_INVALID) && !ecdsaP256 {
			return nil, fmt.Errorf("the token cannot make Ed25519 keys (no CKM_EC_EDWARDS_KEY_PAIR_GEN): use ECDSA P-256: %w", err)
		}
		return nil, fmt.Errorf("couldn't generate a key on the token: %w", err)
	}
	return publicKey(c, sh, pubObj)
}
