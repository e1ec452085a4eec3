package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// requireSubcommands makes every command that only groups subcommands
// (`shiplog repo`, `shiplog bundle`, …) refuse an unknown subcommand with a
// non-zero exit and a suggestion, instead of cobra's default of printing
// help and exiting 0 (so `shiplog repo sgin … && shiplog publish` stops).
// Alone (`shiplog repo`) such a command prints its help and exits 0;
// --help always exits 0.
func requireSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		requireSubcommands(sub)
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2 // cobra's default, set only on the root
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return fmt.Errorf("%s (run '%s --help' for its commands)", msg, cmd.CommandPath())
	}
}
