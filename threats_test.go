package shiplog_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestThreatsNameRealTests: every test docs/THREATS.md cites exists, so the
// map from threat to proof cannot silently rot.
func TestThreatsNameRealTests(t *testing.T) {
	doc, err := os.ReadFile("docs/THREATS.md")
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	funcRE := regexp.MustCompile(`(?m)^func (Test\w+)\(`)
	filepath.Walk(".", func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, m := range funcRE.FindAllStringSubmatch(string(b), -1) {
			defined[m[1]] = true
		}
		return nil
	})
	cited := regexp.MustCompile(`\bTest[A-Z]\w+`).FindAllString(string(doc), -1)
	if len(cited) < 40 {
		t.Fatalf("THREATS.md cites only %d tests", len(cited))
	}
	for _, name := range cited {
		if !defined[name] {
			t.Errorf("docs/THREATS.md cites %s, which no test defines", name)
		}
	}
}
