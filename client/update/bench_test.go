package update_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/fixture"
	"github.com/shiplog/shiplog/client/update"
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

// BenchmarkVerify measures one update's metadata verification (root chain
// of one, timestamp, snapshot, targets with 20 targets; payload hashing
// excluded): shiplog with the transparency gate (tlog-proof under a 2-of-3
// witness quorum), the same loop with the gate off, and go-tuf's own
// updater on the same bytes.
func BenchmarkVerify(b *testing.B) {
	r := fixture.New(b)
	for i := 0; i < 20; i++ {
		r.AddTarget("targets", "fw/"+strings.Repeat("x", i+1)+".bin", []byte(strings.Repeat("p", i)), map[string]any{"release_notes": "notes"})
	}
	r.Publish()
	rem := loadRemote(b, r.Dir)
	root := r.RootBytes(1)
	ctx := context.Background()
	b.Run("shiplog-gate-2of3", func(b *testing.B) {
		c := &update.Client{Remote: rem, Time: fixture.Now, Gate: &update.Gate{Policy: r.Policy(2), Repository: r.ID}}
		for b.Loop() {
			if _, err := c.Refresh(ctx, update.Trusted{Root: root}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("shiplog-plain-tuf", func(b *testing.B) {
		c := &update.Client{Remote: rem, Time: fixture.Now}
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
			up.UnsafeSetRefTime(fixture.Now)
			if err := up.Refresh(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
