// Package layers holds the test that keeps the house's floors apart
// (docs/ARCHITECTURE.md, "Layers"): evidence/ and proto/ at the bottom import nothing of
// ours above them; client/ and witness/ stand on them; log/, repo/, attest/
// and audit/ above; the commands, deploy/ (the sandbox), the load generators (bench/)
// and the tests' harness (internal/harness) on top. Model: go/build's deps_test.go.
package layers

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/shiplog/shiplog"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func list(t *testing.T, patterns ...string) []pkg {
	t.Helper()
	args := append([]string{"list", "-deps=false", "-json=ImportPath,Imports,Deps"}, patterns...)
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func floor(path string) int {
	rel := strings.TrimPrefix(path, module+"/")
	if rel == "internal/harness" {
		return 3 // the tests' harness starts every part; only tests and bench/ import it
	}
	switch top, _, _ := strings.Cut(rel, "/"); top {
	case "evidence", "proto", "internal":
		return 0
	case "client", "witness":
		return 1
	case "log", "repo", "audit", "attest":
		return 2
	case "cmd", "deploy", "bench":
		return 3
	}
	return 3
}

// TestFloors: no package imports a package of ours on a higher floor.
func TestFloors(t *testing.T) {
	for _, p := range list(t, module+"/...") {
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			if floor(imp) > floor(p.ImportPath) {
				t.Errorf("%s (floor %d) imports %s (floor %d)", p.ImportPath, floor(p.ImportPath), imp, floor(imp))
			}
		}
	}
}

// TestEvidenceImports: the verification core imports only the standard
// library, golang.org/x, transparency-dev's merkle and formats, and itself.
func TestEvidenceImports(t *testing.T) {
	allowed := []string{"golang.org/x/", "github.com/transparency-dev/merkle", "github.com/transparency-dev/formats", module + "/evidence"}
	for _, p := range list(t, module+"/evidence/...") {
		for _, imp := range p.Imports {
			if !strings.Contains(strings.Split(imp, "/")[0], ".") {
				continue // standard library
			}
			ok := false
			for _, a := range allowed {
				ok = ok || strings.HasPrefix(imp, a)
			}
			if !ok {
				t.Errorf("%s imports %s; evidence/ may import only the standard library, golang.org/x, merkle, formats and evidence/", p.ImportPath, imp)
			}
		}
	}
}

// TestDeviceSignsNothing: the device binary verifies and never signs, so it
// links none of the signer code (internal/keyref: PKCS #11 tokens and cloud
// KMS clients) nor the vendor's key handling.
func TestDeviceSignsNothing(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", module+"/cmd/shiplog-device").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{module + "/internal/keyref", module + "/repo/keys", "github.com/miekg/pkcs11", "github.com/sigstore/sigstore/pkg/signature/kms"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("shiplog-device links %s", dep)
			}
		}
	}
}

// TestDeviceParsesStatementsItself: evidence/signoff reads in-toto
// statements with its own strict parser; the in-toto reference library
// (github.com/in-toto/attestation) is a test dependency only (attest's
// interop tests), never linked into the device.
func TestDeviceParsesStatementsItself(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", module+"/cmd/shiplog-device").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/in-toto/") {
			t.Errorf("shiplog-device links %s", dep)
		}
	}
}
