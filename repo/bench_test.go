package repo

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/shiplog/shiplog/repo/keys"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// peakHeap samples the heap in use every few milliseconds until stop is
// called, and returns the largest value seen in MiB.
func peakHeap() (stop func() float64) {
	var mu sync.Mutex
	var peak uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mu.Lock()
		peak = max(peak, ms.HeapInuse+ms.StackInuse)
		mu.Unlock()
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() float64 {
		close(done)
		<-finished
		sample()
		return float64(peak) / (1 << 20)
	}
}

// BenchmarkAddSign10kTargetsHashBins measures the release-day path for
// 10,000 targets in 256 hash bins: add (hash + copy + stage), sign every
// bin, and publish (log 256 bins in the fake ledger over HTTP, verify each
// proof, expose with the TUF client check). Run:
//
//	go test -run XXX -bench AddSign10k -benchtime 1x ./repo/
func BenchmarkAddSign10kTargetsHashBins(b *testing.B) {
	const n, bins = 10000, 256
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		f := newFixture(b)
		binKey := genKey(b, keys.Ed25519)
		r := f.open()
		if _, err := r.Delegate(DelegateOptions{HashBins: bins, Keys: []*metadata.Key{binKey.Public}}); err != nil {
			b.Fatal(err)
		}
		r.Close()
		f.sign(f.keys["targets"])
		f.sign(binKey)
		f.publish(true)
		src := b.TempDir()
		in := make([]TargetInput, n)
		for j := range in {
			p := filepath.Join(src, fmt.Sprintf("pkg-%05d.bin", j))
			if err := os.WriteFile(p, []byte(fmt.Sprintf("payload %d %s", j, make([]byte, 1024))), 0o644); err != nil {
				b.Fatal(err)
			}
			in[j] = TargetInput{Path: "pkgs/" + filepath.Base(p), File: p, Custom: []byte(`{"hw":["rev-b"]}`)}
		}
		runtime.GC()
		stop := peakHeap()
		b.StartTimer()

		t0 := time.Now()
		r = f.open()
		if _, err := r.Add(AddOptions{Targets: in}); err != nil {
			b.Fatal(err)
		}
		r.Close()
		t1 := time.Now()
		signed := f.sign(binKey)
		t2 := time.Now()
		res := f.publish(true)
		t3 := time.Now()

		b.StopTimer()
		peak := stop()
		if len(signed) != bins || len(res.Logged) != bins || res.Exposed == nil {
			b.Fatalf("signed %d, logged %d, exposed %v", len(signed), len(res.Logged), res.Exposed)
		}
		b.ReportMetric(t1.Sub(t0).Seconds(), "add-s")
		b.ReportMetric(t2.Sub(t1).Seconds(), "sign-s")
		b.ReportMetric(t3.Sub(t2).Seconds(), "publish-s")
		b.ReportMetric(peak, "peak-heap-MiB")
	}
}
