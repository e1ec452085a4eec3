package bundle_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shiplog/shiplog/internal/harness"
	"github.com/shiplog/shiplog/repo/bundle"
)

// BenchmarkBuild builds a bundle carrying one payload of SHIPLOG_BENCH_MIB
// MiB (default 64; docs/perf/device.md uses 1024) and reports throughput and
// the peak Go heap during the build above the heap before it (sampled every
// 5 ms).
func BenchmarkBuild(b *testing.B) {
	mib, _ := strconv.Atoi(os.Getenv("SHIPLOG_BENCH_MIB"))
	if mib <= 0 {
		mib = 64
	}
	r := harness.NewRawRepo(b)
	r.AddTargetFile("targets", "fw/image.bin", payloadFile(b, mib))
	r.Publish()
	out := filepath.Join(b.TempDir(), "b.bundle")
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		f, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bundle.Build(context.Background(), bundle.Options{Dir: r.Dir, Targets: []string{"fw/image.bin"}, Time: harness.Now, Policy: r.Policy(2)}, f); err != nil {
			b.Fatal(err)
		}
		f.Sync()
		f.Close()
	}
	el := time.Since(start)
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(mib)/(el.Seconds()/float64(b.N)), "MiB/s")
	b.ReportMetric(float64(peak.Load()-min(base, peak.Load()))/(1<<20), "peak-heap-MiB")
}

// payloadFile writes mib MiB of random bytes to a temp file, 1 MiB at a
// time.
func payloadFile(b *testing.B, mib int) string {
	block := make([]byte, 1<<20)
	rand.Read(block)
	p := filepath.Join(b.TempDir(), "payload")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < mib; i++ {
		block[0] = byte(i)
		if _, err := f.Write(block); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return p
}
