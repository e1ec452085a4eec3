package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/shiplog/shiplog/log/conformance"
	"github.com/shiplog/shiplog/log/server"
)

// TestSignoffEndToEnd runs issue 17's flow with the commands people run,
// against the real ledger with two real witnesses (quorum 2): a vendor
// declares the provenance of a reproducible Go program and of a binary not
// built from it, two rebuilders rebuild both (reproduced; mismatch), a
// reviewer reviews (the mismatch release is refused), the vendor pulls the
// statements beside its metadata, a device's check requiring 2 of 2
// reproduced statements passes for the honest target and refuses the other,
// and a bundle carries the evidence.
func TestSignoffEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real ledger and witnesses, builds Go programs")
	}
	ledgerDir, _ := conformance.Init(t, "signoff.example/log", server.Config{}, 2, 2)
	ledgerURL, _ := conformance.Serve(t, ledgerDir, server.Options{})
	work := t.TempDir()
	at := func(name string) string { return filepath.Join(work, name) }
	run := func(args ...string) string {
		t.Helper()
		out, err := runAttest(t, args...)
		if err != nil {
			t.Fatalf("shiplog %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	// The vendor's repository, registered at the ledger.
	for _, k := range []string{"root", "targets", "snapshot", "timestamp"} {
		run("repo", "key", "generate", "--insecure-plaintext", at(k+".key"))
	}
	repoDir := at("repo")
	run("repo", "init", "-d", repoDir, "--repo-id", "example.com/firmware",
		"--root-key", at("root.key.pub"), "--targets-key", at("targets.key.pub"),
		"--snapshot-key", at("snapshot.key.pub"), "--timestamp-key", at("timestamp.key.pub"),
		"--ledger", ledgerURL, "--policy", filepath.Join(ledgerDir, server.PolicyFile))
	run("repo", "sign", "-d", repoDir, "--key", at("root.key"))
	run("repo", "sign", "-d", repoDir, "--key", at("targets.key"))
	run("repo", "register", "-d", repoDir, "--token-file", filepath.Join(ledgerDir, server.TokenFile))

	// A release declaring its provenance: app.bin built from the archive,
	// backdoored.bin claiming the same source.
	archive, bin := firmwareRelease(t, "hello")
	_, backdoored := firmwareRelease(t, "hello, with a backdoor")
	os.WriteFile(at("app.bin"), bin, 0o644)
	os.WriteFile(at("backdoored.bin"), backdoored, 0o644)
	arch, _ := os.ReadFile(archive)
	archSum := sha256.Sum256(arch)
	declare := []string{"--source", "file://" + filepath.ToSlash(archive), "--source-sha256", hex.EncodeToString(archSum[:]),
		"--revision", "v1.0.0", "--build", fwBuild, "--toolchain", "go1.26", "--build-output", "app.bin"}
	run(append([]string{"repo", "add", "-d", repoDir, at("app.bin"), "--path", "fw/app.bin"}, declare...)...)
	run(append([]string{"repo", "add", "-d", repoDir, at("backdoored.bin"), "--path", "fw/backdoored.bin"}, declare...)...)
	run("repo", "sign", "-d", repoDir, "--key", at("targets.key"))
	run("publish", "-d", repoDir, "--snapshot-key", at("snapshot.key"), "--timestamp-key", at("timestamp.key"))

	// Two rebuilders and a reviewer with their own keys.
	attesters := map[string]*signoff.Attester{}
	for _, name := range []string{"rebuilder-a.example", "rebuilder-b.example", "reviewer.example"} {
		run("key", "generate", name, "--out", at(name+".skey"))
		skey, _ := os.ReadFile(at(name + ".skey"))
		vkey, err := notekey.VerifierKey(strings.TrimSpace(string(skey)))
		if err != nil {
			t.Fatal(err)
		}
		if attesters[name], err = signoff.ParseAttester(vkey); err != nil {
			t.Fatal(err)
		}
	}
	build := []string{"--allow-root", "--env", "GOCACHE=" + goCache(t), "--env", "GOTOOLCHAIN=local"}
	for _, name := range []string{"rebuilder-a.example", "rebuilder-b.example"} {
		rebuild := append([]string{"attest", "rebuild", "-d", repoDir, "--key", at(name + ".skey")}, build...)
		if out := run(append(rebuild, "--target", "fw/app.bin", "--out", at(name+".json"))...); !strings.Contains(out, "reproduced  fw/app.bin") {
			t.Errorf("%s: %s", name, out)
		}
		out, err := runAttest(t, append(rebuild, "--target", "fw/backdoored.bin")...)
		var ce *exitCodeError
		if !errors.As(err, &ce) || ce.code != exitMismatch {
			t.Fatalf("%s rebuilding the backdoored binary: %v\n%s", name, err, out)
		}
	}
	review := []string{"attest", "review", "-d", repoDir, "--key", at("reviewer.example.skey")}
	run(append(review, "--target", "fw/app.bin")...)
	if out, err := runAttest(t, append(review, "--target", "fw/backdoored.bin")...); err == nil || !strings.Contains(err.Error(), "objected to") {
		t.Errorf("review of the backdoored release: %v\n%s", err, out)
	}

	// The vendor serves the statements; a device requiring 2 of 2 rebuilders
	// installs the honest target and refuses the backdoored one.
	run("repo", "attestations", "pull", "-d", repoDir)
	pol, err := policy.Parse(mustRead(t, filepath.Join(ledgerDir, server.PolicyFile)))
	if err != nil {
		t.Fatal(err)
	}
	reqs := []signoff.Requirement{
		{Verdict: signoff.Reproduced, K: 2, Keys: []*signoff.Attester{attesters["rebuilder-a.example"], attesters["rebuilder-b.example"]}},
		{Verdict: signoff.Reviewed, K: 1, Keys: []*signoff.Attester{attesters["reviewer.example"]}},
	}
	check := func(data []byte) error {
		sum := sha256.Sum256(data)
		ev, err := signoff.ParseEvidence(mustRead(t, filepath.Join(repoDir, "metadata", "signoff", hex.EncodeToString(sum[:])+".json")))
		if err != nil {
			t.Fatal(err)
		}
		_, err = signoff.Check(reqs, "example.com/firmware", sum, ev.Attestations, signoff.PolicyProof(pol))
		return err
	}
	if err := check(bin); err != nil {
		t.Errorf("honest target: %v", err)
	}
	if err := check(backdoored); err == nil {
		t.Error("backdoored target passed the device's check")
	}

	// A bundle of the honest target carries its evidence.
	run("bundle", "create", "-d", repoDir, "--target", "fw/app.bin", "--out", at("app.bundle"))
	if out := run("bundle", "inspect", at("app.bundle")); !strings.Contains(out, "3 statement(s) by") {
		t.Errorf("bundle inspect: %s", out)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimRight(b, "\x00")
}
