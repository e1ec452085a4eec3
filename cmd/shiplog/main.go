// Command shiplog is the CLI of ledger operators, witnesses, vendors and
// auditors. Each subcommand lives in its own file and registers itself with
// addCommand; main only wires them and runs. The flag convention every
// command follows is in docs/cli.md and flags.go.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/shiplog/shiplog/internal/buildinfo"
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
devices install only releases proven to be in the log.

Flags follow one convention in every command (docs/cli.md): -d/--data-dir for a
command's directory, --listen for listen addresses, --log-level and --log-format on
long-running commands, --json (or -o json) on commands that report something.`,
		Version:       buildinfo.Read().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("shiplog {{.Version}}\n")
	root.AddCommand(versionCmd())
	for _, c := range commands {
		root.AddCommand(c())
	}
	requireSubcommands(root)
	return root
}

func versionCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:     "version",
		Short:   "Print the build: module version, VCS revision, Go version and platform",
		Example: "  shiplog version\n  shiplog version --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			i := buildinfo.Read()
			if asJSON {
				return printJSON(cmd.OutOrStdout(), i)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "shiplog "+i.String())
			return nil
		},
	}
	addOutputFlags(c, &asJSON)
	return c
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c, err := rootCmd().ExecuteContextC(ctx); err != nil {
		code := 1
		var ce *exitCodeError
		if errors.As(err, &ce) {
			code = ce.code
		}
		printError(os.Stderr, c, err, code)
		stop()
		os.Exit(code)
	}
}

// exitCodeError is a failure with a documented exit code other than 1.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string { return e.err.Error() }
func (e *exitCodeError) Unwrap() error { return e.err }
