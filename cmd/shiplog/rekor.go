package main

import (
	"fmt"
	"time"

	"github.com/shiplog/shiplog/repo/rekor"
	"github.com/spf13/cobra"
)

func init() { addCommand(rekorCmd) }

func rekorCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "rekor",
		Short: "Work with Sigstore Rekor logs",
		Long:  "Helpers for vendors and devices that use a Sigstore Rekor log as their transparency log (docs/sigstore.md).",
		Example: `  shiplog rekor policy-line https://rekor.example >> policy.txt`,
	}
	var timeout time.Duration
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
			fmt.Fprintf(cmd.OutOrStdout(), "log %s %s\n", vkey, args[0])
			return nil
		},
	}
	line.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "timeout of each request")
	c.AddCommand(line)
	return c
}
