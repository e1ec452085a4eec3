package update_test

import (
	"context"
	"testing"

	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/internal/harness"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TestAttackOnlineKeyCompromiseBelowThreshold: with snapshot and timestamp
// thresholds of 2, one stolen online key is not enough: a timestamp or a
// snapshot signed by one key of the two is refused; signed by both, the
// device accepts them.
func TestAttackOnlineKeyCompromiseBelowThreshold(t *testing.T) {
	for _, role := range []string{metadata.TIMESTAMP, metadata.SNAPSHOT} {
		t.Run(role, func(t *testing.T) {
			r := harness.NewRawRepo(t)
			k2 := kit.NewKey()
			if err := r.Root.Signed.AddKey(k2.Pub, role); err != nil {
				t.Fatal(err)
			}
			r.Root.Signed.Roles[role].Threshold = 2
			r.Root.Signed.Version++
			r.WriteRoot()
			r.Publish() // signed by the first key only
			c := client(t, r, 2)
			if _, err := c.Refresh(context.Background(), update.Trusted{Root: r.RootBytes(1)}); err == nil {
				t.Fatalf("%s signed by 1 of its 2 keys was accepted", role)
			}
			r.Keys[role] = append(r.Keys[role], k2)
			r.Publish()
			if _, err := c.Refresh(context.Background(), update.Trusted{Root: r.RootBytes(1)}); err != nil {
				t.Fatalf("%s signed by both keys: %v", role, err)
			}
		})
	}
}
