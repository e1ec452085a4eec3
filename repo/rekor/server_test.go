package rekor_test

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/internal/harness/kit"
)

// rekorServer is a real rekor-server v1.5.4 on 127.0.0.1, on its own
// Trillian tree of the Trillian v1.8.0 + PostgreSQL that
// deploy/trillian/up.sh starts, with the search index off and the
// in-memory (ECDSA P-256) checkpoint signer.
type rekorServer struct {
	URL      string
	Hostname string
}

func gobin(t testing.TB) string {
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "bin")
}

// startRekor starts Trillian, a tree and rekor-server, and stops them all
// when the test ends. Without the binaries (scripts/setup.d/50-rekor.sh
// builds them) it skips, or fails under CI.
func startRekor(t *testing.T) *rekorServer {
	t.Helper()
	bin := gobin(t)
	for _, b := range []string{"rekor-server", "createtree", "trillian_log_server", "trillian_log_signer"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing: scripts/setup.d/50-rekor.sh should have built it", b)
			}
			t.Skipf("%s is missing: run scripts/setup.d/50-rekor.sh", b)
		}
	}
	// Not t.TempDir(): PostgreSQL runs as user postgres, which must reach
	// the state directory, and t.TempDir's parent is private to root.
	state, err := os.MkdirTemp("", "shiplog-rekor-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	up := exec.Command("bash", "../../deploy/trillian/up.sh", state)
	if out, err := up.CombinedOutput(); err != nil {
		t.Fatalf("deploy/trillian/up.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("bash", "../../deploy/trillian/down.sh", state).CombinedOutput(); err != nil {
			t.Logf("down.sh: %v\n%s", err, out)
		}
	})
	env := readEnv(t, filepath.Join(state, "env"))
	tree, err := exec.Command(filepath.Join(bin, "createtree"), "--admin_server="+env["TRILLIAN_ADDR"], "--tree_type=LOG").Output()
	if err != nil {
		t.Fatalf("createtree: %v", err)
	}
	host, port, _ := net.SplitHostPort(env["TRILLIAN_ADDR"])
	// Outside the ephemeral range (see kit.StableAddr): an ephemeral port
	// can be taken before rekor-server binds it, by another process's
	// connection or by the readiness polls below connecting to themselves.
	_, listen, _ := net.SplitHostPort(kit.StableAddr(t))
	srv := &rekorServer{URL: "http://127.0.0.1:" + listen, Hostname: "rekor.shiplog.test"}
	logf, err := os.Create(filepath.Join(state, "rekor-server.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "rekor-server"), "serve",
		"--trillian_log_server.address="+host, "--trillian_log_server.port="+port,
		"--trillian_log_server.tlog_id="+strings.TrimSpace(string(tree)),
		"--rekor_server.address=127.0.0.1", "--port="+listen,
		"--rekor_server.hostname="+srv.Hostname, "--rekor_server.signer=memory",
		"--enable_retrieve_api=false", "--log_type=prod",
		// The search index (Redis) off: every endpoint but searchIndex.
		"--enabled_api_endpoints=getLogInfo,getPublicKey,getLogProof,createLogEntry,getLogEntryByIndex,getLogEntryByUUID,searchLogQuery")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("rekor-server log (tail):\n%s", tail(string(b), 3000))
		}
	})
	c := &http.Client{Timeout: 2 * time.Second}
	for i := 0; ; i++ {
		resp, err := c.Get(srv.URL + "/api/v1/log")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if i == 1200 {
			t.Fatalf("rekor-server did not become ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return srv
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func readEnv(t *testing.T, path string) map[string]string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			env[k] = strings.Trim(v, "'")
		}
	}
	return env
}
