package log_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/internal/harness"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/shiplog/shiplog/log/tessera"
)

// parallel runs f(i) for i in [0, n) on workers goroutines, goroutine g
// taking the i with i % workers == g, and returns the process CPU time it
// took.
func parallel(b *testing.B, workers, n int, f func(i int) error) time.Duration {
	var wg sync.WaitGroup
	start := processCPU()
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += workers {
				if err := f(i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return processCPU() - start
}

// BenchmarkPublishFloor measures the ledger's Publish (no HTTP: the call
// itself, with Tessera POSIX storage, the bbolt index and the metadata
// pack, quorum none) from 256 repositories at once, and in the same run
// its floor: one Ed25519 verification over the signed bytes, the SHA-256
// of the metadata, and one append to the same kind of Tessera log with the
// same batching from as many writers. Each iteration publishes one new
// version in every repository (pre-signed outside the measurement) and
// appends as many entries. It reports the process CPU per publish and per
// floor and their ratio (x-floor).
func BenchmarkPublishFloor(b *testing.B) {
	const repos = 256
	ctx := context.Background()
	keys := kit.NewKeys("bench.example/ledger", 0)
	l := harness.StartLedger(b, b.TempDir(), keys, harness.LedgerOptions{})
	rs := make([]*kit.Repo, repos)
	for i := range rs {
		rs[i] = kit.NewRandomRepo(time.Now().Add(24 * time.Hour))
		if _, err := l.Register(ctx, fmt.Sprintf("bench.example/repo%d", i), rs[i].RootBytes(), 0); err != nil {
			b.Fatal(err)
		}
	}
	raw := rawStorage(b)
	sample := rs[0].Targets(1)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	signed := make([]byte, len(sample)-150) // the signed part of the file, roughly
	sig := ed25519.Sign(priv, signed)
	entryBytes := make([]byte, 160) // a log entry line's size

	var publishCPU, appendCPU, verifyCPU time.Duration
	var publishes int
	version := int64(0)
	for b.Loop() {
		version++
		data := make([][]byte, repos)
		for i := range data {
			data[i] = rs[i].Targets(version)
		}
		publishCPU += parallel(b, repos, repos, func(i int) error {
			_, err := l.Publish(ctx, fmt.Sprintf("bench.example/repo%d", i), "targets", data[i], 0)
			return err
		})
		appendCPU += parallel(b, repos, repos, func(i int) error {
			e := append([]byte(fmt.Sprintf("%d %d ", version, i)), entryBytes...)
			_, err := raw.Append(ctx, e)
			return err
		})
		verifyCPU += parallel(b, 1, repos, func(int) error {
			if !ed25519.Verify(pub, signed, sig) {
				return fmt.Errorf("verify")
			}
			sha256.Sum256(sample)
			return nil
		})
		publishes += repos
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(publishes) }
	floor := per(appendCPU) + per(verifyCPU)
	b.ReportMetric(per(publishCPU), "publish-cpu-µs")
	b.ReportMetric(per(appendCPU), "append-cpu-µs")
	b.ReportMetric(per(verifyCPU), "verify+hash-cpu-µs")
	b.ReportMetric(per(publishCPU)/floor, "x-floor")
}

// rawStorage opens a fresh Tessera POSIX log with the ledger's default
// batching, for the floor's append.
func rawStorage(b *testing.B) *tessera.Storage {
	ctx := context.Background()
	skey, vkey, err := notekey.GenerateLog(rand.Reader, "raw.example/log")
	if err != nil {
		b.Fatal(err)
	}
	signer, _ := notekey.NewLogSigner(skey)
	verifier, _ := notekey.ParseLogVerifier(vkey)
	dir := filepath.Join(b.TempDir(), "raw")
	if err := tessera.Create(ctx, dir, signer); err != nil {
		b.Fatal(err)
	}
	st, err := tessera.Open(ctx, tessera.Options{Dir: dir, Signer: signer, Verifier: verifier})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close(ctx) })
	return st
}
