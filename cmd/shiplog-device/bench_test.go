package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/bundle"
	"github.com/shiplog/shiplog/internal/harness"
	pb "github.com/shiplog/shiplog/proto/bundle"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// BenchmarkInstall installs one payload of SHIPLOG_BENCH_MIB MiB (default
// 64; docs/perf/device.md uses 1024) with the real shiplog-device binary
// over HTTP, and reports its throughput next to sha256sum of the same file
// in the same run, and the device process's peak RSS.
func BenchmarkInstall(b *testing.B) {
	mib, _ := strconv.Atoi(os.Getenv("SHIPLOG_BENCH_MIB"))
	if mib <= 0 {
		mib = 64
	}
	r := harness.NewRawRepo(b)
	r.AddTargetFile("targets", "fw/image.bin", payloadFile(b, mib))
	r.Publish()
	url := serveDir(&testing.T{}, r.Dir)
	tmp := b.TempDir()
	rootFile := filepath.Join(tmp, "root.json")
	os.WriteFile(rootFile, r.RootBytes(1), 0o644)
	polFile := filepath.Join(tmp, "policy")
	os.WriteFile(polFile, r.PolicyText(2), 0o644)
	file := filepath.Join(r.Dir, "targets", filepath.FromSlash(targetFile(r)))
	var install, hash time.Duration
	var rss int64
	for i := 0; i < b.N; i++ {
		state := filepath.Join(tmp, fmt.Sprint("state", i))
		mustRun(b, exec.Command(binary, "-d", state, "init", "--root", rootFile, "--repo-url", url, "--repo-id", r.ID, "--policy", polFile, "--approval", "auto"))
		cmd := exec.Command(binary, "-d", state, "update", "--yes")
		cmd.Env = append(os.Environ(), deviceTime)
		start := time.Now()
		mustRun(b, cmd)
		install += time.Since(start)
		rss = maxRSS(cmd.ProcessState) // KiB
		start = time.Now()
		mustRun(b, exec.Command("sha256sum", file))
		hash += time.Since(start)
		os.RemoveAll(state)
	}
	n := float64(b.N)
	b.ReportMetric(float64(mib)/(install.Seconds()/n), "install-MiB/s")
	b.ReportMetric(float64(mib)/(hash.Seconds()/n), "sha256sum-MiB/s")
	b.ReportMetric(float64(rss)/1024, "peak-RSS-MiB")
}

func targetFile(r *harness.RawRepo) string {
	t := r.Roles["targets"].Signed.Targets["fw/image.bin"]
	return fmt.Sprintf("fw/%x.image.bin", []byte(t.Hashes["sha256"]))
}

func mustRun(b *testing.B, cmd *exec.Cmd) {
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	if os.Getenv("BENCH_VERBOSE") != "" {
		b.Logf("%v:\n%s", cmd.Args, out)
	}
}

// BenchmarkBinarySize reports the size of the stripped shiplog-device
// binary and the number of packages it links.
func BenchmarkBinarySize(b *testing.B) {
	out := filepath.Join(b.TempDir(), "shiplog-device")
	for i := 0; i < b.N; i++ {
		mustRun(b, exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "."))
	}
	fi, err := os.Stat(out)
	if err != nil {
		b.Fatal(err)
	}
	deps, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, c := range deps {
		if c == '\n' {
			n++
		}
	}
	b.ReportMetric(float64(fi.Size())/(1<<20), "stripped-MiB")
	b.ReportMetric(float64(n), "packages")
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

// BenchmarkHostileBundleHeader runs the real binary's verify-bundle on
// hostile bundle headers of every size from 1 KiB to bundle.MaxHeaderSize
// (doubling), of two shapes: millions of empty messages (the bundle header
// memory exhaustion attack) and a few items of maximal contents, and
// reports the largest peak RSS seen (docs/PERFORMANCE.md); BENCH_VERBOSE=1
// prints every size. Each run must be refused.
func BenchmarkHostileBundleHeader(b *testing.B) {
	timeBin, err := exec.LookPath("/usr/bin/time")
	if err != nil {
		b.Skip("needs GNU time (Debian package time) to measure the device's peak RSS")
	}
	r := harness.NewRawRepo(b)
	r.AddTarget("targets", "a.bin", []byte("payload"), nil)
	r.Publish()
	tmp := b.TempDir()
	rootFile := filepath.Join(tmp, "root.json")
	os.WriteFile(rootFile, r.RootBytes(1), 0o644)
	polFile := filepath.Join(tmp, "policy")
	os.WriteFile(polFile, r.PolicyText(2), 0o644)
	state := filepath.Join(tmp, "state")
	mustRun(b, exec.Command(binary, "-d", state, "init", "--root", rootFile, "--repo-url", "http://127.0.0.1:1", "--repo-id", r.ID, "--policy", polFile, "--approval", "auto"))
	shapes := map[string]func(n int) []byte{
		"empty-messages": func(n int) []byte { return bytes.Repeat([]byte{0x12, 0x00}, n/2) },
		"large-contents": func(n int) []byte {
			var body []byte
			for len(body) < n-8 {
				m, _ := proto.Marshal(&pb.Metadata{Role: "root", Version: 1, Content: make([]byte, min(n-len(body)-16, 1<<20))})
				body = protowire.AppendBytes(protowire.AppendTag(body, 2, protowire.BytesType), m)
			}
			return body
		},
	}
	peak := map[string]int64{}
	for i := 0; i < b.N; i++ {
		for shape, gen := range shapes {
			for n := 1 << 10; n <= bundle.MaxHeaderSize; n *= 2 {
				body := gen(n)
				file := filepath.Join(tmp, "hostile.bundle")
				f := append(binary32([]byte(bundle.Magic), len(body)), body...)
				if err := os.WriteFile(file, f, 0o644); err != nil {
					b.Fatal(err)
				}
				// /usr/bin/time reports the device's own peak: the rusage
				// of a child this process starts would include this
				// process's peak from before the exec.
				cmd := exec.Command(timeBin, "-f", "%M", binary, "-d", state, "verify-bundle", file)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Run(); err == nil {
					b.Fatalf("%s header of %d bytes accepted:\n%s", shape, n, stderr.Bytes())
				}
				lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
				rss, err := strconv.ParseInt(lines[len(lines)-1], 10, 64) // KiB
				if err != nil {
					b.Fatalf("/usr/bin/time: %q", stderr.String())
				}
				peak[shape] = max(peak[shape], rss)
				if os.Getenv("BENCH_VERBOSE") != "" {
					fmt.Fprintf(os.Stderr, "%s %9d bytes: peak RSS %.1f MiB\n", shape, n, float64(rss)/1024)
				}
			}
		}
	}
	for shape, rss := range peak {
		b.ReportMetric(float64(rss)/1024, "peak-RSS-MiB-"+shape)
	}
}

func binary32(b []byte, n int) []byte {
	return append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}
