package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/shiplog/shiplog/internal/capped"

	"github.com/shiplog/shiplog/client/approval"
	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/client/install"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func readFile(path string, max int64) ([]byte, error) {
	return capped.ReadFile(path, max)
}

func cmdInit(g globals, args []string) error {
	fs := newFlags(g, "init", "--root FILE --repo-url URL --repo-id ID --policy FILE [flags]",
		"Create the device's state directory: its trusted root, the repository it follows and the\ntlog-policy (logs, witnesses, quorum) it requires releases to be proven under.",
		"  shiplog-device --state /var/lib/shiplog-device init --root 1.root.json \\\n    --repo-url https://updates.example.com --repo-id example.com/firmware \\\n    --policy device.policy --approval ask")
	root := fs.String("root", "", "trusted root metadata file (required)")
	var cfg device.Config
	fs.StringVar(&cfg.RepositoryURL, "repo-url", "", "repository base URL (metadata/ and targets/ under it)")
	fs.StringVar(&cfg.Repository, "repo-id", "", "repository id, as logged (required)")
	pol := fs.String("policy", "", "C2SP tlog-policy file (required)")
	fs.StringVar(&cfg.Ledger, "ledger", "", "ledger URL for online proofs (optional)")
	mode := fs.String("approval", "ask", "approval mode: never, notify, ask, auto, security")
	fs.StringVar(&cfg.Installer.Kind, "installer", "dir", "installer: dir (versions as directories) or ab (A/B image slots)")
	fs.StringVar(&cfg.Installer.Path, "install-dir", "", "where versions are installed (default STATE/install)")
	fs.StringVar(&cfg.Installer.Image, "image", "", "the image target path (ab installer)")
	var targets multiFlag
	fs.Var(&targets, "target", "target path to install (repeatable; default all targets)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *root == "" || *pol == "" || cfg.Repository == "" {
		fs.Usage()
		return errors.New("init needs --root, --repo-id and --policy")
	}
	cfg.Approval = approval.Mode(*mode)
	cfg.Targets = targets
	rb, err := readFile(*root, 512000)
	if err != nil {
		return err
	}
	pb, err := readFile(*pol, 64<<10)
	if err != nil {
		return err
	}
	if err := device.Init(g.state, cfg, rb, pb); err != nil {
		return err
	}
	fmt.Fprintf(g.out, "initialized %s for %s\n", g.state, cfg.Repository)
	return nil
}

func open(g globals, yes, asJSON bool) (*device.Device, error) {
	o := device.Options{Time: g.time, Yes: yes, Fault: install.Fault(faultHook())}
	if !yes && !asJSON && isTerminal(os.Stdin) {
		o.Prompt = func(s *approval.Summary) (bool, error) {
			fmt.Fprint(g.out, s.Text())
			fmt.Fprint(g.out, "Install this update? [y/N] ")
			line, err := bufio.NewReader(g.in).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return false, err
			}
			a := strings.ToLower(strings.TrimSpace(line))
			return a == "y" || a == "yes", nil
		}
	}
	return device.Open(g.state, o)
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func report(g globals, res *device.Result, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(g.out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	if res.Summary != nil && !res.Summary.Empty() {
		fmt.Fprint(g.out, res.Summary.Text())
	}
	fmt.Fprintln(g.out, res.Message)
	return nil
}

func cmdCheck(ctx context.Context, g globals, args []string) error {
	fs := newFlags(g, "check", "[--json]", "Fetch and verify the repository's metadata and show what an update would change.\nNothing is downloaded, installed or trusted.", "  shiplog-device check --json")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	d, err := open(g, false, true)
	if err != nil {
		return err
	}
	defer d.Close()
	res, err := d.Check(ctx)
	if err != nil {
		return err
	}
	return report(g, res, *asJSON)
}

func cmdUpdate(ctx context.Context, g globals, args []string) error {
	fs := newFlags(g, "update", "[--yes] [--json]", "Update under the device's approval policy: verify (TUF and the transparency log),\nshow the summary, download, ask if the policy says so, install atomically, and\nonly then commit the trusted state.", "  shiplog-device update\n  shiplog-device update --yes --json")
	yes := fs.Bool("yes", false, "approve the update without asking")
	asJSON := fs.Bool("json", false, "print JSON (never prompts)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	d, err := open(g, *yes, *asJSON)
	if err != nil {
		return err
	}
	defer d.Close()
	res, err := d.Update(ctx)
	if err != nil {
		return err
	}
	return report(g, res, *asJSON)
}

func cmdInstallBundle(ctx context.Context, g globals, args []string) error {
	fs := newFlags(g, "install-bundle", "FILE [--yes] [--json]", "Install an offline update bundle, verified exactly as an online update.", "  shiplog-device install-bundle release-7.bundle --yes")
	yes := fs.Bool("yes", false, "approve the update without asking")
	asJSON := fs.Bool("json", false, "print JSON (never prompts)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitError{2}
	}
	d, err := open(g, *yes, *asJSON)
	if err != nil {
		return err
	}
	defer d.Close()
	res, err := d.InstallBundle(ctx, pos[0])
	if err != nil {
		return err
	}
	return report(g, res, *asJSON)
}

func cmdVerifyBundle(ctx context.Context, g globals, args []string) error {
	fs := newFlags(g, "verify-bundle", "FILE [--json]", "Verify a bundle against the device's trusted state without installing it.", "  shiplog-device verify-bundle release-7.bundle")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitError{2}
	}
	d, err := open(g, false, true)
	if err != nil {
		return err
	}
	defer d.Close()
	res, err := d.VerifyBundle(ctx, pos[0])
	if err != nil {
		return err
	}
	return report(g, res, *asJSON)
}

// status opens the device as a boot would (settling an interrupted
// install) when it is free, and otherwise, while another process updates
// it, reads the state without the lock.
func status(g globals) (*device.Status, error) {
	d, err := open(g, false, true)
	if errors.Is(err, device.ErrInUse) {
		return device.ReadStatus(g.state)
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Status()
}

func cmdStatus(g globals, args []string) error {
	fs := newFlags(g, "status", "[--json]", "Show the trusted state: repository, installed version, role versions and expiry,\nand the newest checkpoint held per log.", "  shiplog-device status --json")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	st, err := status(g)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(g.out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(g.out, "repository: %s (%s)\napproval: %s\n", st.Repository, st.RepositoryURL, st.Approval)
	if st.Installed != nil {
		fmt.Fprintf(g.out, "installed: %s (targets version %d, %d files; active %s)\n", st.Installed.ID, st.Installed.TargetsVersion, len(st.Installed.Files), st.Active)
	} else {
		fmt.Fprintln(g.out, "installed: nothing")
	}
	for _, r := range st.Roles {
		fmt.Fprintf(g.out, "  %-12s v%d, expires %s\n", r.Role, r.Version, r.Expires.Format("2006-01-02T15:04:05Z07:00"))
	}
	for _, c := range st.Checkpoints {
		fmt.Fprintf(g.out, "  log %s at size %d\n", c.Origin, c.Size)
	}
	return nil
}

func cmdVerifyEvidence(g globals, args []string) error {
	fs := newFlags(g, "verify-evidence", "FILE [--policy FILE]", "Re-check fork evidence: two checkpoints validly signed by one log that are not\nconsistent. Uses the device's policy unless --policy is given; needs no network.", "  shiplog-device verify-evidence /var/lib/shiplog-device/evidence/fork-1a2b3c4d5e6f7a8b.txt")
	pol := fs.String("policy", "", "tlog-policy file (default: the device's)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitError{2}
	}
	b, err := readFile(pos[0], 1<<20)
	if err != nil {
		return err
	}
	var pb []byte
	if *pol != "" {
		pb, err = readFile(*pol, 64<<10)
	} else {
		pb, err = readFile(g.state+"/policy", 64<<10)
	}
	if err != nil {
		return err
	}
	conclusive, err := device.VerifyEvidence(b, pb)
	if err != nil {
		return fmt.Errorf("evidence does not stand: %w", err)
	}
	if conclusive {
		fmt.Fprintln(g.out, "fork confirmed: two checkpoints of the same size with different roots, both signed by the log")
	} else {
		fmt.Fprintln(g.out, "fork evidence stands: both checkpoints are signed by the log and the consistency proof between them fails; the log cannot produce a valid one")
	}
	return nil
}
