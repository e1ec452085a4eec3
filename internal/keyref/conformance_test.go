package keyref

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/internal/keyref/keyreftest"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/fake" // fakekms://, sigstore's in-process KMS provider
	"golang.org/x/mod/sumdb/note"
)

const token = "shiplog-test"

// TestMain makes one SoftHSM2 token for the package's tests: the library
// reads SOFTHSM2_CONF once, when this process first loads it.
func TestMain(m *testing.M) {
	code := func() int {
		if keyreftest.Available() != nil {
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "keyref-softhsm")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		conf, err := keyreftest.InitToken(dir, token, pinToken)
		if err == nil {
			err = importKey(conf, dir)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		os.Setenv("SOFTHSM2_CONF", conf)
		return m.Run()
	}()
	os.Exit(code)
}

// pinToken is a token this process logs in to only in TestOpenPKCS11Refuses
// (PKCS #11 login state is per process and token: once one session logged
// in, a wrong PIN is no longer asked for).
const pinToken = "shiplog-pin-test"

func importKey(conf, dir string) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	f := filepath.Join(dir, "imported.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	return keyreftest.ImportKey(conf, pinToken, "imported", f)
}

// tokenSigner generates a key named object in the test token and opens it.
func tokenSigner(t testing.TB, object string, ecdsaP256 bool) crypto.Signer {
	t.Helper()
	keyreftest.Require(t)
	ref := keyreftest.URI(token, object)
	pub, err := GeneratePKCS11(ref, ecdsaP256)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if !publicEqual(s.Public(), pub) {
		t.Fatal("opened key's public key differs from the generated one")
	}
	return s
}

func publicEqual(a, b crypto.PublicKey) bool {
	type eq interface{ Equal(crypto.PublicKey) bool }
	ea, ok := a.(eq)
	return ok && ea.Equal(b)
}

// TestSignerConformance runs the same checks against every kind of key
// custody shiplog supports: file keys, PKCS #11 token keys (SoftHSM2) and
// KMS keys through sigstore's KMS interface (its in-process fakekms
// provider: the cloud providers need their services and credentials, and
// go through the same sigstore interface and the same code here).
func TestSignerConformance(t *testing.T) {
	_, edFile, _ := ed25519.GenerateKey(rand.Reader)
	ecFile, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cases := []struct {
		name string
		open func(t *testing.T) crypto.Signer
	}{
		{"file-ed25519", func(*testing.T) crypto.Signer { return verifying{edFile} }},
		{"file-ecdsa-p256", func(*testing.T) crypto.Signer { return verifying{ecFile} }},
		{"pkcs11-ed25519", func(t *testing.T) crypto.Signer { return tokenSigner(t, "conf-ed25519", false) }},
		{"pkcs11-ecdsa-p256", func(t *testing.T) crypto.Signer { return tokenSigner(t, "conf-ecdsa", true) }},
		{"kms-ecdsa-p256", func(t *testing.T) crypto.Signer {
			s, err := openKMS(context.Background(), "fakekms://conformance")
			if err != nil {
				t.Fatal(err)
			}
			return verifying{s}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { conform(t, c.open(t)) })
	}
}

func conform(t *testing.T, s crypto.Signer) {
	if err := checkPublic(s.Public()); err != nil {
		t.Fatal(err)
	}
	msg := []byte("shiplog conformance message\n")
	_, isEd := s.Public().(ed25519.PublicKey)
	sign := func(m []byte) ([]byte, error) {
		if isEd {
			return s.Sign(rand.Reader, m, crypto.Hash(0))
		}
		d := sha256.Sum256(m)
		return s.Sign(rand.Reader, d[:], crypto.SHA256)
	}
	t.Run("signature verifies", func(t *testing.T) {
		sig, err := sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		d := sha256.Sum256(msg)
		switch pub := s.Public().(type) {
		case ed25519.PublicKey:
			if !ed25519.Verify(pub, msg, sig) {
				t.Error("Ed25519 signature does not verify")
			}
		case *ecdsa.PublicKey:
			if !ecdsa.VerifyASN1(pub, d[:], sig) {
				t.Error("ECDSA signature does not verify")
			}
		}
	})
	t.Run("wrong hash refused", func(t *testing.T) {
		var err error
		if isEd {
			d := sha256.Sum256(msg)
			_, err = s.Sign(rand.Reader, d[:], crypto.SHA256)
		} else {
			_, err = s.Sign(rand.Reader, msg, crypto.Hash(0))
		}
		if err == nil {
			t.Error("a signature with the wrong hash mode was accepted")
		}
	})
	t.Run("concurrent signatures", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := range 16 {
			wg.Go(func() {
				if _, err := sign(fmt.Appendf(nil, "message %d\n", i)); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	t.Run("log checkpoint", func(t *testing.T) {
		ns, vkey, err := notekey.NewLogSignerFrom("example.com/log", s)
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Sign(&note.Note{Text: "example.com/log\n1\nXhRA/3GRm2yqwBX/tLP1g0bU/EsFFFvhwB7zhnJ/+uU=\n"}, ns)
		if err != nil {
			t.Fatal(err)
		}
		v, err := notekey.ParseLogVerifier(vkey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := note.Open(n, note.VerifierList(v)); err != nil {
			t.Error(err)
		}
	})
	t.Run("witness cosignature", func(t *testing.T) {
		ws, _, cosig, err := notekey.NewWitnessSignerFrom("witness.example", s)
		if !isEd {
			if !errors.Is(err, notekey.ErrCosignatureNeedsEd25519) {
				t.Fatalf("ECDSA witness key: err = %v, want ErrCosignatureNeedsEd25519", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Sign(&note.Note{Text: "example.com/log\n1\nXhRA/3GRm2yqwBX/tLP1g0bU/EsFFFvhwB7zhnJ/+uU=\n"}, ws)
		if err != nil {
			t.Fatal(err)
		}
		v, err := notekey.ParseWitnessVerifier(cosig)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := note.Open(n, note.VerifierList(v)); err != nil {
			t.Error(err)
		}
	})
}
