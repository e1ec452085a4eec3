package sandbox

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/shiplog/shiplog/client/approval"
	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/internal/durable"
)

// buildRecipe is the firmware's declared build command: reproducible
// across machines and directories with the same Go (no cgo, no paths, no
// build id, no VCS stamp).
const buildRecipe = "CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags=-buildid= -o app.bin ."

// rebuilders are the two independent parties of the sign-off steps.
var rebuilders = []string{"rebuilder-1", "rebuilder-2"}

// firmwareSource is the Go program that is the firmware from release 5.0
// on. println (the builtin) needs only the runtime: the cold builds of the
// vendor and of each rebuilder stay short.
func firmwareSource(version, extra string) map[string]string {
	return map[string]string{
		"go.mod": "module example.com/sandbox-firmware\n\ngo 1.22\n",
		"main.go": "// The sandbox's firmware.\npackage main\n\nfunc main() {\n\tprintln(\"shiplog sandbox firmware " + version + "\")\n" +
			extra + "}\n",
	}
}

// goTool finds the Go toolchain the vendor and the rebuilders build with:
// the go on PATH, else $GOROOT/bin/go (then put on the children's PATH,
// since a rebuilder's recipe runs "go" from its PATH). Without one the
// sign-off steps say so and are skipped (TestSandboxOnce, which has Go,
// checks that they ran).
func (s *sandbox) goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	if r := os.Getenv("GOROOT"); r != "" {
		p := filepath.Join(r, "bin", "go")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			s.env = append(s.env, "PATH="+filepath.Dir(p)+string(os.PathListSeparator)+os.Getenv("PATH"))
			return p, nil
		}
	}
	return "", errors.New("the sign-off steps rebuild a Go program: put a Go toolchain on PATH")
}

// writeSource writes the source tree as DIR/ and as DIR.tar.gz (one
// top-level directory, fixed times and modes), returning the archive's
// path and SHA-256.
func (s *sandbox) writeSource(dir string, files map[string]string) (string, string, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	base := filepath.Base(dir)
	for _, n := range names {
		if err := durable.WriteFile(filepath.Join(dir, n), []byte(files[n]), 0o644); err != nil {
			return "", "", err
		}
		hdr := &tar.Header{Name: base + "/" + n, Mode: 0o644, Size: int64(len(files[n])), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return "", "", err
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			return "", "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", "", err
	}
	if err := gz.Close(); err != nil {
		return "", "", err
	}
	archive := dir + ".tar.gz"
	if err := durable.WriteFile(archive, buf.Bytes(), 0o644); err != nil {
		return "", "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	return archive, hex.EncodeToString(sum[:]), nil
}

// goBuild runs the recipe in dir as the vendor's build machine does, with
// its own Go cache in the sandbox, and returns the output's path.
func (s *sandbox) goBuild(ctx context.Context, goExe, dir string) (string, error) {
	rel, _ := filepath.Rel(s.dir, dir)
	s.say("   $ (cd %s && %s)", rel, buildRecipe)
	cmd := exec.CommandContext(ctx, goExe, "build", "-trimpath", "-buildvcs=false", "-ldflags=-buildid=", "-o", "app.bin", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOFLAGS=",
		"GOCACHE="+s.path("vendor", "go-cache"), "GOPATH="+s.path("vendor", "gopath"))
	cmd.Env = append(cmd.Env, s.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return filepath.Join(dir, "app.bin"), nil
}

// runFirmware runs a copy of an installed firmware binary (the device
// stores targets as plain files) and returns what it prints.
func (s *sandbox) runFirmware(ctx context.Context, installed string) string {
	b, err := os.ReadFile(installed)
	if err != nil {
		return fmt.Sprintf("(it did not run: %v)", err)
	}
	exe := s.path("run-app.bin")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		return fmt.Sprintf("(it did not run: %v)", err)
	}
	defer os.Remove(exe)
	out, err := exec.CommandContext(ctx, exe).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(it did not run: %v)", err)
	}
	return strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "; ")
}

// releaseFirmware makes release version of the Go firmware: the vendor
// publishes the source archive, builds the binary (from shipped, when the
// build machine is not honest), declares the source and recipe and
// publishes. It returns the targets version and the target's SHA-256.
func (s *sandbox) releaseFirmware(ctx context.Context, goExe, version string, shipped map[string]string) (int, string, error) {
	src := s.path("source", "firmware-"+version)
	archive, sum, err := s.writeSource(src, firmwareSource(version, ""))
	if err != nil {
		return 0, "", err
	}
	s.say("   $ tar -czf source/firmware-%s.tar.gz -C source firmware-%s    (published at %s)", version, version, "file://"+filepath.ToSlash(archive))
	buildDir := src
	if shipped != nil {
		buildDir = s.path("vendor", "build-"+version)
		if _, _, err := s.writeSource(buildDir, shipped); err != nil {
			return 0, "", err
		}
	}
	bin, err := s.goBuild(ctx, goExe, buildDir)
	if err != nil {
		return 0, "", err
	}
	goVersion, err := exec.CommandContext(ctx, goExe, "env", "GOVERSION").Output()
	if err != nil {
		return 0, "", fmt.Errorf("go env GOVERSION: %w", err)
	}
	relBin, _ := filepath.Rel(s.dir, bin)
	_, err = s.run(ctx, "repo", "add", "-d", "repo", relBin, "--path", "app.bin", "--replace",
		"--source", "file://"+filepath.ToSlash(archive), "--source-sha256", sum, "--revision", "v"+version,
		"--build", buildRecipe, "--toolchain", strings.TrimSpace(string(goVersion)),
		"--custom", fmt.Sprintf(`{"release_notes":"Firmware %s, built reproducibly from its published source."}`, version))
	if err != nil {
		return 0, "", err
	}
	if _, err := s.run(ctx, "repo", "sign", "-d", "repo", "--key", "keys/targets.key"); err != nil {
		return 0, "", err
	}
	out, err := s.run(ctx, "publish", "-d", "repo", "--snapshot-key", "keys/snapshot.key", "--timestamp-key", "keys/timestamp.key")
	if err != nil {
		return 0, "", err
	}
	first := strings.Split(strings.TrimSpace(out), "\n")[0]
	s.say("   %s", first)
	var tv, index int
	if _, err := fmt.Sscanf(first, "logged targets v%d at index %d", &tv, &index); err != nil {
		return 0, "", fmt.Errorf("unexpected publish output %q", first)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		return 0, "", err
	}
	digest := sha256.Sum256(b)
	return tv, hex.EncodeToString(digest[:]), nil
}

var loggedAt = regexp.MustCompile(`logged at index (\d+)`)

// rebuild runs one rebuilder's shiplog attest rebuild and returns its
// verdict line and the log index of its statement.
func (s *sandbox) rebuild(ctx context.Context, who, version string) (string, int, error) {
	args := []string{"attest", "rebuild", "--repo-url", s.repoURL, "--repo-id", repository,
		"--root", "repo/metadata/1.root.json", "--policy", "policy.txt", "--ledger", s.ledgerURL,
		"--target", "app.bin", "--key", who + "/rebuilder.skey", "--out", who + "/app-" + version + ".signoff.json",
		"--env", "GOCACHE=" + s.path(who, "go-cache")}
	if os.Geteuid() == 0 {
		args = append(args, "--allow-root")
	}
	out, err := s.run(ctx, args...)
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 3) {
		return "", 0, err
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		s.say("     %s", l)
	}
	m := loggedAt.FindStringSubmatch(out)
	if m == nil {
		return "", 0, fmt.Errorf("attest rebuild printed no log index: %q", out)
	}
	var index int
	fmt.Sscan(m[1], &index)
	verdict, _, _ := strings.Cut(out, " ")
	return verdict, index, nil
}

// pullAttestations is the vendor copying the statements beside its
// metadata, where devices and bundles find them.
func (s *sandbox) pullAttestations(ctx context.Context) error {
	out, err := s.run(ctx, "repo", "attestations", "pull", "-d", "repo")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		s.say("     %s", l)
	}
	return nil
}

// updateSignoffDevice updates the device that requires sign-off.
func (s *sandbox) updateSignoffDevice(ctx context.Context) (*device.Result, error) {
	d, err := device.Open(s.path("device-signoff"), device.Options{Yes: true})
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Update(ctx)
}

// signoffStatus is the device's trusted state, compared across a refusal.
func (s *sandbox) signoffStatus() (any, error) {
	d, err := device.Open(s.path("device-signoff"), device.Options{})
	if err != nil {
		return nil, err
	}
	defer d.Close()
	st, err := d.Status()
	if err != nil {
		return nil, err
	}
	return []any{st.Installed, st.Active}, nil
}

// saySignoff prints the lines of a summary's sign-off section.
func (s *sandbox) saySignoff(sum *approval.Summary) {
	if sum == nil {
		return
	}
	in := false
	for _, l := range strings.Split(strings.TrimRight(sum.Text(), "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "Sign-off of "):
			in = true
		case !strings.HasPrefix(l, " "):
			in = false
		}
		if in {
			s.say("     %s", l)
		}
	}
}

// signoffReproduced: the firmware becomes a Go program built reproducibly
// from a published source archive; two rebuilders reproduce it and log
// "reproduced"; a device that requires both installs it only then.
func (s *sandbox) signoffReproduced(ctx context.Context) error {
	goExe, err := s.goTool()
	if err != nil { // a shiplog binary without Go still shows everything else
		s.say("   Skipped: %v.", err)
		return nil
	}
	s.goExe = goExe
	s.say("   The vendor publishes the firmware's source and declares, in the signed targets metadata,")
	s.say("   where it is and how to build it (docs/spec/provenance.md):")
	tv, sum, err := s.releaseFirmware(ctx, goExe, "5.0", nil)
	if err != nil {
		return err
	}
	s.say("   Two independent rebuilders, each with its own key:")
	var keys strings.Builder
	keys.WriteString("# The rebuilders this device trusts (docs/rebuilder.md), one vkey a line.\n")
	for _, who := range rebuilders {
		if err := os.MkdirAll(s.path(who), 0o700); err != nil {
			return err
		}
		out, err := s.run(ctx, "key", "generate", who+".sandbox.example", "--out", who+"/rebuilder.skey")
		if err != nil {
			return err
		}
		vkey, ok := strings.CutPrefix(strings.TrimSpace(out), "vkey: ")
		if !ok {
			return fmt.Errorf("key generate printed %q", out)
		}
		s.say("     %s", vkey)
		keys.WriteString(vkey + "\n")
	}
	if err := os.WriteFile(s.path("rebuilders.keys"), []byte(keys.String()), 0o644); err != nil {
		return err
	}
	if err := s.initSignoffDevice(); err != nil {
		return err
	}
	res, err := s.updateSignoffDevice(ctx)
	if err != nil {
		return fmt.Errorf("sign-off device update: %w", err)
	}
	if res.Installed || res.Action != approval.Hold {
		return fmt.Errorf("the device installed a release nobody reproduced: %s", res.Message)
	}
	s.say("   Nobody has rebuilt targets v%d yet; the device holds it (nothing trusted changes):\n     %s", tv, res.Message)
	s.say("   Each rebuilder fetches the declared source, checks its SHA-256, runs the recipe in a fresh")
	s.say("   directory, compares the digest and logs a signed in-toto statement in the ledger:")
	if os.Geteuid() == 0 {
		s.say("   (The sandbox runs as root, so the rebuilds pass --allow-root; a rebuilder runs unprivileged.)")
	}
	for _, who := range rebuilders {
		verdict, _, err := s.rebuild(ctx, who, "5.0")
		if err != nil {
			return err
		}
		if verdict != "reproduced" {
			return fmt.Errorf("%s did not reproduce the honest release: %s", who, verdict)
		}
	}
	s.say("   The vendor copies the logged statements beside its metadata (devices and bundles read them there):")
	if err := s.pullAttestations(ctx); err != nil {
		return err
	}
	res, err = s.updateSignoffDevice(ctx)
	if err != nil {
		return fmt.Errorf("sign-off device update: %w", err)
	}
	if !res.Installed {
		return fmt.Errorf("the device did not install the reproduced release: %s", res.Message)
	}
	s.saySignoff(res.Summary)
	got := s.path("device-signoff", "install", "current", "app.bin")
	b, err := os.ReadFile(got)
	if err != nil {
		return err
	}
	if d := sha256.Sum256(b); hex.EncodeToString(d[:]) != sum {
		return errors.New("the device installed other bytes than the vendor's")
	}
	s.say("   installed %s; the device now runs the program: %s", res.Version, s.runFirmware(ctx, got))
	return nil
}

// initSignoffDevice makes a third device that requires "reproduced" from
// both rebuilders.
func (s *sandbox) initSignoffDevice() error {
	root, err := os.ReadFile(s.path("repo", "metadata", "1.root.json"))
	if err != nil {
		return err
	}
	pol, err := os.ReadFile(s.path("policy.txt"))
	if err != nil {
		return err
	}
	req, err := device.ParseRequire("reproduced:2:rebuilders.keys", func(p string) ([]byte, error) { return os.ReadFile(s.path(p)) })
	if err != nil {
		return err
	}
	cfg := device.Config{Repository: repository, RepositoryURL: s.repoURL, Ledger: s.ledgerURL, Approval: "auto",
		Require: []device.Requirement{req}}
	if err := device.Init(s.path("device-signoff"), cfg, root, pol); err != nil {
		return err
	}
	s.say("   A third device installs only what both reproduced, each statement proven in the log:")
	s.say("   $ shiplog-device -d device-signoff init --root repo/metadata/1.root.json --repo-url %s \\", s.repoURL)
	s.say("       --repo-id %s --policy policy.txt --require reproduced:2:rebuilders.keys", repository)
	return nil
}

// signoffMismatch: release 6.0's binary was not built from the source it
// declares (a compromised build machine, or a compelled vendor): both
// rebuilders log "mismatch", the device refuses it, the auditor reports it.
func (s *sandbox) signoffMismatch(ctx context.Context) error {
	if s.goExe == "" {
		s.say("   Skipped: it continues step %d, which needed a Go toolchain.", 13)
		return nil
	}
	before, err := s.signoffStatus()
	if err != nil {
		return err
	}
	s.say("   The vendor's build machine is compromised: the 6.0 binary it signs and logs was built from")
	s.say("   a source with a backdoor, while the release declares the published 6.0 source.")
	backdoored := firmwareSource("6.0", "\tprintln(\"backdoor: sending the owner's data home\")\n")
	if _, _, err := s.releaseFirmware(ctx, s.goExe, "6.0", backdoored); err != nil {
		return err
	}
	var indexes []int
	for _, who := range rebuilders {
		verdict, index, err := s.rebuild(ctx, who, "6.0")
		if err != nil {
			return err
		}
		if verdict != "mismatch" {
			return fmt.Errorf("%s stated %q about a binary not built from its source", who, verdict)
		}
		indexes = append(indexes, index)
	}
	if err := s.pullAttestations(ctx); err != nil {
		return err
	}
	res, uerr := s.updateSignoffDevice(ctx)
	if uerr == nil {
		if res.Installed {
			return errors.New("the device installed a release its rebuilders stated a mismatch for")
		}
		return fmt.Errorf("the device did not refuse the mismatched release: %s", res.Message)
	}
	if !errors.Is(uerr, device.ErrMismatch) {
		return fmt.Errorf("the device refused the release for another reason: %w", uerr)
	}
	after, err := s.signoffStatus()
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(before, after) {
		return fmt.Errorf("the device's trusted state changed: %v -> %v", before, after)
	}
	s.say("   The device refuses it (its trusted state is unchanged):\n     %s", strings.ReplaceAll(uerr.Error(), "\n", "\n     "))
	s.say("   It still runs: %s", s.runFirmware(ctx, s.path("device-signoff", "install", "current", "app.bin")))
	for _, i := range indexes {
		if err := s.waitFinding(ctx, "signoff-mismatch", float64(i)); err != nil {
			return err
		}
	}
	return nil
}
