package main

import (
	"fmt"
	"os"
	"time"

	"github.com/shiplog/shiplog/audit"
	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/shiplog/shiplog/internal/keyref"
	"github.com/spf13/cobra"
)

func init() { addCommand(auditCmd) }

func auditCmd() *cobra.Command {
	var o audit.Options
	var minSev, progress, rekorURL, rekorAPI, reviewKey string
	var asJSON bool
	var lf *logFlags
	c := &cobra.Command{
		Use:   "audit --ledger URL --policy FILE --data-dir DIR",
		Short: "Follow a ledger, re-check every entry, and report what is wrong",
		Long: `Follow a ledger through its tlog-tiles API only: verify each checkpoint under the
policy and its consistency with every checkpoint seen before, recompute the tree from
the entries, and re-check every release against the TUF rules of its repository's
logged history (root chain, thresholds, delegations, versions, equivocation, expiry).
Compare the ledger's checkpoint with witnesses (--witness) and other auditors (--peer).
In vendor mode (--vendor-dir, or --vendor-hashes with --vendor-repo) every release of
the vendor's repositories that it did not make is a critical finding.

Each new finding is one JSON line on stdout (and a POST to --webhook). State lives in
--data-dir and survives restarts. With --once, one round runs and the exit code says what
was found: 0 nothing of severity warning or above, 2 warnings, 3 critical, 1 the audit
could not finish. Without --once it polls every --interval; --listen ADDR also serves
the dashboard. See docs/auditor.md.

With --review-key FILE the auditor is also a reviewer (docs/reviewer.md): it signs and logs
a "reviewed" sign-off statement about every target of every release it passes (valid, in
vendor mode made by the vendor, no rebuilder's mismatch logged about it). With
--signoff-deadline D, vendor mode reports a release a rebuilder has not reproduced within D.

With --rekor URL (and --rekor-api tiles or v1) it follows a Sigstore Rekor log instead
(no --ledger) in vendor mode (--vendor-dir): every entry signed by the vendor's keys must
log a metadata file the vendor made. See docs/sigstore.md.`,
		Example: `  shiplog audit --ledger https://ledger.example --policy policy.txt -d /var/lib/shiplog-audit --once
  shiplog audit --ledger https://ledger.example --policy policy.txt -d st --listen 127.0.0.1:8080 \
      --witness https://witness.example/monitor --peer https://auditor2.example
  shiplog audit --ledger https://ledger.example --policy policy.txt -d st --once --vendor-dir ./myrepo
  shiplog audit --rekor https://rekor.example --rekor-api v1 --policy rekor-policy.txt -d st --once --vendor-dir ./myrepo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sev, err := alert.ParseSeverity(minSev)
			if err != nil {
				return err
			}
			o.MinSeverity = sev
			o.Stdout = cmd.OutOrStdout()
			o.Listening = func(addr string) {
				fmt.Fprintf(cmd.ErrOrStderr(), "auditor listening on http://%s (dashboard, /metrics, /healthz, /readyz)\n", addr)
			}
			if o.Logger, err = lf.logger(cmd.ErrOrStderr()); err != nil {
				return err
			}
			if reviewKey != "" {
				skey, err := readKeyFile(reviewKey)
				if err != nil {
					return err
				}
				s, vkey, err := keyref.OpenLogSigner(cmd.Context(), skey)
				if err != nil {
					return fmt.Errorf("--review-key: %w", err)
				}
				if _, err := signoff.ParseAttester(vkey); err != nil {
					return fmt.Errorf("--review-key: a reviewer's key must be Ed25519: %w", err)
				}
				o.Reviewer = &audit.Reviewer{Signer: s, VKey: vkey}
			}
			switch progress {
			case "on":
				o.Progress = cmd.ErrOrStderr()
			case "auto":
				if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
					o.Progress = os.Stderr
				}
			}
			var code int
			switch {
			case rekorURL != "":
				code, err = runRekorAudit(cmd, rekorURL, rekorAPI, o)
			case o.Ledger == "":
				return fmt.Errorf("give --ledger (or --rekor)")
			default:
				code, err = audit.Run(cmd.Context(), o)
			}
			if err != nil {
				return err
			}
			if code != audit.ExitClean {
				os.Exit(code) // documented exit codes for cron and supervisors
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&o.Ledger, "ledger", "", "base URL of the ledger's read API (required)")
	f.StringVar(&o.PolicyFile, "policy", "", "C2SP tlog-policy file naming the log key and the witness quorum (required)")
	dataDirFlag(c, &o.StateDir, "", "the auditor's data directory, its durable state (required)", "state")
	f.BoolVar(&o.Once, "once", false, "run one round and exit with a code saying what was found")
	f.DurationVar(&o.Interval, "interval", 30*time.Second, "time between rounds")
	f.StringVar(&o.Webhook, "webhook", "", "URL to POST each finding to as JSON")
	f.StringVar(&minSev, "min-severity", "info", "lowest severity sent to stdout and the webhook: info, warning or critical")
	f.StringArrayVar(&o.Witnesses, "witness", nil, "witness monitoring URL prefix to gossip with (repeatable)")
	f.StringArrayVar(&o.Peers, "peer", nil, "another auditor's URL to gossip with (repeatable)")
	f.StringArrayVar(&o.Repositories, "repo-url", nil, "TUF metadata base URL whose timestamp must not lapse (repeatable; vendor mode checks --vendor-dir's too)")
	f.StringVar(&o.VendorDir, "vendor-dir", "", "vendor mode: the vendor's repository directory (shiplog-repo.json, metadata/)")
	f.DurationVar(&o.VendorGrace, "vendor-grace", 0, "vendor mode: how long to wait for a release to appear in the vendor's files before reporting it (default 10s)")
	f.StringVar(&reviewKey, "review-key", "", "sign and log a \"reviewed\" statement about every target of every release the audit passes, with this attester key file (docs/reviewer.md)")
	f.DurationVar(&o.SignoffDeadline, "signoff-deadline", 0, "vendor mode: report a release with a target no rebuilder reproduced (a logged reproduced statement) within this long (signoff-missing; default off)")
	f.StringVar(&o.VendorHashes, "vendor-hashes", "", "vendor mode: file of expected metadata SHA-256s, one per line")
	f.StringArrayVar(&o.VendorRepos, "vendor-repo", nil, "vendor mode with --vendor-hashes: the vendor's repository id (repeatable)")
	f.StringVar(&o.Serve, "listen", "", "serve the dashboard, /metrics, /healthz and /readyz on ADDR (e.g. 127.0.0.1:8080)")
	alias(f, "listen", "serve")
	f.DurationVar(&o.UnreachableAfter, "unreachable-after", 5*time.Minute, "report a ledger that has not answered for this long (warning; critical after 12 times as long)")
	f.DurationVar(&o.StaleViewAfter, "stale-view-after", 2*time.Minute, "report a witness or peer holding a log checkpoint the ledger's tiles do not reach for this long (stale-view; raise it when the witness quorum is slow)")
	f.IntVar(&o.Workers, "workers", 8, "concurrent fetches from the ledger")
	f.StringVar(&progress, "progress", "auto", "catch-up progress bar on stderr: auto (when a terminal), on, off")
	f.StringVar(&rekorURL, "rekor", "", "follow this Sigstore Rekor log instead of a ledger (vendor mode)")
	f.StringVar(&rekorAPI, "rekor-api", "v1", "how to read the Rekor log: tiles (Rekor v2) or v1 (Rekor v1 API)")
	lf = addLogFlags(c, "warn")
	f.BoolVar(&asJSON, "json", false, "errors as one JSON object on stderr (findings are always JSON lines on stdout)")
	for _, name := range []string{"policy", "data-dir"} {
		c.MarkFlagRequired(name)
	}
	return c
}
