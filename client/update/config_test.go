package update_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/evidencetest"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/harness"
)

// TestConfigMistakesDoNotLookLikeAttacks: a device set up with the wrong
// repository id, or with a policy naming another log key, is told what to
// check, and hears nothing about Sigstore when its policy names no Rekor
// log.
func TestConfigMistakesDoNotLookLikeAttacks(t *testing.T) {
	r := harness.NewRawRepo(t)
	t.Run("wrong repository id", func(t *testing.T) {
		c := client(t, r, 2)
		c.Gate.Repository = "example.com/firmwar"
		_, err := c.Refresh(context.Background(), update.Trusted{Root: r.RootBytes(1)})
		if !errors.Is(err, evidence.ErrNotIncluded) {
			t.Fatalf("got %v", err)
		}
		for _, want := range []string{`repository id "example.com/firmwar"`, "--repo-id"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%v\ndoes not say %q", err, want)
			}
		}
		if strings.Contains(err.Error(), "Sigstore") {
			t.Errorf("mentions Sigstore although the policy names no Rekor log: %v", err)
		}
	})
	t.Run("policy with another log key", func(t *testing.T) {
		other := evidencetest.NewLog("log.example", 3) // same origin, another key
		p, err := policy.Parse(other.Policy(2))
		if err != nil {
			t.Fatal(err)
		}
		c := client(t, r, 2)
		c.Gate.Policy = p
		_, err = c.Refresh(context.Background(), update.Trusted{Root: r.RootBytes(1)})
		var untrusted *evidence.UntrustedError
		if !errors.As(err, &untrusted) {
			t.Fatalf("got %v, want an UntrustedError", err)
		}
		for _, want := range []string{"key hash", "configuration problem", "log.vkey"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%v\ndoes not say %q", err, want)
			}
		}
		if strings.Contains(err.Error(), "Sigstore") || strings.Contains(err.Error(), "fork") {
			t.Errorf("mentions Sigstore or a fork: %v", err)
		}
	})
}
