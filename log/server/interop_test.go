package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/shiplog/shiplog/witness/witnesstest"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// TestInteropLedgerWithLitewitnessAndOurWitness: our ledger gets its
// checkpoints cosigned by a real "shiplog witness serve" process and by
// torchwood's litewitness (a witness nobody here wrote) under a policy that
// needs both, and every cosignature on the published checkpoint verifies
// with transparency-dev/formats' cosignature/v1 verifiers.
func TestInteropLedgerWithLitewitnessAndOurWitness(t *testing.T) {
	bin := shiplogBin(t)
	var ours string
	var lite *witnesstest.Litewitness
	n := startNode(t, nodeOptions{policy: func(vkey string) string {
		ours = startWitnessProcesses(t, bin, vkey, 1)
		lite = witnesstest.StartLitewitness(t, "litewitness.test", map[string]string{origin: vkey})
		return fmt.Sprintf("log %s\n%switness lite %s %s\ngroup both all w0 lite\nquorum both\n", vkey, ours, lite.VKey, lite.URL)
	}})
	repo := kit.NewRandomRepo(expires)
	if rc, r := n.register(fw, repo.RootBytes()); r.code != 200 || rc.Proof == "" {
		t.Fatalf("register: %d %s", r.code, r.body)
	}
	for v := int64(1); v <= 3; v++ {
		rc, r := n.publish(fw, "targets", repo.Targets(v), "20s")
		if r.code != 200 || rc.Proof == "" {
			t.Fatalf("targets v%d: %d %s", v, r.code, r.body)
		}
		inc, err := evidence.VerifyEntry(fw, "targets", uint64(v), repo.Targets(v), []byte(rc.Proof), n.policy)
		if err != nil {
			t.Fatalf("proof of targets v%d: %v", v, err)
		}
		if len(inc.Checkpoint.Cosigners) != 2 {
			t.Errorf("targets v%d: %d cosigners, want 2", v, len(inc.Checkpoint.Cosigners))
		}
	}

	// The published checkpoint, checked with the ecosystem's verifiers only.
	cp := n.do("GET", "/checkpoint", nil).body
	logV, err := note.NewVerifier(n.policy.Logs[0].VKey)
	if err != nil {
		t.Fatal(err)
	}
	oursVKey := strings.Fields(ours)[2]
	ov, err := fnote.NewVerifierForCosignatureV1(oursVKey)
	if err != nil {
		t.Fatal(err)
	}
	lv, err := fnote.NewVerifierForCosignatureV1(lite.VKey)
	if err != nil {
		t.Fatal(err)
	}
	opened, err := note.Open(cp, note.VerifierList(logV, ov, lv))
	if err != nil {
		t.Fatalf("checkpoint does not verify with formats verifiers: %v\n%s", err, cp)
	}
	if len(opened.Sigs) != 3 {
		t.Errorf("%d verified signatures, want the log's, ours and litewitness's\n%s", len(opened.Sigs), cp)
	}
}
