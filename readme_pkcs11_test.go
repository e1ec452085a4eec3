package shiplog_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/internal/keyref/keyreftest"
)

// TestREADMEWalkthroughPKCS11 runs the README walkthrough with every key in
// PKCS #11 tokens (SoftHSM2, initialised here in a temporary directory):
// the four TUF role keys (Ed25519, token "vendor"), the ledger's log key
// (ECDSA P-256, so checkpoints carry signed-note type 0x02 signatures that
// witnesses, auditor and device must accept; token "ledger") and the three
// witness keys (Ed25519, as cosignature/v1 requires; tokens "witness-1" to "witness-3", one each).
// Keys are created with `shiplog key generate --pkcs11` and referenced by
// pkcs11: URIs wherever the README gives a key file. Afterwards no private
// key may be found anywhere in the walkthrough's directory.
func TestREADMEWalkthroughPKCS11(t *testing.T) {
	keyreftest.Require(t)
	script := walkthroughScript(t)
	rewrite := func(old, new string) {
		t.Helper()
		if !strings.Contains(script, old) {
			t.Fatalf("README walkthrough no longer contains %q: update this test", old)
		}
		script = strings.ReplaceAll(script, old, new)
	}
	rewrite("shiplog ledger init -d ledger --origin ledger.example/log --http-listen 127.0.0.1:8480 --grpc-listen 127.0.0.1:8481",
		`shiplog key generate ledger.example/log --pkcs11 "$(p11 ledger log)" --type ecdsa-p256
shiplog ledger init -d ledger --origin ledger.example/log --http-listen 127.0.0.1:8480 --grpc-listen 127.0.0.1:8481 --key "$(p11 ledger log)"`)
	rewrite("  shiplog witness init --data-dir witness-$i --name witness-$i.example\n",
		`  shiplog key generate witness-$i.example --witness --pkcs11 "$(p11 witness-$i w$i)"
  shiplog witness init --data-dir witness-$i --name witness-$i.example --key "$(p11 witness-$i w$i)"
`)
	rewrite("  shiplog repo key generate --insecure-plaintext keys/$k.key\n",
		"  shiplog key generate $k --pkcs11 \"$(p11 vendor $k)\" --pub keys/$k.key.pub\n")
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		// --key keys/root.key, --snapshot-key keys/snapshot.key, ...
		script = strings.ReplaceAll(script, "-key keys/"+role+".key\n", "-key \"$(p11 vendor "+role+")\"\n")
		script = strings.ReplaceAll(script, "-key keys/"+role+".key ", "-key \"$(p11 vendor "+role+")\" ")
	}
	if strings.Contains(script, ".key\n") || strings.Contains(script, ".key ") {
		t.Fatalf("a key file is left in the rewritten walkthrough:\n%s", script)
	}
	// Before stopping the servers: refresh with the online keys in the
	// token (a 200h margin makes the one-day timestamp and the one-week
	// snapshot due), and the device still updates against the result.
	rewrite("\nkill $(jobs -p)", `
shiplog repo refresh -d repo --within 200h --metrics-file refresh.prom \
  --timestamp-key "$(p11 vendor timestamp)" --snapshot-key "$(p11 vendor snapshot)" | tee refresh.out
grep -q "signed snapshot v2 and timestamp v2" refresh.out
grep -q 'shiplog_repo_metadata_expires_timestamp_seconds{repository="example.com/firmware",role="timestamp"}' refresh.prom
shiplog-device --data-dir device update --yes
kill $(jobs -p)`)
	hsm := t.TempDir()
	// One token per operator, as each witness would hold its own: SoftHSM2's
	// file store is not safe for one process to write a token (a key
	// generated) while another has it open (a witness serving), which
	// failed once with CKR_USER_PIN_NOT_INITIALIZED when the three
	// witnesses shared one token.
	conf, err := keyreftest.InitToken(hsm, "vendor", "ledger", "witness-1", "witness-2", "witness-3")
	if err != nil {
		t.Fatal(err)
	}
	prelude := "p11() { echo \"pkcs11:token=$1;object=$2?module-path=" + keyreftest.Module + "&pin-value=" + keyreftest.PIN + "\"; }\n"
	script = strings.Replace(script, "\n", "\n"+prelude, 1)
	work := runWalkthrough(t, script, []string{"SOFTHSM2_CONF=" + conf})

	// Nothing secret left the tokens.
	filepath.WalkDir(work, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, secret := range []string{"PRIVATE+KEY+", "BEGIN PRIVATE KEY", "BEGIN AGE ENCRYPTED FILE"} {
			if strings.Contains(string(b), secret) {
				t.Errorf("%s holds a private key (%q)", path, secret)
			}
		}
		return nil
	})
}
