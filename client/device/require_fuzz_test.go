package device_test

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/client/device"
	"golang.org/x/mod/sumdb/note"
)

// FuzzParseRequire: a --require value and a keys file never panic the
// parser, and whatever it accepts is a valid requirement (a device verdict,
// 1 ≤ k ≤ n keys, none twice), which a device config then loads.
func FuzzParseRequire(f *testing.F) {
	_, va, _ := note.GenerateKey(rand.Reader, "rebuilder-a.example")
	_, vb, _ := note.GenerateKey(rand.Reader, "rebuilder-b.example")
	f.Add("reproduced:2:k", "# two\n"+va+"\n"+vb+"\n")
	f.Add("reviewed:1:k", va+"\n")
	f.Add("reproduced:1:a:b:k", va)
	f.Add("mismatch:1:k", va)
	f.Add("reproduced:02:k", va+"\n"+vb)
	f.Add("reproduced:1:k", va+"\n"+va)
	f.Add("reproduced::k", "")
	f.Fuzz(func(t *testing.T, flag, file string) {
		r, err := device.ParseRequire(flag, func(string) ([]byte, error) { return []byte(file), nil })
		if err != nil {
			return
		}
		if r.Verdict != "reproduced" && r.Verdict != "reviewed" || r.K < 1 || r.K > len(r.Keys) || len(r.Keys) > device.MaxRequirementKeys {
			t.Fatalf("accepted %q: %+v", flag, r)
		}
		seen := map[string]bool{}
		for _, k := range r.Keys {
			if seen[k] || strings.ContainsAny(k, "\n\r") {
				t.Fatalf("accepted %q with key %q twice or multi-line", flag, k)
			}
			seen[k] = true
		}
		c := device.Config{Repository: "example.com/firmware", Require: []device.Requirement{r}}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted %q, but a config holding it is invalid: %v", flag, err)
		}
	})
}
