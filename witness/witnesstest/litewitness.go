package witnesstest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"golang.org/x/crypto/ssh"
	"golang.org/x/mod/sumdb/note"
)

// Litewitness is a running torchwood litewitness with its ssh-agent.
type Litewitness struct {
	URL  string
	VKey string // cosignature/v1 verifier key
}

// StartLitewitness starts torchwood's litewitness (installed by
// scripts/setup.d/20-litewitness.sh) with a fresh Ed25519 key held by a real
// ssh-agent, knowing the given logs.
func StartLitewitness(t testing.TB, name string, logs map[string]string) *Litewitness {
	t.Helper()
	lw := lookTool(t, "litewitness")
	agentBin, sqlite := lookTool(t, "ssh-agent"), lookTool(t, "sqlite3")
	addBin := lookTool(t, "ssh-add")
	dir, err := os.MkdirTemp("", "lw") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
	agent := exec.Command(agentBin, "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	waitFor(t, "unix", sock)

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "witness.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	add := exec.Command(addBin, keyFile)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
	sshPub, _ := ssh.NewPublicKey(pub)

	// witnessctl cannot be built here (see the setup script): add the logs
	// with litewitness's own schema (torchwood internal/witness OpenDB) and
	// the rows witnessctl add-log / add-key would insert.
	db := filepath.Join(dir, "litewitness.db")
	empty := base64.StdEncoding.EncodeToString(emptyTreeHash())
	sql := `CREATE TABLE IF NOT EXISTS log (origin TEXT PRIMARY KEY, tree_size INTEGER NOT NULL, tree_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS key (origin TEXT NOT NULL, key TEXT NOT NULL, FOREIGN KEY(origin) REFERENCES log(origin));
`
	for origin, vkey := range logs {
		sql += fmt.Sprintf("INSERT INTO log (origin, tree_size, tree_hash) VALUES ('%s', 0, '%s');\nINSERT INTO key (origin, key) VALUES ('%s', '%s');\n", origin, empty, origin, vkey)
	}
	if out, err := exec.Command(sqlite, db, sql).CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}

	// Outside the ephemeral range (see kit.StableAddr): an ephemeral port
	// can be taken between here and litewitness's bind, by another
	// process's connection or by waitFor's own dials connecting to
	// themselves.
	addr := kit.StableAddr(t)
	cmd := exec.Command(lw, "-db", db, "-name", name, "-key", ssh.FingerprintSHA256(sshPub), "-ssh-agent", sock, "-listen", addr)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, "tcp", addr)
	noteVKey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	cosig, err := notekey.CosignatureVKey(noteVKey)
	if err != nil {
		t.Fatal(err)
	}
	return &Litewitness{URL: "http://" + addr, VKey: cosig}
}

func emptyTreeHash() []byte {
	h := [32]byte{0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55}
	return h[:]
}

// lookTool finds an outside tool; without it the test fails under CI and
// is skipped otherwise.
func lookTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (scripts/setup.d/20-litewitness.sh installs it): %v", name, err)
		}
		t.Skipf("%s not installed; run scripts/setup.d/20-litewitness.sh", name)
	}
	return p
}

func waitFor(t testing.TB, network, addr string) {
	t.Helper()
	for i := 0; i < 2400; i++ { // 60 s: a loaded machine
		if c, err := net.Dial(network, addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("%s %s never came up", network, addr)
}
