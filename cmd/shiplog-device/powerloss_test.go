package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/internal/harness"
)

var deviceTime = "SHIPLOG_DEVICE_TIME=" + harness.Now.Format("2006-01-02T15:04:05Z07:00")

// TestPowerLoss runs the real binary and kills it with SIGKILL at every
// step of an install (SHIPLOG_DEVICE_FAULT=k), then checks that the device
// boots into a complete version with consistent state, and that a later
// update completes.
func TestPowerLoss(t *testing.T) {
	for _, kind := range []string{"dir", "ab"} {
		t.Run(kind, func(t *testing.T) { powerLoss(t, kind) })
	}
}

func powerLoss(t *testing.T, kind string) {
	r := harness.NewRawRepo(t)
	r.AddTarget("targets", "fw/image.bin", []byte("firmware v1"), nil)
	if kind == "dir" {
		r.AddTarget("targets", "fw/boot.bin", []byte("boot v1"), nil)
		r.AddTarget("targets", "docs/readme.txt", []byte("readme"), nil)
	}
	r.Publish()
	url := serveDir(t, r.Dir)
	tmp := t.TempDir()
	base := filepath.Join(tmp, "base")
	args := []string{"-d", base, "init", "--root", writeFile(t, tmp, "root.json", r.RootBytes(1)),
		"--repo-url", url, "--repo-id", r.ID, "--policy", writeFile(t, tmp, "policy", r.PolicyText(2)), "--approval", "auto"}
	if kind == "ab" {
		args = append(args, "--installer", "ab", "--image", "fw/image.bin")
	}
	if res := runDevice(t, nil, args...); res.code != 0 {
		t.Fatalf("init: %+v", res)
	}
	if res := runDevice(t, []string{deviceTime}, "-d", base, "update", "--yes"); res.code != 0 {
		t.Fatalf("first update: %+v", res)
	}
	old := checkConsistent(t, base, kind)
	// Release 2: the image changes, a file is added, one removed.
	r.AddTarget("targets", "fw/image.bin", []byte("firmware v2, a bit longer"), nil)
	if kind == "dir" {
		r.AddTarget("targets", "fw/extra.bin", []byte("extra"), nil)
		r.RemoveTarget("targets", "docs/readme.txt")
	}
	r.Publish()

	killed := 0
	for k := 1; ; k++ {
		dir := filepath.Join(tmp, fmt.Sprintf("k%d", k))
		if out, err := exec.Command("cp", "-a", base, dir).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		res := runDevice(t, []string{deviceTime, fmt.Sprintf("SHIPLOG_DEVICE_FAULT=%d", k)}, "-d", dir, "update", "--yes")
		if !res.killed {
			if res.code != 0 {
				t.Fatalf("step %d: update failed: %+v", k, res)
			}
			if got := checkConsistent(t, dir, kind); got == old {
				t.Fatalf("update without a crash did not install")
			}
			break
		}
		killed++
		id := checkConsistent(t, dir, kind) // boots, state readable, version complete
		// And the next update completes.
		if res := runDevice(t, []string{deviceTime}, "-d", dir, "update", "--yes"); res.code != 0 {
			t.Fatalf("step %d: update after the crash: %+v", k, res)
		}
		if got := checkConsistent(t, dir, kind); got == id && id == old {
			t.Fatalf("step %d: update after the crash did not install", k)
		}
		os.RemoveAll(dir)
	}
	if killed < 5 {
		t.Fatalf("only %d fault points were reached", killed)
	}
	t.Logf("%s: killed at each of %d steps", kind, killed)
}

// checkConsistent opens the device as a boot would (status) and checks that
// the installed files are exactly the manifest of the trusted state, and
// returns the installed version.
func checkConsistent(t *testing.T, dir, kind string) string {
	t.Helper()
	res := runDevice(t, nil, "-d", dir, "status", "--json")
	if res.code != 0 {
		t.Fatalf("status after crash: %+v", res)
	}
	var st device.Status
	decode(t, res.stdout, &st)
	if st.Installed == nil {
		t.Fatalf("nothing installed: %s", res.stdout)
	}
	if st.Active != st.Installed.ID {
		t.Fatalf("active %q, state names %q", st.Active, st.Installed.ID)
	}
	read := func(path string) ([]byte, error) {
		return os.ReadFile(filepath.Join(dir, "install", "current", filepath.FromSlash(path)))
	}
	if kind == "ab" {
		var boot map[string]string
		b, _ := os.ReadFile(filepath.Join(dir, "install", "boot.json"))
		json.Unmarshal(b, &boot)
		read = func(string) ([]byte, error) {
			return os.ReadFile(filepath.Join(dir, "install", "slot-"+boot["active"]))
		}
	}
	for path, f := range st.Installed.Files {
		b, err := read(path)
		if err != nil {
			t.Fatalf("installed %s: %v", path, err)
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(b)) != f.Length {
			t.Fatalf("installed %s does not match the state", path)
		}
	}
	if kind == "dir" {
		n := 0
		filepath.Walk(filepath.Join(dir, "install", "current")+"/", func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				n++
			}
			return nil
		})
		if n != len(st.Installed.Files) {
			t.Fatalf("%d files installed, state lists %d", n, len(st.Installed.Files))
		}
		vs, _ := os.ReadDir(filepath.Join(dir, "install", "versions"))
		if len(vs) != 1 {
			t.Fatalf("leftover versions after boot: %d", len(vs))
		}
	}
	return st.Installed.ID
}
