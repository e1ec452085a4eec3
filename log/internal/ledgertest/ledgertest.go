// Package ledgertest starts real ledgers for tests: Tessera POSIX storage
// in a temporary directory, a bbolt index, a metadata store, and a witness
// policy with in-process witnesses. It is for tests only.
package ledgertest

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/evidence/policy"
	ledger "github.com/shiplog/shiplog/log"
	"github.com/shiplog/shiplog/log/tessera"
	"golang.org/x/mod/sumdb/note"
)

// Keys are a log key and witness keys.
type Keys struct {
	Origin    string
	SKey      string
	VKey      string
	Witnesses []Witness
}

// Witness is an in-process witness key.
type Witness struct {
	Name, SKey, VKey string
	Signer           note.Signer
}

// NewKeys makes a log key for origin and n witness keys.
func NewKeys(t testing.TB, origin string, n int) *Keys {
	skey, vkey, err := notekey.GenerateLog(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	k := &Keys{Origin: origin, SKey: skey, VKey: vkey}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("w%d.example", i)
		ws, wv, _, err := notekey.GenerateWitness(rand.Reader, name)
		if err != nil {
			t.Fatal(err)
		}
		s, err := notekey.NewWitnessSigner(ws)
		if err != nil {
			t.Fatal(err)
		}
		k.Witnesses = append(k.Witnesses, Witness{name, ws, wv, s})
	}
	return k
}

// Policy returns the tlog-policy text for the log and its witnesses with a
// quorum of q (0: "quorum none"); urls, if given, are the witnesses' URLs.
func (k *Keys) Policy(q int, urls ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "log %s\n", k.VKey)
	if q == 0 { // a policy may name only witnesses that count towards its quorum
		b.WriteString("quorum none\n")
		return []byte(b.String())
	}
	var names []string
	for i, w := range k.Witnesses {
		names = append(names, fmt.Sprintf("w%d", i))
		u := ""
		if i < len(urls) {
			u = " " + urls[i]
		}
		fmt.Fprintf(&b, "witness w%d %s%s\n", i, w.VKey, u)
	}
	fmt.Fprintf(&b, "group q %d %s\nquorum q\n", q, strings.Join(names, " "))
	return []byte(b.String())
}

// LocalCosigner cosigns with in-process witness keys, the first n of them;
// it stands in for witness/client in unit tests. Fail makes it fail.
type LocalCosigner struct {
	Witnesses []Witness
	Fail      func() bool
}

// Cosign adds the witnesses' cosignatures to the note.
func (c *LocalCosigner) Cosign(_ context.Context, n []byte) ([]byte, error) {
	if c.Fail != nil && c.Fail() {
		return nil, fmt.Errorf("witnesses unreachable")
	}
	body, _, ok := strings.Cut(string(n), "\n\n")
	if !ok {
		return nil, fmt.Errorf("not a note")
	}
	var signers []note.Signer
	for _, w := range c.Witnesses {
		signers = append(signers, w.Signer)
	}
	sigs, err := checkpoint.Cosign([]byte(body+"\n"), signers...)
	if err != nil {
		return nil, err
	}
	return checkpoint.AddSignatures(n, sigs), nil
}

// Ledger is a running test ledger.
type Ledger struct {
	*ledger.Ledger
	Dir     string
	Keys    *Keys
	Policy  *policy.Policy
	Storage *tessera.Storage
	stop    func()
}

// Options configure Start.
type Options struct {
	Quorum   int
	Cosigner ledger.Cosigner
	Now      func() time.Time
}

// Start creates (if dir has no log yet) and opens a ledger in dir, and runs
// its publisher until the test ends or Stop.
func Start(t testing.TB, dir string, keys *Keys, opts Options) *Ledger {
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
		cos = &LocalCosigner{Witnesses: keys.Witnesses}
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
