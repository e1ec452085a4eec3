package clilog

import "errors"

// Output is the value of the -o/--output flag shared by both commands
// (docs/cli.md): "json" sets *AsJSON, the same bool --json sets, and
// "text" clears it. It satisfies pflag.Value.
type Output struct {
	AsJSON *bool
	v      string
}

// String returns the format last set ("text" when none was).
func (o *Output) String() string {
	if o.v == "" {
		return "text"
	}
	return o.v
}

// Type names the flag's value in help text.
func (o *Output) Type() string { return "format" }

// Set accepts "text" or "json".
func (o *Output) Set(s string) error {
	switch s {
	case "json":
		*o.AsJSON = true
	case "text":
		*o.AsJSON = false
	default:
		return errors.New("want text or json")
	}
	o.v = s
	return nil
}
