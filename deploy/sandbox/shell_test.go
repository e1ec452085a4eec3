package sandbox

import "testing"

// TestShellJoinPastesAsTyped: the commands the sandbox prints can be pasted
// into a shell and give the program the same arguments.
func TestShellJoinPastesAsTyped(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"repo", "add", "-d", "repo", "build/app.bin"}, "repo add -d repo build/app.bin"},
		{[]string{"--custom", `{"release_notes":"Firmware 1.0."}`}, `--custom '{"release_notes":"Firmware 1.0."}'`},
		{[]string{"--build", "go build -o app.bin ."}, "--build 'go build -o app.bin .'"},
		{[]string{"it's"}, `'it'\''s'`},
		{[]string{""}, "''"},
		{[]string{"--source", "file:///tmp/x.tar.gz", "key=a+b@c"}, "--source file:///tmp/x.tar.gz key=a+b@c"},
	} {
		if got := shellJoin(c.args); got != c.want {
			t.Errorf("shellJoin(%q) = %s, want %s", c.args, got, c.want)
		}
	}
}
