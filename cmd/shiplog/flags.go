package main

// The command-line convention of docs/cli.md, in one place. Every command
// registers its flags through these helpers so that one idea has one name
// everywhere; a renamed flag keeps its old spelling as a hidden, deprecated
// alias for one release (alias).

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/shiplog/shiplog/internal/clilog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// dataDirFlag registers -d/--data-dir, the directory holding the command's
// durable state, with the old spellings as deprecated aliases.
func dataDirFlag(c *cobra.Command, p *string, def, usage string, old ...string) {
	c.Flags().StringVarP(p, "data-dir", "d", def, usage)
	c.MarkFlagDirname("data-dir")
	for _, o := range old {
		alias(c.Flags(), "data-dir", o)
	}
}

// alias registers old as a hidden, deprecated spelling of the flag name: both
// set the same value, and using old prints a one-line deprecation notice on
// stderr.
func alias(fs *pflag.FlagSet, name, old string) {
	f := fs.Lookup(name)
	if f == nil {
		panic("alias of unknown flag --" + name)
	}
	fs.AddFlag(&pflag.Flag{Name: old, Usage: f.Usage, Value: aliasValue{f.Value, f}, DefValue: f.DefValue, NoOptDefVal: f.NoOptDefVal,
		Hidden: true, Deprecated: "use --" + name + " (the old spelling is removed in the next release)"})
}

// aliasValue sets the flag it aliases and marks it changed, so that required
// flags and Changed checks see the new name set.
type aliasValue struct {
	pflag.Value
	target *pflag.Flag
}

func (a aliasValue) Set(s string) error {
	if err := a.Value.Set(s); err != nil {
		return err
	}
	a.target.Changed = true
	return nil
}

// Type, for a slice value, lets pflag treat the alias as the same kind.
func (a aliasValue) Type() string { return a.Value.Type() }

// dirArgs is the Args check of a command whose data directory was once a
// positional argument: without --data-dir, the first argument is taken as
// the directory (deprecated), and inner checks the rest.
func dirArgs(inner cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if cmd.Flags().Changed("data-dir") {
			return inner(cmd, args)
		}
		if len(args) == 0 {
			return errors.New("give the data directory with --data-dir DIR")
		}
		return inner(cmd, args[1:])
	}
}

// takeDir returns the arguments after the data directory: when --data-dir
// was not given, the first argument is the directory (the deprecated form).
func takeDir(cmd *cobra.Command, dir *string, args []string) []string {
	if cmd.Flags().Changed("data-dir") || len(args) == 0 {
		return args
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "shiplog: the directory as an argument is deprecated; use --data-dir %s\n", args[0])
	*dir = args[0]
	return args[1:]
}

// logFlags are --log-level and --log-format, on every long-running command.
type logFlags struct {
	level, format string
}

func addLogFlags(c *cobra.Command, defLevel string) *logFlags {
	l := &logFlags{}
	c.Flags().StringVar(&l.level, "log-level", defLevel, "log level: debug, info, warn or error")
	c.Flags().StringVar(&l.format, "log-format", "text", "log format on stderr: text or json")
	c.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions(clilog.Levels, cobra.ShellCompDirectiveNoFileComp))
	c.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions(clilog.Formats, cobra.ShellCompDirectiveNoFileComp))
	return l
}

// logger returns the slog logger the flags ask for, writing to w.
func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	return clilog.New(w, l.level, l.format)
}

// outputFlags are --json and its kubectl spelling -o/--output json.
type outputFlags struct {
	json   bool
	output string
}

// addOutputFlags registers --json and -o/--output on a command that reports
// something; *asJSON is true after parsing when either asks for JSON.
func addOutputFlags(c *cobra.Command, asJSON *bool) {
	c.Flags().BoolVar(asJSON, "json", false, "print JSON (also -o json); errors too, as one JSON object on stderr")
	out := &clilog.Output{AsJSON: asJSON}
	c.Flags().VarP(out, "output", "o", "output format: text or json")
	c.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
}

// wantsJSON reports whether the command that ran was asked for JSON output.
func wantsJSON(c *cobra.Command) bool {
	if c == nil {
		return false
	}
	f := c.Flags().Lookup("json")
	return f != nil && f.Value.String() == "true"
}

// jsonError is the object a command run with --json writes to stderr when it
// fails (docs/cli.md "Errors").
type jsonError struct {
	Error    string `json:"error"`
	ExitCode int    `json:"exit_code"`
}

// printError reports err on stderr: one JSON line when the command was asked
// for JSON, "shiplog: err" otherwise.
func printError(w io.Writer, c *cobra.Command, err error, code int) {
	if wantsJSON(c) {
		b, _ := json.Marshal(jsonError{Error: err.Error(), ExitCode: code})
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	fmt.Fprintln(w, "shiplog:", strings.TrimSpace(err.Error()))
}
