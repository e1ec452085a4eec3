package harness

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/harness/kit"
	ledger "github.com/shiplog/shiplog/log"
	"github.com/shiplog/shiplog/log/tessera"
)

// Ledger is a running test ledger: the real ledger (package log) on
// Tessera POSIX storage in a directory, with a bbolt index, a metadata store
// and a witness policy whose witnesses cosign in process (kit.LocalCosigner)
// unless LedgerOptions.Cosigner says otherwise. It has no HTTP server; Start
// serves one.
type Ledger struct {
	*ledger.Ledger
	Dir     string
	Keys    *kit.Keys
	Policy  *policy.Policy
	Storage *tessera.Storage
	stop    func()
}

// LedgerOptions configure StartLedger.
type LedgerOptions struct {
	// Quorum is the number of witnesses the policy requires (0: none).
	Quorum int
	// Cosigner replaces the in-process witnesses.
	Cosigner ledger.Cosigner
	// Now is the ledger's clock (default time.Now).
	Now func() time.Time
}

// StartLedger creates (if dir has no log yet) and opens a ledger in dir,
// and runs its publisher until the test ends or Stop.
func StartLedger(t testing.TB, dir string, keys *kit.Keys, opts LedgerOptions) *Ledger {
	t.Helper()
	ctx := context.Background()
	signer, err := notekey.NewLogSigner(keys.SKey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := notekey.ParseLogVerifier(keys.VKey)
	if err != nil {
		t.Fatal(err)
	}
	logDir := filepath.Join(dir, "log")
	_ = tessera.Create(ctx, logDir, signer) // no-op error when it exists
	st, err := tessera.Open(ctx, tessera.Options{Dir: logDir, Signer: signer, Verifier: verifier})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := ledger.OpenIndex(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := ledger.NewMetadataStore(filepath.Join(dir, "metadata"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(keys.Policy(opts.Quorum))
	if err != nil {
		t.Fatal(err)
	}
	cos := opts.Cosigner
	if cos == nil && opts.Quorum > 0 {
		cos = &kit.LocalCosigner{Witnesses: keys.Witnesses}
	}
	l, err := ledger.New(ctx, ledger.Config{
		Storage: st, Index: idx, Metadata: ms, Policy: p, Origin: keys.Origin,
		Cosigner: cos, StateDir: dir, Now: opts.Now,
	})
	if err != nil {
		st.Close(ctx)
		idx.Close()
		ms.Close()
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { l.Run(rctx); close(done) }()
	tl := &Ledger{Ledger: l, Dir: dir, Keys: keys, Policy: p, Storage: st}
	stopped := false
	tl.stop = func() {
		if stopped {
			return
		}
		stopped = true
		l.StartClosing()
		st.Close(ctx)
		cancel()
		<-done
		idx.Close()
		ms.Close()
	}
	t.Cleanup(tl.stop)
	return tl
}

// Stop closes the ledger (also done at the end of the test).
func (l *Ledger) Stop() { l.stop() }
