package device

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shiplog/shiplog/client/approval"
	"github.com/shiplog/shiplog/client/capability"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/evidence/publicity"
	"github.com/shiplog/shiplog/internal/durable"
)

// ErrDenied means an update escalates to a capability the device's policy
// denies (Config.DenyCapabilities): it is refused, whatever the approval
// mode. The device's first install is its baseline, never an escalation.
var ErrDenied = errors.New("the update gains a capability this device denies")

// ErrHeld means a bundle applied through the update service is held: inside
// the device's publicity window, or without the sign-off it requires; apply
// it again once eligible.
var ErrHeld = errors.New("the release is held by the device's policy")

// pendingFile is the non-trusted cache of the last held release.
const pendingFile = "pending.json"

// Pending is a release the device holds until its publicity window has
// passed or its sign-off is met, or that waits for the owner's approval
// (an update not approved, one gaining capabilities without consent), as
// recorded by the last check or update. It is informational: it is never
// consulted to decide an install (each check verifies again).
type Pending struct {
	CheckedAt   time.Time           `json:"checked_at"`
	ToVersion   int64               `json:"to_targets_version"`
	Targets     []string            `json:"targets"`
	Publicity   *approval.Publicity `json:"publicity"`
	Signoff     []approval.Signoff  `json:"signoff,omitempty"`
	Description string              `json:"description"`
}

// now is the device's clock: Options.Time, or the current time.
func (d *Device) now() time.Time {
	if !d.opts.Time.IsZero() {
		return d.opts.Time
	}
	return time.Now()
}

// checkWindowPolicy refuses a publicity window under a policy that cannot
// prove publicity (quorum none).
func checkWindowPolicy(c *Config, p *policy.Policy) error {
	if (c.MinPublicAge > 0 || c.MinPublicAgeSecurity > 0) && p.Quorum == nil {
		return fmt.Errorf("config: a publicity window needs a policy with a witness quorum: %w", publicity.ErrNoQuorum)
	}
	return nil
}

// assess completes p's summary with what the device's policy says of it:
// since when the release is public and whether its window has passed, and
// which gained capabilities the policy denies (none on the first install,
// the baseline the owner sets the device up with and consents to).
func (d *Device) assess(p *plan) error {
	sum := p.summary
	for i := range sum.Changes {
		if p.baseline {
			break
		}
		ch := &sum.Changes[i]
		for _, g := range ch.Gained {
			for _, r := range d.cfg.DenyCapabilities {
				if capability.Matches(r, g) {
					ch.Denied = append(ch.Denied, g)
					break
				}
			}
		}
	}
	if sum.Empty() || d.policy.Quorum == nil {
		return nil
	}
	now := d.now()
	pub := publicity.Publicity{}
	if len(p.evidence) > 0 {
		var ps []publicity.Publicity
		for _, e := range p.evidence {
			if e.Cosigned == nil {
				ps = append(ps, publicity.Publicity{})
				continue
			}
			x, err := publicity.Since(e.Cosigned, d.policy, e.Index, now, d.cfg.skew())
			if err != nil {
				return fmt.Errorf("couldn't tell since when %s v%d is public: %w", e.Role, e.Version, err)
			}
			ps = append(ps, x)
		}
		pub = publicity.Latest(ps...)
	}
	w := d.cfg.window(sum.SecurityOnly())
	sum.Publicity = &approval.Publicity{Public: pub.Public, Window: w.String(), Eligible: w == 0 || pub.Eligible(w, now)}
	if pub.Public {
		sum.Publicity.Since, sum.Publicity.EligibleAt = pub.Since.UTC(), pub.EligibleAt(w).UTC()
	}
	return nil
}

// release applies the device's policy to a verified plan before approval:
// a gained capability the policy denies refuses the update (ErrDenied), so
// does a proven mismatch from a trusted rebuilder (ErrMismatch); a release
// without the sign-off the device requires, or still inside its publicity
// window, is held (a Result, no error, nothing trusted changes: a later
// check decides again). It returns nil, nil when the update may go on
// to approval.
func (d *Device) release(p *plan) (*Result, error) {
	sum := p.summary
	if sum.Empty() {
		d.clearPending()
		return nil, nil
	}
	var denied []string
	for _, ch := range sum.Changes {
		if len(ch.Denied) > 0 {
			denied = append(denied, clean(ch.Path)+" gains "+strings.Join(ch.Denied, ", "))
		}
	}
	if len(denied) > 0 {
		d.clearPending()
		return nil, fmt.Errorf("%w: %s (targets version %d)", ErrDenied, strings.Join(denied, "; "), sum.ToVersion)
	}
	msg, err := signoffHeld(sum)
	if err != nil {
		d.clearPending()
		return nil, err
	}
	if msg != "" {
		d.savePending(p, msg)
		return &Result{Summary: sum, Action: approval.Hold, Message: msg}, nil
	}
	if pub := sum.Publicity; pub != nil && !pub.Eligible {
		msg := heldMessage(sum)
		d.savePending(p, msg)
		return &Result{Summary: sum, Action: approval.Hold, Message: msg}, nil
	}
	d.clearPending()
	return nil, nil
}

func heldMessage(sum *approval.Summary) string {
	pub := sum.Publicity
	if !pub.Public {
		return fmt.Sprintf("held: targets version %d is not yet proven public by a witness quorum (window %s)", sum.ToVersion, pub.Window)
	}
	return fmt.Sprintf("held: targets version %d public since %s, eligible at %s (window %s)", sum.ToVersion,
		pub.Since.Format(time.RFC3339), pub.EligibleAt.Format(time.RFC3339), pub.Window)
}

// savePending records a held release in the non-trusted cache; a failure
// to write it is logged, never fatal (it is informational).
func (d *Device) savePending(p *plan, msg string) {
	pe := Pending{CheckedAt: d.now().UTC(), ToVersion: p.summary.ToVersion, Publicity: p.summary.Publicity, Signoff: p.summary.Signoff, Description: msg}
	for _, ch := range p.summary.Changes {
		pe.Targets = append(pe.Targets, ch.Path)
	}
	b, err := json.MarshalIndent(pe, "", "  ")
	if err == nil {
		err = durable.WriteFile(filepath.Join(d.dir, pendingFile), append(b, '\n'), 0o644)
	}
	if err != nil {
		d.log.Warn("couldn't record the pending release", "err", err)
	}
}

func (d *Device) clearPending() {
	if err := os.Remove(filepath.Join(d.dir, pendingFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.log.Warn("couldn't remove the pending release record", "err", err)
	}
}

// loadPending reads the pending release record, if any; an unreadable one
// counts as none (it is not trusted state).
func (d *Device) loadPending() *Pending {
	b, err := readLimited(filepath.Join(d.dir, pendingFile), 1<<20)
	if err != nil {
		return nil
	}
	var pe Pending
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if dec.Decode(&pe) != nil || (pe.Publicity == nil && pe.Signoff == nil) {
		return nil
	}
	return &pe
}
