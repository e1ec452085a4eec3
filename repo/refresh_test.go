package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/shiplog/shiplog/repo/keys"
)

// openAt opens the fixture's repository with the clock at t.
func (f *fixture) openAt(t time.Time) *Repo {
	f.t.Helper()
	r, err := open(f.dir, func() time.Time { return t })
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// changedFiles lists the files whose content differs between two listings.
func changedFiles(before, after map[string]string) []string {
	var out []string
	for p, b := range after {
		if before[p] != b {
			out = append(out, p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			out = append(out, p+" (removed)")
		}
	}
	return out
}

func TestRefreshNothingDue(t *testing.T) {
	f := newFixture(t)
	before := snapshotDir(t, f.dir)
	r := f.open()
	defer r.Close()
	res, err := r.Refresh(RefreshOptions{TimestampKeys: f.ks("timestamp"), SnapshotKeys: f.ks("snapshot")})
	if err != nil {
		t.Fatal(err)
	}
	if res.TimestampSigned || res.SnapshotSigned {
		t.Errorf("fresh repository re-signed: %+v", res)
	}
	if c := changedFiles(before, snapshotDir(t, f.dir)); len(c) != 0 {
		t.Errorf("changed %v", c)
	}
}

func TestRefreshTimestampOnly(t *testing.T) {
	f := newFixture(t)
	before := snapshotDir(t, f.dir)
	r := f.openAt(time.Now().Add(20 * time.Hour)) // a one-day timestamp has under half its life left
	defer r.Close()
	// Only the timestamp key: the snapshot is not due.
	res, err := r.Refresh(RefreshOptions{TimestampKeys: f.ks("timestamp")})
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimestampSigned || res.SnapshotSigned || res.Timestamp != 2 {
		t.Errorf("got %+v, want timestamp v2 only", res)
	}
	c := changedFiles(before, snapshotDir(t, f.dir))
	if len(c) != 1 || c[0] != filepath.Join("metadata", "timestamp.json") {
		t.Errorf("changed %v, want only metadata/timestamp.json", c)
	}
}

// TestRefreshNeverSignsTargetsOrRoot: a due snapshot is re-signed with the
// role versions it already lists; no root or targets file changes, and a
// staged release is not exposed.
func TestRefreshNeverSignsTargetsOrRoot(t *testing.T) {
	f := newFixture(t)
	f.add(map[string]string{"app.bin": "firmware 2"})
	f.sign(f.keys["targets"], "targets") // staged and signed, not published
	before := snapshotDir(t, f.dir)
	r := f.openAt(time.Now().Add(4 * 24 * time.Hour)) // a one-week snapshot has under half its life left
	defer r.Close()
	if _, err := r.Refresh(RefreshOptions{TimestampKeys: f.ks("timestamp")}); err == nil || !strings.Contains(err.Error(), "--snapshot-key") {
		t.Fatalf("due snapshot without its key: err = %v", err)
	}
	oldMeta := r.snapshot.Signed.Meta
	res, err := r.Refresh(RefreshOptions{TimestampKeys: f.ks("timestamp"), SnapshotKeys: f.ks("snapshot")})
	if err != nil {
		t.Fatal(err)
	}
	if !res.SnapshotSigned || !res.TimestampSigned {
		t.Errorf("got %+v, want snapshot and timestamp signed", res)
	}
	if len(r.snapshot.Signed.Meta) != len(oldMeta) {
		t.Fatalf("snapshot lists %d roles, had %d", len(r.snapshot.Signed.Meta), len(oldMeta))
	}
	for name, mf := range oldMeta {
		if nm := r.snapshot.Signed.Meta[name]; nm == nil || nm.Version != mf.Version || !nm.Hashes.Equal(mf.Hashes) {
			t.Errorf("snapshot changed %s: %+v -> %+v", name, mf, nm)
		}
	}
	for _, p := range changedFiles(before, snapshotDir(t, f.dir)) {
		if !strings.HasSuffix(p, ".snapshot.json") && p != filepath.Join("metadata", "timestamp.json") {
			t.Errorf("refresh changed %s", p)
		}
	}
}

// TestRefreshRefusesExpiredTargets: refresh cannot hide an expired targets
// role behind a fresh timestamp: clients would reject it, so nothing is
// written and the error says so.
func TestRefreshRefusesExpiredTargets(t *testing.T) {
	f := newFixture(t)
	before := snapshotDir(t, f.dir)
	r := f.openAt(time.Now().Add(100 * 24 * time.Hour))
	defer r.Close()
	_, err := r.Refresh(RefreshOptions{TimestampKeys: f.ks("timestamp"), SnapshotKeys: f.ks("snapshot")})
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("err = %v, want an expiry error", err)
	}
	if c := changedFiles(before, snapshotDir(t, f.dir)); len(c) != 0 {
		t.Errorf("changed %v", c)
	}
}

func TestRefreshWrongKey(t *testing.T) {
	f := newFixture(t)
	r := f.openAt(time.Now().Add(20 * time.Hour))
	defer r.Close()
	if _, err := r.Refresh(RefreshOptions{TimestampKeys: f.ks("targets")}); err == nil {
		t.Fatal("the targets key refreshed the timestamp")
	}
}

// TestRefreshLoopKeepsRepositoryFresh: a repository left alone for ten days
// (its timestamp lives one day, its snapshot a week) stays valid for TUF
// clients at every moment while RefreshLoop runs every hour of a simulated
// clock (each round advances it), and the metrics report each role's
// expiry. Conditions are waited for; nothing is timed.
func TestRefreshLoopKeepsRepositoryFresh(t *testing.T) {
	f := newFixture(t)
	start := time.Now()
	var mu sync.Mutex
	clock := start
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return clock
	}
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type round struct {
		at      time.Time
		res     *Refreshed
		err     error
		invalid error
	}
	rounds := make(chan round, 1)
	done := make(chan error, 1)
	go func() {
		done <- RefreshLoop(ctx, f.dir, RefreshLoopOptions{
			RefreshOptions: RefreshOptions{TimestampKeys: f.ks("timestamp"), SnapshotKeys: f.ks("snapshot")},
			Every:          time.Millisecond, Metrics: NewFreshnessMetrics(reg), Now: now,
			Done: func(res *Refreshed, err error) {
				at := now()
				// Check the repository as a client would, at this moment
				// and one simulated hour later (before the next round).
				r, oerr := open(f.dir, func() time.Time { return at.Add(time.Hour) })
				var invalid error = oerr
				if oerr == nil {
					invalid = r.checkCurrent()
					r.Close()
				}
				select {
				case rounds <- round{at, res, err, invalid}:
				case <-ctx.Done():
				}
				mu.Lock()
				clock = clock.Add(time.Hour)
				mu.Unlock()
			},
		})
	}()
	timestamps, snapshots := 0, 0
	for {
		rd := <-rounds
		if rd.err != nil {
			t.Fatalf("refresh at +%v: %v", rd.at.Sub(start), rd.err)
		}
		if rd.invalid != nil {
			t.Fatalf("at +%v the repository is not valid for clients: %v", rd.at.Add(time.Hour).Sub(start), rd.invalid)
		}
		if rd.res.TimestampSigned {
			timestamps++
		}
		if rd.res.SnapshotSigned {
			snapshots++
		}
		if rd.at.Sub(start) >= 10*24*time.Hour {
			break
		}
	}
	cancel()
	<-done
	// A one-day timestamp refreshed at half its life: about twice a day.
	if timestamps < 15 || snapshots < 2 {
		t.Errorf("in ten days: %d timestamps and %d snapshots signed", timestamps, snapshots)
	}
	if n := testutil.CollectAndCount(reg, "shiplog_repo_metadata_expires_timestamp_seconds"); n != 4 {
		t.Errorf("%d expiry series, want root, targets, snapshot and timestamp", n)
	}
}

// ks returns the fixture's key of role, as a list.
func (f *fixture) ks(role string) []*keys.Private { return []*keys.Private{f.keys[role]} }

// TestAttackTimerRefreshFailuresHideTheLastSuccess: a refresh run by a
// timer writes its metrics file anew each run; without carrying the file
// over, every failing run would write "1 failure, no last success", and the
// alerts that look for a lapsed last success or growing failures would stay
// silent while the timestamp lapses.
func TestAttackTimerRefreshFailuresHideTheLastSuccess(t *testing.T) {
	run := func(prev []byte, err error, now time.Time) []byte {
		t.Helper()
		reg := prometheus.NewRegistry()
		m := NewFreshnessMetrics(reg)
		if prev != nil {
			if rerr := m.Resume("example.com/fw", prev); rerr != nil {
				t.Fatal(rerr)
			}
		}
		m.Observe("example.com/fw", map[string]time.Time{"timestamp": now.Add(time.Hour)}, err, now)
		path := filepath.Join(t.TempDir(), "m.prom")
		if werr := prometheus.WriteToTextfile(path, reg); werr != nil {
			t.Fatal(werr)
		}
		b, rerr := os.ReadFile(path)
		if rerr != nil {
			t.Fatal(rerr)
		}
		return b
	}
	t0 := time.Unix(1_800_000_000, 0)
	file := run(nil, nil, t0)
	for i := 1; i <= 3; i++ {
		file = run(file, errors.New("HSM unreachable"), t0.Add(time.Duration(i)*time.Hour))
	}
	for _, want := range []string{
		`shiplog_repo_refresh_last_success_timestamp_seconds{repository="example.com/fw"} 1.8e+09`,
		`shiplog_repo_refresh_failures_total{repository="example.com/fw"} 3`,
	} {
		if !strings.Contains(string(file), want) {
			t.Errorf("after three failed runs the file lacks %s:\n%s", want, file)
		}
	}
	// Another repository's series are not taken; a file that does not
	// parse carries nothing.
	if err := NewFreshnessMetrics(prometheus.NewRegistry()).Resume("other.example", file); err != nil {
		t.Error(err)
	}
	if err := NewFreshnessMetrics(prometheus.NewRegistry()).Resume("example.com/fw", []byte("not { metrics")); err == nil {
		t.Error("Resume accepted a malformed file")
	}
}
