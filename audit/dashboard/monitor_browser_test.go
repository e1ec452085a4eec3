package dashboard_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/shiplog/shiplog/audit"
	"github.com/shiplog/shiplog/audit/dashboard"
	"github.com/shiplog/shiplog/audit/store"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/harness"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"golang.org/x/mod/sumdb/tlog"
)

// screenshots returns the directory the browser tests write their
// screenshots to: $SHIPLOG_SCREENSHOT_DIR, or a new temporary directory that
// outlives the test (a CI artifact), logged.
func screenshots(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SHIPLOG_SCREENSHOT_DIR")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "shiplog-dashboard-screenshots-"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("dashboard screenshots in %s", dir)
	return dir
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), shot, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDashboardIsAMonitor drives the dashboard as an operator would, in
// headless Chromium, after an auditor in vendor mode followed a live ledger
// that logged a release the vendor did not make, while a witness fell behind,
// and then the ledger stopped answering. The overview says the ledger is not
// answering and when the last round succeeded, that vendor mode is on, and
// how far the witness lags; search finds releases by SHA-256, target path,
// repository and index; the entry page shows the release as not made by
// the vendor (never "valid"), the key ID that signed it, its raw metadata and
// an inclusion proof that verifies against the audited root; the alert is
// acknowledged and resolved with notes through the form, and the resolution
// is in the auditor's state.
func TestDashboardIsAMonitor(t *testing.T) {
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
	repo := kit.NewRepo("example.com/firmware", time.Now().Add(24*time.Hour))
	rs := []harness.Release{{Repo: repo.ID, Role: "root", Version: 1, Metadata: repo.RootBytes()}}
	for v := uint64(1); v <= 4; v++ {
		rs = append(rs, harness.Release{Repo: repo.ID, Role: "targets", Version: v, Metadata: repo.Release(kit.Files(fmt.Sprintf("fw%d", v), 1, v))})
	}
	if _, err := l.Append(bg, rs...); err != nil {
		t.Fatal(err)
	}
	// A witness that saw the log at this size, and no later.
	cp, _ := l.Checkpoint(bg)
	ws := &harness.WitnessServer{Origin: "example.com/ledger"}
	ws.Set(cp)
	wsrv := httptest.NewServer(ws)
	defer wsrv.Close()
	// The vendor made every release but the last one: someone else signed v5
	// with the vendor's key.
	stolen := harness.Release{Repo: repo.ID, Role: "targets", Version: 5, Metadata: repo.Release(kit.Files("evil", 1, 5))}
	if _, err := l.Append(bg, stolen); err != nil {
		t.Fatal(err)
	}
	var made []string
	for _, r := range rs {
		sum := sha(r.Metadata)
		made = append(made, hex.EncodeToString(sum[:]))
	}
	vendor, err := audit.ParseExpectedHashes([]byte(strings.Join(made, "\n")+"\n"), repo.ID)
	if err != nil {
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
	now := time.Now().UTC()
	clock := func() time.Time { return now }
	a, err := audit.New(audit.Config{Ledger: srv.URL, Policy: p, State: db, Vendor: vendor, Witnesses: []string{wsrv.URL}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Step(bg); err != nil {
		t.Fatal(err)
	}
	lastSuccess := now
	srv.Close() // the ledger stops answering
	now = now.Add(10 * time.Minute)
	res, _ := a.Step(bg)
	if len(res.Findings) != 1 || res.Findings[0].Kind != "ledger-unreachable" {
		t.Fatalf("after the ledger stopped: findings %v, want one ledger-unreachable", res.Findings)
	}

	metadata := map[[32]byte][]byte{}
	for _, r := range append(rs, stolen) {
		metadata[sha(r.Metadata)] = r.Metadata
	}
	dash := httptest.NewServer(dashboard.NewHandler(dashboard.Config{State: db, VendorMode: true, VendorRepos: []string{repo.ID}, Now: clock,
		Metadata: func(_ context.Context, sum [32]byte) ([]byte, error) { return metadata[sum], nil }}))
	defer dash.Close()

	// The overview: the ledger is down since the last successful round,
	// vendor mode is on, the witness lags by the stolen release.
	navigate(t, ctx, dash.URL+"/", "#ledger-status")
	if got := text(t, ctx, "#ledger-status"); !strings.Contains(got, "not answering") {
		t.Errorf("ledger status %q, want not answering", got)
	}
	if got := text(t, ctx, "#last-success"); !strings.HasPrefix(got, lastSuccess.Format("2006-01-02 15:04:05Z")) {
		t.Errorf("last successful round %q, want %s", got, lastSuccess)
	}
	if count(t, ctx, "#vendor-on") != 1 {
		t.Error("vendor mode is not shown as on")
	}
	if got := text(t, ctx, fmt.Sprintf(`#witness-panel tr.witness[data-source=%q] td.lag`, wsrv.URL)); got != "1" {
		t.Errorf("witness lag %q, want 1", got)
	}
	if got := text(t, ctx, fmt.Sprintf(`#witness-panel tr.witness[data-source=%q] td.size`, wsrv.URL)); got != "5" {
		t.Errorf("witness size %q, want 5", got)
	}
	for _, kind := range []string{"ledger-unreachable", "unexpected-release"} {
		if count(t, ctx, fmt.Sprintf(`#alerts tr.alert[data-kind=%q]`, kind)) != 1 {
			t.Errorf("no %s alert on the overview", kind)
		}
	}
	if got := text(t, ctx, fmt.Sprintf(`#repos tr.repo[data-repo=%q] td.latest`, repo.ID)); !strings.Contains(got, "targets v5 (not made by the vendor)") {
		t.Errorf("latest versions %q do not say v5 was not made by the vendor", got)
	}
	screenshot(t, ctx, shots, "monitor-overview.png")

	// Search: by SHA-256, by target path, by repository, by index.
	stolenHash := sha(stolen.Metadata)
	stolenSum := hex.EncodeToString(stolenHash[:])
	const stolenIndex = 5
	navigate(t, ctx, dash.URL+"/search?q="+stolenSum, "#search-results")
	if got := count(t, ctx, "#search-results tr.result"); got != 1 || count(t, ctx, fmt.Sprintf(`tr.result[data-index="%d"]`, stolenIndex)) != 1 {
		t.Errorf("search by sha256 found %d releases, want the stolen one", got)
	}
	if got := text(t, ctx, "#search-results td.status"); got != "not made by the vendor" {
		t.Errorf("search shows the stolen release as %q", got)
	}
	navigate(t, ctx, dash.URL+"/search?q="+url.QueryEscape("fw3-0.bin"), "#search-results")
	if count(t, ctx, `#search-results tr.result[data-index="3"]`) != 1 {
		t.Error("search by target path did not find the release that added it")
	}
	navigate(t, ctx, dash.URL+"/search?q=firmware", "#search-repos")
	if got := text(t, ctx, "#search-repos"); got != repo.ID {
		t.Errorf("search by repository: %q", got)
	}
	navigate(t, ctx, dash.URL+"/search?q=5", "#entry-index")

	// The entry page of the stolen release.
	if got := text(t, ctx, "#entry-index"); got != "5" {
		t.Fatalf("search by index opened entry %q", got)
	}
	if got := text(t, ctx, "#entry-status"); got != "not made by the vendor" || strings.Contains(got, "valid") {
		t.Errorf("the stolen release's status is %q", got)
	}
	if got := text(t, ctx, "#entry-keyids"); got != repo.TargetsKeys[0].ID() {
		t.Errorf("signed by %q, want the targets key %s", got, repo.TargetsKeys[0].ID())
	}
	if got := text(t, ctx, "#entry-changed"); !strings.Contains(got, "evil-0.bin") {
		t.Errorf("targets changed %q", got)
	}
	if got := text(t, ctx, "#entry-metadata"); !strings.Contains(got, `"version": 5`) {
		t.Errorf("raw metadata does not show version 5: %.200q", got)
	}
	checkProofOnPage(t, ctx, db, stolenIndex)
	screenshot(t, ctx, shots, "monitor-entry.png")

	navigate(t, ctx, dash.URL+"/repo?id="+repo.ID, "#timeline")
	if got := text(t, ctx, fmt.Sprintf(`#timeline tr.release[data-index="%d"] td.status`, stolenIndex)); got != "not made by the vendor" {
		t.Errorf("the timeline shows the stolen release as %q", got)
	}

	// Acknowledge, then resolve, the unexpected-release alert.
	var id uint64
	for _, f := range mustFindings(t, db) {
		if f.Kind == "unexpected-release" {
			id = f.ID
		}
	}
	alertURL := fmt.Sprintf("%s/alerts/%d", dash.URL, id)
	navigate(t, ctx, alertURL, "#alert-form")
	submit := func(button, note, wantClass string) {
		t.Helper()
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(tctx, chromedp.SendKeys(chromedp.CSS("#note"), note), chromedp.Click(chromedp.CSS(button)),
			chromedp.WaitVisible(chromedp.CSS("#alert-state "+wantClass))); err != nil {
			t.Fatalf("submit %s: %v", button, err)
		}
	}
	submit("#ack", "looking at it: asked the release team", ".state-ack")
	if got := text(t, ctx, "#alert-state"); got != "acknowledged" {
		t.Errorf("after acknowledging, the alert is %q", got)
	}
	submit("#resolve", "key rotated; v5 revoked in root v2", ".state-resolved")
	if got := text(t, ctx, "#alert-state"); got != "resolved" {
		t.Errorf("after resolving, the alert is %q", got)
	}
	if got := count(t, ctx, "#alert-history tr.event"); got != 2 {
		t.Errorf("history has %d events, want 2", got)
	}
	screenshot(t, ctx, shots, "monitor-alert.png")
	var st store.AlertState
	db.View(func(tx *store.Tx) (err error) { st, err = tx.AlertState(id); return err })
	if st.State != store.AlertResolved || st.History[1].Note != "key rotated; v5 revoked in root v2" {
		t.Errorf("stored alert state %+v", st)
	}
	navigate(t, ctx, dash.URL+"/", "#resolved")
	if count(t, ctx, fmt.Sprintf(`#alerts tr.alert[data-id="%d"]`, id)) != 0 || count(t, ctx, fmt.Sprintf(`#resolved tr[data-id="%d"]`, id)) != 1 {
		t.Error("the resolved alert is still listed as open")
	}
}

// checkProofOnPage reads the leaf hash and inclusion proof from the entry
// page and verifies them against the auditor's verified root.
func checkProofOnPage(t *testing.T, ctx context.Context, db *store.DB, index int64) {
	t.Helper()
	head, _, err := db.Head()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := tlog.ParseHash(text(t, ctx, "#entry-leaf"))
	if err != nil {
		t.Fatalf("leaf hash: %v", err)
	}
	items, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#entry-proof li")).map(e => e.textContent.trim())`))
	if err != nil {
		t.Fatal(err)
	}
	var proof tlog.RecordProof
	for _, s := range items {
		h, err := tlog.ParseHash(s)
		if err != nil {
			t.Fatalf("proof hash %q: %v", s, err)
		}
		proof = append(proof, h)
	}
	if err := tlog.CheckRecord(proof, int64(head.Size), head.Root, index, leaf); err != nil {
		t.Errorf("the inclusion proof on the page does not verify: %v", err)
	}
	if _, err := base64.StdEncoding.DecodeString(text(t, ctx, "#entry-leaf")); err != nil {
		t.Errorf("leaf hash not base64: %v", err)
	}
}

func mustFindings(t *testing.T, db *store.DB) []store.FindingRecord {
	t.Helper()
	var out []store.FindingRecord
	if err := db.View(func(tx *store.Tx) error {
		return tx.Findings(func(f store.FindingRecord) error { out = append(out, f); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
