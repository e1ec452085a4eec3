package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/shiplog/shiplog/client/tufclient"
	"github.com/spf13/pflag"
)

var cmdTUFClient = &command{
	name: "tuf-client", short: "the tuf-conformance client protocol (plain TUF, no log)", args: "--metadata-dir DIR [--metadata-url URL] [--target-name P]... [--target-dir D] [--target-base-url U] init ROOT|refresh|download",
	minArgs: 1, maxArgs: 2,
	summary: "Plain TUF (no transparency log): the tuf-conformance client protocol. Exit 0 on\nsuccess, 1 on failure. Also entered when the first argument is --metadata-dir or\n--metadata-url.",
	example: "  shiplog-device tuf-client --metadata-dir md --metadata-url http://127.0.0.1:8000/metadata init 1.root.json",
	flags: func(fs *pflag.FlagSet, _ *globals) func(context.Context, []string) error {
		var c tufclient.Client
		var names []string
		var ts string
		tufFlags(fs, &c, &names, &ts)
		return nil
	},
}

func tufFlags(fs *pflag.FlagSet, c *tufclient.Client, names *[]string, ts *string) {
	fs.StringVar(&c.MetadataDir, "metadata-dir", "", "trusted metadata directory")
	fs.StringVar(&c.MetadataURL, "metadata-url", "", "repository metadata URL")
	fs.StringVar(&c.TargetBaseURL, "target-base-url", "", "repository targets URL")
	fs.StringVar(&c.TargetDir, "target-dir", "", "where downloaded targets are stored")
	fs.StringArrayVar(names, "target-name", nil, "target path to download (repeatable)")
	fs.StringVar(ts, "time", os.Getenv("SHIPLOG_DEVICE_TIME"), "reference time (RFC 3339)")
}

// tufClient runs the tuf-conformance client protocol: flags, then init ROOT,
// refresh or download. Exit 0 on success, 1 on failure (the protocol's
// codes, usage errors included).
func tufClient(ctx context.Context, args []string, errw io.Writer) error {
	fs := pflag.NewFlagSet("tuf-client", pflag.ContinueOnError)
	fs.SetOutput(errw)
	var c tufclient.Client
	var names []string
	var ts string
	tufFlags(fs, &c, &names, &ts)
	if err := fs.Parse(args); err != nil {
		fmt.Fprintln(errw, "shiplog-device tuf-client:", err)
		return exitError{1}
	}
	if ts != "" {
		t, err := time.Parse(time.RFC3339, ts)
		if err != nil {
			return err
		}
		c.Time = t
	}
	if c.MetadataDir == "" || fs.NArg() == 0 {
		return fmt.Errorf("usage: shiplog-device %s %s", cmdTUFClient.name, cmdTUFClient.args)
	}
	switch fs.Arg(0) {
	case "init":
		if fs.NArg() != 2 {
			return fmt.Errorf("init needs the trusted root file")
		}
		b, err := readFile(fs.Arg(1), 512000)
		if err != nil {
			return err
		}
		return c.Init(b)
	case "refresh":
		_, err := c.Refresh(ctx)
		return err
	case "download":
		return c.Download(ctx, names)
	}
	return fmt.Errorf("unknown tuf-client command %q", fs.Arg(0))
}
