package update_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/internal/harness"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TestExpiredMetadataNamesRoleTimeAndWhoActs: an expired role is reported
// with its name, version, expiry time, how long ago that was, and who must
// act (the vendor's command for that role, or the device's clock), not as
// go-tuf's bare "expired metadata error".
func TestExpiredMetadataNamesRoleTimeAndWhoActs(t *testing.T) {
	soon := harness.Now.Add(time.Hour)
	for _, tc := range []struct {
		name  string
		setup func(r *harness.RawRepo)
		at    time.Time
		path  string // resolve this target after the refresh
		want  []string
	}{
		{"timestamp", func(r *harness.RawRepo) {
			r.Expires = soon
			r.WriteTimestamp()
		}, harness.Now.Add(27 * time.Hour), "", []string{"timestamp v2 expired at 2026-06-01T13:00:00Z, 1d2h ago", "shiplog repo refresh", "device's clock is wrong"}},
		{"snapshot", func(r *harness.RawRepo) {
			r.Expires = soon
			r.WriteSnapshot()
			r.Expires = harness.Now.Add(365 * 24 * time.Hour)
			r.WriteTimestamp()
		}, harness.Now.Add(3 * time.Hour), "", []string{"snapshot v2 expired at 2026-06-01T13:00:00Z, 2h0m ago", "shiplog repo refresh --snapshot-key"}},
		{"root", func(r *harness.RawRepo) {}, harness.Now.Add(2 * 365 * 24 * time.Hour), "", []string{"root v1 expired at", "shiplog repo renew --role root"}},
		{"delegated role", func(r *harness.RawRepo) {
			r.Delegate("targets", "apps", []string{"apps/*"}, false)
			r.Stage() // targets v2 delegates apps
			r.Expires = soon
			r.AddTarget("apps", "apps/a.bin", []byte("a"), nil)
			r.Stage()
			r.Expires = harness.Now.Add(365 * 24 * time.Hour)
			r.Expose()
		}, harness.Now.Add(2 * time.Hour), "apps/a.bin", []string{"apps v2 expired at 2026-06-01T13:00:00Z, 1h0m ago", "shiplog repo renew --role apps"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := harness.NewRawRepo(t)
			tc.setup(r)
			c := client(t, r, 2)
			c.Time = tc.at
			s, err := c.Refresh(context.Background(), update.Trusted{Root: r.RootBytes(1)})
			if err == nil && tc.path != "" {
				_, err = s.Target(context.Background(), tc.path)
			}
			var exp *update.ExpiredError
			if !errors.As(err, &exp) || !errors.Is(err, &metadata.ErrExpiredMetadata{}) {
				t.Fatalf("got %v, want an ExpiredError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q\ndoes not say %q", err, w)
				}
			}
		})
	}
}
