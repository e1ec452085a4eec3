// Command shiplog-device is the device agent: it installs an update only when
// the TUF metadata verifies, the release is proven in a transparency log
// under a witness-cosigned checkpoint its policy trusts, and the consumer's
// approval policy allows it. See docs/device.md and docs/cli.md.
//
//	shiplog-device [-d DIR] COMMAND [flags] [args]
//
// Commands: init, check, update, install-bundle FILE, verify-bundle FILE,
// status, verify-evidence FILE, version, completion SHELL, help, and
// tuf-client (the tuf-conformance client protocol; also entered when the
// first argument is --metadata-dir or --metadata-url).
//
// Flags are GNU style (spf13/pflag, the flag library of cobra without its
// command framework, so the device stays small): long flags with two dashes,
// flags before or after arguments, the global flags (-d/--data-dir, --time,
// --log-level, --log-format) before or after the command. --help prints on
// stdout and exits 0; a usage error exits 2; a failed command exits 1.
//
// Environment: SHIPLOG_DEVICE_STATE (default data directory),
// SHIPLOG_DEVICE_TIME (reference time, RFC 3339; the tuf-conformance suite's
// faketime does not reach Go programs). Builds with the shiplog_fault tag
// (tests only; never release builds) also read SHIPLOG_DEVICE_FAULT, which
// kills the process at the Nth install step.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shiplog/shiplog/internal/buildinfo"
	"github.com/shiplog/shiplog/internal/clilog"
	"github.com/spf13/pflag"
)

// exitError carries an exit code.
type exitError struct{ code int }

func (e exitError) Error() string { return "exit " + strconv.Itoa(e.code) }

// usageError is a usage mistake: reported, then exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runMain(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// runMain runs the command line and returns the exit code, having reported
// any error on errw (as one JSON object when --json was given).
func runMain(ctx context.Context, args []string, in io.Reader, out, errw io.Writer) int {
	g := &globals{in: in, out: out, err: errw}
	err := run(ctx, g, args)
	var ee exitError
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		reportError(g, err, 2)
		return 2
	}
	reportError(g, err, 1)
	return 1
}

// reportError writes "shiplog-device: err" on stderr, or with --json one
// JSON object {"error": ..., "exit_code": ...} (docs/cli.md "Errors").
func reportError(g *globals, err error, code int) {
	if g.asJSON {
		b, _ := json.Marshal(struct {
			Error    string `json:"error"`
			ExitCode int    `json:"exit_code"`
		}{err.Error(), code})
		fmt.Fprintf(g.err, "%s\n", b)
		return
	}
	fmt.Fprintln(g.err, "shiplog-device:", err)
}

// globals are the flags every command accepts, and the streams.
type globals struct {
	dataDir             string
	timeStr             string
	logLevel, logFormat string
	version             bool
	time                time.Time
	logger              *slog.Logger
	asJSON              bool
	in                  io.Reader
	out, err            io.Writer
	fs                  *pflag.FlagSet
}

func (g *globals) flagSet() *pflag.FlagSet {
	fs := pflag.NewFlagSet("global", pflag.ContinueOnError)
	fs.StringVarP(&g.dataDir, "data-dir", "d", envOr("SHIPLOG_DEVICE_STATE", "/var/lib/shiplog-device"), "the device's data directory (its trusted state; $SHIPLOG_DEVICE_STATE)")
	fs.StringVar(&g.timeStr, "time", os.Getenv("SHIPLOG_DEVICE_TIME"), "reference time for expiry checks, RFC 3339 (default now; $SHIPLOG_DEVICE_TIME)")
	fs.StringVar(&g.logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	fs.StringVar(&g.logFormat, "log-format", "text", "log format on stderr: text or json")
	fs.BoolVar(&g.version, "version", false, "print the version and exit")
	alias(fs, "data-dir", "state")
	return fs
}

// alias registers old as a hidden, deprecated spelling of the flag name.
func alias(fs *pflag.FlagSet, name, old string) {
	f := fs.Lookup(name)
	fs.AddFlag(&pflag.Flag{Name: old, Usage: f.Usage, Value: aliasValue{f.Value, f}, DefValue: f.DefValue, NoOptDefVal: f.NoOptDefVal,
		Hidden: true, Deprecated: "use --" + name + " (the old spelling is removed in the next release)"})
}

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

// command is one subcommand: its flags and what it runs.
type command struct {
	name, args, short, summary, example string
	// minArgs, maxArgs bound the positional arguments (maxArgs -1: any).
	minArgs, maxArgs int
	// flags registers the command's own flags and returns its run function.
	flags func(fs *pflag.FlagSet, g *globals) func(ctx context.Context, pos []string) error
}

var commands []*command

func init() {
	commands = []*command{cmdInit, cmdCheck, cmdUpdate, cmdInstallBundle, cmdVerifyBundle, cmdStatus, cmdVerifyEvidence, cmdVersion, cmdCompletion, cmdTUFClient}
}

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func usage(w io.Writer, g *globals) {
	fmt.Fprint(w, "shiplog-device installs updates only when TUF verifies and the release is proven in a\nwitnessed transparency log.\n\nUsage:\n  shiplog-device [-d DIR] COMMAND [flags] [args]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.short)
	}
	fmt.Fprintf(w, "  %-16s %s\n", "help", "help about a command")
	fmt.Fprintf(w, "\nGlobal flags (before or after the command):\n%s", g.fs.FlagUsages())
	fmt.Fprint(w, "\nRun \"shiplog-device COMMAND --help\" for a command's flags and an example.\n")
}

func run(ctx context.Context, g *globals, args []string) error {
	if len(args) > 0 && (strings.HasPrefix(args[0], "--metadata-") || strings.HasPrefix(args[0], "-metadata-")) {
		return tufClient(ctx, args, g.err)
	}
	g.fs = g.flagSet()
	g.fs.SetOutput(g.err)
	g.fs.SetInterspersed(false)
	g.fs.Usage = func() {}
	if err := g.fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			usage(g.out, g)
			return nil
		}
		return usageError{err.Error()}
	}
	if g.version {
		fmt.Fprintln(g.out, "shiplog-device "+buildinfo.Read().String())
		return nil
	}
	rest := g.fs.Args()
	if len(rest) == 0 {
		usage(g.err, g)
		return exitError{2}
	}
	name, rest := rest[0], rest[1:]
	if name == "help" {
		if len(rest) == 0 {
			usage(g.out, g)
			return nil
		}
		c := findCommand(rest[0])
		if c == nil {
			return usageError{fmt.Sprintf("unknown command %q (see shiplog-device help)", rest[0])}
		}
		c.usage(g.out)
		return nil
	}
	c := findCommand(name)
	if c == nil {
		return usageError{fmt.Sprintf("unknown command %q (see shiplog-device help)", name)}
	}
	if c.name == "tuf-client" {
		return tufClient(ctx, rest, g.err)
	}
	fs := c.flagSet(g)
	runFn := c.flags(fs, g)
	fs.AddFlagSet(g.fs)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			c.usage(g.out)
			return nil
		}
		return usageError{fmt.Sprintf("%s: %v (see shiplog-device %s --help)", c.name, err, c.name)}
	}
	if f := fs.Lookup("json"); f != nil && f.Value.String() == "true" {
		g.asJSON = true
	}
	pos := fs.Args()
	if len(pos) < c.minArgs || (c.maxArgs >= 0 && len(pos) > c.maxArgs) {
		return usageError{fmt.Sprintf("usage: shiplog-device %s %s", c.name, c.args)}
	}
	if g.timeStr != "" {
		t, err := time.Parse(time.RFC3339, g.timeStr)
		if err != nil {
			return usageError{fmt.Sprintf("--time: %v", err)}
		}
		g.time = t
	}
	l, err := clilog.New(g.err, g.logLevel, g.logFormat)
	if err != nil {
		return usageError{err.Error()}
	}
	g.logger = l
	return runFn(ctx, pos)
}

func (c *command) flagSet(g *globals) *pflag.FlagSet {
	fs := pflag.NewFlagSet(c.name, pflag.ContinueOnError)
	fs.SetOutput(g.err)
	fs.Usage = func() {}
	return fs
}

// usage prints a command's help: usage line, description, flags, example.
func (c *command) usage(w io.Writer) {
	fs := pflag.NewFlagSet(c.name, pflag.ContinueOnError)
	c.flags(fs, &globals{})
	fmt.Fprintf(w, "Usage:\n  shiplog-device %s %s\n\n%s\n", c.name, c.args, c.summary)
	local := fs.FlagUsages()
	if local != "" {
		fmt.Fprintf(w, "\nFlags:\n%s", local)
	}
	fmt.Fprintf(w, "\nGlobal flags: -d/--data-dir, --time, --log-level, --log-format (see shiplog-device --help)\n")
	if c.example != "" {
		fmt.Fprintf(w, "\nExample:\n%s\n", c.example)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// jsonFlag registers --json and -o/--output json.
func jsonFlag(fs *pflag.FlagSet, p *bool, usage string) {
	fs.BoolVar(p, "json", false, usage)
	fs.VarP(&clilog.Output{AsJSON: p}, "output", "o", "output format: text or json")
}
