package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/evidence/proof"
	"github.com/shiplog/shiplog/internal/durable"
)

const (
	origin     = "sandbox.shiplog.example/log"
	repository = "example.com/sandbox-firmware"
)

// demo runs the story step by step.
func (s *sandbox) demo(ctx context.Context) error {
	s.say("shiplog sandbox: the whole system on this machine, working in %s", s.dir)
	steps := []struct {
		title string
		f     func(context.Context) error
	}{
		{"The ledger: a transparency log on the embedded default (Tessera, files on disk)", s.initLedger},
		{"Three independent witnesses, and a policy that needs 2 of the 3", s.startWitnesses},
		{"The ledger serves; it publishes a checkpoint only once 2 witnesses cosigned it", s.startLedger},
		{"The vendor: TUF keys, a repository, and its root logged as the first entry", s.initVendor},
		{"The auditor watches the log and the vendor's own releases; its dashboard", s.startAuditor},
		{"Release 1: sign, log, get witnessed, then expose", func(ctx context.Context) error { return s.release(ctx, 1) }},
		{"The device updates: TUF checks + inclusion proof + witness quorum, then installs", s.initDevice},
		{"Release 2, and the device updates again", func(ctx context.Context) error {
			if err := s.release(ctx, 2); err != nil {
				return err
			}
			return s.updateDevice(ctx, 2)
		}},
		{"Attack: a release signed with the vendor's real keys but never logged", s.attackUnlogged},
		{"Attack: a stolen key logs a release the vendor never made", s.attackStolenKey},
		{"Prevention: a publicity window holds the stolen-key release while the alarm is raised", s.attackHeldByWindow},
		{"Consent: an update that gains capabilities waits for the owner", s.escalationNeedsConsent},
		{"Independent sign-off: two rebuilders reproduce the firmware, a device requires both", s.signoffReproduced},
		{"Attack: a release whose binary was not built from its declared source", s.signoffMismatch},
	}
	for i, st := range steps {
		select {
		case f := <-s.findings:
			return fmt.Errorf("before step %d the auditor raised a finding about honest entries: %v", i+1, f)
		default:
		}
		s.step(i+1, st.title)
		if err := st.f(ctx); err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, st.title, err)
		}
	}
	s.say("\nWhere to look:")
	s.say("   ledger         %s/checkpoint  (C2SP tlog-tiles read API)", s.ledgerURL)
	for i, u := range s.witnessURLs {
		s.say("   witness %d      %s", i+1, u)
	}
	s.say("   repository     %s/metadata/timestamp.json", s.repoURL)
	s.say("   dashboard      %s/", s.dashboardURL)
	s.say("   files          %s", s.dir)
	return nil
}

func (s *sandbox) initLedger(ctx context.Context) error {
	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	grpcAddr, err := freeAddr()
	if err != nil {
		return err
	}
	if _, err := s.run(ctx, "ledger", "init", "-d", "ledger", "--origin", origin, "--http-listen", httpAddr, "--grpc-listen", grpcAddr); err != nil {
		return err
	}
	vkey, err := os.ReadFile(s.path("ledger", "log.vkey"))
	if err != nil {
		return err
	}
	s.ledgerURL = "http://" + httpAddr
	s.say("   The log signs its checkpoints with an Ed25519 note key:\n     %s", strings.TrimSpace(string(vkey)))
	return nil
}

var cosigVKeyLine = regexp.MustCompile(`(?m)^cosignature/v1 vkey: (\S+)$`)

func (s *sandbox) startWitnesses(ctx context.Context) error {
	logVKey, err := os.ReadFile(s.path("ledger", "log.vkey"))
	if err != nil {
		return err
	}
	var policy strings.Builder
	fmt.Fprintf(&policy, "# Trust policy (C2SP tlog-policy): the log, its witnesses, the quorum.\nlog %s %s\n", strings.TrimSpace(string(logVKey)), s.ledgerURL)
	for i := 1; i <= 3; i++ {
		dir := fmt.Sprintf("witness-%d", i)
		out, err := s.run(ctx, "witness", "init", "--data-dir", dir, "--name", fmt.Sprintf("witness-%d.sandbox.example", i))
		if err != nil {
			return err
		}
		m := cosigVKeyLine.FindStringSubmatch(out)
		if m == nil {
			return fmt.Errorf("witness init printed no cosignature/v1 vkey: %q", out)
		}
		if _, err := s.run(ctx, "witness", "add-log", "--data-dir", dir, strings.TrimSpace(string(logVKey))); err != nil {
			return err
		}
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		if err := s.start(dir, nil, "witness", "serve", "--data-dir", dir, "--listen", addr); err != nil {
			return err
		}
		url := "http://" + addr
		if err := s.waitHTTP(ctx, url+"/healthz"); err != nil {
			return err
		}
		s.witnessURLs = append(s.witnessURLs, url)
		fmt.Fprintf(&policy, "witness w%d %s %s\n", i, m[1], url)
	}
	policy.WriteString("group two-of-three 2 w1 w2 w3\nquorum two-of-three\n")
	if err := os.WriteFile(s.path("policy.txt"), []byte(policy.String()), 0o644); err != nil {
		return err
	}
	s.say("   policy.txt, shared by the ledger, the vendor, the auditor and the device:")
	for _, l := range strings.Split(strings.TrimSpace(policy.String()), "\n") {
		s.say("     %s", l)
	}
	return nil
}

func (s *sandbox) startLedger(ctx context.Context) error {
	pol, err := os.ReadFile(s.path("policy.txt"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.path("ledger", "witnesses.policy"), pol, 0o644); err != nil {
		return err
	}
	s.say("   (ledger/witnesses.policy = policy.txt)")
	if err := s.start("ledger", nil, "ledger", "serve", "-d", "ledger"); err != nil {
		return err
	}
	if err := s.waitHTTP(ctx, s.ledgerURL+"/readyz"); err != nil {
		return err
	}
	cp, err := s.waitCheckpoint(ctx, 0)
	if err != nil {
		return err
	}
	s.say("   Serving %s. Its first checkpoint (the empty tree), as published:", s.ledgerURL)
	for _, l := range strings.Split(strings.TrimSpace(string(cp)), "\n") {
		s.say("     %s", l)
	}
	return nil
}

// waitCheckpoint waits until the ledger publishes a cosigned checkpoint of
// at least size entries.
func (s *sandbox) waitCheckpoint(ctx context.Context, size uint64) ([]byte, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if cp, err := s.fetch(ctx, s.ledgerURL+"/checkpoint"); err == nil {
			var n uint64
			if lines := strings.SplitN(string(cp), "\n", 3); len(lines) == 3 {
				fmt.Sscan(lines[1], &n)
			}
			if n >= size {
				return cp, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("no cosigned checkpoint of size %d within 30s", size)
}

func (s *sandbox) initVendor(ctx context.Context) error {
	if err := os.MkdirAll(s.path("keys"), 0o700); err != nil {
		return err
	}
	s.say("   (The sandbox keeps keys unencrypted; a real vendor omits --insecure-plaintext and")
	s.say("   gives a passphrase, and keeps the root key offline.)")
	for _, k := range []string{"root", "targets", "snapshot", "timestamp"} {
		if _, err := s.run(ctx, "repo", "key", "generate", "--insecure-plaintext", "keys/"+k+".key"); err != nil {
			return err
		}
	}
	if _, err := s.run(ctx, "repo", "init", "-d", "repo", "--repo-id", repository,
		"--root-key", "keys/root.key.pub", "--targets-key", "keys/targets.key.pub",
		"--snapshot-key", "keys/snapshot.key.pub", "--timestamp-key", "keys/timestamp.key.pub",
		"--ledger", s.ledgerURL, "--policy", "policy.txt"); err != nil {
		return err
	}
	for _, k := range []string{"root", "targets"} {
		if _, err := s.run(ctx, "repo", "sign", "-d", "repo", "--key", "keys/"+k+".key"); err != nil {
			return err
		}
	}
	out, err := s.run(ctx, "repo", "register", "-d", "repo", "--token-file", "ledger/admin.token")
	if err != nil {
		return err
	}
	s.say("   %s", strings.TrimSpace(out))
	return s.describeProof("repo/metadata/1.root.json.tlog-proof")
}

// describeProof prints what a tlog-proof file says.
func (s *sandbox) describeProof(rel string) error {
	b, err := os.ReadFile(s.path(rel))
	if err != nil {
		return err
	}
	p, err := proof.Parse(b)
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	lines := strings.Split(string(p.Checkpoint), "\n")
	var signers []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "—" {
			signers = append(signers, f[1])
		}
	}
	size := ""
	if len(lines) > 1 {
		size = lines[1]
	}
	s.say("   %s: entry %d, %d proof hashes, checkpoint of size %s signed by %s", rel, p.Index, len(p.Hashes), size, strings.Join(signers, ", "))
	return nil
}

func (s *sandbox) startAuditor(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	args := []string{"audit", "--ledger", s.ledgerURL, "--policy", "policy.txt", "--data-dir", "auditor",
		"--listen", addr, "--interval", "1s", "--vendor-dir", "repo", "--vendor-grace", "2s", "--progress", "off"}
	for _, u := range s.witnessURLs {
		args = append(args, "--witness", u)
	}
	if err := s.start("auditor", s.watchFindings(), args...); err != nil {
		return err
	}
	s.dashboardURL = "http://" + addr
	if err := s.waitHTTP(ctx, s.dashboardURL+"/"); err != nil {
		return err
	}
	s.say("   Dashboard: %s/  (findings are JSON lines in auditor.log)", s.dashboardURL)
	return nil
}

func (s *sandbox) release(ctx context.Context, n int) error {
	if err := os.MkdirAll(s.path("build"), 0o755); err != nil {
		return err
	}
	content := fmt.Sprintf("shiplog sandbox firmware %d.0\n", n)
	if err := os.WriteFile(s.path("build", "app.bin"), []byte(content), 0o644); err != nil {
		return err
	}
	args := []string{"repo", "add", "-d", "repo", "build/app.bin", "--path", "app.bin",
		"--custom", fmt.Sprintf(`{"release_notes":"Firmware %d.0."}`, n)}
	if n > 1 {
		args = append(args, "--replace")
	}
	if _, err := s.run(ctx, args...); err != nil {
		return err
	}
	out, err := s.run(ctx, "repo", "sign", "-d", "repo", "--key", "keys/targets.key")
	if err != nil {
		return err
	}
	s.say("   %s", strings.TrimSpace(out))
	out, err = s.run(ctx, "publish", "-d", "repo", "--snapshot-key", "keys/snapshot.key", "--timestamp-key", "keys/timestamp.key")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		s.say("   %s", l)
	}
	return s.describeProof(fmt.Sprintf("repo/metadata/%d.targets.json.tlog-proof", n))
}

func (s *sandbox) initDevice(ctx context.Context) error {
	if err := s.serveRepo(); err != nil {
		return err
	}
	s.say("   The repository directory is served as static files at %s (any web server or CDN).", s.repoURL)
	root, err := os.ReadFile(s.path("repo", "metadata", "1.root.json"))
	if err != nil {
		return err
	}
	pol, err := os.ReadFile(s.path("policy.txt"))
	if err != nil {
		return err
	}
	cfg := device.Config{Repository: repository, RepositoryURL: s.repoURL, Ledger: s.ledgerURL, Approval: "auto"}
	if err := device.Init(s.path("device"), cfg, root, pol); err != nil {
		return err
	}
	s.say("   The device trusts: root v1 of %s, and policy.txt (the log's key, 2 of 3 witnesses).", repository)
	return s.updateDevice(ctx, 1)
}

func (s *sandbox) updateDevice(ctx context.Context, want int) error {
	d, err := s.openDevice()
	if err != nil {
		return err
	}
	defer d.Close()
	res, err := d.Update(ctx)
	if err != nil {
		return fmt.Errorf("device update: %w", err)
	}
	if res.Summary != nil {
		for _, ev := range res.Summary.Evidence {
			var ws []string
			for _, w := range ev.Witnesses {
				ws = append(ws, w.Name)
			}
			s.say("   verified %s v%d: TUF signatures and expiry, and entry %d of %s under a checkpoint of size %d cosigned by %s",
				ev.Role, ev.Version, ev.Index, ev.Log, ev.TreeSize, strings.Join(ws, ", "))
		}
	}
	if !res.Installed {
		return fmt.Errorf("device did not install: %s", res.Message)
	}
	got, err := os.ReadFile(s.path("device", "install", "current", "app.bin"))
	if err != nil {
		return err
	}
	if want := fmt.Sprintf("shiplog sandbox firmware %d.0\n", want); string(got) != want {
		return fmt.Errorf("device runs %q, want %q", got, want)
	}
	s.say("   installed %s atomically; the device now runs: %s", res.Version, strings.TrimSpace(string(got)))
	return nil
}

// deviceVersion returns the installed version of the device.
func (s *sandbox) deviceVersion() (string, error) {
	d, err := s.openDevice()
	if err != nil {
		return "", err
	}
	defer d.Close()
	st, err := d.Status()
	if err != nil {
		return "", err
	}
	return st.Active, nil
}

func (s *sandbox) attackUnlogged(ctx context.Context) error {
	before, err := s.deviceVersion()
	if err != nil {
		return err
	}
	undo, err := s.forgeUnloggedRelease()
	if err != nil {
		return err
	}
	defer undo()
	s.say("   The attacker holds the vendor's targets, snapshot and timestamp keys, signs targets v3")
	s.say("   with a backdoored app.bin, and puts it on the update server without logging it.")
	d, err := s.openDevice()
	if err != nil {
		return err
	}
	res, uerr := d.Update(ctx)
	d.Close()
	if uerr == nil {
		return fmt.Errorf("the device accepted an unlogged release: %+v", res)
	}
	after, err := s.deviceVersion()
	if err != nil {
		return err
	}
	if after != before {
		return fmt.Errorf("the device's version changed from %s to %s", before, after)
	}
	s.say("   The device refused it:\n     %s", strings.ReplaceAll(uerr.Error(), "\n", "\n     "))
	s.say("   It still runs %s; its trusted state is unchanged.", after)
	return nil
}

func (s *sandbox) attackStolenKey(ctx context.Context) error {
	if err := copyDir(s.path("repo"), s.path("stolen")); err != nil {
		return err
	}
	if err := os.WriteFile(s.path("build", "backdoor.bin"), []byte("backdoor\n"), 0o644); err != nil {
		return err
	}
	s.say("   With a copy of the vendor's repository and the stolen targets key, the attacker logs")
	s.say("   a release the vendor never made (the ledger accepts it: the signature is valid).")
	if _, err := s.run(ctx, "repo", "add", "-d", "stolen", "build/backdoor.bin", "--path", "app.bin", "--replace"); err != nil {
		return err
	}
	if _, err := s.run(ctx, "repo", "sign", "-d", "stolen", "--key", "keys/targets.key"); err != nil {
		return err
	}
	out, err := s.run(ctx, "publish", "-d", "stolen")
	if err != nil {
		return err
	}
	first := strings.Split(strings.TrimSpace(out), "\n")[0]
	s.say("   %s", first)
	var version, index float64
	if _, err := fmt.Sscanf(first, "logged targets v%g at index %g", &version, &index); err != nil {
		return fmt.Errorf("unexpected publish output %q", first)
	}
	timeout := time.After(60 * time.Second)
	for {
		select {
		case f := <-s.findings:
			if f["kind"] == "unexpected-release" && f["index"] == index {
				s.say("   The auditor flagged it (%s): %s", f["severity"], f["message"])
				s.say("     entry %v: %v %v v%v, sha256 %v", f["index"], f["repo"], f["role"], f["version"], evidenceHash(f))
				s.say("   The release is signed, but not secret: the vendor learns of the stolen key now.")
				return nil
			}
			return fmt.Errorf("the auditor raised a finding about an honest entry: %v", f)
		case <-timeout:
			return errors.New("the auditor did not flag the stolen-key release within 60s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func evidenceHash(f map[string]any) any {
	if ev, ok := f["evidence"].(map[string]any); ok {
		return ev["sha256"]
	}
	return "?"
}

// copyDir copies a directory tree of regular files, each replaced
// atomically: the auditor and the device read these directories while the
// sandbox writes them, and must never see a file half-written.
func copyDir(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return durable.WriteFile(target, b, fi.Mode().Perm())
	})
}
