package device

import (
	"fmt"
	"strings"
	"time"

	"github.com/shiplog/shiplog/client/state"
	"github.com/shiplog/shiplog/evidence/checkpoint"
	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Status describes a device's trusted state.
type Status struct {
	Repository    string `json:"repository"`
	RepositoryURL string `json:"repository_url,omitempty"`
	Approval      string `json:"approval"`
	// Profile is the preset the policy started from; Policy every
	// effective setting with where it came from.
	Profile string          `json:"profile,omitempty"`
	Policy  []PolicySetting `json:"policy"`
	// Require are the sign-off requirements (docs/spec/signoff.md).
	Require []RequireStatus `json:"require,omitempty"`
	// Pending is the release the last check or update held back, if any
	// (informational, not trusted state).
	Pending     *Pending        `json:"pending,omitempty"`
	Installed   *state.Manifest `json:"installed,omitempty"`
	Active      string          `json:"active"`
	Roles       []RoleStatus    `json:"roles"`
	Checkpoints []LogStatus     `json:"checkpoints"`
	// Busy says another process held the state's lock (an update or
	// install running): the status was read without it (ReadStatus).
	Busy bool `json:"busy,omitempty"`
}

// RequireStatus is one sign-off requirement: K of the N attesters named
// must have stated Verdict about a target before it installs.
type RequireStatus struct {
	Verdict   string   `json:"verdict"`
	K         int      `json:"k"`
	N         int      `json:"n"`
	Attesters []string `json:"attesters"`
	From      string   `json:"from,omitempty"`
}

func (r RequireStatus) String() string {
	return fmt.Sprintf("%s %d of %d (%s)", r.Verdict, r.K, r.N, strings.Join(r.Attesters, ", "))
}

// RoleStatus is one trusted role. Expired is true when Expires is not after
// the device's reference time (Options.Time, or now): the next update fails
// until the vendor renews the role or the clock is corrected.
type RoleStatus struct {
	Role    string    `json:"role"`
	Version int64     `json:"version"`
	Expires time.Time `json:"expires"`
	Expired bool      `json:"expired,omitempty"`
}

// LogStatus is the newest checkpoint held for one log.
type LogStatus struct {
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
}

// Status reports the trusted state and the active version.
func (d *Device) Status() (*Status, error) {
	s, err := d.store.Load()
	if err != nil {
		return nil, err
	}
	active, err := d.inst.Active()
	if err != nil {
		return nil, err
	}
	st := &Status{Repository: d.cfg.Repository, RepositoryURL: d.cfg.RepositoryURL, Approval: string(d.cfg.Approval), Installed: s.Installed, Active: active,
		Profile: d.cfg.Profile, Policy: d.cfg.EffectivePolicy(), Pending: d.loadPending()}
	for _, r := range d.cfg.Require {
		rs := RequireStatus{Verdict: r.Verdict, K: r.K, N: len(r.Keys), From: r.From}
		for _, k := range r.Keys {
			if a, err := signoff.ParseAttester(k); err == nil {
				rs.Attesters = append(rs.Attesters, a.Name)
			}
		}
		st.Require = append(st.Require, rs)
	}
	if r, err := metadata.Root().FromBytes(s.Root); err == nil {
		st.Roles = append(st.Roles, RoleStatus{Role: "root", Version: r.Signed.Version, Expires: r.Signed.Expires})
	}
	if s.Timestamp != nil {
		if m, err := metadata.Timestamp().FromBytes(s.Timestamp); err == nil {
			st.Roles = append(st.Roles, RoleStatus{Role: "timestamp", Version: m.Signed.Version, Expires: m.Signed.Expires})
		}
	}
	if s.Snapshot != nil {
		if m, err := metadata.Snapshot().FromBytes(s.Snapshot); err == nil {
			st.Roles = append(st.Roles, RoleStatus{Role: "snapshot", Version: m.Signed.Version, Expires: m.Signed.Expires})
		}
	}
	for _, role := range sortedPaths(s.Targets) {
		if m, err := metadata.Targets().FromBytes(s.Targets[role]); err == nil {
			st.Roles = append(st.Roles, RoleStatus{Role: role, Version: m.Signed.Version, Expires: m.Signed.Expires})
		}
	}
	now := d.opts.Time
	if now.IsZero() {
		now = time.Now()
	}
	for i := range st.Roles {
		st.Roles[i].Expired = !st.Roles[i].Expires.After(now)
	}
	for _, origin := range sortedPaths(s.Checkpoints) {
		l := d.policy.Log(origin)
		if l == nil {
			continue
		}
		if c, err := checkpoint.Open(s.Checkpoints[origin], origin, l.Verifier); err == nil {
			st.Checkpoints = append(st.Checkpoints, LogStatus{origin, c.Size})
		}
	}
	return st, nil
}

// ReadStatus reports the status of the device state in dir without taking
// its lock, so that it answers while another process updates the device
// (which holds the lock for as long as its download runs). It only reads:
// the state file, which is replaced by rename, is read once and is a
// consistent snapshot; the active version is read after it, so during the
// commit of an install the two may differ for a moment (as after a power
// loss, which the next Open settles). It never settles or changes anything.
func ReadStatus(dir string) (*Status, error) {
	cfg, pol, err := loadConfig(dir)
	if err != nil {
		return nil, err
	}
	d := &Device{dir: dir, cfg: cfg, policy: pol, store: state.Store{Dir: dir}, unlock: func() {}}
	d.inst = cfg.installer(dir, nil)
	st, err := d.Status()
	if st != nil {
		st.Busy = true
	}
	return st, err
}
