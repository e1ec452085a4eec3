// Command shiplog-device is the device agent: it installs an update only when
// the TUF metadata verifies, the release is proven in a transparency log
// under a witness-cosigned checkpoint its policy trusts, and the consumer's
// approval policy allows it. See docs/device.md.
//
//	shiplog-device [--state DIR] [--time RFC3339] COMMAND [flags]
//
// Commands: init, check, update, install-bundle FILE, verify-bundle FILE,
// status, verify-evidence FILE, and tuf-client (the tuf-conformance client
// protocol; also entered when the first argument is --metadata-dir or
// --metadata-url).
//
// Environment: SHIPLOG_DEVICE_STATE (default state directory),
// SHIPLOG_DEVICE_TIME (reference time, RFC 3339; the tuf-conformance suite's
// faketime does not reach Go programs), SHIPLOG_DEVICE_FAULT (a test hook:
// kill the process with SIGKILL at the Nth install step).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// exitError carries an exit code.
type exitError struct{ code int }

func (e exitError) Error() string { return "exit " + strconv.Itoa(e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	var ee exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "shiplog-device:", err)
		os.Exit(1)
	}
}

type globals struct {
	state string
	time  time.Time
	in    io.Reader
	out   io.Writer
	err   io.Writer
}

const usage = `usage: shiplog-device [--state DIR] [--time RFC3339] COMMAND [flags]

commands:
  init             create the state directory (trusted root, repository, policy)
  check            show what an update would change; changes nothing
  update           update under the approval policy (--yes, --json)
  install-bundle   install an offline update bundle FILE (--yes, --json)
  verify-bundle    verify a bundle FILE against the device's trusted state
  status           show the trusted state and the installed version
  verify-evidence  re-check a fork evidence FILE
  tuf-client       the tuf-conformance client protocol (plain TUF, no log)

Run "shiplog-device COMMAND --help" for a command's flags and an example.
`

func run(ctx context.Context, args []string, in io.Reader, out, errw io.Writer) error {
	if len(args) > 0 && (strings.HasPrefix(args[0], "--metadata-") || strings.HasPrefix(args[0], "-metadata-")) {
		return tufClient(ctx, args, errw)
	}
	g := globals{in: in, out: out, err: errw}
	fs := flag.NewFlagSet("shiplog-device", flag.ContinueOnError)
	fs.SetOutput(errw)
	fs.Usage = func() { fmt.Fprint(errw, usage) }
	fs.StringVar(&g.state, "state", envOr("SHIPLOG_DEVICE_STATE", "/var/lib/shiplog-device"), "state directory")
	ts := fs.String("time", os.Getenv("SHIPLOG_DEVICE_TIME"), "reference time for expiry checks (RFC 3339; default now)")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *ts != "" {
		t, err := time.Parse(time.RFC3339, *ts)
		if err != nil {
			return fmt.Errorf("--time: %w", err)
		}
		g.time = t
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitError{2}
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "init":
		return cmdInit(g, rest)
	case "check":
		return cmdCheck(ctx, g, rest)
	case "update":
		return cmdUpdate(ctx, g, rest)
	case "install-bundle":
		return cmdInstallBundle(ctx, g, rest)
	case "verify-bundle":
		return cmdVerifyBundle(ctx, g, rest)
	case "status":
		return cmdStatus(g, rest)
	case "verify-evidence":
		return cmdVerifyEvidence(g, rest)
	case "tuf-client":
		return tufClient(ctx, rest, errw)
	case "help":
		fmt.Fprint(out, usage)
		return nil
	}
	fmt.Fprintf(errw, "unknown command %q\n\n%s", cmd, usage)
	return exitError{2}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// newFlags returns a command's flag set with its usage and example.
func newFlags(g globals, name, args, summary, example string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(g.err)
	fs.Usage = func() {
		fmt.Fprintf(g.err, "usage: shiplog-device %s %s\n\n%s\n\nflags:\n", name, args, summary)
		fs.PrintDefaults()
		fmt.Fprintf(g.err, "\nExample:\n%s\n", example)
	}
	return fs
}

// parse parses a command's flags, allowing flags after positional
// arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitError{0}
			}
			return nil, exitError{2}
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// faultHook returns the SHIPLOG_DEVICE_FAULT hook: SIGKILL at the Nth step.
func faultHook() func(string) {
	n, err := strconv.Atoi(os.Getenv("SHIPLOG_DEVICE_FAULT"))
	if err != nil || n <= 0 {
		return nil
	}
	count := 0
	return func(step string) {
		count++
		if count == n {
			fmt.Fprintf(os.Stderr, "shiplog-device: fault injected at step %d (%s)\n", n, step)
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
}
