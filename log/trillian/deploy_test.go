package trillian_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/shiplog/shiplog/log/server"
	"github.com/shiplog/shiplog/log/trillian/trilliantest"
)

// TestDeployScriptsStartReplicas: deploy/trillian/up.sh STATE 2 starts
// PostgreSQL, Trillian and two ledger replicas; a release registered
// through one and published through the other is proven under the
// ledger's policy; kill.sh and restart.sh bring a replica back on its port.
func TestDeployScriptsStartReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("builds shiplog and starts a deployment")
	}
	c := trilliantest.StartWithLedgers(t, 2)
	urls := strings.Fields(c.Env["LEDGER_URLS"])
	if len(urls) != 2 {
		t.Fatalf("LEDGER_URLS = %q", c.Env["LEDGER_URLS"])
	}
	dir := c.Env["LEDGER_DIR"]
	token, err := os.ReadFile(filepath.Join(dir, server.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	pb, err := os.ReadFile(filepath.Join(dir, server.PolicyFile))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse(pb)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	post := func(u string, body []byte, auth bool) (int, []byte) {
		req, _ := http.NewRequest("POST", u, bytes.NewReader(body))
		if auth {
			req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	r := kit.NewRandomRepo(time.Now().Add(time.Hour))
	if code, b := post(urls[0]+"/v1/admin/repositories?wait=0&id=example.com/deploy", r.RootBytes(), true); code != 200 {
		t.Fatalf("register: %d %s", code, b)
	}
	data := r.Targets(1)
	code, b := post(urls[1]+"/v1/publish?repo=example.com/deploy&role=targets&wait=20s", data, false)
	var rc struct{ Proof string }
	if code != 200 || json.Unmarshal(b, &rc) != nil || rc.Proof == "" {
		t.Fatalf("publish: %d %s", code, b)
	}
	if _, err := evidence.VerifyEntry("example.com/deploy", "targets", 1, data, []byte(rc.Proof), pol); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill("ledger_0"); err != nil {
		t.Fatal(err)
	}
	if _, err := hc.Get(urls[0] + "/readyz"); err == nil {
		t.Fatal("killed replica still answers")
	}
	if err := c.Restart("ledger_0"); err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get(urls[0] + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("restarted replica: %v %v", err, resp)
	}
	resp.Body.Close()
	resp, err = hc.Get(fmt.Sprintf("%s/v1/repositories/example.com/deploy/roles/targets", urls[0]))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("restarted replica does not know the release: %v %v", err, resp)
	}
	resp.Body.Close()
}
