package rekor

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/sigstore/rekor/pkg/generated/client/pubkey"
	"github.com/sigstore/rekor/pkg/generated/client/tlog"
)

// VKey returns the C2SP vkey under which a device policy names this Rekor
// v1 log ("log <vkey> <url>"): "<host>+<key hash>+base64(0x02 || DER
// SPKI)", with the key hash SHA-256(SPKI)[:4] and the host taken from the
// log's current checkpoint origin ("<host> - <tree id>"). It trusts the
// server's answer: compare it with the operator's published key (trust on
// first use otherwise).
func (c *Client) VKey(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	pk, err := c.rc.Pubkey.GetPublicKey(pubkey.NewGetPublicKeyParamsWithContext(ctx).WithTimeout(c.timeout))
	if err != nil {
		return "", fmt.Errorf("couldn't read the Rekor public key: %w", err)
	}
	blk, _ := pem.Decode([]byte(pk.Payload))
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return "", errors.New("Rekor public key is not a PEM public key")
	}
	if _, err := x509.ParsePKIXPublicKey(blk.Bytes); err != nil {
		return "", fmt.Errorf("Rekor public key: %w", err)
	}
	info, err := c.rc.Tlog.GetLogInfo(tlog.NewGetLogInfoParamsWithContext(ctx).WithTimeout(c.timeout))
	if err != nil || info.Payload.SignedTreeHead == nil {
		return "", fmt.Errorf("couldn't read the Rekor checkpoint: %v", err)
	}
	origin, _, _ := strings.Cut(*info.Payload.SignedTreeHead, "\n")
	host, _, ok := policy.ParseRekorV1Origin(origin)
	if !ok {
		return "", fmt.Errorf("Rekor checkpoint origin %q is not \"<host> - <tree id>\"", origin)
	}
	h := sha256.Sum256(blk.Bytes)
	vkey := fmt.Sprintf("%s+%x+%s", host, h[:4], base64.StdEncoding.EncodeToString(append([]byte{notekey.TypeECDSA}, blk.Bytes...)))
	if _, err := notekey.ParseLogVerifier(vkey); err != nil {
		return "", err
	}
	return vkey, nil
}
