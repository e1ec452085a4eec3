package rekor_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"github.com/shiplog/shiplog/evidence"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/audit/rekor"
	"github.com/shiplog/shiplog/client/sigstore"
	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/repo/keys"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api/layout"
)

// tilesLog is a Rekor v2 stand-in: a real Tessera POSIX log on disk of
// hashedrekord 0.0.2 bodies with an Ed25519 checkpoint whose origin is the
// key name, served over HTTP as c2sp.org/tlog-tiles, as Rekor v2 serves
// itself.
type tilesLog struct {
	dir      string
	URL      string
	Policy   *policy.Policy
	appender *tessera.Appender
	awaiter  *tessera.PublicationAwaiter
}

func newTilesLog(t *testing.T) *tilesLog {
	t.Helper()
	skey, vkey, err := notekey.GenerateLog(rand.Reader, "log2099.rekor.test")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := notekey.NewLogSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l := &tilesLog{dir: t.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	d := posixDriver(t, ctx, l.dir)
	o := tessera.NewAppendOptions().WithCheckpointSigner(signer).WithBatching(256, 20*time.Millisecond).WithCheckpointInterval(100 * time.Millisecond)
	a, shutdown, r, err := tessera.NewAppender(ctx, d, o)
	if err != nil {
		t.Fatal(err)
	}
	l.appender = a
	l.awaiter = tessera.NewPublicationAwaiter(ctx, r.ReadCheckpoint, 20*time.Millisecond)
	srv := httptest.NewServer(http.FileServer(http.Dir(l.dir)))
	l.URL = srv.URL
	t.Cleanup(func() {
		srv.Close()
		shutdown(context.Background())
		cancel()
	})
	if l.Policy, err = policy.Parse([]byte("log " + vkey + "\nquorum none\n")); err != nil {
		t.Fatal(err)
	}
	return l
}

// add logs bodies and waits until a published checkpoint covers them.
func (l *tilesLog) add(t *testing.T, bodies ...[]byte) {
	t.Helper()
	ctx := context.Background()
	var futures []tessera.IndexFuture
	for _, b := range bodies {
		futures = append(futures, l.appender.Add(ctx, tessera.NewEntry(b)))
	}
	for _, f := range futures {
		if _, _, err := l.awaiter.Await(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
}

func rekord(t *testing.T, data []byte, s crypto.Signer) []byte {
	t.Helper()
	h, err := sigstore.NewHashedRekord("0.0.2", data, s)
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vendorDir writes a minimal vendor repository: a root listing the
// vendor's key and one targets file, the releases it made.
func vendorDir(t *testing.T, k *keys.Private) (dir string, releases [][]byte) {
	t.Helper()
	dir = t.TempDir()
	os.MkdirAll(filepath.Join(dir, "metadata"), 0o755)
	root := metadata.Root(time.Now().Add(time.Hour))
	if err := root.Signed.AddKey(k.Public, "root"); err != nil {
		t.Fatal(err)
	}
	rb, err := root.ToBytes(true)
	if err != nil {
		t.Fatal(err)
	}
	tg := metadata.Targets(time.Now().Add(time.Hour))
	tb, _ := tg.ToBytes(true)
	os.WriteFile(filepath.Join(dir, "metadata", "1.root.json"), rb, 0o644)
	os.WriteFile(filepath.Join(dir, "metadata", "1.targets.json"), tb, 0o644)
	os.WriteFile(filepath.Join(dir, "shiplog-repo.json"), []byte(`{"repository":"example.com/fw"}`), 0o644)
	return dir, [][]byte{rb, tb}
}

func TestFollowTilesVendorMode(t *testing.T) {
	l := newTilesLog(t)
	vk, _ := keys.GenerateDefault(keys.ECDSAP256)
	stranger, _ := keys.GenerateDefault(keys.Ed25519)
	dir, releases := vendorDir(t, vk)
	vendor, err := rekor.VendorFromRepoDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Other people's entries, and the vendor's two releases.
	var bodies [][]byte
	for i := 0; i < 300; i++ {
		bodies = append(bodies, rekord(t, []byte{byte(i), byte(i >> 8)}, stranger.CryptoSigner()))
	}
	bodies = append(bodies, rekord(t, releases[0], vk.CryptoSigner()), rekord(t, releases[1], vk.CryptoSigner()))
	l.add(t, bodies...)
	cfg := rekor.Config{URL: l.URL, API: rekor.Tiles, Policy: l.Policy, Vendor: vendor, StateDir: t.TempDir()}
	res, err := rekor.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Entries != 302 || res.VendorEntries != 2 || res.Expected != 2 || len(res.Findings) != 0 {
		t.Fatalf("round 1: %d entries, %d vendor, %d expected, findings %v", res.Entries, res.VendorEntries, res.Expected, res.Findings)
	}

	// Attack: the vendor's key signs bytes the vendor never released.
	l.add(t, rekord(t, []byte(`{"signed":{"_type":"targets","version":99}}`), vk.CryptoSigner()), rekord(t, []byte("x"), stranger.CryptoSigner()))
	res, err = rekor.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Entries != 2 || len(res.Findings) != 1 || res.Findings[0].Kind != alert.KindUnexpected || *res.Findings[0].Index != 302 {
		t.Fatalf("round 2: %d entries, findings %+v", res.Entries, res.Findings)
	}
	// Nothing new: nothing read, nothing found.
	if res, err = rekor.Run(context.Background(), cfg); err != nil || res.Entries != 0 || len(res.Findings) != 0 {
		t.Fatalf("round 3: %+v %v", res, err)
	}
}

// TestTamperedEntriesDetected: a log that serves entries other than the
// ones its checkpoint commits to (a forked or rewritten tree) is reported
// with the evidence, and the auditor's state does not advance.
func TestTamperedEntriesDetected(t *testing.T) {
	l := newTilesLog(t)
	vk, _ := keys.GenerateDefault(keys.Ed25519)
	dir, releases := vendorDir(t, vk)
	vendor, _ := rekor.VendorFromRepoDir(dir)
	l.add(t, rekord(t, releases[0], vk.CryptoSigner()), rekord(t, []byte("other"), vk.CryptoSigner()))
	// Rewrite the second entry in the entry bundle on disk.
	path := filepath.Join(l.dir, layout.EntriesPath(0, 2))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.BigEndian.Uint16(b)
	forged := rekord(t, releases[1], vk.CryptoSigner())
	out := append(append([]byte{}, b[:2+n]...), byte(len(forged)>>8), byte(len(forged)))
	os.WriteFile(path, append(out, forged...), 0o644)

	cfg := rekor.Config{URL: l.URL, API: rekor.Tiles, Policy: l.Policy, Vendor: vendor, StateDir: t.TempDir()}
	res, err := rekor.Run(context.Background(), cfg)
	if !errors.Is(err, rekor.ErrFork) {
		t.Fatalf("Run = %v, want ErrFork", err)
	}
	if len(res.Findings) == 0 || res.Findings[len(res.Findings)-1].Kind != alert.KindTreeMismatch || res.Findings[len(res.Findings)-1].Evidence["checkpoint"] == "" {
		t.Fatalf("findings %+v", res.Findings)
	}
	if _, err := os.Stat(filepath.Join(cfg.StateDir, "rekor-state.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state saved after a fork: %v", err)
	}
}

// TestUnknownLogRefused: a checkpoint by a key the policy does not name is
// never followed; before any checkpoint verified it is a configuration
// error with a hint (not a fork, no finding).
func TestUnknownLogRefused(t *testing.T) {
	l := newTilesLog(t)
	other := newTilesLog(t)
	vk, _ := keys.GenerateDefault(keys.Ed25519)
	dir, _ := vendorDir(t, vk)
	vendor, _ := rekor.VendorFromRepoDir(dir)
	l.add(t, []byte("entry"))
	res, err := rekor.Run(context.Background(), rekor.Config{URL: l.URL, API: rekor.Tiles, Policy: other.Policy, Vendor: vendor, StateDir: t.TempDir()})
	var untrusted *evidence.UntrustedError
	if errors.Is(err, rekor.ErrFork) || !errors.As(err, &untrusted) || len(res.Findings) != 0 {
		t.Fatalf("Run = %v, findings %+v", err, res)
	}
}
