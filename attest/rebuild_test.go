package attest

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence/provenance"
	"github.com/shiplog/shiplog/evidence/signoff"
)

// buildCommand is the recipe of the tiny firmware: reproducible across
// directories (-trimpath, no build id, no VCS stamp).
const buildCommand = "go build -trimpath -buildvcs=false -ldflags=-buildid= -o app.bin ."

// firmware writes the tiny Go program's source into a new directory.
func firmware(t *testing.T, greeting string) string {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "go.mod"), "module example.com/fw\n\ngo 1.24\n")
	write(t, filepath.Join(dir, "main.go"), "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\""+greeting+"\") }\n")
	return dir
}

func write(t *testing.T, name, s string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// goEnv lets builds share this test process's Go build cache, so that the
// standard library is compiled once per machine, not once per build.
func goEnv(t *testing.T) []string {
	out, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	return []string{"GOCACHE=" + strings.TrimSpace(string(out)), "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod"}
}

// vendorBuild builds src as the vendor did and returns the digest.
func vendorBuild(t *testing.T, src string) [sha256.Size]byte {
	t.Helper()
	c := exec.Command("/bin/sh", "-c", buildCommand)
	c.Dir = src
	c.Env = append(os.Environ(), goEnv(t)...)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("vendor build: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(src, "app.bin"))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(src, "app.bin"))
	return sha256.Sum256(b)
}

// tarGz packs dir's files under prefix/ into a .tar.gz and returns its
// path and SHA-256 hex.
func tarGz(t *testing.T, dir, prefix string) (string, string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: prefix + "/", Typeflag: tar.TypeDir, Mode: 0o755})
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		tw.WriteHeader(&tar.Header{Name: prefix + "/" + e.Name(), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))})
		tw.Write(b)
	}
	tw.Close()
	zw.Close()
	return writeArchive(t, "src.tar.gz", buf.Bytes())
}

func writeArchive(t *testing.T, name string, b []byte) (string, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return p, hex.EncodeToString(sum[:])
}

func archiveProvenance(path, sha string) *provenance.Provenance {
	return &provenance.Provenance{
		Source:   provenance.Source{URI: "file://" + filepath.ToSlash(path), SHA256: sha},
		Revision: "v1.0.0",
		Build:    provenance.Build{Command: buildCommand, Toolchain: "go1.26"},
	}
}

func request(t *testing.T, p *provenance.Provenance, subject [sha256.Size]byte) Request {
	return Request{Target: "fw/app.bin", Subject: subject, Provenance: p, Env: goEnv(t),
		Geteuid: func() int { return 1000 }, Timeout: 10 * time.Minute}
}

func TestRebuildReproducesFromTarGz(t *testing.T) {
	src := firmware(t, "hello")
	want := vendorBuild(t, src)
	archive, sha := tarGz(t, src, "fw-1.0.0")
	res, err := Rebuild(context.Background(), request(t, archiveProvenance(archive, sha), want))
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != Reproduced || res.Built != want || res.Output != "app.bin" {
		t.Errorf("got %+v, want reproduced %x", res, want)
	}
}

func TestRebuildReproducesFromGit(t *testing.T) {
	src := firmware(t, "hello")
	want := vendorBuild(t, src)
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
	git("commit", "-q", "-m", "v1")
	rev := git("rev-parse", "HEAD")
	write(t, filepath.Join(src, "main.go"), "package main\n\nfunc main() { panic(\"later\") }\n")
	git("commit", "-q", "-am", "v2") // the declared revision is not the tip
	p := &provenance.Provenance{Source: provenance.Source{URI: "git+file://" + filepath.ToSlash(src)}, Revision: rev,
		Build: provenance.Build{Command: buildCommand}}
	res, err := Rebuild(context.Background(), request(t, p, want))
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != Reproduced {
		t.Errorf("got %+v, want reproduced", res)
	}
	// A commit the repository does not have.
	p.Revision = strings.Repeat("ab", 20)
	if _, err := Rebuild(context.Background(), request(t, p, want)); !errors.Is(err, ErrRevision) {
		t.Errorf("missing revision: got %v, want ErrRevision", err)
	}
}

func TestRebuildFromSourceDir(t *testing.T) {
	src := firmware(t, "hello")
	want := vendorBuild(t, src)
	req := request(t, archiveProvenance("/nonexistent/src.tar.gz", strings.Repeat("00", 32)), want)
	req.SourceDir = src
	res, err := Rebuild(context.Background(), req)
	if err != nil || res.Verdict != Reproduced {
		t.Fatalf("got %+v, %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(src, "app.bin")); !os.IsNotExist(err) {
		t.Error("built in the source directory instead of a copy")
	}
}

// TestRebuildMismatch: the vendor shipped a binary not built from the
// declared source; the rebuild reports both digests.
// TestAttackLocalSourcePassedOffAsFetched: a rebuild from a local copy of
// the source (--source-dir), which nothing checked against the declared
// digest, must not sign a statement that reads like a rebuild from the
// fetched declared source; one from the fetched archive must not say it
// was local.
func TestAttackLocalSourcePassedOffAsFetched(t *testing.T) {
	src := firmware(t, "hello")
	want := vendorBuild(t, src)
	archive, sha := tarGz(t, src, "fw")
	p := archiveProvenance(archive, sha)
	raw, err := provenance.Format(p)
	if err != nil {
		t.Fatal(err)
	}
	rel := &Release{Target: "app.bin", SHA256: want, Role: "targets", Version: 3, Provenance: p, ProvenanceJSON: raw}
	for _, local := range []bool{false, true} {
		req := request(t, p, want)
		if local {
			req.SourceDir = src
		}
		res, err := Rebuild(context.Background(), req)
		if err != nil || res.Verdict != Reproduced {
			t.Fatalf("local %v: got %+v, %v", local, res, err)
		}
		b, err := Statement("example.com/fw", rel, res, time.Now()).Format()
		if err != nil {
			t.Fatal(err)
		}
		st, err := signoff.ParseStatement(b)
		if err != nil || st.SourceLocal != local {
			t.Errorf("local %v: the signed statement says source_local %v (%v): %s", local, st != nil && st.SourceLocal, err, b)
		}
	}
}

func TestRebuildMismatch(t *testing.T) {
	honest := firmware(t, "hello")
	shipped := vendorBuild(t, firmware(t, "hello, with a backdoor"))
	archive, sha := tarGz(t, honest, "fw")
	res, err := Rebuild(context.Background(), request(t, archiveProvenance(archive, sha), shipped))
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != Mismatch || res.Built == shipped || res.Subject != shipped {
		t.Errorf("got %+v, want a mismatch", res)
	}
}

func TestRebuildTimeout(t *testing.T) {
	src := t.TempDir()
	req := request(t, archiveProvenance("/x.tar", strings.Repeat("00", 32)), [32]byte{})
	req.Provenance.Build.Command = "sleep 600 & sleep 600; wait"
	req.SourceDir = src
	req.Timeout = time.Second
	if _, err := Rebuild(context.Background(), req); !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
}

func TestRebuildRefusesRoot(t *testing.T) {
	req := request(t, archiveProvenance("/x.tar", strings.Repeat("00", 32)), [32]byte{})
	req.SourceDir = t.TempDir()
	req.Geteuid = func() int { return 0 }
	req.Provenance.Build.Command = "touch ran; exit 1"
	if _, err := Rebuild(context.Background(), req); !errors.Is(err, ErrRoot) {
		t.Fatalf("got %v, want ErrRoot", err)
	}
	if _, err := os.Stat(filepath.Join(req.SourceDir, "ran")); err == nil {
		t.Fatal("the command ran")
	}
	var notice bytes.Buffer
	req.AllowRoot, req.Notice = true, &notice
	req.Provenance.Build.Command = "echo built > app.bin"
	if _, err := Rebuild(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(notice.String(), "as root") {
		t.Errorf("no notice of running as root: %q", notice.String())
	}
}

func TestRebuildFailures(t *testing.T) {
	for name, cmd := range map[string]string{
		"exit non-zero":        "exit 3",
		"no output":            "true",
		"output is a dir":      "mkdir app.bin",
		"output links outside": "ln -s /etc/passwd app.bin",
	} {
		t.Run(name, func(t *testing.T) {
			req := request(t, archiveProvenance("/x.tar", strings.Repeat("00", 32)), [32]byte{})
			req.SourceDir = t.TempDir()
			req.Provenance.Build.Command = cmd
			if res, err := Rebuild(context.Background(), req); err == nil {
				t.Fatalf("got %+v, want an error (never a verdict)", res)
			}
		})
	}
}

// TestAttackArchiveSwapped: the archive served is not the declared one;
// nothing is unpacked or built.
func TestAttackArchiveSwapped(t *testing.T) {
	src := firmware(t, "hello")
	archive, _ := tarGz(t, src, "fw")
	_, other := writeArchive(t, "other.tar.gz", []byte("other"))
	req := request(t, archiveProvenance(archive, other), [32]byte{})
	req.Provenance.Build.Command = "touch /tmp/shiplog-attest-must-not-run; exit 1"
	if _, err := Rebuild(context.Background(), req); !errors.Is(err, ErrDigest) {
		t.Fatalf("got %v, want ErrDigest", err)
	}
}

// TestAttackArchiveTraversal: entries that would land outside the source
// directory are refused before anything is written.
func TestAttackArchiveTraversal(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "pwned")
	type member struct {
		name, link string
		typ        byte
	}
	rel := func(to string) string { r, _ := filepath.Rel("/", to); return r }
	for name, members := range map[string][]member{
		"dotdot":              {{name: "../../../../../../../../" + rel(outside), typ: tar.TypeReg}},
		"absolute":            {{name: outside, typ: tar.TypeReg}},
		"inner dotdot":        {{name: "a/../../x", typ: tar.TypeReg}},
		"absolute link":       {{name: "l", link: filepath.Dir(outside), typ: tar.TypeSymlink}, {name: "l/pwned", typ: tar.TypeReg}},
		"link out":            {{name: "l", link: "../../../../../../..", typ: tar.TypeSymlink}, {name: "l/pwned", typ: tar.TypeReg}},
		"hard link":           {{name: "h", link: outside, typ: tar.TypeLink}},
		"device":              {{name: "d", typ: tar.TypeChar}},
		"file then link over": {{name: "a", typ: tar.TypeReg}, {name: "a", link: outside, typ: tar.TypeSymlink}},
		"backslash":           {{name: "..\\x", typ: tar.TypeReg}},
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, m := range members {
				h := &tar.Header{Name: m.name, Linkname: m.link, Typeflag: m.typ, Mode: 0o644}
				if m.typ == tar.TypeReg {
					h.Size = 1
				}
				tw.WriteHeader(h)
				if m.typ == tar.TypeReg {
					tw.Write([]byte("x"))
				}
			}
			tw.Close()
			archive, sha := writeArchive(t, "evil.tar", buf.Bytes())
			req := request(t, archiveProvenance(archive, sha), [32]byte{})
			if _, err := Rebuild(context.Background(), req); err == nil {
				t.Fatal("unpacked")
			}
			if _, err := os.Lstat(outside); err == nil {
				t.Fatal("wrote outside the source directory")
			}
		})
	}
	t.Run("zip dotdot", func(t *testing.T) {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.Create("../../../../../../../../" + rel(outside))
		w.Write([]byte("x"))
		zw.Close()
		archive, sha := writeArchive(t, "evil.zip", buf.Bytes())
		if _, err := Rebuild(context.Background(), request(t, archiveProvenance(archive, sha), [32]byte{})); !errors.Is(err, ErrUnsafeArchive) {
			t.Fatalf("got %v, want ErrUnsafeArchive", err)
		}
		if _, err := os.Lstat(outside); err == nil {
			t.Fatal("wrote outside the source directory")
		}
	})
}

// TestAttackArchiveBomb: an archive over the unpacked limit is refused.
func TestAttackArchiveBomb(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1 << 20})
	tw.Write(make([]byte, 1<<20))
	tw.Close()
	zw.Close()
	archive, sha := writeArchive(t, "bomb.tar.gz", buf.Bytes())
	req := request(t, archiveProvenance(archive, sha), [32]byte{})
	req.Limits.MaxUnpacked = 1 << 16
	if _, err := Rebuild(context.Background(), req); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
}
