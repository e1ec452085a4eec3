package main

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/internal/harness"
	"golang.org/x/mod/sumdb/note"
)

// TestCLIRequireSignoff: init --require copies the keys into the config
// (a later change to the file changes nothing), refuses k > n and an
// unknown verdict as usage errors; status shows the requirement, check the
// sign-off found, and update holds a release nobody reproduced, which
// status then shows with its sign-off.
func TestCLIRequireSignoff(t *testing.T) {
	r := harness.NewRawRepo(t)
	r.AddTarget("targets", "fw/image.bin", []byte("firmware v1"), nil)
	r.Publish()
	url := serveDir(t, r.Dir)
	tmp := t.TempDir()
	_, vkey, err := note.GenerateKey(rand.Reader, "rebuilder-a.example")
	if err != nil {
		t.Fatal(err)
	}
	keys := writeFile(t, tmp, "rebuilders.keys", []byte("# rebuilder A\n"+vkey+"\n"))
	init := func(state, require string) result {
		return runDevice(t, []string{deviceTime}, "-d", filepath.Join(tmp, state), "init", "--root", writeFile(t, tmp, "root.json", r.RootBytes(1)),
			"--repo-url", url, "--repo-id", r.ID, "--policy", writeFile(t, tmp, "policy", r.PolicyText(2)), "--approval", "auto", "--require", require)
	}
	for _, bad := range []string{"reproduced:2:" + keys, "mismatch:1:" + keys, "reproduced:0:" + keys, "reproduced:1", "reproduced:one:" + keys, "reviewed:1:" + filepath.Join(tmp, "nope")} {
		if res := init("bad", bad); res.code != 2 {
			t.Errorf("init --require %s: %+v", bad, res)
		}
	}
	if res := init("state", "reproduced:1:"+keys); res.code != 0 {
		t.Fatalf("init: %+v", res)
	}
	os.WriteFile(keys, []byte("# emptied after init\n"), 0o644)
	state := filepath.Join(tmp, "state")
	res := runDevice(t, []string{deviceTime}, "-d", state, "status")
	if res.code != 0 || !strings.Contains(res.stdout, "reproduced 1 of 1 (rebuilder-a.example)") {
		t.Fatalf("status: %+v", res)
	}
	var st device.Status
	decode(t, runDevice(t, []string{deviceTime}, "-d", state, "status", "--json").stdout, &st)
	if len(st.Require) != 1 || st.Require[0].Attesters[0] != "rebuilder-a.example" {
		t.Errorf("status --json: %+v", st.Require)
	}
	res = runDevice(t, []string{deviceTime}, "-d", state, "check")
	if res.code != 0 || !strings.Contains(res.stdout, "reproduced by nobody (1 of 1 required; NOT MET)") {
		t.Fatalf("check: %+v", res)
	}
	var out device.Result
	res = runDevice(t, []string{deviceTime}, "-d", state, "update", "--json")
	decode(t, res.stdout, &out)
	if res.code != 0 || out.Installed || out.Action != "hold" || !strings.Contains(out.Message, "none from rebuilder-a.example") {
		t.Fatalf("update of a release nobody reproduced: %+v", res)
	}
	res = runDevice(t, []string{deviceTime}, "-d", state, "status")
	if res.code != 0 || !strings.Contains(res.stdout, "pending (as of") || !strings.Contains(res.stdout, "Sign-off of fw/image.bin (sha256 ") ||
		!strings.Contains(res.stdout, "  reproduced by nobody (1 of 1 required; NOT MET)") {
		t.Fatalf("status of a release held for sign-off: %+v", res)
	}
}
