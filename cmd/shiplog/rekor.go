package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/shiplog/shiplog/audit"
	"github.com/shiplog/shiplog/audit/alert"
	auditrekor "github.com/shiplog/shiplog/audit/rekor"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/repo/rekor"
	"github.com/spf13/cobra"
)

func init() { addCommand(rekorCmd) }

func rekorCmd() *cobra.Command {
	c := &cobra.Command{
		Use:     "rekor",
		Short:   "Work with Sigstore Rekor logs",
		Long:    "Helpers for vendors and devices that use a Sigstore Rekor log as their transparency log (docs/sigstore.md).",
		Example: `  shiplog rekor policy-line https://rekor.example >> policy.txt`,
	}
	var timeout time.Duration
	var asJSON bool
	line := &cobra.Command{
		Use:   "policy-line URL",
		Short: "Print the tlog-policy \"log\" line naming a Rekor v1 log",
		Long: `Read a Rekor v1 server's public key and checkpoint origin and print the C2SP
tlog-policy line that names it: "log <host>+<key hash>+<base64(0x02 || DER SPKI)> URL".
The answer is the server's word: compare the key with the one its operator publishes.`,
		Example: `  shiplog rekor policy-line https://rekor.example`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rekor.New(args[0], rekor.Options{Timeout: timeout})
			if err != nil {
				return err
			}
			vkey, err := c.VKey(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]string{"vkey": vkey, "url": args[0], "line": "log " + vkey + " " + args[0]})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "log %s %s\n", vkey, args[0])
			return nil
		},
	}
	line.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "timeout of each request")
	addOutputFlags(line, &asJSON)
	c.AddCommand(line)
	return c
}

// runRekorAudit is `shiplog audit --rekor URL`: audit/rekor rounds over a
// Rekor log in vendor mode, each new finding one JSON line on stdout. With
// --once it returns the audit's exit code after one round.
func runRekorAudit(cmd *cobra.Command, url, api string, o audit.Options) (int, error) {
	if o.VendorDir == "" {
		return audit.ExitError, fmt.Errorf("--rekor audits a vendor's entries: give --vendor-dir")
	}
	pb, err := os.ReadFile(o.PolicyFile)
	if err != nil {
		return audit.ExitError, err
	}
	p, err := policy.Parse(pb)
	if err != nil {
		return audit.ExitError, err
	}
	v, err := auditrekor.VendorFromRepoDir(o.VendorDir)
	if err != nil {
		return audit.ExitError, err
	}
	cfg := auditrekor.Config{URL: url, API: auditrekor.API(api), Policy: p, Vendor: v, StateDir: o.StateDir, Workers: o.Workers, Logger: o.Logger}
	sink := &alert.JSONLines{W: o.Stdout}
	for {
		res, err := auditrekor.Run(cmd.Context(), cfg)
		code := audit.ExitClean
		if res != nil {
			for _, f := range res.Findings {
				if f.Severity >= o.MinSeverity {
					sink.Alert(cmd.Context(), f)
				}
				if f.Severity == alert.Critical {
					code = audit.ExitCritical
				} else if f.Severity == alert.Warning && code == audit.ExitClean {
					code = audit.ExitWarning
				}
			}
		}
		if err != nil && !errors.Is(err, auditrekor.ErrFork) {
			o.Logger.Warn("Rekor audit round failed", "err", err)
			code = audit.ExitError
		}
		if o.Once {
			return code, nil
		}
		select {
		case <-cmd.Context().Done():
			return audit.ExitClean, nil
		case <-time.After(o.Interval):
		}
	}
}
