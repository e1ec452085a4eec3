package main

import (
	"os"

	"github.com/shiplog/shiplog/deploy/sandbox"
	"github.com/spf13/cobra"
)

func init() { addCommand(sandboxCmd) }

func sandboxCmd() *cobra.Command {
	var o sandbox.Options
	c := &cobra.Command{
		Use:   "sandbox",
		Short: "Run the whole system on this machine and show it working, step by step",
		Long: `Run a ledger (embedded Tessera log), three witnesses with a 2-of-3 policy, an
auditor with its dashboard, a vendor's TUF repository and a simulated device, all on
127.0.0.1 free ports in a fresh directory. Publish two releases and update the device
after each; then show that a release signed with the vendor's real keys but never logged
is refused by the device, and that the auditor flags a logged release the vendor did not
make. Then prevention: a second device with a 15-second publicity window holds a release
logged with the stolen key while the auditor raises the alarm and the vendor withdraws it,
and never installs it; and an update that gains capabilities waits for the owner's consent.
Last, independent sign-off (needs Go, skipped without): the firmware becomes a Go program built
reproducibly from a published source archive; two rebuilders rebuild it with shiplog attest
rebuild and log "reproduced"; a third device initialised with --require
reproduced:2:rebuilders.keys installs it only then; a release whose binary was not built
from its declared source gets "mismatch" statements, that device refuses it and the
auditor reports it.
The servers keep running until Ctrl-C, or stop after the demonstration with --once.`,
		Example: `  shiplog sandbox
  go run ./cmd/shiplog sandbox --once
  shiplog sandbox -d /tmp/sb`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			o.Exe = exe
			o.Out = cmd.OutOrStdout()
			return sandbox.Run(cmd.Context(), o)
		},
	}
	c.Flags().BoolVar(&o.Once, "once", false, "exit 0 after the demonstration instead of serving until Ctrl-C")
	dataDirFlag(c, &o.Dir, "", "working directory, new or empty (default: a new temporary directory)", "dir")
	return c
}
