package keys

import "crypto"

// CryptoSigner returns the key as a crypto.Signer (ed25519.PrivateKey or
// *ecdsa.PrivateKey), for signatures outside TUF metadata, such as the
// hashedrekord entries that repo/rekor submits to a Rekor log.
func (p *Private) CryptoSigner() crypto.Signer { return p.signer }
