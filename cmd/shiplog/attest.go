package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/shiplog/shiplog/attest"
	"github.com/shiplog/shiplog/audit"
	"github.com/shiplog/shiplog/client/ledger"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/shiplog/shiplog/internal/durable"
	"github.com/shiplog/shiplog/internal/keyref"
	"github.com/shiplog/shiplog/repo"
	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"
)

func init() { addCommand(attestCmd) }

// exitMismatch is attest rebuild's exit code when the rebuilt bytes differ
// from the target's (the "mismatch" statement was signed and logged).
const exitMismatch = 3

func attestCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "attest",
		Short: "Sign off releases: rebuild them from their declared source, or review them (docs/rebuilder.md, docs/reviewer.md)",
	}
	c.AddCommand(attestRebuildCmd(), attestReviewCmd())
	return c
}

// releaseFlags name a release the way a device finds it.
type releaseFlags struct {
	dir, repoURL, repoID, root, policy, ledger string
	target, sha256                             string
	key, out                                   string
	wait                                       time.Duration
}

func (f *releaseFlags) register(c *cobra.Command) {
	fl := c.Flags()
	dataDirFlag(c, &f.dir, "", "a local repository directory to read instead of --repo-url (its shiplog-repo.json gives --repo-id, --ledger and --policy, its 1.root.json the trusted root)")
	fl.StringVar(&f.repoURL, "repo-url", "", "the repository's base URL (metadata/ and targets/ below it), as devices use it")
	fl.StringVar(&f.repoID, "repo-id", "", "the repository's id as logged")
	fl.StringVar(&f.root, "root", "", "a trusted root.json of the repository (any version of its chain)")
	fl.StringVar(&f.policy, "policy", "", "C2SP tlog-policy file: the ledger's key and witness quorum")
	fl.StringVar(&f.ledger, "ledger", "", "the ledger's base URL: the statement is logged there")
	fl.StringVar(&f.target, "target", "", "the target path to sign off")
	fl.StringVar(&f.sha256, "sha256", "", "the target's SHA-256 (hex), instead of --target")
	fl.StringVar(&f.key, "key", "", "the attester's note key file (shiplog key generate NAME --out FILE), or a KEYREF file naming a token or KMS key; Ed25519 only (required)")
	fl.StringVar(&f.out, "out", "", "also write the envelope here, and its tlog-proof to FILE.tlog-proof")
	fl.DurationVar(&f.wait, "wait", time.Minute, "how long the ledger may take to prove the statement under a cosigned checkpoint (at most 1m)")
	c.MarkFlagRequired("key")
}

// repository resolves the flags into where and how to read the release.
func (f *releaseFlags) repository() (attest.Repository, error) {
	r := attest.Repository{ID: f.repoID, Ledger: f.ledger}
	policyFile, rootFile := f.policy, f.root
	switch {
	case f.dir != "" && f.repoURL != "":
		return r, errors.New("give --data-dir or --repo-url, not both")
	case f.dir != "":
		b, err := readFileLimited(filepath.Join(f.dir, repo.ConfigFile), repo.MaxConfigSize)
		if err != nil {
			return r, err
		}
		cfg, err := repo.ParseConfig(b)
		if err != nil {
			return r, err
		}
		abs, err := filepath.Abs(f.dir)
		if err != nil {
			return r, err
		}
		r.MetadataURL, r.TargetsURL = "file://"+filepath.ToSlash(abs)+"/metadata", "file://"+filepath.ToSlash(abs)+"/targets"
		r.ID = or(r.ID, cfg.Repository)
		r.Ledger = or(r.Ledger, cfg.Ledger)
		if policyFile == "" && cfg.Policy != "" {
			policyFile = cfg.Policy
			if !filepath.IsAbs(policyFile) {
				policyFile = filepath.Join(f.dir, policyFile)
			}
		}
		rootFile = or(rootFile, filepath.Join(f.dir, "metadata", "1.root.json"))
	case f.repoURL != "":
		r.MetadataURL, r.TargetsURL = f.repoURL+"/metadata", f.repoURL+"/targets"
	default:
		return r, errors.New("give the repository: --repo-url URL (or -d DIR for a local copy)")
	}
	if r.ID == "" || rootFile == "" || policyFile == "" {
		return r, errors.New("give --repo-id, --root and --policy: the release is read as a device reads it")
	}
	var err error
	if r.Root, err = readFileLimited(rootFile, 512000); err != nil {
		return r, err
	}
	pb, err := readFileLimited(policyFile, policy.MaxSize)
	if err != nil {
		return r, err
	}
	if r.Policy, err = policy.Parse(pb); err != nil {
		return r, fmt.Errorf("%s: %w", policyFile, err)
	}
	return r, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// signer opens the attester key: an Ed25519 note key or a KEYREF.
func (f *releaseFlags) signer(ctx context.Context) (note.Signer, string, error) {
	skey, err := readKeyFile(f.key)
	if err != nil {
		return nil, "", err
	}
	s, vkey, err := keyref.OpenLogSigner(ctx, skey)
	if err != nil {
		return nil, "", err
	}
	if _, err := signoff.ParseAttester(vkey); err != nil {
		return nil, "", fmt.Errorf("--key: an attester key must be Ed25519: %w", err)
	}
	return s, vkey, nil
}

// find reads the release from verified metadata.
func (f *releaseFlags) find(ctx context.Context, r attest.Repository) (*attest.Release, error) {
	if (f.target == "") == (f.sha256 == "") {
		return nil, errors.New("name the release with --target PATH or --sha256 HEX")
	}
	if f.sha256 != "" {
		if b, err := hex.DecodeString(f.sha256); err != nil || len(b) != 32 || hex.EncodeToString(b) != f.sha256 {
			return nil, errors.New("--sha256: want 64 lowercase hex digits")
		}
	}
	return attest.FindRelease(ctx, r, f.target, f.sha256)
}

// signedStatement is what attest prints.
type signedStatement struct {
	Verdict    string `json:"verdict"`
	Repository string `json:"repository"`
	Target     string `json:"target"`
	Subject    string `json:"subject"`
	Built      string `json:"built,omitempty"`
	// SourceLocal: built from --source-dir, not the fetched declared source.
	SourceLocal bool   `json:"source_local,omitempty"`
	Attester    string `json:"attester"`
	KeyID       string `json:"key_id"`
	Index       uint64 `json:"index"`
	Duplicate   bool   `json:"duplicate,omitempty"`
	Out         string `json:"out,omitempty"`
}

// signAndLog signs s, logs it in the ledger and writes it to --out.
func (f *releaseFlags) signAndLog(ctx context.Context, r attest.Repository, s *signoff.Statement, signer note.Signer, vkey string) (*signedStatement, error) {
	if r.Ledger == "" {
		return nil, errors.New("give --ledger: a statement counts only once it is logged")
	}
	env, err := signoff.Sign(s, signer, vkey)
	if err != nil {
		return nil, err
	}
	a, _ := signoff.ParseAttester(vkey) // Sign checked it
	out := &signedStatement{Verdict: s.Verdict, Repository: s.Repository, Target: s.Target,
		Subject: hex.EncodeToString(s.Subject[:]), SourceLocal: s.SourceLocal, Attester: a.Name, KeyID: a.ID.String(), Out: f.out}
	if s.Verdict != signoff.Reviewed {
		out.Built = hex.EncodeToString(s.Built[:])
	}
	if f.out != "" { // the envelope first: kept even if the ledger is down
		if err := durable.WriteFile(f.out, env, 0o644); err != nil {
			return nil, err
		}
	}
	resp, err := repo.Attest(ctx, r.Ledger, nil, r.ID, env, f.wait)
	if err != nil {
		return nil, fmt.Errorf("couldn't log the statement: %w", err)
	}
	out.Index, out.Duplicate = resp.Index, resp.Duplicate
	if f.out != "" {
		if err := durable.WriteFile(f.out+".tlog-proof", []byte(resp.Proof), 0o644); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func attestRebuildCmd() *cobra.Command {
	var f releaseFlags
	var sourceDir string
	var timeout time.Duration
	var allowRoot, asJSON, showLog bool
	var passEnv, env []string
	c := &cobra.Command{
		Use:   "rebuild (--repo-url URL --repo-id ID --root FILE --policy FILE | -d DIR) (--target PATH | --sha256 HEX) --key FILE --ledger URL",
		Short: "Rebuild a target from its declared source and log a signed \"reproduced\" or \"mismatch\" statement",
		Long: `Rebuild a target from the source and recipe its vendor declared (docs/spec/provenance.md)
and sign off on the result (docs/spec/signoff.md, docs/rebuilder.md).

The target and its declaration are read from the repository's targets metadata
the way a device reads them: from a trusted root, every role proven in the log
under the tlog-policy. The source is fetched (an archive checked against its
declared sha256 before it is unpacked, or a git checkout of the declared commit)
or taken from --source-dir (the statement then says "source_local": the source
was not fetched nor checked against the declaration), copied into a fresh
temporary directory, and the
build command runs there by /bin/sh -c within --timeout, with a minimal
environment (PATH, HOME and caches inside the temporary directory, TZ=UTC,
LC_ALL=C; --pass-env and --env add to it). It never runs as root unless
--allow-root, and then says so on stderr.

The SHA-256 of the output is compared with the target's: equal is a
"reproduced" statement, different a "mismatch" statement with both digests.
The statement is signed with --key (an in-toto Statement in a DSSE envelope),
logged in the ledger, and with --out written to FILE with its tlog-proof at
FILE.tlog-proof. A build that fails or times out signs nothing.

Exit codes: 0 reproduced, 3 mismatch (signed and logged), 1 anything else.`,
		Example: `  shiplog attest rebuild --repo-url https://updates.example.com --repo-id example.com/fw \
    --root root.json --policy policy.txt --ledger https://ledger.example.org \
    --target fw/app.bin --key rebuilder.skey --out app.bin.reproduced.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			r, err := f.repository()
			if err != nil {
				return err
			}
			signer, vkey, err := f.signer(ctx)
			if err != nil {
				return err
			}
			rel, err := f.find(ctx, r)
			if err != nil {
				return err
			}
			if rel.Provenance == nil {
				return fmt.Errorf("target %s declares no provenance: its vendor did not say how to rebuild it", rel.Target)
			}
			req := attest.Request{Target: rel.Target, Subject: rel.SHA256, Provenance: rel.Provenance,
				SourceDir: sourceDir, Timeout: timeout, PassEnv: passEnv, Env: env, AllowRoot: allowRoot,
				Notice: cmd.ErrOrStderr()}
			if showLog {
				req.Log = cmd.ErrOrStderr()
			}
			res, err := attest.Rebuild(ctx, req)
			if err != nil {
				return fmt.Errorf("couldn't rebuild %s: %w", rel.Target, err)
			}
			st, err := f.signAndLog(ctx, r, attest.Statement(r.ID, rel, res, time.Now()), signer, vkey)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				if err := printJSON(w, st); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(w, "%s  %s  sha256 %s\n", st.Verdict, st.Target, st.Subject)
				if st.Verdict == signoff.Mismatch {
					fmt.Fprintf(w, "built   sha256 %s\n", st.Built)
				}
				if st.SourceLocal {
					fmt.Fprintf(w, "built from the local copy %s, not the fetched declared source (the statement says so)\n", sourceDir)
				}
				fmt.Fprintf(w, "signed by %s (key id %s), logged at index %d\n", st.Attester, st.KeyID, st.Index)
			}
			if st.Verdict == signoff.Mismatch { // documented exit code: the statement is logged
				return &exitCodeError{exitMismatch, fmt.Errorf("mismatch: %s was not reproduced from its declared source (statement logged at index %d)", st.Target, st.Index)}
			}
			return nil
		},
	}
	f.register(c)
	fl := c.Flags()
	fl.StringVar(&sourceDir, "source-dir", "", "a local copy of the source to build instead of fetching it (copied, never built in place)")
	fl.DurationVar(&timeout, "timeout", attest.DefaultTimeout, "time limit of the build")
	fl.BoolVar(&allowRoot, "allow-root", false, "run the vendor's build command even as root")
	fl.StringArrayVar(&passEnv, "pass-env", nil, "an environment variable passed to the build (repeatable, e.g. GOPROXY)")
	fl.StringArrayVar(&env, "env", nil, "NAME=VALUE set in the build's environment (repeatable)")
	fl.BoolVar(&showLog, "show-build", false, "copy the build's output to stderr")
	addOutputFlags(c, &asJSON)
	return c
}

func attestReviewCmd() *cobra.Command {
	var f releaseFlags
	var vendorDir, vendorHashes string
	var asJSON bool
	c := &cobra.Command{
		Use:   "review (--repo-url URL --repo-id ID --root FILE --policy FILE | -d DIR) (--target PATH | --sha256 HEX) (--vendor-dir DIR | --vendor-hashes FILE) --key FILE --ledger URL",
		Short: "Check a release and log a signed \"reviewed\" statement about it",
		Long: `Check a release and sign off on it as a reviewer (docs/reviewer.md,
docs/spec/signoff.md). The target must be

  - in verified targets metadata: signed per the repository's TUF rules from a
    trusted root, and proven in the log under the tlog-policy, as a device checks;
  - made by the vendor: the exact bytes of the targets role listing it are among
    the metadata in the vendor's repository (--vendor-dir, or -d DIR) or its list
    of hashes (--vendor-hashes), the check of the auditor's vendor mode;
  - not objected to: no "mismatch" statement about its digest is signed and
    logged in the ledger (statements that do not verify are ignored, and said so).

Then a "reviewed" statement is signed with --key, logged in the ledger, and with
--out kept in FILE and FILE.tlog-proof. Anything unmet signs nothing and exits 1.`,
		Example: `  shiplog attest review -d /srv/tuf/repo --target fw/app.bin \
    --key reviewer.skey --out app.bin.reviewed.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			r, err := f.repository()
			if err != nil {
				return err
			}
			made, err := vendorReleases(vendorDir, vendorHashes, f.dir, r.ID)
			if err != nil {
				return err
			}
			signer, vkey, err := f.signer(ctx)
			if err != nil {
				return err
			}
			if r.Ledger == "" {
				return errors.New("give --ledger: objections are read there and the statement is logged there")
			}
			rel, err := f.find(ctx, r)
			if err != nil {
				return err
			}
			if !made.Made(rel.RoleSHA256) {
				return fmt.Errorf("%s version %d listing %s is not among the releases the vendor made (sha256 %x): a stolen or misused key? nothing signed", rel.Role, rel.Version, rel.Target, rel.RoleSHA256)
			}
			lc := &ledger.Client{URL: r.Ledger, HTTP: &http.Client{Timeout: 60 * time.Second}}
			ev, err := lc.Attestations(ctx, r.ID, hex.EncodeToString(rel.SHA256[:]), nil)
			if err != nil {
				return fmt.Errorf("couldn't read the statements logged about %s: %w", rel.Target, err)
			}
			objectors, ignored, err := attest.Objections(ev, r.ID, rel.SHA256, r.Policy)
			if err != nil {
				return err
			}
			if ignored > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "shiplog: %d statement(s) about %s did not verify and were ignored\n", ignored, rel.Target)
			}
			if len(objectors) > 0 {
				names := make([]string, len(objectors))
				for i, a := range objectors {
					names[i] = a.Name + " (key id " + a.ID.String() + ")"
				}
				return fmt.Errorf("%s is objected to: a mismatch statement is logged by %s; nothing signed", rel.Target, strings.Join(names, ", "))
			}
			st, err := f.signAndLog(ctx, r, attest.ReviewStatement(r.ID, rel, time.Now()), signer, vkey)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "reviewed  %s  sha256 %s\nsigned by %s (key id %s), logged at index %d\n", st.Target, st.Subject, st.Attester, st.KeyID, st.Index)
			return nil
		},
	}
	f.register(c)
	c.Flags().StringVar(&vendorDir, "vendor-dir", "", "the vendor's repository directory: the release must be among its metadata (default: -d DIR)")
	c.Flags().StringVar(&vendorHashes, "vendor-hashes", "", "file of the SHA-256s of the metadata the vendor made, one per line (instead of --vendor-dir)")
	addOutputFlags(c, &asJSON)
	return c
}

// vendorReleases loads what the vendor made, as the auditor's vendor mode does.
func vendorReleases(vendorDir, vendorHashes, dataDir, repoID string) (*audit.Expected, error) {
	switch {
	case vendorDir != "" && vendorHashes != "":
		return nil, errors.New("give --vendor-dir or --vendor-hashes, not both")
	case vendorHashes != "":
		b, err := readFileLimited(vendorHashes, 64<<20)
		if err != nil {
			return nil, err
		}
		return audit.ParseExpectedHashes(b, repoID)
	case vendorDir == "":
		vendorDir = dataDir
	}
	if vendorDir == "" {
		return nil, errors.New("a review checks the release was made by the vendor: give --vendor-dir DIR, --vendor-hashes FILE or -d DIR")
	}
	return audit.ExpectedFromRepoDir(vendorDir)
}
