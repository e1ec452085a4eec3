package update_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/bundle"
	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/internal/harness"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// memRemote serves a repository directory from memory.
type memRemote map[string][]byte

func loadRemote(b *testing.B, dir string) memRemote {
	m := memRemote{}
	entries, _ := os.ReadDir(filepath.Join(dir, "metadata"))
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, "metadata", e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		m[e.Name()] = data
	}
	return m
}

func (m memRemote) Metadata(ctx context.Context, name string, max int64) ([]byte, error) {
	b, ok := m[name]
	if !ok {
		return nil, update.ErrNotFound
	}
	return b, nil
}

func (m memRemote) Target(ctx context.Context, ref update.TargetRef) (io.ReadCloser, error) {
	return nil, update.ErrNotFound
}

// DownloadFile implements go-tuf's fetcher.Fetcher over the same files.
func (m memRemote) DownloadFile(url string, maxLength int64, _ time.Duration) ([]byte, error) {
	name := url[strings.LastIndex(url, "/")+1:]
	b, ok := m[name]
	if !ok {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: 404}
	}
	return bytes.Clone(b), nil
}

// noteSize is the size of a checkpoint note body, as the floor counts it.
const noteSize = 128

// signatureFloor returns a function doing bare Ed25519 verifications over
// messages of the given sizes: the signatures an update checks.
func signatureFloor(sizes ...int) func() {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	var msgs, sigs [][]byte
	for _, n := range sizes {
		m := make([]byte, n) // a signed part is a little smaller than its file
		msgs, sigs = append(msgs, m), append(sigs, ed25519.Sign(priv, m))
	}
	return func() {
		for i := range msgs {
			if !ed25519.Verify(pub, msgs[i], sigs[i]) {
				panic("verify")
			}
		}
	}
}

// tufSizes are the sizes of r's root v1 and latest timestamp, snapshot
// and top-level targets.
func tufSizes(r *harness.RawRepo) (root, timestamp, snapshot, targets int) {
	return len(r.RootBytes(1)), len(r.Read("timestamp.json")),
		len(r.Read(fmt.Sprintf("%d.snapshot.json", r.Snapshot.Signed.Version))),
		len(r.Read(harness.RoleFile(metadata.TARGETS, r.Roles[metadata.TARGETS].Signed.Version)))
}

// cpuPerOp measures the CPU time of one call of f, over n calls.
func cpuPerOp(n int, f func()) time.Duration {
	start := cpuTime()
	for i := 0; i < n; i++ {
		f()
	}
	return (cpuTime() - start) / time.Duration(n)
}

// againstFloor runs f as the benchmark's operation and reports its process
// CPU time per call, floor's (measured before and after, the less
// disturbed of the two) and their ratio; it returns f's CPU time per call.
func againstFloor(b *testing.B, floor, f func()) time.Duration {
	floorCPU := cpuPerOp(200, floor)
	start := cpuTime()
	for b.Loop() {
		f()
	}
	opCPU := (cpuTime() - start) / time.Duration(b.N)
	floorCPU = min(floorCPU, cpuPerOp(200, floor))
	b.ReportMetric(float64(opCPU.Microseconds()), "cpu-µs/op")
	b.ReportMetric(float64(floorCPU.Microseconds()), "floor-cpu-µs/op")
	b.ReportMetric(float64(opCPU)/float64(floorCPU), "x-floor")
	return opCPU
}

// BenchmarkVerify measures one update's metadata verification (root chain
// of one, timestamp, snapshot, targets with 20 targets; payload hashing
// excluded): shiplog with the transparency gate (tlog-proof under a 2-of-3
// witness quorum), the same loop with the gate off, and go-tuf's own
// updater on the same bytes. floor-7-ed25519 is the gated update's
// signature floor: its 7 Ed25519 verifications (root, timestamp, snapshot,
// targets; the log's checkpoint signature and 2 cosignatures) as bare
// ed25519.Verify calls over messages of the same sizes. The gated update
// reports its process CPU time per update and the floor's, measured in the
// same process around it, and their ratio (x-floor): with the trusted root
// kept decoded and verified between refreshes (shiplog-gate-2of3, a running
// device) and decoded and verified on every refresh (-cold, a device
// process's first refresh).
func BenchmarkVerify(b *testing.B) {
	r := harness.NewRawRepo(b)
	for i := 0; i < 20; i++ {
		r.AddTarget("targets", "fw/"+strings.Repeat("x", i+1)+".bin", []byte(strings.Repeat("p", i)), map[string]any{"release_notes": "notes"})
	}
	r.Publish()
	rem := loadRemote(b, r.Dir)
	root := r.RootBytes(1)
	ctx := context.Background()
	rootN, tsN, snapN, targetsN := tufSizes(r)
	floor := signatureFloor(rootN, tsN, snapN, targetsN, noteSize, noteSize, noteSize)
	gated := func(b *testing.B, cold bool) {
		c := &update.Client{Remote: rem, Time: harness.Now, Gate: &update.Gate{Policy: r.Policy(2), Repository: r.ID}}
		againstFloor(b, floor, func() {
			if cold {
				update.ForgetTrustedRoot()
			}
			if _, err := c.Refresh(ctx, update.Trusted{Root: root}); err != nil {
				b.Fatal(err)
			}
		})
	}
	// The trusted root stays decoded and verified in the process between
	// refreshes (a running device): 6 of the floor's 7 verifications.
	b.Run("shiplog-gate-2of3", func(b *testing.B) { gated(b, false) })
	// Each refresh decodes and verifies its trusted root as well (a
	// device process's first refresh): all 7.
	b.Run("shiplog-gate-2of3-cold", func(b *testing.B) { gated(b, true) })
	// The offline path over the same release: client/bundle opens a bundle
	// (root v1, timestamp, snapshot, targets, one payload), runs the same
	// loop over its header, resolves the payload's target and checks the
	// evidence of what the loop did not read: root v1's tlog-proof, 3 more
	// verifications (a floor of 10). Cold: the root is verified each time.
	b.Run("bundle-gate-2of3-cold", func(b *testing.B) {
		raw := r.Bundle("fw/x.bin")
		opts := bundle.Options{Policy: r.Policy(2), Repository: r.ID, Time: harness.Now}
		againstFloor(b, signatureFloor(rootN, tsN, snapN, targetsN, noteSize, noteSize, noteSize, noteSize, noteSize, noteSize), func() {
			update.ForgetTrustedRoot()
			bd, err := bundle.Open(bytes.NewReader(raw), int64(len(raw)))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := bd.Verify(ctx, update.Trusted{Root: root}, opts); err != nil {
				b.Fatal(err)
			}
		})
	})
	// A poll that finds nothing new, by a device that installed this
	// release: 5 verifications, cold: root; its trusted timestamp,
	// snapshot and targets loaded as the base of TUF's checks (the
	// repository's timestamp is the same bytes); its stored checkpoint's
	// log signature. Nothing is gated (nothing new is trusted).
	b.Run("shiplog-gate-2of3-no-change-cold", func(b *testing.B) {
		c := &update.Client{Remote: rem, Time: harness.Now, Gate: &update.Gate{Policy: r.Policy(2), Repository: r.ID}}
		first, err := c.Refresh(ctx, update.Trusted{Root: root})
		if err != nil {
			b.Fatal(err)
		}
		installed := first.Trusted()
		againstFloor(b, signatureFloor(rootN, tsN, snapN, targetsN, noteSize), func() {
			update.ForgetTrustedRoot()
			if _, err := c.Refresh(ctx, installed); err != nil {
				b.Fatal(err)
			}
		})
	})
	// The next release, to a device that installed this one: it holds a
	// timestamp, snapshot, targets and checkpoint, and (TUF §5.4.3, §5.5.5)
	// checks its timestamp and snapshot again as the base of the rollback
	// checks. 10 verifications, cold: root; trusted and new timestamp and
	// snapshot; new targets (the trusted one need not be verified for the
	// version floor when the new version is above it); the stored
	// checkpoint's log signature; the new proof's 3. Reported against
	// those 10, and x-floor-7 against a first update's 7.
	b.Run("shiplog-gate-2of3-next-release-cold", func(b *testing.B) {
		c := &update.Client{Remote: loadRemote(b, r.Dir), Time: harness.Now, Gate: &update.Gate{Policy: r.Policy(2), Repository: r.ID}}
		first, err := c.Refresh(ctx, update.Trusted{Root: root})
		if err != nil {
			b.Fatal(err)
		}
		installed := first.Trusted()
		_, oldTS, oldSnap, _ := tufSizes(r)
		r.AddTarget("targets", "fw/next.bin", []byte("next"), nil)
		r.Publish()
		c.Remote = loadRemote(b, r.Dir)
		rootN, tsN, snapN, targetsN := tufSizes(r)
		op := againstFloor(b, signatureFloor(rootN, oldTS, tsN, oldSnap, snapN, targetsN, noteSize, noteSize, noteSize, noteSize), func() {
			update.ForgetTrustedRoot()
			if _, err := c.Refresh(ctx, installed); err != nil {
				b.Fatal(err)
			}
		})
		floor7 := signatureFloor(rootN, tsN, snapN, targetsN, noteSize, noteSize, noteSize)
		b.ReportMetric(float64(op)/float64(cpuPerOp(200, floor7)), "x-floor-7")
	})
	b.Run("floor-7-ed25519", func(b *testing.B) {
		start := cpuTime()
		for b.Loop() {
			floor()
		}
		b.ReportMetric(float64(((cpuTime() - start) / time.Duration(b.N)).Microseconds()), "cpu-µs/op")
	})
	b.Run("shiplog-plain-tuf", func(b *testing.B) {
		c := &update.Client{Remote: rem, Time: harness.Now}
		for b.Loop() {
			if _, err := c.Refresh(ctx, update.Trusted{Root: root}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-tuf-updater", func(b *testing.B) {
		for b.Loop() {
			cfg, err := config.New("http://repo.invalid/metadata", root)
			if err != nil {
				b.Fatal(err)
			}
			cfg.Fetcher = rem
			cfg.DisableLocalCache = true
			cfg.RemoteTargetsURL = "http://repo.invalid/targets"
			up, err := updater.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			up.UnsafeSetRefTime(harness.Now)
			if err := up.Refresh(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
