package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// deviceReference is docs/cli/shiplog-device.md: the help of the binary and
// of every command, as --help prints it.
func deviceReference() []byte {
	var b bytes.Buffer
	b.WriteString("# shiplog-device\n\nGenerated from `shiplog-device --help` and `shiplog-device help COMMAND` by\n`TestCLIReferenceCurrent`; the convention is in [docs/cli.md](../cli.md).\n\n```\n")
	g := &globals{}
	g.fs = g.flagSet()
	usage(&b, g)
	b.WriteString("```\n")
	for _, c := range commands {
		b.WriteString("\n## shiplog-device " + c.name + "\n\n```\n")
		c.usage(&b)
		b.WriteString("```\n")
	}
	return b.Bytes()
}

// TestCLIReferenceCurrent fails when docs/cli/shiplog-device.md differs from
// what the binary's help says. To update it:
//
//	SHIPLOG_UPDATE_CLI_DOCS=1 go test ./cmd/shiplog-device -run TestCLIReferenceCurrent
func TestCLIReferenceCurrent(t *testing.T) {
	t.Setenv("SHIPLOG_DEVICE_STATE", "")
	t.Setenv("SHIPLOG_DEVICE_TIME", "")
	path := filepath.Join("..", "..", "docs", "cli", "shiplog-device.md")
	want := deviceReference()
	if os.Getenv("SHIPLOG_UPDATE_CLI_DOCS") != "" {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if have, err := os.ReadFile(path); err != nil || !bytes.Equal(have, want) {
		t.Errorf("docs/cli/shiplog-device.md is out of date: run SHIPLOG_UPDATE_CLI_DOCS=1 go test ./cmd/shiplog-device -run TestCLIReferenceCurrent")
	}
}
