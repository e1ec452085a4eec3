package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	cbundle "github.com/shiplog/shiplog/client/bundle"
	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/durable"
	rbundle "github.com/shiplog/shiplog/repo/bundle"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func init() { addCommand(bundleCmd) }

func bundleCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "bundle",
		Short: "Build, inspect and verify offline update bundles",
		Long: `An update bundle is one file holding everything a device needs to verify and
install an update with no network: the root chain, timestamp, snapshot, every targets
role on the path to each target (exact bytes), their tlog-proofs, and the payloads.
Devices install it with "shiplog-device install-bundle FILE".`,
	}
	c.AddCommand(bundleCreateCmd(), bundleInspectCmd(), bundleVerifyCmd())
	return c
}

func bundleCreateCmd() *cobra.Command {
	var dir string
	var o rbundle.Options
	var out, policyFile, at string
	var asJSON bool
	c := &cobra.Command{
		Use:   "create --data-dir DIR --target PATH... --out FILE",
		Short: "Write a bundle of targets from a repository directory",
		Long: `Write a bundle of the given targets from the shiplog repository directory DIR.
Every root and targets role it carries must already be logged (shiplog publish wrote
its .tlog-proof). With --policy, every proof is verified as a device would. With
--omit-sha256, payloads the device already holds are left out; the device proves it
holds them by hash when it installs the bundle.`,
		Example: `  shiplog bundle create -d ./repo --target fw/image.bin --out release-7.bundle
  shiplog bundle create -d ./repo --target fw/image.bin --target fw/boot.bin \
      --omit-sha256 3b2c...e1 --policy device.policy --out delta.bundle`,
		Args: dirArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			args = takeDir(cmd, &dir, args)
			if out == "" {
				return errors.New("--out is required: the bundle file to write")
			}
			o.Dir = dir
			if policyFile != "" {
				p, err := bundleReadPolicy(policyFile)
				if err != nil {
					return err
				}
				o.Policy = p
			}
			t, err := bundleParseTime(at)
			if err != nil {
				return err
			}
			o.Time = t
			return bundleWrite(cmd, o, out, asJSON)
		},
	}
	c.Flags().StringArrayVar(&o.Targets, "target", nil, "target path to include (repeatable)")
	c.Flags().StringVar(&out, "out", "", "bundle file to write")
	c.Flags().StringArrayVar(&o.OmitSHA256, "omit-sha256", nil, "SHA-256 (hex) of a payload the device already holds (repeatable)")
	c.Flags().Int64Var(&o.FromRootVersion, "from-root-version", 0, "leave out root versions up to this one")
	c.Flags().StringVar(&policyFile, "policy", "", "tlog-policy to verify the proofs under")
	c.Flags().StringVar(&at, "time", "", "reference time for expiry (RFC 3339; default now)")
	dataDirFlag(c, &dir, "", "the repository directory to read (required)")
	addOutputFlags(c, &asJSON)
	return c
}

// bundleWrite builds into a temporary file and renames it into place.
func bundleWrite(cmd *cobra.Command, o rbundle.Options, out string, asJSON bool) error {
	f, err := durable.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp*", durable.Public) // served to devices
	if err != nil {
		return err
	}
	defer f.Discard()
	var w io.Writer = f
	if term.IsTerminal(int(os.Stderr.Fd())) {
		pw := &writeProgress{w: f, out: os.Stderr, label: "writing " + filepath.Base(out)}
		defer pw.done()
		w = pw
	}
	h, err := rbundle.Build(cmd.Context(), o, w)
	if err != nil {
		return fmt.Errorf("couldn't build the bundle: %w", err)
	}
	if err := f.Rename(out); err != nil {
		return err
	}
	if err := durable.SyncDir(filepath.Dir(out)); err != nil {
		return err
	}
	if asJSON {
		return printJSON(cmd.OutOrStdout(), map[string]any{"file": out, "roots": len(h.Roots), "targets_roles": len(h.Targets), "payloads": len(h.Payloads), "signoffs": len(h.Signoffs)})
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d roots, %d targets roles, %d payloads, sign-off evidence for %d digest(s)\n", out, len(h.Roots), len(h.Targets), len(h.Payloads), len(h.Signoffs))
	return nil
}

func bundleInspectCmd() *cobra.Command {
	var asJSON bool
	return bundleWithJSON(&cobra.Command{
		Use:     "inspect FILE",
		Short:   "Print a summary of a bundle (without verifying it)",
		Example: `  shiplog bundle inspect release-7.bundle`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := rbundle.Inspect(args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(in)
			}
			in.Print(cmd.OutOrStdout())
			return nil
		},
	}, &asJSON)
}

func bundleWithJSON(c *cobra.Command, asJSON *bool) *cobra.Command {
	addOutputFlags(c, asJSON)
	return c
}

func bundleVerifyCmd() *cobra.Command {
	var rootFile, policyFile, repo, at string
	var asJSON bool
	c := &cobra.Command{
		Use:   "verify FILE --root ROOT --policy POLICY",
		Short: "Run a device's checks on a bundle",
		Long: `Verify a bundle exactly as a device with trusted root ROOT and tlog-policy POLICY
would (the device's own code): TUF metadata, the transparency proofs under the
policy's witness quorum, and every payload's length and hashes.`,
		Example: `  shiplog bundle verify release-7.bundle --root 1.root.json --policy device.policy`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if rootFile == "" || policyFile == "" {
				return errors.New("--root and --policy are required")
			}
			root, err := readFileLimited(rootFile, 512000)
			if err != nil {
				return err
			}
			p, err := bundleReadPolicy(policyFile)
			if err != nil {
				return err
			}
			t, err := bundleParseTime(at)
			if err != nil {
				return err
			}
			return bundleVerify(cmd, args[0], root, p, repo, t, asJSON)
		},
	}
	c.Flags().StringVar(&rootFile, "root", "", "trusted root metadata file")
	c.Flags().StringVar(&policyFile, "policy", "", "tlog-policy file")
	c.Flags().StringVar(&repo, "repo-id", "", "repository id (default: the bundle's)")
	alias(c.Flags(), "repo-id", "repo")
	c.Flags().StringVar(&at, "time", "", "reference time for expiry (RFC 3339; default now)")
	addOutputFlags(c, &asJSON)
	return c
}

func bundleVerify(cmd *cobra.Command, path string, root []byte, p *policy.Policy, repo string, t time.Time, asJSON bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	b, err := cbundle.Open(f, fi.Size())
	if err != nil {
		return err
	}
	if repo == "" {
		repo = b.Header.Repository
		fmt.Fprintf(cmd.ErrOrStderr(), "note: checking against the repository id the bundle names (%q); pass --repo-id to pin it\n", repo)
	}
	v, err := b.Verify(cmd.Context(), update.Trusted{Root: root}, cbundle.Options{Policy: p, Repository: repo, Time: t})
	if err != nil {
		return err
	}
	if err := v.VerifyPayloads(cmd.Context()); err != nil {
		return err
	}
	if asJSON {
		return printJSON(cmd.OutOrStdout(), map[string]any{"verified": true, "repository": repo, "payloads": len(v.Targets), "omitted": len(v.Omitted), "proven_roles": len(v.Session.Evidence())})
	}
	fmt.Fprintf(cmd.OutOrStdout(), "bundle verified: %d payloads (%d omitted), %d roles proven in the log\n", len(v.Targets), len(v.Omitted), len(v.Session.Evidence()))
	return nil
}

func bundleReadPolicy(path string) (*policy.Policy, error) {
	b, err := readFileLimited(path, policy.MaxSize)
	if err != nil {
		return nil, err
	}
	p, err := policy.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

func bundleParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--time: %w", err)
	}
	return t, nil
}

// writeProgress shows, on a terminal, how much of a large file has been
// written and how fast, redrawn at most ten times a second.
type writeProgress struct {
	w, out io.Writer
	label  string
	n      int64
	start  time.Time
	last   time.Time
}

func (p *writeProgress) Write(b []byte) (int, error) {
	if p.start.IsZero() {
		p.start = time.Now()
	}
	n, err := p.w.Write(b)
	p.n += int64(n)
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.draw()
	}
	return n, err
}

func (p *writeProgress) draw() {
	secs := time.Since(p.start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(p.n) / (1 << 20) / secs
	}
	fmt.Fprintf(p.out, "\r%s: %.1f MiB (%.0f MiB/s)   ", p.label, float64(p.n)/(1<<20), rate)
}

func (p *writeProgress) done() {
	if p.n >= 1<<20 {
		p.draw()
		fmt.Fprintln(p.out)
	}
}
