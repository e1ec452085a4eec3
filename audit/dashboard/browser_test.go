package dashboard_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/shiplog/shiplog/audit"
	"github.com/shiplog/shiplog/audit/dashboard"
	"github.com/shiplog/shiplog/audit/store"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/harness"
	"github.com/shiplog/shiplog/internal/harness/kit"
)

func TestMain(m *testing.M) {
	harness.QuietTessera()
	os.Exit(m.Run())
}

// chromium returns the browser's path, skipping the test when it is absent
// outside CI (scripts/setup.d/40-chromium.sh installs it).
func chromium(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("chromium not installed (scripts/setup.d/40-chromium.sh installs it): %v", err)
		}
		t.Skip("chromium not installed; run scripts/setup.d/40-chromium.sh")
	}
	return p
}

func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 1000),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	// The first run starts the browser, for the life of ctx (no timeout).
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("couldn't start chromium: %v", err)
	}
	return ctx
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func count(t *testing.T, ctx context.Context, sel string) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
	if err != nil {
		t.Fatalf("count %s: %v", sel, err)
	}
	return n
}

func navigate(t *testing.T, ctx context.Context, url, waitFor string) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(waitFor))); err != nil {
		t.Fatalf("load %s: %v", url, err)
	}
}

// TestDashboardShowsTheLog loads the dashboard of an auditor following a
// live ledger in headless Chromium and checks that what the page shows is
// what the log holds: checkpoint size, root and cosigners, the release
// timeline, and the alert (with its evidence) for a release signed by a
// revoked key.
func TestDashboardShowsTheLog(t *testing.T) {
	ctx := browser(t)
	shots := screenshots(t)
	bg, cancel := context.WithCancel(context.Background())
	defer cancel()
	keys := kit.NewKeys("example.com/ledger", 2)
	l, err := harness.NewRawLedger(bg, t.TempDir(), keys)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	srv := httptest.NewServer(l)
	defer srv.Close()
	repo := kit.NewRepo("example.com/firmware", time.Now().Add(24*time.Hour))
	rs := []harness.Release{{Repo: repo.ID, Role: "root", Version: 1, Metadata: repo.RootBytes()}}
	for v := uint64(1); v <= 5; v++ {
		rs = append(rs, harness.Release{Repo: repo.ID, Role: "targets", Version: v, Metadata: repo.Release(kit.Files("fw", 1, v))})
	}
	root2, revoked := repo.RotateTargetsKey()
	rs = append(rs, harness.Release{Repo: repo.ID, Role: "root", Version: 2, Metadata: root2},
		harness.Release{Repo: repo.ID, Role: "targets", Version: 6, Metadata: repo.Release(kit.Files("evil", 1, 6), revoked...)})
	if _, err := l.Append(bg, rs...); err != nil {
		t.Fatal(err)
	}

	p, err := policy.Parse(keys.PolicyAll())
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err := audit.New(audit.Config{Ledger: srv.URL, Policy: p, State: db})
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Step(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 1 {
		t.Fatalf("auditor found %d findings, want 1 (the revoked-key release)", len(res.Findings))
	}
	dash := httptest.NewServer(dashboard.New(db, nil))
	defer dash.Close()

	raw, err := l.Checkpoint(bg)
	if err != nil {
		t.Fatal(err)
	}
	body, _, _ := strings.Cut(string(raw), "\n\n")
	cp, err := checkpoint.ParseUnverified([]byte(body + "\n"))
	if err != nil {
		t.Fatal(err)
	}

	navigate(t, ctx, dash.URL+"/", "#log-size")
	if got := text(t, ctx, "#log-size"); got != strconv.FormatUint(cp.Size, 10) {
		t.Errorf("page shows size %q, log has %d", got, cp.Size)
	}
	if got := text(t, ctx, "#log-audited"); got != strconv.FormatUint(cp.Size, 10) {
		t.Errorf("page shows %q audited, want %d", got, cp.Size)
	}
	if got, want := text(t, ctx, "#log-root"), base64.StdEncoding.EncodeToString(cp.Hash[:]); got != want {
		t.Errorf("page shows root %q, log has %q", got, want)
	}
	if got := count(t, ctx, "#cosigners li"); got != 2 {
		t.Errorf("page lists %d cosigners, want 2", got)
	}
	if got := text(t, ctx, "#cosigners"); !strings.Contains(got, "w0") || !strings.Contains(got, "w1") {
		t.Errorf("cosigners %q, want w0 and w1", got)
	}
	if got := count(t, ctx, "#plot polyline"); got != 1 {
		t.Errorf("no size plot")
	}
	if got := count(t, ctx, "#alerts tr.alert"); got != 1 {
		t.Errorf("page shows %d alerts, want 1", got)
	}
	if got := count(t, ctx, `#alerts tr.alert[data-kind="bad-signature"][data-severity="critical"]`); got != 1 {
		t.Errorf("the revoked-key alert is not shown as a critical bad-signature")
	}
	if got := text(t, ctx, `#repos tr.repo[data-repo="example.com/firmware"] td.releases`); got != strconv.Itoa(len(rs)) {
		t.Errorf("page shows %s releases, log has %d", got, len(rs))
	}
	screenshot(t, ctx, shots, "overview.png")

	// The release timeline: every logged release, newest first.
	navigate(t, ctx, dash.URL+"/repo?id="+repo.ID, "#timeline")
	if got := count(t, ctx, "#timeline tr.release"); got != len(rs) {
		t.Errorf("timeline shows %d releases, log has %d", got, len(rs))
	}
	if got := text(t, ctx, `#timeline tr.release[data-index="5"] td.changed`); got != "+fw-0.bin" && !strings.Contains(got, "fw-0.bin") {
		t.Errorf("targets changed by v5: %q", got)
	}
	if got := count(t, ctx, `#timeline tr.release[data-index="7"] .invalid`); got != 1 {
		t.Errorf("the revoked-key release is not marked invalid")
	}
	screenshot(t, ctx, shots, "repo.png")

	// The alert page shows its evidence.
	navigate(t, ctx, fmt.Sprintf("%s/alerts/%d", dash.URL, res.Findings[0].ID), "#alert-kind")
	if got := text(t, ctx, "#alert-kind"); got != "bad-signature" {
		t.Errorf("alert page kind %q", got)
	}
	if got := text(t, ctx, `pre.evidence[data-key="sha256"]`); got != fmt.Sprintf("%x", sha(rs[7].Metadata)) {
		t.Errorf("alert evidence sha256 %q does not match the logged metadata", got)
	}
}
