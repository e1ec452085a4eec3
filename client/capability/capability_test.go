package capability_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/shiplog/shiplog/client/capability"
)

func TestCheck(t *testing.T) {
	good := []string{"network", "system", "bootloader", "radio", "camera", "location",
		"storage:/var/lib/app", "storage:/data", "vendor:acme", "vendor:acme.telemetry-2_x"}
	for _, c := range good {
		if err := capability.Check(c); err != nil {
			t.Errorf("Check(%q) = %v", c, err)
		}
	}
	bad := []string{"", "Network", "network ", "microphone", "storage:", "storage:/", "storage:data",
		"storage:/data/", "storage:/a/../b", "storage:/a b", "storage:/a\x00", "vendor:", "vendor:Acme",
		"vendor:.x", "vendor:a b", "vendor:a/b", "storage", "vendor"}
	for _, c := range bad {
		if err := capability.Check(c); err == nil {
			t.Errorf("Check(%q) accepted", c)
		}
	}
}

func TestFromCustom(t *testing.T) {
	for _, tc := range []struct {
		custom string
		want   capability.Set
		ok     bool
	}{
		{"", nil, true},
		{`{"release_notes":"x"}`, nil, true},
		{`{"capabilities":[]}`, capability.Set{}, true},
		{`{"capabilities":["camera","network"]}`, capability.Set{"camera", "network"}, true},
		{`{"capabilities":["network","camera"]}`, nil, false}, // not sorted
		{`{"capabilities":["network","network"]}`, nil, false},
		{`{"capabilities":"network"}`, nil, false},
		{`{"capabilities":["teleport"]}`, nil, false},
		{`[1]`, nil, false},
	} {
		got, err := capability.FromCustom([]byte(tc.custom))
		if (err == nil) != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("FromCustom(%s) = %v, %v; want %v ok=%v", tc.custom, got, err, tc.want, tc.ok)
		}
	}
}

func TestDiffAndMatches(t *testing.T) {
	g, l := capability.Diff(capability.Set{"network", "storage:/data"}, capability.Set{"camera", "network"})
	if !slices.Equal(g, []string{"camera"}) || !slices.Equal(l, []string{"storage:/data"}) {
		t.Errorf("Diff = %v, %v", g, l)
	}
	if !capability.Matches("storage", "storage:/x") || capability.Matches("storage", "system") || !capability.Matches("system", "system") {
		t.Error("Matches")
	}
}

// FuzzFromCustom: whatever is accepted is canonical (New of it is itself)
// and re-encodes to a list FromCustom accepts again.
func FuzzFromCustom(f *testing.F) {
	f.Add([]byte(`{"capabilities":["camera","network","storage:/data","vendor:acme"]}`))
	f.Add([]byte(`{"capabilities":["storage:/a/../b"]}`))
	f.Add([]byte(`{"release_notes":"x","security":true}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := capability.FromCustom(b)
		if err != nil {
			return
		}
		again, err := capability.New(s...)
		if err != nil || !slices.Equal(again, s) {
			t.Fatalf("accepted non-canonical set %q", s)
		}
		enc, _ := json.Marshal(map[string]any{capability.Key: s})
		if s2, err := capability.FromCustom(enc); err != nil || !slices.Equal(s2, s) {
			t.Fatalf("round trip of %q: %v, %v", s, s2, err)
		}
	})
}
