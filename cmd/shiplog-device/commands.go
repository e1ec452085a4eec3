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
	"time"

	"github.com/shiplog/shiplog/internal/buildinfo"
	"github.com/shiplog/shiplog/internal/capped"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/shiplog/shiplog/client/approval"
	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/client/install"
	"github.com/shiplog/shiplog/evidence/publicity"
)

func readFile(path string, max int64) ([]byte, error) {
	return capped.ReadFile(path, max)
}

var cmdInit = &command{
	name: "init", short: "create the data directory (trusted root, repository, policy)", args: "--root FILE --repo-id ID --policy FILE [--repo-url URL] [flags]", maxArgs: 0,
	summary: "Create the device's data directory: its trusted root, the repository it follows, the\ntlog-policy (logs, witnesses, quorum) it requires releases to be proven under, and the\nsign-off it requires (--require: k statements from the keys of a file, copied in).",
	example: "  shiplog-device -d /var/lib/shiplog-device init --root 1.root.json \\\n    --repo-url https://updates.example.com --repo-id example.com/firmware \\\n    --policy device.policy --approval ask\n  shiplog-device init --profile household --min-public-age 48h --root 1.root.json \\\n    --repo-url https://updates.example.com --repo-id example.com/firmware --policy device.policy\n  shiplog-device init --require reproduced:2:rebuilders.keys --require reviewed:1:reviewers.keys \\\n    --root 1.root.json --repo-url https://updates.example.com --repo-id example.com/firmware --policy device.policy",
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		var cfg device.Config
		var root, pol, mode string
		var targets []string
		var asJSON bool
		fs.StringVar(&root, "root", "", "trusted root metadata file (required)")
		fs.StringVar(&cfg.RepositoryURL, "repo-url", "", "repository base URL (metadata/ and targets/ under it)")
		fs.StringVar(&cfg.Repository, "repo-id", "", "repository id, as logged (required)")
		fs.StringVar(&pol, "policy", "", "C2SP tlog-policy file (required)")
		fs.StringVar(&cfg.Ledger, "ledger", "", "ledger URL for online proofs (optional)")
		fs.StringVar(&mode, "approval", "ask", "approval mode: never, notify, ask, auto, security")
		fs.StringVar(&cfg.Installer.Kind, "installer", "dir", "installer: dir (versions as directories) or ab (A/B image slots)")
		fs.StringVar(&cfg.Installer.Path, "install-dir", "", "where versions are installed (default DATA-DIR/install)")
		fs.StringVar(&cfg.Installer.Image, "image", "", "the image target path (ab installer)")
		fs.StringArrayVar(&targets, "target", nil, "target path to install (repeatable; default all targets)")
		var require []string
		fs.StringArrayVar(&require, "require", nil, "sign-off requirement verdict:k:file: install a target only with k statements (reproduced or reviewed) from distinct keys of the vkeys file, proven in the log (repeatable)")
		var profile string
		var minAge, minAgeSec, floor, skew time.Duration
		fs.StringVar(&profile, "profile", "", "policy preset: "+profileNames()+" (every setting below overrides it)")
		fs.DurationVar(&minAge, "min-public-age", 0, "publicity window: install a release only once public that long (e.g. 72h)")
		fs.DurationVar(&minAgeSec, "min-public-age-security", 0, "publicity window for security-only updates (default: the profile's, or --min-public-age)")
		fs.DurationVar(&floor, "min-public-age-floor", 0, "the owner's floor: neither window may be below it")
		fs.DurationVar(&skew, "clock-skew", publicity.DefaultSkew, "how far ahead of this device's clock a witness timestamp still counts")
		fs.StringArrayVar(&cfg.DenyCapabilities, "deny-capability", nil, "refuse updates in which a target gains this capability over the first install (repeatable; storage or vendor: every one of that kind)")
		jsonFlag(fs, &asJSON, "print JSON")
		return func(ctx context.Context, _ []string) error {
			if root == "" || pol == "" || cfg.Repository == "" {
				return usageError{"init needs --root, --repo-id and --policy (see shiplog-device init --help)"}
			}
			cfg.Approval = approval.Mode(mode)
			cfg.MinPublicAge, cfg.MinPublicAgeSecurity, cfg.MinPublicAgeFloor = device.Duration(minAge), device.Duration(minAgeSec), device.Duration(floor)
			sk := device.Duration(skew)
			cfg.ClockSkew = &sk
			overridden := map[string]bool{}
			for flag, setting := range policyFlags {
				overridden[setting] = fs.Changed(flag)
			}
			if err := device.ApplyProfile(&cfg, profile, overridden); err != nil {
				return usageError{err.Error()}
			}
			cfg.Targets = targets
			for _, r := range require {
				req, err := device.ParseRequire(r, func(path string) ([]byte, error) { return readFile(path, 1<<20) })
				if err != nil {
					return usageError{err.Error()}
				}
				cfg.Require = append(cfg.Require, req)
			}
			rb, err := readFile(root, 512000)
			if err != nil {
				return err
			}
			pb, err := readFile(pol, 64<<10)
			if err != nil {
				return err
			}
			if err := device.Init(g.dataDir, cfg, rb, pb); err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.out, map[string]string{"data_dir": g.dataDir, "repository": cfg.Repository})
			}
			fmt.Fprintf(g.out, "initialized %s for %s\n", g.dataDir, cfg.Repository)
			return nil
		}
	},
}

// policyFlags maps init's flags to the policy settings they override.
var policyFlags = map[string]string{
	"approval":                device.SettingApproval,
	"min-public-age":          device.SettingMinPublicAge,
	"min-public-age-security": device.SettingMinPublicAgeSecurity,
	"min-public-age-floor":    device.SettingMinPublicAgeFloor,
	"clock-skew":              device.SettingClockSkew,
	"deny-capability":         device.SettingDenyCapabilities,
}

func profileNames() string {
	var names []string
	for _, p := range device.Profiles {
		names = append(names, p.Name)
	}
	return strings.Join(names, ", ")
}

func open(g *globals, yes, asJSON bool) (*device.Device, error) {
	o := device.Options{Time: g.time, Yes: yes, Fault: install.Fault(faultHook()), Logger: g.logger}
	if !yes && !asJSON && term.IsTerminal(int(os.Stdin.Fd())) {
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
	return device.Open(g.dataDir, o)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func report(g *globals, res *device.Result, asJSON bool) error {
	if asJSON {
		return printJSON(g.out, res)
	}
	if res.Summary != nil && !res.Summary.Empty() {
		fmt.Fprint(g.out, res.Summary.Text())
	}
	fmt.Fprintln(g.out, res.Message)
	return nil
}

var cmdCheck = &command{
	name: "check", short: "show what an update would change; changes nothing", args: "[--json]", maxArgs: 0,
	summary: "Fetch and verify the repository's metadata and show what an update would change.\nNothing is downloaded, installed or trusted.",
	example: "  shiplog-device check --json",
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		var asJSON bool
		jsonFlag(fs, &asJSON, "print JSON")
		return func(ctx context.Context, _ []string) error {
			d, err := open(g, false, true)
			if err != nil {
				return err
			}
			defer d.Close()
			res, err := d.Check(ctx)
			if err != nil {
				return err
			}
			return report(g, res, asJSON)
		}
	},
}

var cmdUpdate = &command{
	name: "update", short: "update under the approval policy", args: "[--yes] [--json]", maxArgs: 0,
	summary: "Update under the device's approval policy: verify (TUF and the transparency log),\nshow the summary, download, ask if the policy says so, install atomically, and\nonly then commit the trusted state.",
	example: "  shiplog-device update\n  shiplog-device update --yes --json",
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		var yes, asJSON bool
		fs.BoolVarP(&yes, "yes", "y", false, "approve the update without asking")
		jsonFlag(fs, &asJSON, "print JSON (never prompts)")
		return func(ctx context.Context, _ []string) error {
			d, err := open(g, yes, asJSON)
			if err != nil {
				return err
			}
			defer d.Close()
			res, err := d.Update(ctx)
			if err != nil {
				return err
			}
			return report(g, res, asJSON)
		}
	},
}

var cmdInstallBundle = &command{
	name: "install-bundle", short: "install an offline update bundle FILE", args: "FILE [--yes] [--json]", minArgs: 1, maxArgs: 1,
	summary: "Install an offline update bundle, verified exactly as an online update.",
	example: "  shiplog-device install-bundle release-7.bundle --yes",
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		var yes, asJSON bool
		fs.BoolVarP(&yes, "yes", "y", false, "approve the update without asking")
		jsonFlag(fs, &asJSON, "print JSON (never prompts)")
		return func(ctx context.Context, pos []string) error {
			d, err := open(g, yes, asJSON)
			if err != nil {
				return err
			}
			defer d.Close()
			res, err := d.InstallBundle(ctx, pos[0])
			if err != nil {
				return err
			}
			return report(g, res, asJSON)
		}
	},
}

var cmdVerifyBundle = &command{
	name: "verify-bundle", short: "verify a bundle FILE against the trusted state", args: "FILE [--json]", minArgs: 1, maxArgs: 1,
	summary: "Verify a bundle against the device's trusted state without installing it.",
	example: "  shiplog-device verify-bundle release-7.bundle",
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		var asJSON bool
		jsonFlag(fs, &asJSON, "print JSON")
		return func(ctx context.Context, pos []string) error {
			d, err := open(g, false, true)
			if err != nil {
				return err
			}
			defer d.Close()
			res, err := d.VerifyBundle(ctx, pos[0])
			if err != nil {
				return err
			}
			return report(g, res, asJSON)
		}
	},
}

// status opens the device as a boot would (settling an interrupted
// install) when it is free, and otherwise, while another process updates
// it, reads the state without the lock.
func status(g *globals) (*device.Status, error) {
	d, err := open(g, false, true)
	if errors.Is(err, device.ErrInUse) {
		return device.ReadStatus(g.dataDir)
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Status()
}

var cmdStatus = &command{
	name: "status", short: "show the trusted state and the installed version", args: "[--json]", maxArgs: 0,
	summary: "Show the effective policy and where each setting came from (default, profile,\noverride), the sign-off requirements, a release held by the publicity window (and when\nit becomes eligible) or for sign-off, and the trusted state: repository, installed\nversion, role versions and expiry, and the newest checkpoint held per log.",
	example: "  shiplog-device status --json",
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		var asJSON bool
		jsonFlag(fs, &asJSON, "print JSON")
		return func(ctx context.Context, _ []string) error {
			st, err := status(g)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.out, st)
			}
			fmt.Fprintf(g.out, "repository: %s (%s)\napproval: %s\n", st.Repository, st.RepositoryURL, st.Approval)
			if st.Busy {
				fmt.Fprintln(g.out, "busy: an update or install is running (another shiplog-device holds the state lock); this is the state before it")
			}
			fmt.Fprintln(g.out, "policy:")
			for _, p := range st.Policy {
				v := p.Value
				if v == "" {
					v = "-"
				}
				fmt.Fprintf(g.out, "  %-24s %-10s (%s)\n", p.Name, v, p.Source)
			}
			for _, r := range st.Require {
				fmt.Fprintf(g.out, "  %-24s %s\n", "require", r)
			}
			if pe := st.Pending; pe != nil {
				fmt.Fprintf(g.out, "pending (as of %s): %s\n", pe.CheckedAt.Format(time.RFC3339), pe.Description)
				for i := range pe.Signoff {
					fmt.Fprint(g.out, pe.Signoff[i].Text())
				}
			}
			if st.Installed != nil {
				fmt.Fprintf(g.out, "installed: %s (targets version %d, %d files; active %s)\n", st.Installed.ID, st.Installed.TargetsVersion, len(st.Installed.Files), st.Active)
			} else {
				fmt.Fprintln(g.out, "installed: nothing")
			}
			for _, r := range st.Roles {
				mark := ""
				if r.Expired {
					mark = " EXPIRED: the next update fails until the vendor renews it (or the clock is fixed)"
				}
				fmt.Fprintf(g.out, "  %-12s v%d, expires %s%s\n", r.Role, r.Version, r.Expires.Format("2006-01-02T15:04:05Z07:00"), mark)
			}
			for _, c := range st.Checkpoints {
				fmt.Fprintf(g.out, "  log %s at size %d\n", c.Origin, c.Size)
			}
			return nil
		}
	},
}

var cmdVerifyEvidence = &command{
	name: "verify-evidence", short: "re-check a fork evidence FILE", args: "FILE [--policy FILE]", minArgs: 1, maxArgs: 1,
	summary: "Re-check fork evidence: two checkpoints validly signed by one log that are not\nconsistent. Uses the device's policy unless --policy is given; needs no network.",
	example: "  shiplog-device verify-evidence /var/lib/shiplog-device/evidence/fork-1a2b3c4d5e6f7a8b.txt",
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		var pol string
		var asJSON bool
		fs.StringVar(&pol, "policy", "", "tlog-policy file (default: the device's)")
		jsonFlag(fs, &asJSON, "print JSON")
		return func(ctx context.Context, pos []string) error {
			b, err := readFile(pos[0], 1<<20)
			if err != nil {
				return err
			}
			if pol == "" {
				pol = g.dataDir + "/policy"
			}
			pb, err := readFile(pol, 64<<10)
			if err != nil {
				return err
			}
			conclusive, err := device.VerifyEvidence(b, pb)
			if err != nil {
				return fmt.Errorf("evidence does not stand: %w", err)
			}
			switch {
			case asJSON:
				return printJSON(g.out, map[string]any{"stands": true, "conclusive": conclusive})
			case conclusive:
				fmt.Fprintln(g.out, "fork confirmed: two checkpoints of the same size with different roots, both signed by the log")
			default:
				fmt.Fprintln(g.out, "fork evidence stands: both checkpoints are signed by the log and the consistency proof between them fails; the log cannot produce a valid one")
			}
			return nil
		}
	},
}

var cmdVersion = &command{
	name: "version", short: "print the build (version, revision, Go version)", args: "[--json]", maxArgs: 0,
	summary: "Print the build: module version, VCS revision, Go version and platform.",
	example: "  shiplog-device version --json",
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		var asJSON bool
		jsonFlag(fs, &asJSON, "print JSON")
		return func(context.Context, []string) error {
			i := buildinfo.Read()
			if asJSON {
				return printJSON(g.out, i)
			}
			fmt.Fprintln(g.out, "shiplog-device "+i.String())
			return nil
		}
	},
}
