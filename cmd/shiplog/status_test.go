package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestStatusNextStepsRunAsWritten: `shiplog repo status` ends with the next
// command in the safe order. Each suggested command must exist with the
// flags it names, and take the directory as -d (the positional form is
// deprecated): it used to suggest `repo register DIR --token FILE` (no such
// flag) and `repo refresh … --every` (no such flag).
func TestStatusNextStepsRunAsWritten(t *testing.T) {
	w := newWorkspace(t)
	at, must, dir := w.at, w.must, w.dir
	seen := map[string]bool{}
	check := func(stage string) {
		t.Helper()
		out := must("repo", "status", "-d", dir)
		next := out[strings.Index(out, "next ("):]
		cmds := regexp.MustCompile("`(shiplog [^`]*)`").FindAllStringSubmatch(next, -1)
		if len(cmds) == 0 {
			t.Fatalf("%s: no command suggested:\n%s", stage, out)
		}
		for _, m := range cmds {
			args := strings.Fields(m[1])[1:]
			for i, a := range args {
				if a == strings.ToUpper(a) && !strings.HasPrefix(a, "-") {
					args[i] = "x" // a placeholder: KEY, URL, FILE, POLICY
				}
			}
			cmd, rest, err := rootCmd().Find(args)
			if err != nil {
				t.Errorf("%s: %q: %v", stage, m[1], err)
				continue
			}
			if err := cmd.ParseFlags(rest); err != nil {
				t.Errorf("%s: %q: %v", stage, m[1], err)
				continue
			}
			if pos := cmd.Flags().Args(); len(pos) > 0 || cmd.Flags().Lookup("data-dir").Value.String() != dir {
				t.Errorf("%s: %q: the directory is not given with -d (positional %v)", stage, m[1], pos)
			}
			seen[cmd.Name()] = true
		}
	}
	w.init()
	check("after init")
	w.signRootAndTargets()
	check("signed, not registered")
	w.register()
	check("registered, not exposed")
	os.WriteFile(at("app.bin"), []byte("app"), 0o644)
	must("repo", "add", "-d", dir, at("app.bin"), "--path", "app.bin")
	must("repo", "sign", "-d", dir, "--key", at("targets.key"))
	check("targets signed, not logged")
	must("publish", "-d", dir, "--policy", at("policy.txt"), "--snapshot-key", at("snapshot.key"), "--timestamp-key", at("timestamp.key"))
	check("nothing pending")
	for _, name := range []string{"sign", "register", "publish", "refresh"} {
		if !seen[name] {
			t.Errorf("no stage suggested `%s`", name)
		}
	}
}
