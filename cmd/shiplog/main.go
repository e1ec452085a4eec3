// Command shiplog is the CLI of ledger operators, witnesses, vendors and
// auditors. Each subcommand lives in its own file and registers itself with
// addCommand; main only wires them and runs.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

var commands []func() *cobra.Command

// addCommand registers a top-level subcommand constructor.
func addCommand(c func() *cobra.Command) { commands = append(commands, c) }

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "shiplog",
		Short: "Accountable software updates: TUF releases in a witnessed transparency log",
		Long: `shiplog makes software updates accountable. Vendors sign releases with TUF,
every signed targets release is appended to a Merkle transparency log (the ledger),
independent witnesses cosign the log's checkpoints, auditors watch every entry, and
devices install only releases proven to be in the log.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, c := range commands {
		root.AddCommand(c())
	}
	requireSubcommands(root)
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "shiplog:", err)
		os.Exit(1)
	}
}
