package keyref

import (
	"context"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/internal/keyref/keyreftest"
)

func TestGeneratePKCS11NeverReplaces(t *testing.T) {
	tokenSigner(t, "once", false)
	if _, err := GeneratePKCS11(keyreftest.URI(token, "once"), true); err == nil || !strings.Contains(err.Error(), "never replaced") {
		t.Fatalf("second key with the same label: err = %v", err)
	}
}

func TestOpenPKCS11Refuses(t *testing.T) {
	keyreftest.Require(t)
	ref := keyreftest.URI(pinToken, "imported")
	// In this order: the last case logs in to the token for this process.
	for _, c := range []struct{ name, ref string }{
		{"wrong PIN", strings.Replace(ref, "pin-value="+keyreftest.PIN, "pin-value=0000", 1)},
		{"no PIN", strings.Replace(ref, "&pin-value="+keyreftest.PIN, "", 1)},
		{"missing key", keyreftest.URI(pinToken, "absent")},
		{"missing token", keyreftest.URI("no-such-token", "imported")},
		{"no module", strings.Replace(ref, keyreftest.Module, "/nonexistent/lib.so", 1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Open(context.Background(), c.ref); err == nil {
				t.Error("opened")
			} else if strings.Contains(err.Error(), "pin-value=1234") || strings.Contains(err.Error(), "pin-value=0000") {
				t.Errorf("error shows the PIN: %v", err)
			}
		})
	}
	if _, err := Open(context.Background(), ref); err != nil {
		t.Errorf("the right PIN: %v", err)
	}
}

func TestOpenLogSignerKeyRef(t *testing.T) {
	tokenSigner(t, "log", true)
	s, vkey, err := OpenLogSigner(context.Background(), FormatNoteKeyRef("example.com/log", keyreftest.URI(token, "log")))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "example.com/log" || !strings.HasPrefix(vkey, "example.com/log+") {
		t.Errorf("name %q, vkey %q", s.Name(), vkey)
	}
	if _, _, _, err := OpenWitnessSigner(context.Background(), FormatNoteKeyRef("w", keyreftest.URI(token, "log"))); err == nil {
		t.Error("an ECDSA token key was accepted as a witness key")
	}
}
