package update_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/shiplog/shiplog/internal/harness"
	"golang.org/x/mod/sumdb/note"
)

// signoffSetup is a repository of 20 targets and the evidence file of
// two rebuilders' logged "reproduced" statements about one of them, both
// proven under the same checkpoint, as the ledger's GET /v1/attestations
// serves them.
func signoffSetup(b *testing.B) (*harness.RawRepo, memRemote, []signoff.Requirement, [sha256.Size]byte, []byte) {
	r := harness.NewRawRepo(b)
	for i := 0; i < 20; i++ {
		r.AddTarget("targets", "fw/"+strings.Repeat("x", i+1)+".bin", []byte(strings.Repeat("p", i)), map[string]any{"release_notes": "notes"})
	}
	r.Publish()
	subject := sha256.Sum256([]byte(strings.Repeat("p", 3)))
	req := signoff.Requirement{Verdict: signoff.Reproduced, K: 2}
	ev := &signoff.Evidence{Subject: subject}
	for _, name := range []string{"rebuilder-a.example", "rebuilder-b.example"} {
		skey, vkey, err := note.GenerateKey(rand.Reader, name)
		if err != nil {
			b.Fatal(err)
		}
		signer, _ := note.NewSigner(skey)
		a, err := signoff.ParseAttester(vkey)
		if err != nil {
			b.Fatal(err)
		}
		req.Keys = append(req.Keys, a)
		st := &signoff.Statement{SubjectName: "fw/xxxx.bin", Subject: subject, Verdict: signoff.Reproduced, Repository: r.ID,
			Target: "fw/xxxx.bin", TargetsRole: "targets", TargetsVersion: 1, Built: subject,
			Provenance: json.RawMessage(`{"source":"https://src.example/fw.tar.gz","revision":"v1","build":"make"}`), Time: harness.Now.Truncate(time.Second)}
		env, err := signoff.Sign(st, signer, vkey)
		if err != nil {
			b.Fatal(err)
		}
		en, err := signoff.OpenEnvelope(env)
		if err != nil {
			b.Fatal(err)
		}
		r.Log.Append(en.Entry().Format())
		ev.Attestations = append(ev.Attestations, signoff.Attestation{Envelope: env})
	}
	for i := range ev.Attestations {
		ev.Attestations[i].Proof = r.Log.Proof(r.Log.Size()-2+uint64(i), r.Cosigners...)
	}
	file, err := ev.Format()
	if err != nil {
		b.Fatal(err)
	}
	return r, loadRemote(b, r.Dir), []signoff.Requirement{req}, subject, file
}

// signoffFloor returns the bare signature checks sign-off adds per
// install with 2 required statements under a 2-of-3 quorum, proven under
// one checkpoint: each statement's envelope Ed25519 signature, and the
// shared checkpoint once (the log's signature and 2 cosignatures) — 5
// ed25519.Verify calls. perStatement adds the checkpoint again for the
// second statement (8 calls, the floor when each proof's checkpoint was
// verified anew).
func signoffFloor(evidence []byte, perStatement bool) func() {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	var msgs, sigs [][]byte
	for s := 0; s < 2; s++ {
		sizes := []int{len(evidence) / 3, 128, 128, 128} // a statement's PAE, a checkpoint body ×3
		if s == 1 && !perStatement {
			sizes = sizes[:1]
		}
		for _, n := range sizes {
			m := make([]byte, n)
			msgs, sigs = append(msgs, m), append(sigs, ed25519.Sign(priv, m))
		}
	}
	return func() {
		for i := range msgs {
			if !ed25519.Verify(pub, msgs[i], sigs[i]) {
				panic("verify")
			}
		}
	}
}

// BenchmarkSignoff measures the extra cost per install of a device that
// requires 2 of 2 rebuilders' statements about a target
// (docs/spec/signoff.md): the sign-off check of one target (parse the
// evidence file, verify both envelopes, prove both entries under the 2-of-3
// quorum through the session's gate) against its floor, the 5 bare Ed25519
// verifications it adds (per statement its envelope; once, the shared
// checkpoint's log signature and 2 cosignatures: the session verifies an
// exact checkpoint note once). Each iteration runs the check, the floor
// and a gated update (BenchmarkVerify's, without sign-off) back to back and
// reports the CPU time of each, so that the ratios compare work done under
// the same load: x-floor (check / floor), x-floor8 (check / the 8
// verifications of a checkpoint verified per statement) and x-update
// (check / gated update, the relative extra cost per install).
func BenchmarkSignoff(b *testing.B) {
	r, rem, reqs, subject, file := signoffSetup(b)
	root := r.RootBytes(1)
	ctx := context.Background()
	c := &update.Client{Remote: rem, Time: harness.Now, Gate: &update.Gate{Policy: r.Policy(2), Repository: r.ID}}
	refresh := func() *update.Session {
		s, err := c.Refresh(ctx, update.Trusted{Root: root})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	check := func(s *update.Session) {
		ev, err := signoff.ParseEvidence(file)
		if err != nil {
			b.Fatal(err)
		}
		res, err := signoff.Check(reqs, r.ID, subject, ev.Attestations, func(entry, proof []byte) error {
			_, err := s.ProveEntry(ctx, entry, proof)
			return err
		})
		if err != nil || len(res.Proven[signoff.Reproduced]) != 2 {
			b.Fatalf("sign-off: %v", err)
		}
	}
	floor, floor8 := signoffFloor(file, false), signoffFloor(file, true)
	b.Run("signoff-2of2", func(b *testing.B) {
		var checkCPU, floorCPU, floor8CPU, updateCPU time.Duration
		for b.Loop() {
			t0 := cpuTime()
			s := refresh()
			t1 := cpuTime()
			check(s)
			t2 := cpuTime()
			floor()
			t3 := cpuTime()
			floor8()
			t4 := cpuTime()
			updateCPU, checkCPU, floorCPU, floor8CPU = updateCPU+t1-t0, checkCPU+t2-t1, floorCPU+t3-t2, floor8CPU+t4-t3
		}
		n := time.Duration(b.N)
		b.ReportMetric(float64((checkCPU / n).Microseconds()), "check-cpu-µs/op")
		b.ReportMetric(float64((floorCPU / n).Microseconds()), "floor-cpu-µs/op")
		b.ReportMetric(float64((updateCPU / n).Microseconds()), "update-cpu-µs/op")
		b.ReportMetric(float64(checkCPU)/float64(floorCPU), "x-floor")
		b.ReportMetric(float64(checkCPU)/float64(floor8CPU), "x-floor8")
		b.ReportMetric(float64(checkCPU)/float64(updateCPU), "x-update")
	})
	b.Run("floor-5-ed25519", func(b *testing.B) {
		for b.Loop() {
			floor()
		}
	})
}
