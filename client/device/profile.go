package device

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shiplog/shiplog/client/approval"
	"github.com/shiplog/shiplog/client/capability"
	"github.com/shiplog/shiplog/evidence/publicity"
)

// Duration is a time.Duration that reads and writes Go's duration text
// ("72h0m0s") in JSON. Negative durations are refused.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil || v < 0 {
		return fmt.Errorf("invalid duration %q", b)
	}
	*d = Duration(v)
	return nil
}

// Profile is a named preset of a device's policy settings (docs/device.md,
// "Profiles"). Every setting it fixes can be overridden at init.
type Profile struct {
	Name        string
	Description string
	Approval    approval.Mode
	// MinPublicAge is the publicity window; MinPublicAgeSecurity the one for
	// security-only updates; MinPublicAgeFloor the owner's floor below
	// which neither may go.
	MinPublicAge         time.Duration
	MinPublicAgeSecurity time.Duration
	MinPublicAgeFloor    time.Duration
	DenyCapabilities     []string
}

// Profiles are the presets, in the order docs/device.md lists them.
var Profiles = []Profile{
	{Name: "tinkerer", Description: "a developer's test device: install at once, tell me what happened",
		Approval: approval.Auto},
	{Name: "household", Description: "a family's devices: automatic after a day in public, ask on escalation",
		Approval: approval.Auto, MinPublicAge: 24 * time.Hour, MinPublicAgeSecurity: 6 * time.Hour, MinPublicAgeFloor: time.Hour},
	{Name: "high-risk", Description: "a journalist's or official's phone: ask always, a week in public, never escalate to system",
		Approval: approval.Ask, MinPublicAge: 7 * 24 * time.Hour, MinPublicAgeSecurity: 48 * time.Hour, MinPublicAgeFloor: 24 * time.Hour,
		DenyCapabilities: []string{"bootloader", "system"}},
	{Name: "fleet", Description: "a technician's fleet: automatic after three days in public",
		Approval: approval.Auto, MinPublicAge: 72 * time.Hour, MinPublicAgeSecurity: 24 * time.Hour, MinPublicAgeFloor: 24 * time.Hour},
}

// ProfileByName returns the preset called name.
func ProfileByName(name string) (*Profile, bool) {
	for i := range Profiles {
		if Profiles[i].Name == name {
			return &Profiles[i], true
		}
	}
	return nil, false
}

// The policy settings a profile sets, an override replaces and status
// reports with its source.
const (
	SettingApproval             = "approval"
	SettingMinPublicAge         = "min_public_age"
	SettingMinPublicAgeSecurity = "min_public_age_security"
	SettingMinPublicAgeFloor    = "min_public_age_floor"
	SettingClockSkew            = "clock_skew"
	SettingDenyCapabilities     = "deny_capabilities"
)

// Settings lists the policy settings in display order.
var Settings = []string{SettingApproval, SettingMinPublicAge, SettingMinPublicAgeSecurity, SettingMinPublicAgeFloor, SettingClockSkew, SettingDenyCapabilities}

// Sources of a setting: "default", "override" (given at init), or
// "profile <name>".
const (
	SourceDefault  = "default"
	SourceOverride = "override"
)

// ApplyProfile fills c's policy settings: those named in overridden keep
// the value c holds (source "override"); the others take profile name's
// value, or the default when name is empty. It records each setting's
// source in c.Sources.
func ApplyProfile(c *Config, name string, overridden map[string]bool) error {
	var p Profile
	src := SourceDefault
	if name != "" {
		pp, ok := ProfileByName(name)
		if !ok {
			return fmt.Errorf("unknown profile %q: want %s", name, strings.Join(profileNames(), ", "))
		}
		p, src = *pp, "profile "+name
	} else {
		p.Approval = approval.Ask
	}
	for s := range overridden {
		if !slices.Contains(Settings, s) {
			return fmt.Errorf("unknown setting %q", s)
		}
	}
	c.Profile = name
	c.Sources = map[string]string{}
	set := func(s string, apply func()) {
		if overridden[s] {
			c.Sources[s] = SourceOverride
			return
		}
		apply()
		c.Sources[s] = src
	}
	set(SettingApproval, func() { c.Approval = p.Approval })
	set(SettingMinPublicAge, func() { c.MinPublicAge = Duration(p.MinPublicAge) })
	set(SettingMinPublicAgeSecurity, func() { c.MinPublicAgeSecurity = Duration(p.MinPublicAgeSecurity) })
	set(SettingMinPublicAgeFloor, func() { c.MinPublicAgeFloor = Duration(p.MinPublicAgeFloor) })
	set(SettingClockSkew, func() { d := Duration(publicity.DefaultSkew); c.ClockSkew = &d })
	set(SettingDenyCapabilities, func() { c.DenyCapabilities = slices.Clone(p.DenyCapabilities) })
	if name == "" {
		// Without a profile the security window follows the main one unless
		// overridden.
		if !overridden[SettingMinPublicAgeSecurity] {
			c.MinPublicAgeSecurity = c.MinPublicAge
		}
	}
	return c.validatePolicy()
}

func profileNames() []string {
	var out []string
	for _, p := range Profiles {
		out = append(out, p.Name)
	}
	return out
}

// validatePolicy checks the policy settings: windows at or above the
// owner's floor, the skew within publicity.MaxSkew, deny rules of the
// capability vocabulary, a known profile and known sources.
func (c *Config) validatePolicy() error {
	if c.MinPublicAge < c.MinPublicAgeFloor {
		return fmt.Errorf("config: min_public_age %v is below the floor %v", time.Duration(c.MinPublicAge), time.Duration(c.MinPublicAgeFloor))
	}
	if c.MinPublicAgeSecurity < c.MinPublicAgeFloor {
		return fmt.Errorf("config: min_public_age_security %v is below the floor %v", time.Duration(c.MinPublicAgeSecurity), time.Duration(c.MinPublicAgeFloor))
	}
	if c.skew() > publicity.MaxSkew {
		return fmt.Errorf("config: clock_skew above %v", publicity.MaxSkew)
	}
	for _, r := range c.DenyCapabilities {
		if err := capability.CheckRule(r); err != nil {
			return fmt.Errorf("config: deny_capabilities %q: %w", r, err)
		}
	}
	if c.Profile != "" {
		if _, ok := ProfileByName(c.Profile); !ok {
			return fmt.Errorf("config: unknown profile %q", c.Profile)
		}
	}
	for s, src := range c.Sources {
		if !slices.Contains(Settings, s) {
			return fmt.Errorf("config: sources: unknown setting %q", s)
		}
		if src != SourceDefault && src != SourceOverride && src != "profile "+c.Profile {
			return errors.New("config: sources: unknown source " + fmt.Sprintf("%q", src))
		}
	}
	return nil
}

// window returns the publicity window for an update: the security window
// when every added or changed target is a security fix.
func (c *Config) window(securityOnly bool) time.Duration {
	if securityOnly {
		return time.Duration(c.MinPublicAgeSecurity)
	}
	return time.Duration(c.MinPublicAge)
}

// skew is the clock skew allowance: ClockSkew, or publicity.DefaultSkew.
func (c *Config) skew() time.Duration {
	if c.ClockSkew == nil {
		return publicity.DefaultSkew
	}
	return time.Duration(*c.ClockSkew)
}

// PolicySetting is one effective setting and where it came from.
type PolicySetting struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

// EffectivePolicy returns every policy setting with its value and source
// (a setting with no recorded source, from a config written before
// profiles existed, reports "default").
func (c *Config) EffectivePolicy() []PolicySetting {
	val := map[string]string{
		SettingApproval:             string(c.Approval),
		SettingMinPublicAge:         time.Duration(c.MinPublicAge).String(),
		SettingMinPublicAgeSecurity: time.Duration(c.MinPublicAgeSecurity).String(),
		SettingMinPublicAgeFloor:    time.Duration(c.MinPublicAgeFloor).String(),
		SettingClockSkew:            c.skew().String(),
		SettingDenyCapabilities:     strings.Join(c.DenyCapabilities, ","),
	}
	var out []PolicySetting
	for _, s := range Settings {
		src := c.Sources[s]
		if src == "" {
			src = SourceDefault
		}
		out = append(out, PolicySetting{Name: s, Value: val[s], Source: src})
	}
	return out
}
