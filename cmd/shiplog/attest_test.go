package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/shiplog/shiplog/internal/harness"
	"golang.org/x/mod/sumdb/note"
)

const fwBuild = "go build -trimpath -buildvcs=false -ldflags=-buildid= -o app.bin ."

// goCache is this test process's Go build cache, shared with the rebuild
// (--env GOCACHE=...) so that the standard library compiles once.
func goCache(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// firmwareRelease writes the tiny firmware's source as a .tar.gz and
// builds it as the vendor does; it returns the archive and the binary, and
// leaves the source (without the binary) in a git repository at src, whose
// HEAD is rev.
func firmwareRelease(t *testing.T, greeting string) (archive string, bin []byte) {
	archive, bin, _, _ = firmwareSource(t, greeting)
	return archive, bin
}

func firmwareSource(t *testing.T, greeting string) (archive string, bin []byte, src, rev string) {
	src = t.TempDir()
	files := map[string]string{
		"go.mod":  "module example.com/fw\n\ngo 1.24\n",
		"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"" + greeting + "\") }\n",
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, s := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		tw.WriteHeader(&tar.Header{Name: "fw/" + name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(s))})
		tw.Write([]byte(s))
	}
	tw.Close()
	zw.Close()
	archive = filepath.Join(t.TempDir(), "fw.tar.gz")
	if err := os.WriteFile(archive, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	c := exec.Command("/bin/sh", "-c", fwBuild)
	c.Dir = src
	c.Env = append(os.Environ(), "GOCACHE="+goCache(t), "GOTOOLCHAIN=local")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("vendor build: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(filepath.Join(src, "app.bin"))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(src, "app.bin"))
	return archive, bin, src, gitCommit(t, src, greeting)
}

// gitCommit makes src a git repository with one commit and returns it.
func gitCommit(t *testing.T, src, msg string) string {
	git := func(args ...string) string {
		c := exec.Command("git", append([]string{"-c", "user.name=v", "-c", "user.email=v@example.com"}, args...)...)
		c.Dir = src
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", msg)
	return git("rev-parse", "HEAD")
}

func provenanceOf(t *testing.T, archive string) json.RawMessage {
	b, _ := os.ReadFile(archive)
	sum := sha256.Sum256(b)
	return json.RawMessage(`{"source":{"uri":"file://` + filepath.ToSlash(archive) + `","digest":{"sha256":"` + hex.EncodeToString(sum[:]) + `"}},"revision":"v1.0.0","build":{"command":"` + fwBuild + `","toolchain":"go1.26","output":"app.bin"}}`)
}

// attestLedger serves POST /v1/attest and GET /v1/attestations over the
// repository's log: it opens an envelope as the ledger does, appends its
// shiplog/attestation/v1 entry and answers with a tlog-proof cosigned by
// the repository's witnesses; the evidence file holds every envelope about
// the subject with a fresh proof.
func attestLedger(t *testing.T, r *harness.RawRepo) (*httptest.Server, *[][]byte) {
	var logged [][]byte
	index := map[int]uint64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Query().Get("repo") != r.ID {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if req.Method == http.MethodGet && req.URL.Path == "/v1/attestations" {
			ev := &signoff.Evidence{}
			sub, _ := hex.DecodeString(req.URL.Query().Get("subject"))
			copy(ev.Subject[:], sub)
			for i, env := range logged {
				if e, _ := signoff.OpenEnvelope(env); e.Statement.Subject == ev.Subject {
					ev.Attestations = append(ev.Attestations, signoff.Attestation{Envelope: env, Proof: r.Log.Proof(index[i], r.Cosigners...)})
				}
			}
			b, _ := ev.Format()
			w.Write(b)
			return
		}
		if req.URL.Path != "/v1/attest" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(req.Body, signoff.MaxEnvelopeSize+1))
		env, err := signoff.OpenEnvelope(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		e := env.Entry().Format()
		i := r.Log.Append(e)
		index[len(logged)] = i
		logged = append(logged, body)
		lh := entry.LeafHash(e)
		json.NewEncoder(w).Encode(map[string]any{"index": i, "leaf_hash": hex.EncodeToString(lh[:]), "entry": string(e),
			"duplicate": false, "proof": string(r.Log.Proof(i, r.Cosigners...))})
	}))
	t.Cleanup(srv.Close)
	return srv, &logged
}

func runAttest(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := rootCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String() + errb.String(), err
}

func TestAttestRebuild(t *testing.T) {
	archive, bin, src, rev := firmwareSource(t, "hello")
	_, other := firmwareRelease(t, "hello, with a backdoor")
	r := harness.NewRawRepo(t)
	r.AddTarget("targets", "fw/app.bin", bin, map[string]any{"provenance": provenanceOf(t, archive)})
	r.AddTarget("targets", "fw/backdoored.bin", other, map[string]any{"provenance": provenanceOf(t, archive)})
	r.AddTarget("targets", "fw/plain.bin", []byte("plain"), nil)
	r.AddTarget("targets", "fw/from-git.bin", bin, map[string]any{"provenance": json.RawMessage(`{"source":{"uri":"git+file://` +
		filepath.ToSlash(src) + `"},"revision":"` + rev + `","build":{"command":"` + fwBuild + `","output":"app.bin"}}`)})
	r.Publish()
	srv, logged := attestLedger(t, r)
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.txt")
	os.WriteFile(policyFile, r.PolicyText(2), 0o644)
	skey, vkey, err := note.GenerateKey(rand.Reader, "rebuilder.example")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "rebuilder.skey")
	os.WriteFile(keyFile, []byte(skey+"\n"), 0o600)
	rootFile := filepath.Join(dir, "root.json")
	os.WriteFile(rootFile, r.RootBytes(1), 0o644)
	common := []string{"attest", "rebuild", "--repo-url", "file://" + filepath.ToSlash(r.Dir), "--repo-id", r.ID, "--root", rootFile, "--policy", policyFile, "--ledger", srv.URL, "--key", keyFile,
		"--allow-root", "--env", "GOCACHE=" + goCache(t), "--env", "GOTOOLCHAIN=local"}

	out := filepath.Join(dir, "app.bin.reproduced.json")
	got, err := runAttest(t, append(common, "--target", "fw/app.bin", "--out", out)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	if !strings.Contains(got, "reproduced  fw/app.bin") {
		t.Errorf("output: %s", got)
	}
	if os.Geteuid() == 0 && !strings.Contains(got, "as root") {
		t.Errorf("no notice of running as root: %s", got)
	}
	envBytes, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signoff.OpenEnvelope(envBytes)
	if err != nil {
		t.Fatal(err)
	}
	s := env.Statement
	if s.Verdict != signoff.Reproduced || s.Subject != sha256.Sum256(bin) || s.Repository != r.ID || s.TargetsRole != "targets" || s.TargetsVersion != 2 || env.Attester.VKey != vkey {
		t.Errorf("statement %+v", s)
	}
	if p, err := os.ReadFile(out + ".tlog-proof"); err != nil || len(p) == 0 {
		t.Errorf("no tlog-proof: %v", err)
	}

	// The same binary declared as built from a git commit.
	if got, err := runAttest(t, append(common, "--target", "fw/from-git.bin")...); err != nil || !strings.Contains(got, "reproduced  fw/from-git.bin") {
		t.Fatalf("git source: %v\n%s", err, got)
	}

	// The binary the vendor shipped was not built from the declared source.
	got, err = runAttest(t, append(common, "--target", "fw/backdoored.bin", "--json")...)
	var ce *exitCodeError
	if !errors.As(err, &ce) || ce.code != exitMismatch {
		t.Fatalf("mismatch: got %v, want exit code %d\n%s", err, exitMismatch, got)
	}
	if !strings.Contains(got, `"verdict": "mismatch"`) {
		t.Errorf("output: %s", got)
	}
	if len(*logged) != 3 {
		t.Errorf("%d statements logged, want 3", len(*logged))
	}

	// No declaration, no rebuild; and nothing is signed.
	if got, err := runAttest(t, append(common, "--target", "fw/plain.bin")...); err == nil || !strings.Contains(err.Error(), "declares no provenance") {
		t.Errorf("plain target: %v\n%s", err, got)
	}
	// A failed build signs nothing.
	if got, err := runAttest(t, append(common, "--target", "fw/app.bin", "--timeout", "1ns")...); err == nil {
		t.Errorf("timed-out build: %s", got)
	}
	if len(*logged) != 3 {
		t.Errorf("%d statements logged after failures, want 3", len(*logged))
	}
}

func TestAttestReview(t *testing.T) {
	archive, bin := firmwareRelease(t, "hello")
	_, other := firmwareRelease(t, "hello, with a backdoor")
	r := harness.NewRawRepo(t)
	r.AddTarget("targets", "fw/app.bin", bin, map[string]any{"provenance": provenanceOf(t, archive)})
	r.AddTarget("targets", "fw/backdoored.bin", other, map[string]any{"provenance": provenanceOf(t, archive)})
	r.Publish()
	srv, logged := attestLedger(t, r)
	dir := t.TempDir()
	policyFile, rootFile := filepath.Join(dir, "policy.txt"), filepath.Join(dir, "root.json")
	os.WriteFile(policyFile, r.PolicyText(2), 0o644)
	os.WriteFile(rootFile, r.RootBytes(1), 0o644)
	key := func(name string) string {
		skey, _, err := note.GenerateKey(rand.Reader, name)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, name+".skey")
		os.WriteFile(f, []byte(skey+"\n"), 0o600)
		return f
	}
	reviewer, rebuilder := key("reviewer.example"), key("rebuilder.example")
	repoFlags := []string{"--repo-url", "file://" + filepath.ToSlash(r.Dir), "--repo-id", r.ID, "--root", rootFile, "--policy", policyFile, "--ledger", srv.URL}
	review := append([]string{"attest", "review", "--key", reviewer, "--vendor-dir", r.Dir}, repoFlags...)

	out := filepath.Join(dir, "reviewed.json")
	got, err := runAttest(t, append(review, "--target", "fw/app.bin", "--out", out)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, got)
	}
	envBytes, _ := os.ReadFile(out)
	env, err := signoff.OpenEnvelope(envBytes)
	if err != nil || env.Statement.Verdict != signoff.Reviewed || env.Statement.Subject != sha256.Sum256(bin) {
		t.Fatalf("statement %+v, %v", env, err)
	}

	// A rebuilder logs a mismatch about the backdoored binary: no review.
	if got, err := runAttest(t, append([]string{"attest", "rebuild", "--key", rebuilder, "--allow-root",
		"--env", "GOCACHE=" + goCache(t), "--env", "GOTOOLCHAIN=local", "--target", "fw/backdoored.bin"}, repoFlags...)...); err == nil {
		t.Fatalf("rebuild of the backdoored binary: %s", got)
	}
	n := len(*logged)
	got, err = runAttest(t, append(review, "--target", "fw/backdoored.bin")...)
	if err == nil || !strings.Contains(err.Error(), "objected to") || !strings.Contains(err.Error(), "rebuilder.example") {
		t.Errorf("review of an objected release: %v\n%s", err, got)
	}
	// A release the vendor did not make (its targets role is not among the
	// vendor's files): no review.
	hashes := filepath.Join(dir, "hashes.txt")
	os.WriteFile(hashes, []byte("# nothing\n"), 0o644)
	noVendor := append([]string{"attest", "review", "--key", reviewer, "--vendor-hashes", hashes}, repoFlags...)
	got, err = runAttest(t, append(noVendor, "--target", "fw/app.bin")...)
	if err == nil || !strings.Contains(err.Error(), "not among the releases the vendor made") {
		t.Errorf("review of a release the vendor did not make: %v\n%s", err, got)
	}
	if len(*logged) != n {
		t.Errorf("refused reviews logged %d statements", len(*logged)-n)
	}
}
