package main

import (
	"fmt"
	"time"

	"github.com/shiplog/shiplog/repo"
	"github.com/shiplog/shiplog/repo/rekor"
	"github.com/spf13/cobra"
)

func init() { addCommand(publishCmd) }

func publishCmd() *cobra.Command {
	var dir string
	var o repo.PublishOptions
	var policyFile, passFile, rekorURL string
	var snapFiles, tsFiles []string
	var keyFiles []string
	var asJSON, verbose bool
	var lf *logFlags
	c := &cobra.Command{
		Use:   "publish --data-dir DIR",
		Short: "Log signed root and targets versions in the ledger, then expose them",
		Long: `Publish in the safe order: every staged root and targets role version whose
signatures meet their thresholds is submitted to the ledger (roots first, then
targets, then delegated roles, delegators first); each returned tlog-proof is
verified under the policy and written beside its metadata file as
<version>.<role>.json.tlog-proof, and only then is the metadata file written.
With --snapshot-key and --timestamp-key, a new snapshot and timestamp then expose
every logged version: publish never exposes an unlogged version, and refuses to
write a repository that TUF clients would reject.

With --rekor URL the versions are logged in a Sigstore Rekor (v1) log instead of a
ledger: each one's exact bytes are signed with a --key its role lists (for root vN a
root key of vN-1, for v1 of itself; there is no separate registration), submitted as
a hashedrekord entry, and the returned Sigstore bundle is verified under --policy
(which must name the Rekor log) and written beside the file as
<version>.<role>.json.sigstore.json. See docs/sigstore.md.`,
		Example: `  shiplog publish -d repo --policy policy.txt --snapshot-key keys/snapshot.key --timestamp-key keys/timestamp.key
  shiplog publish -d repo --ledger https://ledger.example --policy policy.txt   # log only, expose later
  shiplog publish -d repo --rekor https://rekor.example --policy rekor-policy.txt \
      --key keys/root.key --key keys/targets.key --snapshot-key keys/snapshot.key --timestamp-key keys/timestamp.key`,
		Args: dirArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			args = takeDir(cmd, &dir, args)
			var err error
			if policyFile != "" {
				if o.Policy, err = repo.LoadPolicy(policyFile); err != nil {
					return err
				}
			}
			if (len(snapFiles) == 0) != (len(tsFiles) == 0) {
				return fmt.Errorf("give both --snapshot-key and --timestamp-key to expose, or neither to only log")
			}
			if len(snapFiles) > 0 {
				snap, err := loadKeys(snapFiles, passFile)
				if err != nil {
					return err
				}
				ts, err := loadKeys(tsFiles, passFile)
				if err != nil {
					return err
				}
				o.SnapshotKey, o.MoreSnapshotKeys = snap[0], snap[1:]
				o.TimestampKey, o.MoreTimestampKeys = ts[0], ts[1:]
			}
			if verbose {
				lf.level = "info"
			}
			o.Progress = cmd.ErrOrStderr() // which witnesses cosigned while publish waits
			if o.Logger, err = lf.logger(cmd.ErrOrStderr()); err != nil {
				return err
			}
			var res *repo.PublishResult
			if rekorURL != "" {
				res, err = publishRekor(cmd, dir, rekorURL, keyFiles, passFile, o)
			} else if len(keyFiles) > 0 {
				return fmt.Errorf("--key is for --rekor: a ledger logs metadata without a signature of its own")
			} else {
				res, err = repo.Publish(cmd.Context(), dir, o)
			}
			if res != nil && asJSON {
				if perr := printJSON(cmd.OutOrStdout(), res); perr != nil {
					return perr
				}
			}
			if err != nil {
				return err
			}
			if asJSON {
				return res.NothingLogged()
			}
			w := cmd.OutOrStdout()
			for _, l := range res.Logged {
				fmt.Fprintf(w, "logged %s v%d at index %d: %s\n", l.Role, l.Version, l.Index, l.ProofFile)
			}
			if len(res.Logged) == 0 {
				fmt.Fprintln(w, "nothing new to log")
			}
			for _, p := range res.Pending {
				fmt.Fprintln(w, "pending (not logged):", p)
			}
			switch {
			case res.Exposed == nil:
				fmt.Fprintln(w, "not exposed:", res.NotExposed)
			case res.Exposed.Unchanged:
				fmt.Fprintf(w, "snapshot v%d already exposes everything logged\n", res.Exposed.Snapshot)
			default:
				fmt.Fprintf(w, "exposed: snapshot v%d, timestamp v%d (expires %s)\n", res.Exposed.Snapshot, res.Exposed.Timestamp, res.Exposed.Expires.Format(time.RFC3339))
			}
			return res.NothingLogged() // exit non-zero: the release is not out
		},
	}
	c.Flags().StringVar(&o.Ledger, "ledger", "", "ledger base URL (default: the config's)")
	c.Flags().StringVar(&policyFile, "policy", "", "C2SP tlog-policy file every proof must satisfy (default: the config's)")
	c.Flags().StringArrayVar(&snapFiles, "snapshot-key", nil, "snapshot private key file (to expose; repeat up to the snapshot threshold)")
	c.Flags().StringArrayVar(&tsFiles, "timestamp-key", nil, "timestamp private key file (to expose; repeat up to the timestamp threshold)")
	c.Flags().StringVar(&passFile, "passphrase-file", "", "file whose first line is the keys' passphrase")
	c.Flags().StringVar(&rekorURL, "rekor", "", "log in this Sigstore Rekor v1 server instead of a ledger")
	c.Flags().StringArrayVar(&keyFiles, "key", nil, "with --rekor: a role private key file to sign log entries with (repeatable)")
	c.Flags().DurationVar(&o.Wait, "wait", 30*time.Second, "how long to wait for each entry's proof")
	addOutputFlags(c, &asJSON)
	lf = addLogFlags(c, "warn")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "log progress to stderr")
	c.Flags().MarkHidden("verbose")
	c.Flags().MarkDeprecated("verbose", "use --log-level info (the old spelling is removed in the next release)")
	dataDirFlag(c, &dir, "", "the repository directory (required)")
	return c
}

// publishRekor runs repo.PublishRekor with the keys given by --key.
func publishRekor(cmd *cobra.Command, dir, url string, keyFiles []string, passFile string, o repo.PublishOptions) (*repo.PublishResult, error) {
	if o.Ledger != "" {
		return nil, fmt.Errorf("give --rekor or --ledger, not both")
	}
	ro := repo.RekorOptions{Policy: o.Policy, SnapshotKey: o.SnapshotKey, TimestampKey: o.TimestampKey,
		MoreSnapshotKeys: o.MoreSnapshotKeys, MoreTimestampKeys: o.MoreTimestampKeys, Logger: o.Logger}
	for _, f := range keyFiles {
		k, err := loadKey(f, passFile)
		if err != nil {
			return nil, err
		}
		ro.Keys = append(ro.Keys, k)
	}
	c, err := rekor.New(url, rekor.Options{Timeout: max(o.Wait, 10*time.Second), Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	return repo.PublishRekor(cmd.Context(), dir, c, ro)
}
