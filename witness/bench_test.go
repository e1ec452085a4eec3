package witness_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/shiplog/shiplog/evidence/evidencetest"
)

// benchStream returns, for each of n logs, a chain of add-checkpoint
// bodies moving the witness from size 0 by one entry per request, total
// requests in all, and the log list text.
func benchStream(logs, total int) ([][][]byte, string) {
	ls := make([]*evidencetest.Log, logs)
	for i := range ls {
		ls[i] = evidencetest.NewLog(fmt.Sprintf("bench.example/log%d", i), 0)
	}
	chains := make([][][]byte, logs)
	for i := 0; i < total; i++ {
		l := ls[i%logs]
		old := l.Size()
		l.Append([]byte(fmt.Sprintf("entry %d", old)))
		chains[i%logs] = append(chains[i%logs], request(l, old, old+1))
	}
	return chains, logList(0, ls...)
}

// BenchmarkAddCheckpoint measures add-checkpoint over HTTP on 127.0.0.1
// with the durable journal store (every 200 is fdatasynced before it is sent):
// one log (each request must wait for the previous one, as a real log's
// do), and 1,000 logs driven by 64 concurrent clients.
func BenchmarkAddCheckpoint(b *testing.B) {
	for _, bc := range []struct{ logs, clients int }{{1, 1}, {1000, 64}} {
		b.Run(fmt.Sprintf("logs=%d/clients=%d", bc.logs, bc.clients), func(b *testing.B) {
			chains, list := benchStream(bc.logs, b.N)
			tw := newTestWitness(b, list)
			benchRun(b, tw.url, chains, bc.clients)
		})
	}
}

// benchRun sends every chain in order, chains spread over clients
// goroutines, and fails the benchmark on any status but 200.
func benchRun(b *testing.B, url string, chains [][][]byte, clients int) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	b.ResetTimer()
	var wg sync.WaitGroup
	var failed sync.Once
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for li := c; li < len(chains); li += clients {
				for _, body := range chains[li] {
					resp, err := hc.Post(url+"/add-checkpoint", "text/plain", bytes.NewReader(body))
					if err != nil || resp.StatusCode != http.StatusOK {
						failed.Do(func() { b.Errorf("add-checkpoint: %v %v", err, resp) })
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}
