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
// the same size) and the proof checkpoint's log signature and two
// cosignatures (over 128-byte notes), as bare ed25519.Verify calls
// measured in the same process before and after (x-floor is the ratio).
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
			atts, verify, reqs := l.evidence(), l.verify(), []Requirement{r}
			floor := floorPerStatement(len(PAE(PayloadType, mustPayload(b, l.envs[0]))))
			floorCPU := cpuPerOp(200, floor)
			start := cpuTime()
			for b.Loop() {
				if _, err := Check(reqs, testRepo, testSubject, atts, verify); err != nil {
					b.Fatal(err)
				}
			}
			perStatement := (cpuTime() - start) / time.Duration(b.N*k)
			floorCPU = min(floorCPU, cpuPerOp(200, floor)) // before and after: the less disturbed
			b.ReportMetric(float64(perStatement.Microseconds()), "cpu-µs/statement")
			b.ReportMetric(float64(floorCPU.Microseconds()), "floor-cpu-µs/statement")
			b.ReportMetric(float64(perStatement)/float64(floorCPU), "x-floor")
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

// floorPerStatement returns the 4 bare Ed25519 verifications one required
// statement costs at least: its envelope (a message of paeSize bytes) and
// its checkpoint (log signature and two cosignatures, 128-byte notes).
func floorPerStatement(paeSize int) func() {
	var pubs, msgs, sigs [][]byte
	for _, n := range []int{paeSize, 128, 128, 128} { // four keys, as the attester, the log and two witnesses
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
