package audit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// maxTimestampFile bounds a fetched timestamp.json; real ones are under 1 KiB.
const maxTimestampFile = 64 << 10

// freshness reads timestamp.json from each repository in
// Config.Repositories and reports one KindTimestampLapsed finding per
// expired timestamp version: a repository whose timestamp lapsed serves
// devices nothing they may install, so they silently stop getting security
// fixes. The file is parsed, not verified (the auditor does not know which
// repository a URL serves): the finding reports what devices are served, and
// says so. An unreachable repository is not a finding here.
func (a *Auditor) freshness(ctx context.Context, res *Result) error {
	now := a.cfg.Now()
	for _, base := range a.cfg.Repositories {
		src := strings.TrimSuffix(base, "/") + "/timestamp.json"
		b, err := a.readRepoFile(ctx, src)
		if err != nil {
			a.log.Warn("couldn't read a repository's timestamp", "source", src, "err", err,
				"hint", "--repo-url is the TUF metadata base URL, the directory that serves timestamp.json (for `shiplog repo serve`: http://HOST/metadata/)")
			continue
		}
		f := lapsedTimestamp(b, src, now)
		if f == nil {
			continue
		}
		if err := a.report(ctx, res, *f); err != nil {
			return err
		}
	}
	return nil
}

// readRepoFile reads an http(s) URL or, for a vendor's local repository, a
// file path.
func (a *Auditor) readRepoFile(ctx context.Context, src string) ([]byte, error) {
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		return get(ctx, a.cfg.Client, src, maxTimestampFile)
	}
	return readCapped(src, maxTimestampFile)
}

// lapsedTimestamp returns the finding for a timestamp.json that expired
// before now, or nil.
func lapsedTimestamp(b []byte, src string, now time.Time) *alert.Finding {
	ev := map[string]string{"source": src}
	ts, err := metadata.Timestamp().FromBytes(b)
	if err != nil {
		ev["timestamp.json"] = string(b)
		return &alert.Finding{Severity: alert.Warning, Kind: alert.KindTimestampLapsed, Role: "timestamp",
			Message: "a repository serves a timestamp.json that is not TUF timestamp metadata: devices cannot update", Evidence: ev}
	}
	if ts.Signed.Expires.After(now) {
		return nil
	}
	ev["expires"] = ts.Signed.Expires.UTC().Format(time.RFC3339)
	ev["version"] = strconv.FormatInt(ts.Signed.Version, 10)
	return &alert.Finding{Severity: alert.Warning, Kind: alert.KindTimestampLapsed, Role: "timestamp", Version: uint64(ts.Signed.Version),
		Message: fmt.Sprintf("the repository serves timestamp v%d, expired at %s (seen %s; not signature-checked): devices stop updating until it is refreshed (`shiplog repo refresh`)",
			ts.Signed.Version, ev["expires"], now.UTC().Format(time.RFC3339)),
		Evidence: ev}
}
