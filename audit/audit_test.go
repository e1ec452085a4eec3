package audit

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/audit/dashboard"
	"github.com/shiplog/shiplog/audit/store"
	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/harness"
	"github.com/shiplog/shiplog/internal/harness/kit"
)

const origin = "example.com/ledger"

// env is a live test ledger behind a malicious wrapper, and an auditor.
type env struct {
	t       *testing.T
	ctx     context.Context
	keys    *kit.Keys
	ledger  *harness.RawLedger
	mal     *harness.Malicious
	srv     *httptest.Server
	policy  *policy.Policy
	db      *store.DB
	dbPath  string
	repo    *kit.Repo
	version uint64
}

func TestMain(m *testing.M) {
	harness.QuietTessera()
	os.Exit(m.Run())
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	keys := kit.NewKeys(origin, 2)
	e := &env{t: t, ctx: ctx, keys: keys}
	e.ledger = e.newLedger()
	e.mal = harness.NewMalicious(e.ledger)
	e.srv = httptest.NewServer(e.mal)
	t.Cleanup(e.srv.Close)
	var err error
	if e.policy, err = policy.Parse(keys.PolicyAll()); err != nil {
		t.Fatal(err)
	}
	e.dbPath = filepath.Join(t.TempDir(), "audit.db")
	e.openDB()
	e.repo = kit.NewRepo("example.com/firmware", time.Now().Add(365*24*time.Hour))
	return e
}

func (e *env) newLedger() *harness.RawLedger {
	l, err := harness.NewRawLedger(e.ctx, e.t.TempDir(), e.keys)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { l.Close() })
	return l
}

func (e *env) openDB() {
	db, err := store.Open(e.dbPath)
	if err != nil {
		e.t.Fatal(err)
	}
	e.db = db
	e.t.Cleanup(func() { db.Close() })
}

func (e *env) auditor(mod func(*Config)) *Auditor {
	cfg := Config{Ledger: e.srv.URL, Policy: e.policy, State: e.db, StepBundles: 1}
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// honest logs the repository's root and n releases, each signed properly.
func (e *env) honest(l *harness.RawLedger, n int) []harness.Release {
	var rs []harness.Release
	if e.version == 0 {
		rs = append(rs, harness.Release{Repo: e.repo.ID, Role: "root", Version: 1, Metadata: e.repo.RootBytes()})
	}
	for i := 0; i < n; i++ {
		e.version++
		rs = append(rs, harness.Release{Repo: e.repo.ID, Role: "targets", Version: e.version,
			Metadata: e.repo.Release(kit.Files("fw", 2, e.version))})
	}
	if _, err := l.Append(e.ctx, rs...); err != nil {
		e.t.Fatal(err)
	}
	return rs
}

func (e *env) step(a *Auditor) Result {
	e.t.Helper()
	res, err := a.Step(e.ctx)
	if err != nil {
		e.t.Fatalf("Step: %v", err)
	}
	return res
}

func wantNone(t *testing.T, res Result) {
	t.Helper()
	for _, f := range res.Findings {
		t.Errorf("honest run: finding %s (%s): %s", f.Kind, f.Severity, f.Message)
	}
}

func wantFinding(t *testing.T, res Result, kind alert.Kind) store.FindingRecord {
	t.Helper()
	for _, f := range res.Findings {
		if f.Kind == kind {
			return f
		}
	}
	var got []alert.Kind
	for _, f := range res.Findings {
		got = append(got, f.Kind)
	}
	t.Fatalf("findings %v, want %s", got, kind)
	return store.FindingRecord{}
}

func TestHonestLedgerHasNoFindings(t *testing.T) {
	e := newEnv(t)
	var out bytes.Buffer
	a := e.auditor(func(c *Config) { c.Sink = &alert.JSONLines{W: &out} })
	e.honest(e.ledger, 300) // more than one entry bundle
	res := e.step(a)
	wantNone(t, res)
	if res.Audited != 301 || res.CheckpointSize != 301 {
		t.Errorf("audited %d of %d, want 301 of 301", res.Audited, res.CheckpointSize)
	}
	e.honest(e.ledger, 5)
	wantNone(t, e.step(a))
	wantNone(t, e.step(a)) // nothing new
	if out.Len() != 0 {
		t.Errorf("honest run wrote alerts: %s", out.String())
	}
	var n int
	e.db.View(func(tx *store.Tx) error {
		return tx.Releases(e.repo.ID, func(r replayRelease) bool { n++; return true })
	})
	if n != 306 {
		t.Errorf("%d releases recorded, want 306", n)
	}
}

func TestResumeAfterRestart(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 600)
	// The first auditor is stopped mid catch-up: its context ends after the
	// first committed step.
	ctx, cancel := context.WithCancel(e.ctx)
	a := e.auditor(func(c *Config) {
		c.Sink = sinkFunc(func(alert.Finding) {})
		c.Progress = progressCanceller{cancel}
	})
	a.Step(ctx)
	h, _, _ := e.db.Head()
	if h.Size == 0 || h.Size >= 601 {
		t.Fatalf("after an interrupted catch-up the head is at %d; want a partial catch-up", h.Size)
	}
	e.db.Close()
	e.openDB()
	res := e.step(e.auditor(nil))
	wantNone(t, res)
	if res.Audited != 601 {
		t.Errorf("resumed auditor audited %d, want 601", res.Audited)
	}
}

type sinkFunc func(alert.Finding)

func (s sinkFunc) Alert(_ context.Context, f alert.Finding) error { s(f); return nil }

// progressCanceller cancels the catch-up at its first progress report.
type progressCanceller struct{ cancel context.CancelFunc }

func (p progressCanceller) Write(b []byte) (int, error) { p.cancel(); return len(b), nil }

func TestAttackHistoryRewrite(t *testing.T) {
	e := newEnv(t)
	a := e.auditor(nil)
	e.honest(e.ledger, 10)
	wantNone(t, e.step(a))
	// The ledger rebuilds its log without release 5 and with more entries,
	// signed with its own key and cosigned by colluding witnesses.
	forked := e.newLedger()
	e.version = 0
	rs := e.honest(forked, 4)
	e.repo.SetVersion(5)
	e.version = 5
	e.honest(forked, 10)
	_ = rs
	e.mal.SetBackend(forked)
	f := wantFinding(t, e.step(a), alert.KindFork)
	verifyForkEvidence(t, f, e.policy, false)
	h, _, _ := e.db.Head()
	if h.Size != 11 {
		t.Errorf("auditor advanced past the fork to %d", h.Size)
	}
}

func TestAttackForkedCheckpointToWitness(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 3)
	// The ledger shows witness w0 a different log of the same size.
	forked := e.newLedger()
	saved := *e.repo
	e.repo = kit.NewRepo("example.com/other", time.Now().Add(time.Hour))
	e.version = 0
	e.honest(forked, 3)
	e.repo = &saved
	cp, err := forked.Checkpoint(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	ws := &harness.WitnessServer{Origin: origin}
	ws.Set(cp)
	wsrv := httptest.NewServer(ws)
	defer wsrv.Close()
	a := e.auditor(func(c *Config) { c.Witnesses = []string{wsrv.URL} })
	res := e.step(a)
	f := wantFinding(t, res, alert.KindFork)
	verifyForkEvidence(t, f, e.policy, true)
	if f.Evidence["source"] != WitnessCheckpointURL(wsrv.URL, origin) {
		t.Errorf("fork source %q", f.Evidence["source"])
	}
	// The same fork is reported once, not at every poll.
	if res := e.step(a); len(res.Findings) != 0 {
		t.Errorf("fork reported again: %v", res.Findings)
	}
}

func TestWitnessAgreeingHasNoFindings(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 3)
	cp, _ := e.ledger.Checkpoint(e.ctx)
	ws := &harness.WitnessServer{Origin: origin}
	ws.Set(cp)
	wsrv := httptest.NewServer(ws)
	defer wsrv.Close()
	a := e.auditor(func(c *Config) { c.Witnesses = []string{wsrv.URL} })
	wantNone(t, e.step(a))
	// The witness is behind: an older consistent checkpoint is fine too.
	e.honest(e.ledger, 3)
	wantNone(t, e.step(a))
}

func TestAttackFreezeBehindWitness(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 3)
	old, _ := e.ledger.Checkpoint(e.ctx)
	// The ledger keeps serving the old checkpoint to the auditor, and a
	// larger one from another tree to the witness.
	forked := e.newLedger()
	e.version = 0
	e.honest(forked, 300)
	cp, _ := forked.Checkpoint(e.ctx)
	e.mal.ServeCheckpoint(old)
	ws := &harness.WitnessServer{Origin: origin}
	ws.Set(cp)
	wsrv := httptest.NewServer(ws)
	defer wsrv.Close()
	now := time.Now()
	a := e.auditor(func(c *Config) {
		c.Witnesses = []string{wsrv.URL}
		c.Now = func() time.Time { return now }
	})
	// The witness may have cosigned a checkpoint the ledger is about to
	// publish: not yet a stale view.
	wantNone(t, e.step(a))
	now = now.Add(defaultStaleViewAfter - time.Second)
	wantNone(t, e.step(a))
	// Still unsupported once StaleViewAfter has passed: a stale view.
	now = now.Add(time.Second)
	f := wantFinding(t, e.step(a), alert.KindStaleView)
	if f.Evidence["checkpoint"] != string(cp) {
		t.Errorf("stale-view evidence %q, want the witness's checkpoint", f.Evidence["checkpoint"])
	}
}

// TestWitnessAheadWhileLedgerPublishesIsNoStaleView: a witness cosigns a
// checkpoint before the ledger publishes it (the ledger publishes once a
// quorum cosigned), so it may hold a size the ledger's tiles do not serve
// yet. Once the ledger publishes it, that is no finding, however long after.
func TestWitnessAheadWhileLedgerPublishesIsNoStaleView(t *testing.T) {
	e := newEnv(t)
	next := e.newLedger() // the same log, a few entries further
	rs := e.honest(next, 6)
	if _, err := e.ledger.Append(e.ctx, rs[:4]...); err != nil {
		t.Fatal(err)
	}
	cp, _ := next.Checkpoint(e.ctx)
	ws := &harness.WitnessServer{Origin: origin}
	ws.Set(cp)
	wsrv := httptest.NewServer(ws)
	defer wsrv.Close()
	now := time.Now()
	a := e.auditor(func(c *Config) {
		c.Witnesses = []string{wsrv.URL}
		c.Now = func() time.Time { return now }
	})
	wantNone(t, e.step(a))
	if _, err := e.ledger.Append(e.ctx, rs[4:]...); err != nil {
		t.Fatal(err)
	}
	wantNone(t, e.step(a))
	now = now.Add(2 * defaultStaleViewAfter)
	wantNone(t, e.step(a))
}

// TestAttackSplitViewAheadOfAuditor: the ledger shows the witness a forked
// log that always stays larger than what it shows the auditor. The
// witness's first forked checkpoint is checked again once the ledger's tree
// reaches its size: a fork, found before any stale-view grace period ends.
func TestAttackSplitViewAheadOfAuditor(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 3) // size 4
	forked := e.newLedger()
	saved := *e.repo
	e.repo = kit.NewRepo("example.com/other", time.Now().Add(time.Hour))
	e.version = 0
	e.honest(forked, 5) // size 6
	first, _ := forked.Checkpoint(e.ctx)
	ws := &harness.WitnessServer{Origin: origin}
	ws.Set(first)
	wsrv := httptest.NewServer(ws)
	defer wsrv.Close()
	now := time.Now()
	a := e.auditor(func(c *Config) {
		c.Witnesses = []string{wsrv.URL}
		c.Now = func() time.Time { return now }
	})
	wantNone(t, e.step(a))
	// The fork grows on (size 16) ahead of the log the auditor sees (size 8).
	e.honest(forked, 10)
	later, _ := forked.Checkpoint(e.ctx)
	ws.Set(later)
	*e.repo = saved
	e.version = 3
	e.honest(e.ledger, 4)
	f := wantFinding(t, e.step(a), alert.KindFork)
	verifyForkEvidence(t, f, e.policy, false) // sizes 6 and 8, with the proof that fails
	if fork, _ := evidence.ParseFork([]byte(f.Evidence["fork"])); !bytes.Equal(fork.Old, first) {
		t.Errorf("fork evidence holds %q, want the witness's first forked checkpoint", fork.Old)
	}
}

func TestAttackDroppedEntry(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 20)
	e.mal.DropEntry(7)
	a := e.auditor(nil)
	wantFinding(t, e.step(a), alert.KindTreeMismatch)
	if h, ok, _ := e.db.Head(); ok && h.Size != 0 {
		t.Errorf("auditor advanced to %d over a dropped entry", h.Size)
	}
	// Once the ledger serves the real entries again, the audit completes.
	e.mal.DropEntry(-1)
	wantNone(t, e.step(a))
}

func TestAttackMetadataNotMatchingHash(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 2)
	e.mal.CorruptMetadata(true)
	res := e.step(e.auditor(nil))
	f := wantFinding(t, res, alert.KindMetadataMismatch)
	if f.Severity != alert.Critical {
		t.Errorf("severity %s", f.Severity)
	}
	if len(res.Findings) != 3 {
		t.Errorf("%d findings, want one per entry (3)", len(res.Findings))
	}
}

func TestAttackReleaseSignedByRevokedKey(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 1)
	root2, revoked := e.repo.RotateTargetsKey()
	evil := e.repo.Release(kit.Files("backdoor", 1, 666), revoked...)
	if _, err := e.ledger.Append(e.ctx,
		harness.Release{Repo: e.repo.ID, Role: "root", Version: 2, Metadata: root2},
		harness.Release{Repo: e.repo.ID, Role: "targets", Version: 2, Metadata: evil}); err != nil {
		t.Fatal(err)
	}
	res := e.step(e.auditor(nil))
	f := wantFinding(t, res, alert.KindBadSignature)
	if f.Index == nil || *f.Index != 3 || f.Version != 2 {
		t.Errorf("finding at index %v version %d, want index 3 version 2", f.Index, f.Version)
	}
	if len(res.Findings) != 1 {
		t.Errorf("findings %v, want only the bad signature", res.Findings)
	}
}

func TestAttackUnexpectedReleaseVendorMode(t *testing.T) {
	e := newEnv(t)
	rs := e.honest(e.ledger, 3)
	// The vendor made all but the last release: a thief with the targets
	// key made that one.
	var hashes bytes.Buffer
	fmt.Fprintln(&hashes, "# releases we made")
	for _, r := range rs[:len(rs)-1] {
		fmt.Fprintf(&hashes, "%x\n", sha256Sum(r.Metadata))
	}
	exp, err := ParseExpectedHashes(hashes.Bytes(), e.repo.ID)
	if err != nil {
		t.Fatal(err)
	}
	res := e.step(e.auditor(func(c *Config) { c.Vendor = exp }))
	f := wantFinding(t, res, alert.KindUnexpected)
	if *f.Index != 3 || len(res.Findings) != 1 {
		t.Errorf("findings %+v, want one unexpected release at index 3", res.Findings)
	}
}

func TestVendorRepoDir(t *testing.T) {
	e := newEnv(t)
	rs := e.honest(e.ledger, 2)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "metadata"), 0o755)
	os.WriteFile(filepath.Join(dir, "shiplog-repo.json"), []byte(`{"repository": "`+e.repo.ID+`", "ledger": "x"}`), 0o644)
	for _, r := range rs {
		os.WriteFile(filepath.Join(dir, "metadata", fmt.Sprintf("%d.%s.json", r.Version, r.Role)), r.Metadata, 0o644)
	}
	os.WriteFile(filepath.Join(dir, "metadata", "timestamp.json"), []byte("{}"), 0o644)
	exp, err := ExpectedFromRepoDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if exp.Len() != 3 {
		t.Errorf("expected set has %d hashes, want 3", exp.Len())
	}
	wantNone(t, e.step(e.auditor(func(c *Config) { c.Vendor = exp })))
}

func TestAttackCheckpointWithoutQuorum(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 1)
	raw, _ := e.ledger.Checkpoint(e.ctx)
	body, _, _ := bytes.Cut(raw, []byte("\n\n"))
	signed, err := checkpoint.Sign(mustParse(t, append(body, '\n')), e.keys.LogSigner())
	if err != nil {
		t.Fatal(err)
	}
	one, _ := e.keys.Cosign(signed, 0) // one of two witnesses
	e.mal.ServeCheckpoint(one)
	res, err := e.auditor(nil).Step(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := wantFinding(t, res, alert.KindBadCheckpoint)
	if f.Severity != alert.Warning {
		t.Errorf("severity %s, want warning", f.Severity)
	}
	if h, ok, _ := e.db.Head(); ok {
		t.Errorf("auditor trusted a checkpoint without quorum (head %d)", h.Size)
	}
}

func mustParse(t *testing.T, body []byte) checkpoint.Checkpoint {
	c, err := checkpoint.ParseUnverified(body)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func verifyForkEvidence(t *testing.T, f store.FindingRecord, p *policy.Policy, wantConclusive bool) {
	t.Helper()
	fork, err := evidence.ParseFork([]byte(f.Evidence["fork"]))
	if err != nil {
		t.Fatalf("fork evidence does not parse: %v", err)
	}
	conclusive, err := evidence.VerifyFork(fork, p)
	if err != nil {
		t.Fatalf("fork evidence does not verify: %v", err)
	}
	if conclusive != wantConclusive {
		t.Errorf("conclusive = %v, want %v", conclusive, wantConclusive)
	}
}

// TestPeerAuditorsGossip: auditor B gossips with auditor A's dashboard
// (/checkpoint): agreement gives no finding; a peer showing a checkpoint of
// a forked log (a split view served to A) gives fork evidence.
func TestPeerAuditorsGossip(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 4)
	peerDB, err := store.Open(filepath.Join(t.TempDir(), "peer.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer peerDB.Close()
	pa, err := New(Config{Ledger: e.srv.URL, Policy: e.policy, State: peerDB})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pa.Step(e.ctx); err != nil {
		t.Fatal(err)
	}
	peer := httptest.NewServer(dashboard.New(peerDB, nil))
	defer peer.Close()
	a := e.auditor(func(c *Config) { c.Peers = []string{peer.URL} })
	wantNone(t, e.step(a))

	// The split view: a forked log of the same size, shown to another peer.
	forked := e.newLedger()
	e.version = 0
	e.repo = kit.NewRepo("example.com/split", e.repo.Expires)
	e.honest(forked, 4)
	cp, _ := forked.Checkpoint(e.ctx)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/checkpoint" {
			w.Write(cp)
		}
	}))
	defer evil.Close()
	b := e.auditor(func(c *Config) { c.Peers = []string{evil.URL + "/"} })
	f := wantFinding(t, e.step(b), alert.KindFork)
	verifyForkEvidence(t, f, e.policy, true)
}

func TestAttackCorruptHashTile(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 10)
	e.mal.CorruptTiles(true)
	res := e.step(e.auditor(nil))
	f := wantFinding(t, res, alert.KindTileMismatch)
	if f.Severity != alert.Warning {
		t.Errorf("severity %s", f.Severity)
	}
	// The entries are right, so the audit itself goes on.
	if res.Audited != 11 {
		t.Errorf("audited %d, want 11", res.Audited)
	}
}

func TestAttackOversizedCheckpoint(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 1)
	e.mal.ServeCheckpoint(bytes.Repeat([]byte("A"), checkpoint.MaxNoteSize+1))
	if _, err := e.auditor(nil).Step(e.ctx); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized checkpoint: err = %v, want a size error", err)
	}
	if _, ok, _ := e.db.Head(); ok {
		t.Error("state changed after an oversized checkpoint")
	}
}

func TestAttackGossipCheckpointWithoutLogSignature(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 1)
	other := kit.NewKeys(origin, 0) // same origin, another key
	raw, _ := e.ledger.Checkpoint(e.ctx)
	body, _, _ := bytes.Cut(raw, []byte("\n\n"))
	forged, err := checkpoint.Sign(mustParse(t, append(body, '\n')), other.LogSigner())
	if err != nil {
		t.Fatal(err)
	}
	ws := &harness.WitnessServer{Origin: origin}
	ws.Set(forged)
	wsrv := httptest.NewServer(ws)
	defer wsrv.Close()
	f := wantFinding(t, e.step(e.auditor(func(c *Config) { c.Witnesses = []string{wsrv.URL} })), alert.KindBadCheckpoint)
	if f.Severity != alert.Warning {
		t.Errorf("severity %s, want warning", f.Severity)
	}
}

// TestAttackEquivocationInterleaved: two different files for one version,
// logged in one catch-up step between releases of another repository (the
// replay checks a step's signatures in parallel and applies them in log
// order), and again in a later step.
func TestAttackEquivocationInterleaved(t *testing.T) {
	e := newEnv(t)
	other := kit.NewRepo("example.com/other", e.repo.Expires)
	r := e.repo
	a1 := r.Release(kit.Files("a", 1, 1))
	r.SetVersion(0)
	b1 := r.Release(kit.Files("b", 1, 1))
	if _, err := e.ledger.Append(e.ctx,
		harness.Release{Repo: r.ID, Role: "root", Version: 1, Metadata: r.RootBytes()},
		harness.Release{Repo: other.ID, Role: "root", Version: 1, Metadata: other.RootBytes()},
		harness.Release{Repo: r.ID, Role: "targets", Version: 1, Metadata: a1},
		harness.Release{Repo: other.ID, Role: "targets", Version: 1, Metadata: other.Release(nil)},
		harness.Release{Repo: r.ID, Role: "targets", Version: 1, Metadata: b1},
		harness.Release{Repo: other.ID, Role: "targets", Version: 2, Metadata: other.Release(nil)},
	); err != nil {
		t.Fatal(err)
	}
	a := e.auditor(nil)
	res := e.step(a)
	f := wantFinding(t, res, alert.KindEquivocation)
	if *f.Index != 4 || f.Evidence["first_index"] != "2" || len(res.Findings) != 1 {
		t.Errorf("findings %+v, want one equivocation at 4 against 2", res.Findings)
	}
	r.SetVersion(0)
	c1 := r.Release(kit.Files("c", 1, 1))
	if _, err := e.ledger.Append(e.ctx, harness.Release{Repo: r.ID, Role: "targets", Version: 1, Metadata: c1}); err != nil {
		t.Fatal(err)
	}
	f = wantFinding(t, e.step(a), alert.KindEquivocation)
	if *f.Index != 6 || f.Evidence["first_index"] != "2" {
		t.Errorf("later equivocation %+v, want index 6 against 2", f)
	}
}

func TestAttackFreezeLedgerServesOlderCheckpoint(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 2)
	old, _ := e.ledger.Checkpoint(e.ctx)
	a := e.auditor(nil)
	wantNone(t, e.step(a))
	e.honest(e.ledger, 2)
	wantNone(t, e.step(a))
	e.mal.ServeCheckpoint(old)
	wantFinding(t, e.step(a), alert.KindStaleView)
	if h, _, _ := e.db.Head(); h.Size != 5 {
		t.Errorf("head went back to %d", h.Size)
	}
	e.mal.ServeCheckpoint(nil)
	wantNone(t, e.step(a))
}

// TestWrongLogKeyInPolicyIsConfigurationNotFinding: an auditor whose policy
// names another log key (a configuration mistake) fails with a hint saying
// what to check, and records no finding: a checkpoint that no trusted key
// signed proves nothing against the log. Once the auditor has verified the
// ledger, the same is a warning, never critical.
func TestWrongLogKeyInPolicyIsConfigurationNotFinding(t *testing.T) {
	e := newEnv(t)
	e.honest(e.ledger, 1)
	other := kit.NewKeys(origin, 2)
	wrong, err := policy.Parse(other.PolicyAll())
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.auditor(func(c *Config) { c.Policy = wrong }).Step(e.ctx)
	if err == nil || !strings.Contains(err.Error(), "log.vkey") || !strings.Contains(err.Error(), "configuration problem") {
		t.Fatalf("Step = %v, want a configuration error with a hint", err)
	}
	if len(res.Findings) != 0 {
		t.Errorf("findings: %+v", res.Findings)
	}
	e.step(e.auditor(nil)) // the right policy: verified
	res = e.step(e.auditor(func(c *Config) { c.Policy = wrong }))
	if f := wantFinding(t, res, alert.KindBadCheckpoint); f.Severity != alert.Warning {
		t.Errorf("after a verified checkpoint: severity %s, want warning", f.Severity)
	}
}
