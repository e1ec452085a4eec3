package trilliantest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/trillian"
	"github.com/google/trillian/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Cluster is a real Trillian log server and signer on a private PostgreSQL
// cluster, started by deploy/trillian/up.sh (see its env file).
type Cluster struct {
	// Dir is the state directory given to up.sh.
	Dir string
	// TrillianAddr is the log server's gRPC address; TreeID the tree up.sh
	// created; PostgresURI the shiplog database.
	TrillianAddr string
	TreeID       int64
	PostgresURI  string
	Env          map[string]string
	repo         string
	conn         *grpc.ClientConn
}

var (
	clusterOnce sync.Once
	shared      *Cluster
	sharedErr   error
)

// RepoRoot returns the root of the shiplog module (where deploy/ is).
func RepoRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// Available reports why the real cluster cannot start here ("" if it
// can): PostgreSQL or the Trillian binaries are missing.
func Available() string {
	if pg, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl"); len(pg) == 0 {
		return "PostgreSQL is not installed (scripts/setup.d/60-trillian.sh installs it)"
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		return err.Error()
	}
	for _, b := range []string{"trillian_log_server", "trillian_log_signer", "createtree"} {
		if _, err := os.Stat(filepath.Join(strings.TrimSpace(string(out)), "bin", b)); err != nil {
			return b + " is not built (scripts/setup.d/60-trillian.sh builds it)"
		}
	}
	return ""
}

// SkipUnlessAvailable skips the test when the cluster cannot start and CI
// is unset; under CI a missing tool fails the test.
func SkipUnlessAvailable(t testing.TB) {
	t.Helper()
	if why := Available(); why != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI: %s", why)
		}
		t.Skip(why)
	}
}

// Start starts a private cluster in a new temporary directory with up.sh
// and stops it with down.sh when the test ends.
func Start(t testing.TB) *Cluster { return StartWithLedgers(t, 0) }

// StartWithLedgers is Start with `up.sh DIR replicas`: it also starts that
// many `shiplog ledger serve` replicas on the tree (Env["LEDGER_URLS"],
// Env["LEDGER_DIR"]).
func StartWithLedgers(t testing.TB, replicas int) *Cluster {
	t.Helper()
	SkipUnlessAvailable(t)
	// Not t.TempDir: its parent is private to root, and PostgreSQL runs
	// as the postgres user.
	dir, err := os.MkdirTemp("", "shiplog-trillian-")
	if err != nil {
		t.Fatal(err)
	}
	c, err := up(RepoRoot(t), dir, strconv.Itoa(replicas))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Down(); os.RemoveAll(dir) })
	return c
}

// Shared starts one cluster per test binary (stopped by StopShared, to be
// called from TestMain) and returns it; tests take their own tree and
// PostgreSQL schema from it (NewTree, NewSchema).
func Shared(t testing.TB) *Cluster {
	t.Helper()
	SkipUnlessAvailable(t)
	clusterOnce.Do(func() {
		dir, err := os.MkdirTemp("", "shiplog-trillian-")
		if err != nil {
			sharedErr = err
			return
		}
		shared, sharedErr = up(RepoRoot(t), dir)
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// StopShared stops the shared cluster, if one was started, and removes
// its directory.
func StopShared() {
	if shared != nil {
		shared.Down()
		os.RemoveAll(shared.Dir)
	}
}

func up(root, dir string, args ...string) (*Cluster, error) {
	c := &Cluster{Dir: dir, repo: root}
	if err := c.run("up.sh", args...); err != nil {
		return nil, err
	}
	return c, c.load()
}

func (c *Cluster) run(script string, args ...string) error {
	cmd := exec.Command("bash", append([]string{filepath.Join(c.repo, "deploy", "trillian", script), c.Dir}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return &scriptError{script, err, string(out)}
	}
	return nil
}

type scriptError struct {
	script string
	err    error
	out    string
}

func (e *scriptError) Error() string { return e.script + ": " + e.err.Error() + "\n" + e.out }

// load reads the env file that up.sh wrote.
func (c *Cluster) load() error {
	f, err := os.Open(filepath.Join(c.Dir, "env"))
	if err != nil {
		return err
	}
	defer f.Close()
	c.Env = map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			c.Env[k] = strings.Trim(v, "'")
		}
	}
	c.TrillianAddr, c.PostgresURI = c.Env["TRILLIAN_ADDR"], c.Env["SHIPLOG_PG_URI"]
	c.TreeID, err = strconv.ParseInt(c.Env["TRILLIAN_TREE_ID"], 10, 64)
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
	return err
}

// Down stops the cluster (data stays in Dir).
func (c *Cluster) Down() {
	if c.conn != nil {
		c.conn.Close()
	}
	c.run("down.sh")
}

// Kill sends SIGKILL to component ("log_server", "log_signer", "postgres"
// or "ledger_<i>"), with deploy/trillian/kill.sh.
func (c *Cluster) Kill(component string) error { return c.run("kill.sh", component) }

// Restart starts component again with the same flags and ports.
func (c *Cluster) Restart(component string) error { return c.run("restart.sh", component) }

// Client returns a gRPC connection to the log server.
func (c *Cluster) Client(t testing.TB) *grpc.ClientConn {
	t.Helper()
	if c.conn == nil {
		conn, err := grpc.NewClient(c.TrillianAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		c.conn = conn
	}
	return c.conn
}

// NewTree creates and initialises a new LOG tree.
func (c *Cluster) NewTree(t testing.TB) int64 {
	t.Helper()
	conn := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tree, err := client.CreateAndInitTree(ctx, &trillian.CreateTreeRequest{Tree: &trillian.Tree{
		TreeState: trillian.TreeState_ACTIVE, TreeType: trillian.TreeType_LOG, MaxRootDuration: durationpb.New(0),
	}}, trillian.NewTrillianAdminClient(conn), trillian.NewTrillianLogClient(conn))
	if err != nil {
		t.Fatal(err)
	}
	return tree.TreeId
}

// NewSchema returns a fresh PostgreSQL schema name for one test.
func NewSchema() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "t_" + hex.EncodeToString(b)
}

// SQL runs statements in the shiplog database with psql.
func (c *Cluster) SQL(stmts string) error {
	cmd := exec.Command(filepath.Join(c.Env["PGBIN"], "psql"), "-h", "127.0.0.1", "-p", c.Env["PGPORT"], "-U", "postgres",
		"-d", "shiplog", "-v", "ON_ERROR_STOP=1", "-qtA", "-c", stmts)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return &scriptError{"psql", err, string(out)}
	}
	return nil
}
