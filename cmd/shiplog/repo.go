package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shiplog/shiplog/repo"
	"github.com/shiplog/shiplog/repo/keys"
	"github.com/spf13/cobra"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/term"
)

func init() { addCommand(repoCmd) }

func repoCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "repo",
		Short: "Manage a TUF repository whose releases are logged in the ledger",
		Long: `Manage a TUF 1.0 repository (consistent snapshots) in a directory any static web
server can serve: DIR/metadata/ is the metadata base URL, DIR/targets/ the targets
base URL. Changes are staged, signed by keyholders, logged by ` + "`shiplog publish`" + `, and
only then exposed with a new snapshot and timestamp. See docs/vendor.md.`,
		Example: `  shiplog repo key generate keys/root.key
  shiplog repo init -d repo --repo-id example.com/fw --root-key keys/root.key.pub \
      --targets-key keys/targets.key.pub --snapshot-key keys/snapshot.key.pub --timestamp-key keys/timestamp.key.pub
  shiplog repo status -d repo`,
	}
	c.AddCommand(repoKeyCmd(), repoInitCmd(), repoAddCmd(), repoRemoveCmd(), repoDelegateCmd(), repoRotateCmd(),
		repoRenewCmd(), repoDiscardCmd(), repoSignCmd(), repoTimestampCmd(), repoRefreshCmd(), repoStatusCmd(), repoRegisterCmd(), repoServeCmd(),
		repoAttestationsCmd())
	return c
}

// passphrase returns a passphrase source: --passphrase-file, then
// $SHIPLOG_PASSPHRASE, then a prompt on the terminal.
func passphrase(file, what string) func() (string, error) {
	return func() (string, error) {
		if file != "" {
			b, err := keys.ReadFile(file, 4096)
			if err != nil {
				return "", fmt.Errorf("couldn't read passphrase file: %w", err)
			}
			line, _, _ := strings.Cut(string(b), "\n")
			return strings.TrimSuffix(line, "\r"), nil
		}
		if v := os.Getenv("SHIPLOG_PASSPHRASE"); v != "" {
			return v, nil
		}
		if term.IsTerminal(int(os.Stdin.Fd())) {
			fmt.Fprintf(os.Stderr, "passphrase for %s: ", what)
			b, err := term.ReadPassword(int(os.Stdin.Fd()))
			fmt.Fprintln(os.Stderr)
			return string(b), err
		}
		return "", fmt.Errorf("%s is encrypted: give its passphrase with --passphrase-file FILE or $SHIPLOG_PASSPHRASE", what)
	}
}

func loadKey(path, passFile string) (*keys.Private, error) {
	return keys.Load(path, passphrase(passFile, path))
}

// loadKeys loads one private key per path; none is an error.
func loadKeys(paths []string, passFile string) ([]*keys.Private, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("no key file given")
	}
	out := make([]*keys.Private, 0, len(paths))
	for _, p := range paths {
		k, err := loadKey(p, passFile)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

func loadPublicKeys(paths []string) ([]*metadata.Key, error) {
	var out []*metadata.Key
	for _, p := range paths {
		k, _, err := keys.LoadPublic(p)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// withRepo opens DIR, runs fn and closes it.
func withRepo(dir string, fn func(r *repo.Repo) error) error {
	r, err := repo.Open(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	return fn(r)
}

// withStaging opens DIR for a command that stages targets roles: staging
// asks the config's ledger for the latest logged version of each role, so
// the new one is above it, and --version (version, 0 if not given) fixes
// the version. Warnings (an unreachable ledger) go to stderr.
func withStaging(cmd *cobra.Command, dir string, version int64, fn func(r *repo.Repo) error) error {
	if f := cmd.Flags().Lookup("version"); f != nil && f.Changed && version < 1 {
		return fmt.Errorf("--version %d: TUF versions start at 1 (leave --version out to stage above every version known)", version)
	}
	return withRepo(dir, func(r *repo.Repo) error {
		if err := r.AskLedger("", nil); err != nil {
			return err
		}
		r.Version = version
		err := fn(r)
		for _, w := range r.Warnings {
			fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
		}
		return err
	})
}

// versionFlag adds --version to a staging command.
func versionFlag(c *cobra.Command, v *int64) {
	c.Flags().Int64Var(v, "version", 0, "version of every targets role this command stages (default: above every version known locally and to the ledger); refused unless above the ledger's latest that the role's current keys still sign")
}

func repoKeyCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "key",
		Short: "Generate and inspect TUF signing keys",
		Example: `  shiplog repo key generate keys/targets.key
  shiplog repo key show keys/targets.key.pub`,
	}
	var typ, passFile string
	var plaintext, asJSON bool
	var workFactor int
	gen := &cobra.Command{
		Use:   "generate FILE",
		Short: "Generate a TUF signing key (FILE, encrypted) and its public key (FILE.pub)",
		Long: `Generate an Ed25519 (default) or ECDSA P-256 TUF signing key. The private key is
written to FILE (mode 0600), encrypted with a passphrase (age scrypt) read from
--passphrase-file, $SHIPLOG_PASSPHRASE or the terminal; --insecure-plaintext
writes it unencrypted (for online snapshot/timestamp keys kept in a secret store).
The public key (a TUF key object) goes to FILE.pub; its TUF key ID is printed.
Keys never live under the repository's metadata/ or targets/ folders.

To keep a key inside a PKCS #11 token (HSM, YubiHSM, smart card) instead, create it
there with 'shiplog key generate NAME --pkcs11 URI --pub FILE.pub' and give the URI
wherever a key file is accepted (docs/vendor.md, "Key custody").`,
		Example: `  SHIPLOG_PASSPHRASE=... shiplog repo key generate keys/root.key
  shiplog repo key generate --type ecdsa-p256 --passphrase-file pass.txt keys/targets.key
  shiplog repo key generate --insecure-plaintext keys/timestamp.key`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := keys.GenerateDefault(keys.Type(typ))
			if err != nil {
				return err
			}
			pass := ""
			if !plaintext {
				if pass, err = passphrase(passFile, "the new key "+args[0])(); err != nil {
					return err
				}
				if pass == "" {
					return errors.New("empty passphrase: give one, or pass --insecure-plaintext to store the key unencrypted")
				}
			}
			if err := keys.WriteFiles(k, args[0], pass, workFactor); err != nil {
				return err
			}
			return printKey(cmd.OutOrStdout(), asJSON, k.ID, k.Public, args[0]+".pub")
		},
	}
	gen.Flags().StringVar(&typ, "type", string(keys.Ed25519), "key type: ed25519 or ecdsa-p256")
	gen.Flags().StringVar(&passFile, "passphrase-file", "", "file whose first line is the passphrase")
	gen.Flags().BoolVar(&plaintext, "insecure-plaintext", false, "store the private key unencrypted")
	gen.Flags().IntVar(&workFactor, "scrypt-work-factor", keys.DefaultWorkFactor, "scrypt work factor (log2 N, 10-22)")
	addOutputFlags(gen, &asJSON)
	show := &cobra.Command{
		Use:     "show FILE",
		Short:   "Print the TUF key ID and public key of a key file (FILE or FILE.pub)",
		Example: `  shiplog repo key show keys/targets.key.pub`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, id, err := keys.LoadPublic(args[0])
			if err != nil {
				return err
			}
			return printKey(cmd.OutOrStdout(), asJSON, id, k, "")
		},
	}
	addOutputFlags(show, &asJSON)
	c.AddCommand(gen, show)
	return c
}

func printKey(w io.Writer, asJSON bool, id string, k *metadata.Key, pubFile string) error {
	if asJSON {
		return printJSON(w, map[string]any{"keyid": id, "key": k, "public_key_file": pubFile})
	}
	pub, _ := json.Marshal(k)
	fmt.Fprintln(w, "keyid:", id)
	fmt.Fprintln(w, "public key:", string(pub))
	if pubFile != "" {
		fmt.Fprintln(w, "public key file:", pubFile)
	}
	return nil
}

func repoInitCmd() *cobra.Command {
	var dir string
	var asJSON bool
	var o repo.InitOptions
	roleKeys := map[string]*[]string{}
	thresholds := map[string]*int{}
	expires := map[string]*time.Duration{}
	c := &cobra.Command{
		Use:   "init --data-dir DIR",
		Short: "Create a repository: config, staged root v1 and empty targets v1",
		Long: `Create a repository in DIR (new or empty). Give each top-level role its public
keys (FILE.pub, repeatable) and threshold. Root v1 and targets v1 are staged
unsigned: keyholders sign them with ` + "`shiplog repo sign`" + `, then
` + "`shiplog repo register`" + ` logs root v1 with the ledger.`,
		Example: `  shiplog repo init -d repo --repo-id example.com/fw \
      --root-key alice.key.pub --root-key bob.key.pub --root-threshold 2 \
      --targets-key targets.key.pub --snapshot-key snapshot.key.pub --timestamp-key timestamp.key.pub \
      --ledger https://ledger.example --policy policy.txt`,
		Args: dirArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			args = takeDir(cmd, &dir, args)
			o.Keys, o.Thresholds = map[string][]*metadata.Key{}, map[string]int{}
			for _, role := range repo.TopLevelRoles {
				ks, err := loadPublicKeys(*roleKeys[role])
				if err != nil {
					return err
				}
				o.Keys[role], o.Thresholds[role] = ks, *thresholds[role]
			}
			o.Expires = repo.Expiry{Root: repo.Duration(*expires["root"]), Targets: repo.Duration(*expires["targets"]),
				Delegated: repo.Duration(*expires["delegated"]), Snapshot: repo.Duration(*expires["snapshot"]), Timestamp: repo.Duration(*expires["timestamp"])}
			if o.Policy != "" {
				abs, err := filepath.Abs(o.Policy)
				if err != nil {
					return err
				}
				o.Policy = abs
			}
			if err := repo.Init(dir, o); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]string{"data_dir": dir, "repository": o.Repository})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "initialised %s; next: sign root and targets with `shiplog repo sign -d %s --key KEY`\n", dir, dir)
			return nil
		},
	}
	c.Flags().StringVar(&o.Repository, "repo-id", "", "repository id logged with every entry (required)")
	alias(c.Flags(), "repo-id", "repository")
	c.Flags().StringVar(&o.Ledger, "ledger", "", "ledger base URL")
	c.Flags().StringVar(&o.Policy, "policy", "", "C2SP tlog-policy file proofs must satisfy")
	for _, role := range repo.TopLevelRoles {
		roleKeys[role] = c.Flags().StringArray(role+"-key", nil, role+" public key file (repeatable)")
		thresholds[role] = c.Flags().Int(role+"-threshold", 1, role+" signature threshold")
	}
	for _, role := range []string{"root", "targets", "delegated", "snapshot", "timestamp"} {
		expires[role] = c.Flags().Duration(role+"-expires", 0, "validity of new "+role+" versions (default "+time.Duration(repo.DefaultExpiry.For(role)).String()+")")
	}
	c.MarkFlagRequired("repo-id")
	dataDirFlag(c, &dir, "", "the repository directory (required)")
	addOutputFlags(c, &asJSON)
	return c
}

func repoAddCmd() *cobra.Command {
	var version int64
	var dir string
	var path, prefix, custom, customFile string
	var caps []string
	var prov provenanceFlags
	var replace, asJSON bool
	c := &cobra.Command{
		Use:   "add --data-dir DIR FILE...",
		Short: "Stage target files (copied into DIR/targets under their hash)",
		Long: `Stage target files. Each FILE is published at target path PREFIX/<basename>
(or --path for a single file) in the role a client would search for it (the
delegation tree decides). --custom attaches JSON such as release notes, hardware
ids or a minimum version. --capability declares what the target may do (repeat:
network, storage:<path>, system, bootloader, radio, camera, location,
vendor:<name>; docs/spec/capabilities.md): devices ask before installing an
update that gains one, and auditors report it. --source, --revision and --build
declare where the target comes from and how to rebuild it (docs/spec/provenance.md),
so that independent rebuilders can reproduce it (` + "`shiplog attest rebuild`" + `); a
declaration that does not validate is refused before anything is staged. A path
that already names another file is refused unless --replace. Then sign with
` + "`shiplog repo sign`" + ` and log with ` + "`shiplog publish`" + `.`,
		Example: `  shiplog repo add -d repo build/app.bin --path fw/app-2.1.bin --custom '{"min_version":"2.0","hw":["rev-b"]}'
  shiplog repo add -d repo --prefix fw/2.1 build/*.bin
  shiplog repo add -d repo build/cam.bin --path apps/cam.bin --capability camera --capability storage:/var/lib/cam
  shiplog repo add -d repo build/app.bin --path fw/app.bin \
    --source https://example.com/src/fw-1.4.0.tar.gz --source-sha256 9f86d0… --revision v1.4.0 \
    --build 'go build -trimpath -ldflags=-buildid= -o app.bin ./cmd/fw' --toolchain go1.26`,
		Args: dirArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			args = takeDir(cmd, &dir, args)
			files := args
			if path != "" && len(files) != 1 {
				return errors.New("--path names one file; use --prefix for several")
			}
			var err error
			var cj json.RawMessage
			if custom != "" {
				cj = json.RawMessage(custom)
			}
			if customFile != "" {
				b, err := keys.ReadFile(customFile, repo.MaxCustomSize)
				if err != nil {
					return err
				}
				cj = b
			}
			if cj, err = prov.apply(cj); err != nil {
				return err
			}
			var in []repo.TargetInput
			for _, f := range files {
				p := path
				if p == "" {
					p = filepath.Base(f)
					if prefix != "" {
						p = strings.TrimSuffix(prefix, "/") + "/" + p
					}
				}
				in = append(in, repo.TargetInput{Path: p, File: f, Custom: cj, Capabilities: caps})
			}
			var prog io.Writer
			if !asJSON && term.IsTerminal(int(os.Stderr.Fd())) {
				prog = os.Stderr
			}
			return withStaging(cmd, dir, version, func(r *repo.Repo) error {
				res, err := r.Add(repo.AddOptions{Targets: in, Replace: replace, Progress: prog})
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), res)
				}
				for _, a := range res {
					state := "staged in " + a.Role
					if a.Unchanged {
						state = "unchanged"
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s  %d bytes  sha256 %s  %s\n", a.Path, a.Length, a.SHA256, state)
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&path, "path", "", "target path of the (single) file")
	c.Flags().StringVar(&prefix, "prefix", "", "directory prefix of the target paths")
	c.Flags().StringVar(&custom, "custom", "", "custom JSON object for the targets")
	c.Flags().StringVar(&customFile, "custom-file", "", "file holding the custom JSON object")
	c.Flags().StringArrayVar(&caps, "capability", nil, "a capability the targets declare (repeatable; docs/spec/capabilities.md)")
	prov.register(c)
	c.Flags().BoolVar(&replace, "replace", false, "allow a path to point to a new file")
	addOutputFlags(c, &asJSON)
	versionFlag(c, &version)
	dataDirFlag(c, &dir, "", "the repository directory (required)")
	return c
}

func repoRemoveCmd() *cobra.Command {
	var version int64
	var dir string
	var asJSON bool
	c := &cobra.Command{
		Use:     "remove --data-dir DIR PATH...",
		Short:   "Stage the removal of target paths",
		Example: `  shiplog repo remove -d repo fw/app-2.0.bin`,
		Args:    dirArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			args = takeDir(cmd, &dir, args)
			return withStaging(cmd, dir, version, func(r *repo.Repo) error {
				roles, err := r.Remove(args)
				if err != nil {
					return err
				}
				if asJSON {
					out := []map[string]string{}
					for i, p := range args {
						out = append(out, map[string]string{"path": p, "role": roles[i]})
					}
					return printJSON(cmd.OutOrStdout(), out)
				}
				for i, p := range args {
					fmt.Fprintf(cmd.OutOrStdout(), "%s removed from %s (staged)\n", p, roles[i])
				}
				return nil
			})
		},
	}
	addOutputFlags(c, &asJSON)
	versionFlag(c, &version)
	dataDirFlag(c, &dir, "", "the repository directory (required)")
	return c
}

func repoDelegateCmd() *cobra.Command {
	var version int64
	var dir string
	var o repo.DelegateOptions
	var keyFiles []string
	var remove string
	var asJSON bool
	c := &cobra.Command{
		Use:   "delegate --data-dir DIR",
		Short: "Stage a delegation (a named role with path patterns, or hash bins), or its removal",
		Long: `Stage a delegation: a new version of the delegating role (--from, default targets)
that delegates to a named role with path patterns, or to hash bins; the new roles get
an empty staged version 1.

With --remove NAME, stage its removal instead (TUF 1.0 delegations): a new version of
the delegating role without the role NAME (or without its hash bins when NAME is their
prefix) and without keys no other delegation uses; unpublished staged versions of roles
no longer reachable are discarded. Sign the delegating role and publish: the new
snapshot no longer lists the role and devices stop trusting it for any target.`,
		Example: `  shiplog repo delegate -d repo --name vendor-b --path 'vendor-b/*' --key vb.key.pub
  shiplog repo delegate -d repo --hash-bins 256 --prefix bins --key bins.key.pub
  shiplog repo delegate -d repo --remove vendor-b`,
		Args: dirArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			args = takeDir(cmd, &dir, args)
			if remove != "" {
				if o.Name != "" || o.HashBins != 0 || len(keyFiles) > 0 || len(o.Paths) > 0 {
					return fmt.Errorf("--remove takes only --from: it removes a delegation, it does not make one")
				}
				return withStaging(cmd, dir, version, func(r *repo.Repo) error {
					staged, discarded, err := r.Undelegate(o.From, remove)
					if err != nil {
						return err
					}
					if asJSON {
						return printJSON(cmd.OutOrStdout(), map[string]any{"staged": []string{staged}, "discarded": discarded})
					}
					fmt.Fprintf(cmd.OutOrStdout(), "staged %s without the delegation to %s; sign it and publish\n", staged, remove)
					if len(discarded) > 0 {
						fmt.Fprintf(cmd.OutOrStdout(), "discarded staged role(s) no longer reachable: %s\n", summarize(discarded))
					}
					return nil
				})
			}
			ks, err := loadPublicKeys(keyFiles)
			if err != nil {
				return err
			}
			o.Keys = ks
			return withStaging(cmd, dir, version, func(r *repo.Repo) error {
				staged, err := r.Delegate(o)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), map[string]any{"staged": staged})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "staged %d role(s): %s\n", len(staged), summarize(staged))
				return nil
			})
		},
	}
	c.Flags().StringVar(&o.From, "from", "targets", "delegating role")
	c.Flags().StringVar(&o.Name, "name", "", "name of the delegated role")
	c.Flags().StringArrayVar(&o.Paths, "path", nil, "path pattern the role is trusted for (repeatable)")
	c.Flags().BoolVar(&o.Terminating, "terminating", false, "stop the client's search at this role")
	c.Flags().IntVar(&o.HashBins, "hash-bins", 0, "number of succinct hash bins (power of two)")
	c.Flags().StringVar(&o.Prefix, "prefix", "bins", "hash bin name prefix")
	c.Flags().StringArrayVar(&keyFiles, "key", nil, "public key file of the delegated role (repeatable)")
	c.Flags().IntVar(&o.Threshold, "threshold", 1, "signature threshold of the delegated role")
	c.Flags().StringVar(&remove, "remove", "", "stage the removal of this delegated role (or hash-bin prefix) instead")
	addOutputFlags(c, &asJSON)
	versionFlag(c, &version)
	dataDirFlag(c, &dir, "", "the repository directory (required)")
	return c
}

func summarize(names []string) string {
	if len(names) > 6 {
		return strings.Join(names[:5], ", ") + fmt.Sprintf(", … (%d more)", len(names)-5)
	}
	return strings.Join(names, ", ")
}

func repoRotateCmd() *cobra.Command {
	var version int64
	var dir string
	var o repo.RotateOptions
	var addFiles []string
	var asJSON bool
	c := &cobra.Command{
		Use:   "rotate --data-dir DIR",
		Short: "Stage a key rotation of a role (a new root must be signed by old and new thresholds)",
		Example: `  shiplog repo rotate -d repo --role targets --add-key new-targets.key.pub --remove-key 1a2b3c4d
  shiplog repo rotate -d repo --role root --add-key carol.key.pub --threshold 2`,
		Args: dirArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			args = takeDir(cmd, &dir, args)
			ks, err := loadPublicKeys(addFiles)
			if err != nil {
				return err
			}
			o.Add = ks
			return withStaging(cmd, dir, version, func(r *repo.Repo) error {
				staged, err := r.Rotate(o)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), map[string]any{"staged": staged})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "staged %s; sign with the old and the new keys\n", summarize(staged))
				return nil
			})
		},
	}
	c.Flags().StringVar(&o.Role, "role", "", "role to rotate (top-level, delegated, or a hash-bin prefix)")
	c.Flags().StringArrayVar(&addFiles, "add-key", nil, "public key file to add (repeatable)")
	c.Flags().StringArrayVar(&o.Remove, "remove-key", nil, "key ID (or 8+ hex digit prefix) to remove (repeatable)")
	c.Flags().IntVar(&o.Threshold, "threshold", 0, "new threshold (default: unchanged)")
	c.MarkFlagRequired("role")
	addOutputFlags(c, &asJSON)
	versionFlag(c, &version)
	dataDirFlag(c, &dir, "", "the repository directory (required)")
	return c
}

func repoRenewCmd() *cobra.Command {
	var version int64
	var dir string
	var role string
	var asJSON bool
	c := &cobra.Command{
		Use:   "renew --data-dir DIR",
		Short: "Stage a new version of a role with a fresh expiry",
		Long: `Stage a new version of a role with a fresh expiry. A targets role gets a version
above every one known: its committed and staged versions and the ledger's latest
logged one (asked of the config's ledger), or --version N. After a stolen key
logged a version you cannot go above (2^63-1), rotate the role's keys first:
the ledger's version then no longer binds (docs/spec/versions.md).`,
		Example: `  shiplog repo renew -d repo --role targets
  shiplog repo renew -d repo --role targets --version 100`,
		Args: dirArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			args = takeDir(cmd, &dir, args)
			if version != 0 && (role == "root" || role == "snapshot" || role == "timestamp") {
				return fmt.Errorf("--version applies to targets roles; %s versions are set by the repository (root goes up by exactly one)", role)
			}
			return withStaging(cmd, dir, version, func(r *repo.Repo) error {
				v, exp, err := r.Renew(role)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), map[string]any{"role": role, "version": v, "expires": exp})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "staged %s v%d, expires %s; sign it\n", role, v, exp.Format(time.RFC3339))
				return nil
			})
		},
	}
	c.Flags().StringVar(&role, "role", "", "role to renew")
	addOutputFlags(c, &asJSON)
	versionFlag(c, &version)
	c.MarkFlagRequired("role")
	dataDirFlag(c, &dir, "", "the repository directory (required)")
	return c
}

func repoDiscardCmd() *cobra.Command {
	var dir string
	var roles []string
	var asJSON bool
	c := &cobra.Command{
		Use:   "discard --data-dir DIR",
		Short: "Drop staged changes (every staged role, or --role), back to the committed versions",
		Long: `Drop staged changes, as git restore drops edits: every staged role, or only
each --role, goes back to its committed version, signatures and all. Nothing
published changes. Target files that repo add copied into DIR/targets stay
there; no signed metadata names them, so no device installs them.`,
		Example: `  shiplog repo discard -d repo
  shiplog repo discard -d repo --role targets`,
		Args: dirArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			takeDir(cmd, &dir, args)
			return withRepo(dir, func(r *repo.Repo) error {
				dropped, err := r.Discard(roles)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), map[string]any{"discarded": dropped})
				}
				if len(dropped) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "nothing staged")
					return nil
				}
				fmt.Fprintf(cmd.OutOrStdout(), "discarded staged %s\n", summarize(dropped))
				return nil
			})
		},
	}
	c.Flags().StringArrayVar(&roles, "role", nil, "discard only this staged role (repeatable)")
	addOutputFlags(c, &asJSON)
	dataDirFlag(c, &dir, "", "the repository directory (required)")
	return c
}

func repoSignCmd() *cobra.Command {
	var dir string
	var keyFile, passFile, exportFile, requestFile, outFile string
	var roles, imports []string
	var asJSON bool
	c := &cobra.Command{
		Use:   "sign --data-dir DIR",
		Short: "Add your signature to the staged roles your key signs (or run a signing ceremony)",
		Long: `Add one keyholder's signature to every staged role the key is a key of (or
only --role). Each keyholder runs this with their own key; nobody sees another's
private key. A role is ready to publish when every threshold is met (a new root
needs the old root's threshold and its own).

A ceremony without shared files, for keyholders on other (offline) machines:
  shiplog repo sign -d DIR --export-request req.json   what is to be signed: the canonical
                                                        bytes and a summary of what changes
  shiplog repo sign --request req.json --key KEY --out alice.sig
                                                        on the keyholder's machine: prints what
                                                        the bytes say, writes a signature file
  shiplog repo sign -d DIR --import alice.sig --import bob.sig
                                                        adds them, refusing signatures over other
                                                        bytes or by keys not of the role
Keys are files, pkcs11: URIs or KMS URIs. See docs/vendor.md, "A root-key ceremony".`,
		Example: `  shiplog repo sign -d repo --key keys/targets.key
  shiplog repo sign -d repo --key alice.key --role root --passphrase-file alice.pass
  shiplog repo sign -d repo --export-request root-v2.request --role root
  shiplog repo sign --request root-v2.request --key 'pkcs11:token=alice;object=root?module-path=/usr/lib/softhsm/libsofthsm2.so' --out alice.sig
  shiplog repo sign -d repo --import alice.sig --import bob.sig`,
		Args: func(cmd *cobra.Command, args []string) error {
			if requestFile != "" {
				return cobra.NoArgs(cmd, args)
			}
			return dirArgs(cobra.NoArgs)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if requestFile != "" {
				if dir != "" || exportFile != "" || len(imports) != 0 {
					return errors.New("--request signs on its own: give no --data-dir, --export-request or --import")
				}
				return signRequest(cmd, requestFile, keyFile, passFile, outFile, asJSON)
			}
			takeDir(cmd, &dir, args)
			modes := 0
			for _, set := range []bool{exportFile != "", len(imports) > 0, keyFile != ""} {
				if set {
					modes++
				}
			}
			if modes != 1 {
				return errors.New("give exactly one of --key FILE, --export-request FILE, --import FILE")
			}
			if exportFile != "" {
				return withRepo(dir, func(r *repo.Repo) error { return exportRequest(cmd, r, exportFile, roles) })
			}
			var k *keys.Private
			var sigs []*repo.Signatures
			var err error
			if keyFile != "" {
				if k, err = loadKey(keyFile, passFile); err != nil {
					return err
				}
			}
			for _, f := range imports {
				b, err := keys.ReadFile(f, repo.MaxSignaturesSize)
				if err != nil {
					return err
				}
				s, err := repo.ParseSignatures(b)
				if err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
				sigs = append(sigs, s)
			}
			return withRepo(dir, func(r *repo.Repo) error {
				var res []repo.SignResult
				if k != nil {
					if res, err = r.Sign(k, roles); err != nil {
						return err
					}
				}
				for i, s := range sigs {
					got, err := r.ImportSignatures(s)
					if err != nil {
						return fmt.Errorf("%s: %w", imports[i], err)
					}
					res = append(res, got...)
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), res)
				}
				for _, s := range res {
					state := "ready to publish"
					if !s.Ready {
						state = "needs more signatures"
					}
					fmt.Fprintf(cmd.OutOrStdout(), "signed %s v%d with %.16s: %s\n", s.Role, s.Version, s.KeyID, state)
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&keyFile, "key", "", "private key: file, pkcs11: URI or KMS URI")
	c.Flags().StringVar(&passFile, "passphrase-file", "", "file whose first line is the key's passphrase")
	c.Flags().StringArrayVar(&roles, "role", nil, "sign (or export) only this staged role (repeatable)")
	c.Flags().StringVar(&exportFile, "export-request", "", "write a signing request for the staged roles to FILE")
	c.Flags().StringVar(&requestFile, "request", "", "sign the request in FILE with --key (no repository needed)")
	c.Flags().StringVar(&outFile, "out", "", "with --request: the signature file to write")
	c.Flags().StringArrayVar(&imports, "import", nil, "add the signatures in FILE (repeatable)")
	addOutputFlags(c, &asJSON)
	dataDirFlag(c, &dir, "", "the repository directory (required, except with --request)")
	return c
}

func repoTimestampCmd() *cobra.Command {
	var dir string
	var keyFiles []string
	var passFile string
	var asJSON bool
	c := &cobra.Command{
		Use:   "timestamp --data-dir DIR",
		Short: "Refresh timestamp.json before it expires (run from cron)",
		Example: `  # crontab: every 6 hours
  0 */6 * * * shiplog repo timestamp -d /srv/repo --key /etc/shiplog/timestamp.key`,
		Args: dirArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			args = takeDir(cmd, &dir, args)
			ks, err := loadKeys(keyFiles, passFile)
			if err != nil {
				return err
			}
			return withRepo(dir, func(r *repo.Repo) error {
				e, err := r.Timestamp(ks...)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), e)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "timestamp v%d (snapshot v%d) expires %s\n", e.Timestamp, e.Snapshot, e.Expires.Format(time.RFC3339))
				return nil
			})
		},
	}
	c.Flags().StringArrayVar(&keyFiles, "key", nil, "timestamp private key file (repeat up to the timestamp threshold)")
	c.Flags().StringVar(&passFile, "passphrase-file", "", "file whose first line is the key's passphrase")
	addOutputFlags(c, &asJSON)
	c.MarkFlagRequired("key")
	dataDirFlag(c, &dir, "", "the repository directory (required)")
	return c
}

func repoStatusCmd() *cobra.Command {
	var dir string
	var asJSON bool
	c := &cobra.Command{
		Use:   "status --data-dir DIR",
		Short: "Show what is pending, logged, exposed and what expires when",
		Example: `  shiplog repo status -d repo
  shiplog repo status -d repo --json | jq .next`,
		Args: dirArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			args = takeDir(cmd, &dir, args)
			return withRepo(dir, func(r *repo.Repo) error {
				s, err := r.Status()
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), s)
				}
				s.Print(cmd.OutOrStdout())
				return nil
			})
		},
	}
	addOutputFlags(c, &asJSON)
	dataDirFlag(c, &dir, "", "the repository directory (required)")
	return c
}

func repoRegisterCmd() *cobra.Command {
	var dir string
	var ledger, tokenFile, challengeDir, policyFile string
	var wait time.Duration
	var asJSON bool
	c := &cobra.Command{
		Use:   "register --data-dir DIR",
		Short: "Register the repository with the ledger by logging its signed root v1 (operator token or proof of control)",
		Example: `  shiplog repo register -d repo --ledger https://ledger.example --token-file admin.token --policy policy.txt
  shiplog repo register -d repo --challenge-dir /var/www/example.com   # id example.com/...: prove control over HTTPS`,
		Args: dirArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			args = takeDir(cmd, &dir, args)
			if (tokenFile == "") == (challengeDir == "") {
				return errors.New("pass one of --token-file FILE (the ledger's admin.token, or a token scoped to the id) or --challenge-dir DIR (the web root of the id's host, to prove control of the id)")
			}
			o := repo.PublishOptions{Ledger: ledger, ChallengeDir: challengeDir, Wait: wait}
			if tokenFile != "" {
				tok, err := keys.ReadFile(tokenFile, 4096)
				if err != nil {
					return fmt.Errorf("couldn't read token: %w", err)
				}
				o.Token = strings.TrimSpace(string(tok))
			}
			var err error
			if policyFile != "" {
				if o.Policy, err = repo.LoadPolicy(policyFile); err != nil {
					return err
				}
			}
			le, err := repo.Register(cmd.Context(), dir, o)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), le)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "registered: root v1 logged at index %d, proof %s\n", le.Index, le.ProofFile)
			return nil
		},
	}
	c.Flags().StringVar(&ledger, "ledger", "", "ledger base URL (default: the config's)")
	c.Flags().StringVar(&tokenFile, "token-file", "", "file holding the ledger's admin token")
	alias(c.Flags(), "token-file", "token")
	c.Flags().StringVar(&challengeDir, "challenge-dir", "", "instead of a token, prove control of the id (its first segment a DNS name): the web root served as https://<host>/, where the ledger's challenge is written while it registers")
	c.Flags().StringVar(&policyFile, "policy", "", "C2SP tlog-policy file (default: the config's)")
	c.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for the proof")
	addOutputFlags(c, &asJSON)
	dataDirFlag(c, &dir, "", "the repository directory (required)")
	return c
}
