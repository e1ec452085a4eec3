//go:build !windows

// The interoperability tests run a Tessera log on its POSIX driver, which
// does not run on Windows.

package witness_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/witness/client"
	"github.com/shiplog/shiplog/witness/witnesstest"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/tessera"
	tclient "github.com/transparency-dev/tessera/client"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

// tesseraLog is a real Tessera POSIX log in a temporary directory whose
// checkpoints are signed with a notekey log key.
type tesseraLog struct {
	dir, origin, vkey string
	appender          *tessera.Appender
	awaiter           *tessera.PublicationAwaiter
	n                 int
}

// newTesseraLog starts a log; opts may add Tessera's own witnessing.
func newTesseraLog(t *testing.T, ctx context.Context, origin string, opts func(*tessera.AppendOptions) *tessera.AppendOptions) *tesseraLog {
	t.Helper()
	skey, vkey, err := notekey.GenerateLog(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := notekey.NewLogSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l := &tesseraLog{dir: t.TempDir(), origin: origin, vkey: vkey}
	driver, err := posix.New(ctx, posix.Config{Path: l.dir, HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	o := tessera.NewAppendOptions().WithCheckpointSigner(signer).WithBatching(64, 10*time.Millisecond).WithCheckpointInterval(100 * time.Millisecond)
	if opts != nil {
		o = opts(o)
	}
	appender, shutdown, reader, err := tessera.NewAppender(ctx, driver, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(context.Background()) })
	l.appender = appender
	l.awaiter = tessera.NewPublicationAwaiter(ctx, reader.ReadCheckpoint, 20*time.Millisecond)
	return l
}

// add appends n entries and returns the published checkpoint covering them.
func (l *tesseraLog) add(t *testing.T, ctx context.Context, n int) []byte {
	t.Helper()
	var last tessera.IndexFuture
	for i := 0; i < n; i++ {
		last = l.appender.Add(ctx, tessera.NewEntry([]byte(fmt.Sprintf("shiplog interop entry %d", l.n))))
		l.n++
	}
	_, cp, err := l.awaiter.Await(ctx, last)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func (l *tesseraLog) proofs(ctx context.Context, old, size uint64) ([][]byte, error) {
	pb, err := tclient.NewProofBuilder(ctx, size, tclient.FileFetcher{Root: l.dir}.ReadTile)
	if err != nil {
		return nil, err
	}
	return pb.ConsistencyProof(ctx, old, size)
}

// TestInteropTesseraLogOurWitnessProcess feeds a real Tessera log's
// checkpoints through our Collector to a real "shiplog witness serve"
// process; the cosignatures verify with transparency-dev/formats'
// cosignature/v1 verifier through note.Open.
func TestInteropTesseraLogOurWitnessProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := newTesseraLog(t, ctx, "example.com/tessera-log", nil)
	dir := t.TempDir()
	cosigVKey := initWitnessDir(t, dir, "witness.test", l.vkey)
	p := startWitnessProcess(t, dir)
	pol, err := policy.Parse([]byte(fmt.Sprintf("log %s\nwitness w %s %s\nquorum w\n", l.vkey, cosigVKey, p.url)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewCollector(pol, l.proofs, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wv, err := fnote.NewVerifierForCosignatureV1(cosigVKey)
	if err != nil {
		t.Fatal(err)
	}
	logV, _ := note.NewVerifier(l.vkey)
	for round := 0; round < 4; round++ {
		cp := l.add(t, ctx, 1+round*50)
		out, err := c.Cosign(ctx, cp)
		if err != nil {
			t.Fatalf("round %d: Cosign: %v\n%s", round, err, p.log())
		}
		n, err := note.Open(out, note.VerifierList(logV, wv))
		if err != nil || len(n.Sigs) != 2 {
			t.Fatalf("round %d: cosigned checkpoint does not verify with formats: %v", round, err)
		}
		if _, err := evidence.VerifyCheckpoint(out, pol); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

// TestInteropTesseraWitnessingOurWitnessProcess lets Tessera's own witness
// client (WithWitnesses) drive our witness process: Tessera publishes a
// checkpoint only once our witness cosigned it.
func TestInteropTesseraWitnessingOurWitnessProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	// The log's key must be known to the witness before the log starts.
	skey, vkey, err := notekey.GenerateLog(rand.Reader, "example.com/tessera-witnessed")
	if err != nil {
		t.Fatal(err)
	}
	cosigVKey := initWitnessDir(t, dir, "witness.test", vkey)
	p := startWitnessProcess(t, dir)
	group, err := tessera.NewWitnessGroupFromPolicy([]byte(fmt.Sprintf("witness w %s %s\nquorum w\n", cosigVKey, p.url)))
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := notekey.NewLogSigner(skey)
	l := &tesseraLog{dir: t.TempDir(), origin: "example.com/tessera-witnessed", vkey: vkey}
	driver, err := posix.New(ctx, posix.Config{Path: l.dir, HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	appender, shutdown, reader, err := tessera.NewAppender(ctx, driver, tessera.NewAppendOptions().
		WithCheckpointSigner(signer).WithBatching(64, 10*time.Millisecond).WithCheckpointInterval(100*time.Millisecond).
		WithWitnesses(group, &tessera.WitnessOptions{Timeout: 10 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	l.appender = appender
	l.awaiter = tessera.NewPublicationAwaiter(ctx, reader.ReadCheckpoint, 20*time.Millisecond)
	wv, _ := fnote.NewVerifierForCosignatureV1(cosigVKey)
	logV, _ := note.NewVerifier(vkey)
	for round := 0; round < 3; round++ {
		cp := l.add(t, ctx, 10)
		n, err := note.Open(cp, note.VerifierList(logV, wv))
		if err != nil || len(n.Sigs) != 2 {
			t.Fatalf("round %d: published checkpoint lacks our witness's cosignature: %v\n%s\n%s", round, err, cp, p.log())
		}
	}
}

// TestInteropLitewitness drives torchwood's litewitness (a witness nobody
// here wrote) and our witness process together with our Collector over a
// real Tessera log: both cosign every checkpoint, and both cosignatures
// verify with transparency-dev/formats.
func TestInteropLitewitness(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := newTesseraLog(t, ctx, "example.com/tessera-log", nil)
	lw := witnesstest.StartLitewitness(t, "litewitness.test", map[string]string{l.origin: l.vkey})
	dir := t.TempDir()
	ours := initWitnessDir(t, dir, "witness.test", l.vkey)
	p := startWitnessProcess(t, dir)
	text := fmt.Sprintf("log %s\nwitness lite %s %s\nwitness ours %s %s\ngroup both all lite ours\nquorum both\n", l.vkey, lw.VKey, lw.URL, ours, p.url)
	pol, err := policy.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewCollector(pol, l.proofs, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lv, _ := fnote.NewVerifierForCosignatureV1(lw.VKey)
	ov, _ := fnote.NewVerifierForCosignatureV1(ours)
	logV, _ := note.NewVerifier(l.vkey)
	for round := 0; round < 4; round++ {
		cp := l.add(t, ctx, 1+round*30)
		out, err := c.Cosign(ctx, cp)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		n, err := note.Open(out, note.VerifierList(logV, lv, ov))
		if err != nil || len(n.Sigs) != 3 {
			t.Fatalf("round %d: %v, %d signatures verified\n%s", round, err, len(n.Sigs), out)
		}
	}
	// A fresh collector (a restarted ledger) learns litewitness's size from
	// its 409 and carries on.
	c2, err := client.NewCollector(pol, l.proofs, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Cosign(ctx, l.add(t, ctx, 5)); err != nil {
		t.Fatalf("fresh collector: %v", err)
	}
}
