// Package clilog builds the logger that --log-level and --log-format ask
// for, the same way in both binaries (docs/cli.md "Logs"): slog text or JSON
// on stderr, and every duration logged as seconds (a float), not
// nanoseconds.
package clilog

import (
	"fmt"
	"io"
	"log/slog"
)

// Levels and Formats are the accepted values, for help and completion.
var (
	Levels  = []string{"debug", "info", "warn", "error"}
	Formats = []string{"text", "json"}
)

// New returns a logger writing to w at level ("debug", "info", "warn" or
// "error") in format ("text" or "json").
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	o := &slog.HandlerOptions{Level: lv, ReplaceAttr: seconds}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// seconds logs a time.Duration as float seconds.
func seconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key, a.Value.Duration().Seconds())
	}
	return a
}
