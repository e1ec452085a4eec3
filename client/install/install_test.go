package install

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

func put(t *testing.T, inst Installer, id string, files map[string]string) Stage {
	t.Helper()
	s, err := inst.Stage(id)
	if err != nil {
		t.Fatal(err)
	}
	for p, c := range files {
		w, err := s.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, c)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func read(t *testing.T, inst Installer, p string) string {
	r, err := inst.Open(p)
	if err != nil {
		return ""
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return string(b)
}

func TestDirSwitchAndRollBack(t *testing.T) {
	d := &Dir{Root: t.TempDir()}
	if err := put(t, d, "v1", map[string]string{"fw/a": "one"}).Switch(); err != nil {
		t.Fatal(err)
	}
	d.Settle("v1")
	s := put(t, d, "v2", map[string]string{"fw/a": "two"})
	if read(t, d, "fw/a") != "one" {
		t.Fatal("staged version visible before the switch")
	}
	s.Switch()
	if read(t, d, "fw/a") != "two" {
		t.Fatal("switch did not take")
	}
	// The state was never committed: boot settles back on v1.
	if err := d.Settle("v1"); err != nil {
		t.Fatal(err)
	}
	if a, _ := d.Active(); a != "v1" || read(t, d, "fw/a") != "one" {
		t.Fatalf("rollback: active %q", a)
	}
	if vs, _ := os.ReadDir(filepath.Join(d.Root, "versions")); len(vs) != 1 {
		t.Fatalf("%d versions left", len(vs))
	}
	if err := d.Settle("v9"); err == nil {
		t.Fatal("settled on a version that does not exist")
	}
}

func TestAttackPathTraversal(t *testing.T) {
	for _, inst := range []Installer{&Dir{Root: t.TempDir()}} {
		s, err := inst.Stage("v1")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"../evil", "/etc/passwd", "a/../../b", "", "a\\b", "..", "a/./../.."} {
			if _, err := s.Create(p); err == nil {
				t.Errorf("path %q accepted", p)
			}
		}
	}
	if _, err := (&Dir{Root: t.TempDir()}).Stage("../x"); err == nil {
		t.Error("version id ../x accepted")
	}
}

func TestABSlots(t *testing.T) {
	ab := &AB{Root: t.TempDir(), Image: "fw/image.bin"}
	put(t, ab, "v1", map[string]string{"fw/image.bin": "one"}).Switch()
	put(t, ab, "v2", map[string]string{"fw/image.bin": "two"}).Switch()
	if read(t, ab, "fw/image.bin") != "two" {
		t.Fatal("v2 not active")
	}
	if err := ab.Settle("v1"); err != nil {
		t.Fatal(err)
	}
	if read(t, ab, "fw/image.bin") != "one" {
		t.Fatal("rollback to slot a failed")
	}
	s, _ := ab.Stage("v3")
	if _, err := s.Create("other"); err == nil {
		t.Error("A/B accepted a second target path")
	}
	// Staging v3 overwrites the inactive slot (v2): it is no longer
	// restorable, and the active one is untouched.
	if err := ab.Settle("v2"); err == nil {
		t.Error("settled on an invalidated slot")
	}
	if read(t, ab, "fw/image.bin") != "one" {
		t.Fatal("active slot disturbed")
	}
}
