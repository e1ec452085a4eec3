package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/shiplog/shiplog/client/tufclient"
)

// tufClient runs the tuf-conformance client protocol: global flags, then
// init ROOT, refresh or download. Exit 0 on success, 1 on failure.
func tufClient(ctx context.Context, args []string, errw io.Writer) error {
	fs := flag.NewFlagSet("tuf-client", flag.ContinueOnError)
	fs.SetOutput(errw)
	var c tufclient.Client
	var names multiFlag
	fs.StringVar(&c.MetadataDir, "metadata-dir", "", "trusted metadata directory")
	fs.StringVar(&c.MetadataURL, "metadata-url", "", "repository metadata URL")
	fs.StringVar(&c.TargetBaseURL, "target-base-url", "", "repository targets URL")
	fs.StringVar(&c.TargetDir, "target-dir", "", "where downloaded targets are stored")
	fs.Var(&names, "target-name", "target path to download (repeatable)")
	ts := fs.String("time", os.Getenv("SHIPLOG_DEVICE_TIME"), "reference time (RFC 3339)")
	if err := fs.Parse(args); err != nil {
		return exitError{1}
	}
	if *ts != "" {
		t, err := time.Parse(time.RFC3339, *ts)
		if err != nil {
			return err
		}
		c.Time = t
	}
	if c.MetadataDir == "" || fs.NArg() == 0 {
		return fmt.Errorf("usage: shiplog-device --metadata-dir DIR [--metadata-url URL] [--target-name P]... [--target-dir D] [--target-base-url U] init ROOT|refresh|download")
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
