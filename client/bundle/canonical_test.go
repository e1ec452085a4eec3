package bundle

import (
	"bytes"
	"errors"
	"testing"

	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestCanonicalAcceptsGoTUFEncodings(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	ts := metadata.Timestamp(time.Now().Add(time.Hour))
	if _, err := ts.Sign(signer); err != nil {
		t.Fatal(err)
	}
	for _, pretty := range []bool{false, true} {
		b, err := ts.ToBytes(pretty)
		if err != nil {
			t.Fatal(err)
		}
		if err := canonical[metadata.TimestampType]("timestamp", b); err != nil {
			t.Errorf("pretty=%v: %v", pretty, err)
		}
		if err := canonical[metadata.TimestampType]("timestamp", append(bytes.Clone(b), '\n')); err != nil {
			t.Errorf("pretty=%v with newline: %v", pretty, err)
		}
		bad := bytes.Replace(b, []byte(`"signatures"`), []byte(`"Signatures"`), 1)
		if err := canonical[metadata.TimestampType]("timestamp", bad); !errors.Is(err, ErrNotCanonical) {
			t.Errorf("pretty=%v: key case change: %v", pretty, err)
		}
	}
}
