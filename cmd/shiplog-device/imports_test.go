package main

import (
	"os/exec"
	"strings"
	"testing"
)

// forbidden are packages the device binary must not link: servers, RPC
// stacks, log backends, metrics, the operators' CLI framework, test helpers.
var forbidden = []string{
	"google.golang.org/grpc",
	"github.com/transparency-dev/tessera",
	"github.com/google/trillian",
	"github.com/prometheus/",
	"github.com/spf13/cobra",
	"net/http/httptest",
	"testing",
	"github.com/shiplog/shiplog/log",
	"github.com/shiplog/shiplog/witness",
	"github.com/shiplog/shiplog/repo",
	"github.com/shiplog/shiplog/audit",
	"github.com/shiplog/shiplog/proto/ledger",
}

// allowedPrefixes are what client/... packages may import directly, besides
// the standard library (docs/ARCHITECTURE.md: the device links evidence/, proto/bundle,
// internal/durable, internal/capped and client/ only, plus go-tuf, merkle, x/ and protobuf).
var allowedPrefixes = []string{
	"golang.org/x/",
	"github.com/theupdateframework/go-tuf/v2/",
	"github.com/transparency-dev/merkle",
	"github.com/transparency-dev/formats",
	"google.golang.org/protobuf/",
	"github.com/shiplog/shiplog/evidence",
	"github.com/shiplog/shiplog/proto/bundle",
	"github.com/shiplog/shiplog/internal/durable",
	"github.com/shiplog/shiplog/internal/capped",
	"github.com/shiplog/shiplog/client/",
	"github.com/gofrs/flock", // the state lock: flock(2) on Unix, LockFileEx on Windows
}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func TestDeviceBinaryImports(t *testing.T) {
	deps := goList(t, "-deps", "github.com/shiplog/shiplog/cmd/shiplog-device")
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(d, f)) {
				t.Errorf("shiplog-device links %s", d)
			}
		}
	}
}

func TestClientPackagesImports(t *testing.T) {
	lines := goList(t, "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/shiplog/shiplog/client/...")
	for _, line := range lines {
		f := strings.Fields(line)
		for _, imp := range f[1:] {
			if isStd(imp) {
				continue
			}
			ok := false
			for _, p := range allowedPrefixes {
				if strings.HasPrefix(imp, p) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s imports %s, which the device may not link", f[0], imp)
			}
		}
		for _, imp := range f[1:] {
			if imp == "net/http/httptest" || imp == "testing" {
				t.Errorf("%s imports %s outside tests", f[0], imp)
			}
		}
	}
}

// isStd reports whether an import path is in the standard library (no dot
// in its first element).
func isStd(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return !strings.Contains(first, ".")
}
