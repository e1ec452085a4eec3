package device_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/shiplog/shiplog/client/approval"
	"github.com/shiplog/shiplog/client/device"
)

func TestProfilesAreValid(t *testing.T) {
	for _, p := range device.Profiles {
		c := device.Config{Repository: "r"}
		if err := device.ApplyProfile(&c, p.Name, nil); err != nil {
			t.Errorf("profile %s: %v", p.Name, err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("profile %s: %v", p.Name, err)
		}
		for _, s := range c.EffectivePolicy() {
			if s.Source != "profile "+p.Name {
				t.Errorf("profile %s: %s comes from %q", p.Name, s.Name, s.Source)
			}
		}
	}
}

func TestProfileOverrideAndSources(t *testing.T) {
	c := device.Config{Repository: "r", Approval: approval.Ask, MinPublicAge: device.Duration(96 * time.Hour)}
	if err := device.ApplyProfile(&c, "fleet", map[string]bool{device.SettingApproval: true, device.SettingMinPublicAge: true}); err != nil {
		t.Fatal(err)
	}
	got := map[string]device.PolicySetting{}
	for _, s := range c.EffectivePolicy() {
		got[s.Name] = s
	}
	for name, want := range map[string]device.PolicySetting{
		device.SettingApproval:             {Name: device.SettingApproval, Value: "ask", Source: device.SourceOverride},
		device.SettingMinPublicAge:         {Name: device.SettingMinPublicAge, Value: "96h0m0s", Source: device.SourceOverride},
		device.SettingMinPublicAgeSecurity: {Name: device.SettingMinPublicAgeSecurity, Value: "24h0m0s", Source: "profile fleet"},
	} {
		if got[name] != want {
			t.Errorf("%s = %+v, want %+v", name, got[name], want)
		}
	}
	// The config round-trips through its JSON form (strictly decoded).
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back device.Config
	if err := json.Unmarshal(b, &back); err != nil || back.Validate() != nil || time.Duration(back.MinPublicAge) != 96*time.Hour {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

// TestProfileOverrideBelowFloorRefused: an override cannot take a window
// below the profile's floor without overriding the floor too.
func TestProfileOverrideBelowFloorRefused(t *testing.T) {
	c := device.Config{Repository: "r", MinPublicAgeSecurity: device.Duration(time.Minute)}
	if err := device.ApplyProfile(&c, "high-risk", map[string]bool{device.SettingMinPublicAgeSecurity: true}); err == nil {
		t.Error("a security window below the high-risk floor was accepted")
	}
	if err := device.ApplyProfile(&c, "nonesuch", nil); err == nil {
		t.Error("unknown profile accepted")
	}
}
