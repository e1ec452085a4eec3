//go:build !cgo

package keyref

import (
	"crypto"
	"errors"
)

// errNoCgo: PKCS #11 libraries are C shared objects, loaded through cgo.
var errNoCgo = errors.New("this shiplog was built without cgo (CGO_ENABLED=0), so it cannot load a PKCS #11 library: rebuild with cgo")

func openPKCS11(string) (crypto.Signer, error) { return nil, errNoCgo }

// GeneratePKCS11 needs cgo; this build has none, so it always fails.
func GeneratePKCS11(string, bool) (crypto.PublicKey, error) { return nil, errNoCgo }
