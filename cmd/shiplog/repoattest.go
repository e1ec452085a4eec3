package main

import (
	"fmt"

	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/shiplog/shiplog/repo"
	"github.com/spf13/cobra"
)

func repoAttestationsCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "attestations",
		Short: "Serve the sign-off statements rebuilders and reviewers logged about the repository's targets",
	}
	c.AddCommand(repoAttestationsPullCmd())
	return c
}

func repoAttestationsPullCmd() *cobra.Command {
	var dir, ledgerURL, policyFile, keysFile string
	var asJSON bool
	c := &cobra.Command{
		Use:   "pull --data-dir DIR [--ledger URL] [--keys FILE]",
		Short: "Copy the logged sign-off statements of every current target beside the metadata (metadata/signoff/<sha256>.json)",
		Long: `For every target digest of the repository's current targets metadata (all
roles), ask the ledger for the sign-off statements logged about it (GET
/v1/attestations, docs/spec/signoff.md), keep those that verify (signature,
this repository and digest, a tlog-proof under the policy) and write them as
metadata/signoff/<sha256>.json, which ` + "`shiplog repo serve`" + ` and a static web server
serve and ` + "`shiplog bundle create`" + ` carries, so devices find the evidence
beside the metadata. --keys keeps only the attesters listed (one vkey per
line). Run it after publishing and whenever statements are logged (cron).`,
		Example: `  shiplog repo attestations pull -d repo
  shiplog repo attestations pull -d repo --keys rebuilders.keys --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := repo.PullOptions{Ledger: ledgerURL}
			if policyFile != "" {
				p, err := repo.LoadPolicy(policyFile)
				if err != nil {
					return err
				}
				o.Policy = p
			}
			if keysFile != "" {
				b, err := readFileLimited(keysFile, 1<<20)
				if err != nil {
					return err
				}
				if o.Keys, err = signoff.ParseKeyList(b); err != nil {
					return fmt.Errorf("%s: %w", keysFile, err)
				}
			}
			return withRepo(dir, func(r *repo.Repo) error {
				got, err := r.PullAttestations(cmd.Context(), o)
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				if asJSON {
					return printJSON(w, map[string]any{"evidence": got})
				}
				for _, p := range got {
					state := "unchanged"
					if p.Written {
						state = "written"
					} else if p.Attestations == 0 {
						state = "none"
					}
					fmt.Fprintf(w, "sha256 %s  %d statement(s)  %s  (%s)", p.SHA256, p.Attestations, state, p.Targets[0])
					if p.Dropped > 0 {
						fmt.Fprintf(w, "  %d dropped: did not verify", p.Dropped)
					}
					fmt.Fprintln(w)
				}
				return nil
			})
		},
	}
	dataDirFlag(c, &dir, "", "the repository directory (required)")
	c.MarkFlagRequired("data-dir")
	c.Flags().StringVar(&ledgerURL, "ledger", "", "the ledger's base URL (default: the repository's)")
	c.Flags().StringVar(&policyFile, "policy", "", "C2SP tlog-policy file (default: the repository's)")
	c.Flags().StringVar(&keysFile, "keys", "", "file of attester vkeys, one per line: keep only their statements")
	addOutputFlags(c, &asJSON)
	return c
}
