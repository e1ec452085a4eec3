package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// walk calls fn on every command of the tree.
func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, s := range c.Commands() {
		walk(s, fn)
	}
}

// TestCLIConvention checks docs/cli.md on every command: one name per idea,
// old spellings only as hidden aliases, log flags on long-running commands,
// --json with -o on every command that has either.
func TestCLIConvention(t *testing.T) {
	oldNames := map[string]string{"dir": "data-dir", "state": "data-dir", "serve": "listen", "http": "http-listen",
		"grpc": "grpc-listen", "verbose": "log-level", "repository": "repo-id", "repo": "repo-id", "token": "token-file"}
	longRunning := map[string]bool{"shiplog ledger serve": true, "shiplog witness serve": true, "shiplog audit": true, "shiplog repo serve": true}
	walk(rootCmd(), func(c *cobra.Command) {
		name := c.CommandPath()
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if want, old := oldNames[f.Name]; old && !f.Hidden {
				t.Errorf("%s: --%s is visible; the convention's name is --%s", name, f.Name, want)
			}
			if f.Hidden && f.Deprecated == "" && f.Name != "help" {
				t.Errorf("%s: hidden flag --%s is not marked deprecated", name, f.Name)
			}
		})
		if f := c.Flags().Lookup("data-dir"); f != nil && f.Shorthand != "d" {
			t.Errorf("%s: --data-dir without -d", name)
		}
		if longRunning[name] && (c.Flags().Lookup("log-level") == nil || c.Flags().Lookup("log-format") == nil) {
			t.Errorf("%s: a long-running command without --log-level and --log-format", name)
		}
		if c.Flags().Lookup("json") != nil && c.Flags().Lookup("output") == nil && name != "shiplog audit" {
			t.Errorf("%s: --json without -o/--output", name)
		}
		if c.Runnable() && !c.HasSubCommands() && c.Example == "" && !strings.HasPrefix(name, "shiplog completion") && name != "shiplog help" {
			t.Errorf("%s: no example", name)
		}
	})
}

func run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	c := rootCmd()
	c.SetArgs(args)
	c.SetOut(&out)
	c.SetErr(&errb)
	ran, err := c.ExecuteC()
	if err != nil {
		printError(&errb, ran, err, 1)
	}
	return out.String(), errb.String(), err
}

// TestOldSpellingsStillWork: a deprecated spelling sets the same value as the
// new one and prints a notice; a positional data directory too.
func TestOldSpellingsStillWork(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "w")
	// cobra prints pflag's deprecation notices with Print: stderr in the
	// binary, the Out writer here.
	if stdout, stderr, err := run(t, "witness", "init", "--dir", dir, "--name", "w.example"); err != nil || !strings.Contains(stdout+stderr, "--dir has been deprecated") {
		t.Fatalf("witness init --dir: %v %q", err, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "witness.skey")); err != nil {
		t.Fatal(err)
	}
	l := filepath.Join(t.TempDir(), "l")
	stdout, stderr, err := run(t, "ledger", "init", l, "--origin", "example.com/log", "--http-listen", "127.0.0.1:0", "--json")
	if err != nil || !strings.Contains(stderr, "deprecated; use --data-dir") {
		t.Fatalf("ledger init DIR: %v %q", err, stderr)
	}
	var out struct{ DataDir, VKey string }
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || !strings.HasPrefix(out.VKey, "example.com/log+") {
		t.Fatalf("ledger init --json: %v %q", err, stdout)
	}
}

// TestJSONErrors: a command asked for JSON reports its failure as one JSON
// object on stderr and nothing on stdout.
func TestJSONErrors(t *testing.T) {
	stdout, stderr, err := run(t, "repo", "status", "-d", filepath.Join(t.TempDir(), "none"), "-o", "json")
	var e jsonError
	if err == nil || stdout != "" || json.Unmarshal([]byte(stderr), &e) != nil || e.ExitCode != 1 || e.Error == "" {
		t.Fatalf("err %v stdout %q stderr %q", err, stdout, stderr)
	}
	if _, stderr, _ := run(t, "repo", "status", "-d", "x", "-o", "yaml"); !strings.Contains(stderr, "want text or json") {
		t.Fatalf("-o yaml: %q", stderr)
	}
}

func TestVersion(t *testing.T) {
	stdout, _, err := run(t, "version")
	if err != nil || !strings.HasPrefix(stdout, "shiplog ") || !strings.Contains(stdout, "go1.") {
		t.Fatalf("version: %v %q", err, stdout)
	}
	v2, _, _ := run(t, "--version")
	if v2 != stdout {
		t.Fatalf("--version %q, version %q", v2, stdout)
	}
}

func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		if stdout, _, err := run(t, "completion", sh); err != nil || !strings.Contains(stdout, "shiplog") {
			t.Errorf("completion %s: %v", sh, err)
		}
	}
}
