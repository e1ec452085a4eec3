package main

import (
	"fmt"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/spf13/cobra"
)

func init() { addCommand(verifyEvidenceCmd) }

func verifyEvidenceCmd() *cobra.Command {
	var policyFile string
	var asJSON bool
	c := &cobra.Command{
		Use:   "verify-evidence FILE --policy POLICY",
		Short: "Re-check fork evidence (shiplog/fork/v1) that an auditor or device reported",
		Long: `Re-check fork evidence: two checkpoints signed by a log of the policy that cannot both
be views of one append-only log. It verifies both log signatures over the exact bytes
and that the checkpoints are inconsistent. The verdict is "conclusive" when both have
the same size and different roots; otherwise the evidence shows that the consistency
proof given does not verify, and anyone can ask the log for a proof between the two
sizes, which it cannot give. Exits 0 when the evidence stands, 1 when it does not.`,
		Example: `  shiplog verify-evidence state/evidence/finding-3-fork.txt --policy policy.txt`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pb, err := readFileLimited(policyFile, policy.MaxSize)
			if err != nil {
				return err
			}
			p, err := policy.Parse(pb)
			if err != nil {
				return err
			}
			b, err := readFileLimited(args[0], evidence.MaxForkSize)
			if err != nil {
				return err
			}
			fork, err := evidence.ParseFork(b)
			if err != nil {
				return err
			}
			conclusive, err := evidence.VerifyFork(fork, p)
			if err != nil {
				return fmt.Errorf("the evidence does not stand: %w", err)
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return printJSON(w, map[string]any{"stands": true, "conclusive": conclusive})
			}
			if conclusive {
				fmt.Fprintln(w, "fork evidence verified (conclusive): the log signed two different trees of the same size")
			} else {
				fmt.Fprintln(w, "fork evidence verified: the log signed both checkpoints and the consistency proof between them does not verify")
			}
			return nil
		},
	}
	c.Flags().StringVar(&policyFile, "policy", "", "C2SP tlog-policy file naming the log (required)")
	c.MarkFlagRequired("policy")
	addOutputFlags(c, &asJSON)
	return c
}
