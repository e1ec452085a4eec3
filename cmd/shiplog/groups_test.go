package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestMistypedNestedSubcommandExitsNonZero: `shiplog repo sgin` and
// `shiplog bundle build` used to print help and exit 0, so a script went on
// to publish. They fail now, naming the command; help still succeeds.
func TestMistypedNestedSubcommandExitsNonZero(t *testing.T) {
	for _, tc := range []struct {
		args []string
		fail bool
		want string
	}{
		{[]string{"repo", "sgin"}, true, `unknown command "sgin" for "shiplog repo"; did you mean sign?`},
		{[]string{"bundle", "build"}, true, `unknown command "build" for "shiplog bundle"`},
		{[]string{"nosuch"}, true, `unknown command "nosuch"`},
		{[]string{"repo", "--help"}, false, "Available Commands"},
		{[]string{"repo"}, false, "Available Commands"},
		{[]string{"--help"}, false, "Available Commands"},
	} {
		root := rootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(tc.args)
		err := root.Execute()
		if (err != nil) != tc.fail {
			t.Errorf("%v: err %v, want failure %v", tc.args, err, tc.fail)
			continue
		}
		got := out.String()
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%v: %q does not contain %q", tc.args, got, tc.want)
		}
	}
}
