// Package capability is the vocabulary of what a target may do — its "bomb
// radius" — as a vendor declares it in the target's TUF custom metadata
// (TUF 1.0 §4.5, "custom"), specified in docs/spec/capabilities.md:
//
//	{"capabilities": ["network", "storage:/var/lib/app", "vendor:acme.telemetry"]}
//
// A capability is one of network, system, bootloader, radio, camera,
// location, storage:<absolute clean path> or vendor:<name>. A list is
// sorted, without duplicates, at most MaxCapabilities long; Parse refuses
// anything else, so one set has one encoding.
//
// Capabilities are declarations, logged with the targets metadata and
// audited; shiplog does not enforce them on the running software. Their
// value is that a vendor cannot widen what an update may do without saying
// so in the log, and a device can ask before accepting more.
//
// It is pure: no I/O.
package capability

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Limits: MaxCapabilities per target, MaxLen bytes per capability.
const (
	MaxCapabilities = 32
	MaxLen          = 255
)

// Key is the custom metadata key holding a target's capabilities.
const Key = "capabilities"

// Plain are the capabilities without an argument.
var Plain = []string{"bootloader", "camera", "location", "network", "radio", "system"}

var errMalformed = errors.New("malformed capability")

// Check reports whether c is a capability of the vocabulary: a plain name,
// "storage:" and an absolute, clean path of printable ASCII without spaces
// (not "/", which is "system"), or "vendor:" and a name of lowercase
// letters, digits, '.', '-' and '_' starting with a letter or digit.
func Check(c string) error {
	if len(c) == 0 || len(c) > MaxLen {
		return errMalformed
	}
	if slices.Contains(Plain, c) {
		return nil
	}
	if p, ok := strings.CutPrefix(c, "storage:"); ok {
		if p == "" || p[0] != '/' || p == "/" || path.Clean(p) != p || !printable(p) {
			return fmt.Errorf("%w: storage needs an absolute clean path other than /", errMalformed)
		}
		return nil
	}
	if n, ok := strings.CutPrefix(c, "vendor:"); ok {
		if !vendorName(n) {
			return fmt.Errorf("%w: vendor names are [a-z0-9][a-z0-9._-]*", errMalformed)
		}
		return nil
	}
	return fmt.Errorf("%w: want one of %s, storage:<path> or vendor:<name>", errMalformed, strings.Join(Plain, ", "))
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

func vendorName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '.' || c == '-' || c == '_')
		if !ok {
			return false
		}
	}
	return true
}

// Set is a parsed, canonical capability list: sorted, no duplicates.
type Set []string

// New checks cs and returns them as a Set (sorted, duplicates refused).
func New(cs ...string) (Set, error) {
	if len(cs) > MaxCapabilities {
		return nil, fmt.Errorf("more than %d capabilities", MaxCapabilities)
	}
	out := slices.Clone(cs)
	slices.Sort(out)
	for i, c := range out {
		if err := Check(c); err != nil {
			return nil, err
		}
		if i > 0 && out[i-1] == c {
			return nil, fmt.Errorf("capability %q listed twice", c)
		}
	}
	return Set(out), nil
}

// FromCustom reads the capabilities of a target's custom metadata (a JSON
// object, other keys ignored). No custom metadata, or no "capabilities"
// key, declares none. The list must already be canonical (sorted, no
// duplicates): a malformed list is an error, never "none".
func FromCustom(custom []byte) (Set, error) {
	if len(bytes.TrimSpace(custom)) == 0 {
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(custom, &obj); err != nil {
		return nil, errors.New("target custom metadata is not a JSON object")
	}
	raw, ok := obj[Key]
	if !ok {
		return nil, nil
	}
	var cs []string
	if err := json.Unmarshal(raw, &cs); err != nil {
		return nil, errors.New(`"capabilities" is not a list of strings`)
	}
	s, err := New(cs...)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(s, cs) {
		return nil, errors.New(`"capabilities" is not sorted`)
	}
	return s, nil
}

// Diff returns the capabilities in next but not in prev (gained) and in
// prev but not in next (lost), each sorted.
func Diff(prev, next Set) (gained, lost []string) {
	for _, c := range next {
		if !slices.Contains(prev, c) {
			gained = append(gained, c)
		}
	}
	for _, c := range prev {
		if !slices.Contains(next, c) {
			lost = append(lost, c)
		}
	}
	return gained, lost
}

// Matches reports whether capability c is covered by rule r: equal, or r
// is "storage" or "vendor" and c is of that kind.
func Matches(r, c string) bool {
	if r == c {
		return true
	}
	return (r == "storage" || r == "vendor") && strings.HasPrefix(c, r+":")
}

// CheckRule checks a deny rule: a capability, or "storage" or "vendor"
// for every capability of that kind.
func CheckRule(r string) error {
	if r == "storage" || r == "vendor" {
		return nil
	}
	return Check(r)
}
