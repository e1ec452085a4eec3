package device_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TestAttackDelegationThroughRotatedOutTargets: a thief holding the
// targets, snapshot and timestamp keys releases a targets that delegates
// "evil/*" to role evil, signed by the thief's key, and the device installs
// it. Root v2 rotates the targets key. The thief then releases evil v2,
// exposed under a snapshot that still lists the thief's targets: the
// device walks from the targets the new root accepts, so it refuses the
// thief's targets and never reaches evil v2 (as the ledger and the
// auditor refuse it: docs/spec/versions.md, "Delegators"). The vendor's
// clean targets under the new key installs.
func TestAttackDelegationThroughRotatedOutTargets(t *testing.T) {
	e := start(t, 2)
	e.repo.Delegate("targets", "evil", []string{"evil/*"}, false)
	e.repo.AddTarget("evil", "evil/tool.bin", []byte("backdoor v1"), nil)
	e.repo.Publish()
	e.mustUpdate()
	if got := e.installed("evil/tool.bin"); got != "backdoor v1" {
		t.Fatalf("the thief's delegated target before the rotation: %q", got)
	}
	e.repo.RotateRoot(metadata.TARGETS)
	e.repo.AddTarget("evil", "evil/tool.bin", []byte("backdoor v2"), nil) // evil v2; targets stays the thief's
	e.repo.Publish()
	err := e.attack()
	if !errors.Is(err, &metadata.ErrUnsignedMetadata{}) || !strings.Contains(err.Error(), ".targets.json") {
		t.Fatalf("evil v2 through the rotated-out targets: got %v, want a signature error on targets", err)
	}
	if got := e.installed("evil/tool.bin"); got != "backdoor v1" {
		t.Errorf("installed %q after the attack", got)
	}
	e.repo.Roles[metadata.TARGETS].Signed.Delegations = nil
	e.repo.AddTarget(metadata.TARGETS, "fw/image.bin", []byte("firmware v2"), nil)
	e.repo.Publish()
	if res := e.mustUpdate(); !res.Installed || e.installed("fw/image.bin") != "firmware v2" || e.installed("evil/tool.bin") != "" {
		t.Fatalf("the vendor's clean targets: %+v, evil/tool.bin %q", res, e.installed("evil/tool.bin"))
	}
}
