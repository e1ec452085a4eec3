package keyref

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"errors"
	"fmt"

	sigkms "github.com/sigstore/sigstore/pkg/signature/kms"
	// The cloud providers register their URI schemes with sigkms.
	_ "github.com/sigstore/sigstore/pkg/signature/kms/aws"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/azure"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/gcp"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/hashivault"
)

// openKMS opens a KMS key through sigstore's provider for its scheme, as a
// crypto.Signer of SHA-256 digests. ctx bounds every later signature too.
func openKMS(ctx context.Context, ref string) (crypto.Signer, error) {
	sv, err := sigkms.Get(ctx, ref, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	s, opts, err := sv.CryptoSigner(ctx, func(error) {})
	if err != nil {
		return nil, err
	}
	if opts != nil && opts.HashFunc() != crypto.SHA256 {
		return nil, fmt.Errorf("KMS signer hashes with %v, want SHA-256", opts.HashFunc())
	}
	// sigstore's KMS signers sign digests; shiplog uses them for ECDSA
	// P-256 only (Ed25519 signs whole messages, which they do not pass).
	if _, ok := s.Public().(*ecdsa.PublicKey); !ok {
		return nil, errors.New("KMS keys must be ECDSA P-256")
	}
	return s, nil
}
