// Package keyreftest makes SoftHSM2 tokens for tests: a PKCS #11 token in
// a temporary directory, selected by SOFTHSM2_CONF, so tests of hardware-held
// keys run against a real PKCS #11 implementation.
package keyreftest

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Module is the SoftHSM2 PKCS #11 library installed by
// scripts/setup.d/15-softhsm.sh (Debian's softhsm2).
const Module = "/usr/lib/softhsm/libsofthsm2.so"

// PIN is the user PIN of the tokens InitToken makes.
const PIN = "1234"

// Available reports why SoftHSM2 cannot be used, or nil.
func Available() error {
	if _, err := os.Stat(Module); err != nil {
		return err
	}
	_, err := exec.LookPath("softhsm2-util")
	return err
}

// Require skips t when SoftHSM2 is missing, or fails it under CI (where
// scripts/setup.d installs it).
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("SoftHSM2 missing (%v): run scripts/setup.d/15-softhsm.sh", err)
		}
		t.Skipf("SoftHSM2 missing (%v): run scripts/setup.d/15-softhsm.sh", err)
	}
}

// InitToken writes a SoftHSM2 configuration in dir whose tokens live in
// dir/tokens, and initialises a token labelled label with user PIN PIN (and
// more tokens, one per extra label). It returns the configuration's path:
// set SOFTHSM2_CONF to it before the process (or a child process) first
// loads the library.
func InitToken(dir, label string, extra ...string) (string, error) {
	tokens := filepath.Join(dir, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		return "", err
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	cfg := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		return "", err
	}
	for _, l := range append([]string{label}, extra...) {
		cmd := exec.Command("softhsm2-util", "--init-token", "--free", "--label", l, "--pin", PIN, "--so-pin", "5678")
		cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("softhsm2-util --init-token: %v: %s", err, out)
		}
	}
	return conf, nil
}

// ImportKey imports a PKCS #8 PEM private key file (and its public key)
// into the token labelled token of the configuration conf, labelled object,
// with softhsm2-util in a child process: the test process itself never logs
// in to that token.
func ImportKey(conf, token, object, pemFile string) error {
	cmd := exec.Command("softhsm2-util", "--import", pemFile, "--token", token, "--label", object, "--id", "a1", "--pin", PIN)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("softhsm2-util --import: %v: %s", err, out)
	}
	return nil
}

// URI returns the pkcs11: URI of the key labelled object on the token
// labelled token, with the PIN in the URI.
func URI(token, object string) string {
	return "pkcs11:token=" + url.PathEscape(token) + ";object=" + url.PathEscape(object) +
		"?module-path=" + Module + "&pin-value=" + PIN
}
