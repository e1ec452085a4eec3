package signoff

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"
	"time"
)

// BenchmarkSignoffCheck measures Check for a "reproduced k of k"
// requirement (k = 1, 2, 4) whose k statements are proven under a 2-of-3
// witness quorum in a log of 2^16 entries, and reports its CPU time per
// required statement against the floor of one: the Ed25519 verifications
// Check must do, the envelope's signature (over the PAE of a statement of
// the same size) and, once for the k statements (their proofs carry the
// same checkpoint, as the ledger serves them; PolicyProof verifies an exact
// note once per check), the checkpoint's log signature and two
// cosignatures (over 128-byte notes), as bare ed25519.Verify calls
// measured in the same process before and after: x-floor is the ratio to
// that floor (1 + 3/k verifications per statement), x-floor4 to the 4 per
// statement of a checkpoint verified for each.
func BenchmarkSignoffCheck(b *testing.B) {
	for _, k := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("reproduced-%d-of-%d", k, k), func(b *testing.B) {
			l := newLedger(b)
			filler := make([][]byte, 0, 1<<16)
			for i := 0; i < 1<<16; i++ {
				h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
				filler = append(filler, h[:])
			}
			l.log.AppendLeafHashes(filler...)
			r := Requirement{Verdict: Reproduced, K: k}
			for i := 0; i < k; i++ {
				key := newKey(b, fmt.Sprintf("rebuilder-%d.example", i))
				r.Keys = append(r.Keys, key.att)
				l.attest(key.sign(b, statement(Reproduced, testRepo, testSubject)))
			}
			atts, reqs := l.evidence(), []Requirement{r}
			paeSize := len(PAE(PayloadType, mustPayload(b, l.envs[0])))
			floor, floor4 := floorOfStatements(paeSize, k), floorOfStatements(paeSize, 1)
			floorCPU, floor4CPU := cpuPerOp(200, floor), cpuPerOp(200*k, floor4)
			start := cpuTime()
			for b.Loop() {
				if _, err := Check(reqs, testRepo, testSubject, atts, l.verify()); err != nil {
					b.Fatal(err)
				}
			}
			perStatement := (cpuTime() - start) / time.Duration(b.N*k)
			// before and after: the less disturbed
			floorCPU = min(floorCPU, cpuPerOp(200, floor)) / time.Duration(k)
			floor4CPU = min(floor4CPU, cpuPerOp(200*k, floor4))
			b.ReportMetric(float64(perStatement.Microseconds()), "cpu-µs/statement")
			b.ReportMetric(float64(floorCPU.Microseconds()), "floor-cpu-µs/statement")
			b.ReportMetric(float64(perStatement)/float64(floorCPU), "x-floor")
			b.ReportMetric(float64(perStatement)/float64(floor4CPU), "x-floor4")
		})
	}
}

func mustPayload(b *testing.B, env []byte) []byte {
	u, err := ParseEnvelope(env)
	if err != nil {
		b.Fatal(err)
	}
	return u.Payload
}

// floorOfStatements returns the k+3 bare Ed25519 verifications k required
// statements proven under one checkpoint cost at least: their envelopes (a
// message of paeSize bytes each) and the checkpoint (log signature and two
// cosignatures, 128-byte notes).
func floorOfStatements(paeSize, k int) func() {
	var pubs, msgs, sigs [][]byte
	sizes := []int{128, 128, 128} // as the log and two witnesses
	for range k {
		sizes = append(sizes, paeSize) // as an attester
	}
	for _, n := range sizes {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		m := make([]byte, n)
		pubs, msgs, sigs = append(pubs, pub), append(msgs, m), append(sigs, ed25519.Sign(priv, m))
	}
	return func() {
		for i := range msgs {
			if !ed25519.Verify(pubs[i], msgs[i], sigs[i]) {
				panic("verify")
			}
		}
	}
}

// cpuPerOp measures the CPU time of one call of f, over n calls.
func cpuPerOp(n int, f func()) time.Duration {
	start := cpuTime()
	for i := 0; i < n; i++ {
		f()
	}
	return (cpuTime() - start) / time.Duration(n)
}
