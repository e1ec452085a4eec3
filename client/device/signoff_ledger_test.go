package device_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/approval"
	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/shiplog/shiplog/internal/harness"
	"github.com/shiplog/shiplog/repo"
)

// TestSignoffThroughTheRealLedger: the real ledger with two real witnesses;
// two rebuilders log their statements with POST /v1/attest; a device that
// requires both, and whose repository serves no evidence file, holds the
// release while one is logged and installs it once both are, finding them
// with GET /v1/attestations and proving each under the witnesses' quorum.
func TestSignoffThroughTheRealLedger(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a ledger and two witnesses")
	}
	h := harness.Start(t, harness.Witnesses(2))
	r := h.NewRepo(t, "example.com/firmware")
	fw := []byte("firmware built reproducibly")
	r.Add("fw.bin", fw)
	r.Sign()
	r.Publish()
	a, b := newAttester(t, "rebuilder-a.example"), newAttester(t, "rebuilder-b.example")
	logStatement := func(x attester) {
		t.Helper()
		sum := sha256.Sum256(fw)
		st := &signoff.Statement{SubjectName: "fw.bin", Subject: sum, Verdict: signoff.Reproduced, Repository: r.ID,
			Target: "fw.bin", TargetsRole: "targets", TargetsVersion: 2, Built: sum,
			Provenance: json.RawMessage(`{"source":"https://src.example/fw.tar.gz"}`), Time: time.Now().UTC().Truncate(time.Second)}
		env, err := signoff.Sign(st, x.signer, x.vkey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := repo.Attest(context.Background(), h.URL, nil, r.ID, env, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	logStatement(a)
	d := h.Device(t, r, func(c *device.Config) { c.Require = []device.Requirement{require(t, signoff.Reproduced, 2, a, b)} })
	res, err := d.Update(context.Background())
	if err != nil || res.Installed || res.Action != approval.Hold || !strings.Contains(res.Message, "1 of 2 required reproduced statements (rebuilder-a.example); none from rebuilder-b.example") {
		t.Fatalf("one statement logged: %+v, %v", res, err)
	}
	logStatement(b)
	res, err = d.Update(context.Background())
	if err != nil || !res.Installed {
		t.Fatalf("both statements logged: %+v, %v", res, err)
	}
	if !strings.Contains(res.Summary.Text(), "reproduced by rebuilder-a.example, rebuilder-b.example (2 of 2 required)") {
		t.Errorf("summary: %s", res.Summary.Text())
	}
}
