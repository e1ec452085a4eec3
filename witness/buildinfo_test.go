package witness_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServeExportsBuildInfo: `shiplog witness serve` says which build runs
// on /metrics (shiplog_build_info, docs/cli.md "Version").
func TestServeExportsBuildInfo(t *testing.T) {
	dir := t.TempDir()
	initWitnessDir(t, dir, "witness.test")
	p := startWitnessProcess(t, dir)
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), "shiplog_build_info{goversion=") {
		t.Fatalf("/metrics lacks shiplog_build_info:\n%.2000s", b)
	}
}
