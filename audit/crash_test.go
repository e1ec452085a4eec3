package audit

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/shiplog/shiplog/audit/store"
	"github.com/shiplog/shiplog/evidence/policy"
)

// crashChildEnv makes the test binary run crashChild instead of the tests.
const crashChildEnv = "SHIPLOG_AUDIT_CRASH_CHILD"

func init() {
	if os.Getenv(crashChildEnv) == "" {
		return
	}
	// Child: audit the ledger one bundle per step; after the first committed
	// step, say so on stderr and stop there, with the next step's fetch in
	// flight, until the parent kills it.
	ledger, state, policyFile := os.Getenv("LEDGER"), os.Getenv("STATE"), os.Getenv("POLICY")
	pb, _ := os.ReadFile(policyFile)
	p, err := policy.Parse(pb)
	if err != nil {
		os.Exit(3)
	}
	db, err := store.Open(state)
	if err != nil {
		os.Exit(4)
	}
	a, err := New(Config{Ledger: ledger, Policy: p, State: db, StepBundles: 1, Progress: progressThenWait{}})
	if err != nil {
		os.Exit(5)
	}
	a.Step(context.Background())
	os.Exit(0)
}

// progressThenWait writes a line at the first progress update (drawn right
// after the first step commits), then blocks reading stdin, which the
// parent keeps open and never writes to: however loaded the machine, the
// child is still mid catch-up when the parent kills it.
type progressThenWait struct{}

func (progressThenWait) Write(b []byte) (int, error) {
	os.Stderr.Write([]byte("step\n"))
	io.Copy(io.Discard, os.Stdin)
	return len(b), nil
}

// TestCrashSIGKILLMidCatchUp kills the auditor process (SIGKILL) right after
// its first committed catch-up step, then resumes from the state file: the
// resumed audit covers the whole log with no finding, and no entry is
// replayed twice (which would show as duplicates or rollbacks).
func TestCrashSIGKILLMidCatchUp(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 600) // three entry bundles
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.txt")
	os.WriteFile(policyFile, e.keys.PolicyAll(), 0o644)
	state := filepath.Join(dir, "crash.db")

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"=1", "LEDGER="+e.srv.URL, "STATE="+state, "POLICY="+policyFile)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe() // held open until the child is killed
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	if !sc.Scan() {
		t.Fatalf("child ended before its first step: %v", cmd.Wait())
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	db, err := store.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h, ok, err := db.Head()
	if err != nil || !ok || h.Size != 256 {
		t.Fatalf("after SIGKILL: head %d (ok %v, err %v), want 256 (the first step's bundle)", h.Size, ok, err)
	}
	a, err := New(Config{Ledger: e.srv.URL, Policy: e.policy, State: db, StepBundles: 1})
	if err != nil {
		t.Fatal(err)
	}
	res := e.step(a)
	wantNone(t, res)
	if res.Audited != 601 {
		t.Errorf("resumed audit covers %d entries, want 601", res.Audited)
	}
}
