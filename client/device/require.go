package device

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/shiplog/shiplog/evidence/signoff"
)

// Requirement is one sign-off requirement of a device (docs/spec/signoff.md,
// "What a device requires"): every target it installs needs statements with
// Verdict from at least K distinct keys of Keys, each proven in the log under
// the device's tlog-policy. The keys are copied into the configuration at
// init, as the policy is, so the file they came from (From, informational)
// may change or vanish afterwards without changing what the device trusts.
type Requirement struct {
	// Verdict is "reproduced" or "reviewed".
	Verdict string `json:"verdict"`
	// K is how many distinct keys must have stated it, 1 ≤ K ≤ len(Keys).
	K int `json:"k"`
	// Keys are the trusted attesters' C2SP signed-note verifier keys
	// (Ed25519), at most MaxRequirementKeys, no key twice.
	Keys []string `json:"keys"`
	From string   `json:"from,omitempty"`
}

// MaxRequirementKeys bounds the keys of one requirement: the ledger answers
// for at most 32 keys per query (docs/spec/signoff.md).
const MaxRequirementKeys = 32

// maxRequirements bounds the requirements of a device.
const maxRequirements = 8

// ParseRequire parses a --require value, "verdict:k:file", reading the
// file with read. A file name may itself contain colons (only the first
// two separate). The file lists one vkey per line; blank lines and lines
// starting with # are ignored.
func ParseRequire(flag string, read func(path string) ([]byte, error)) (Requirement, error) {
	verdict, rest, ok1 := strings.Cut(flag, ":")
	ks, file, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 || file == "" {
		return Requirement{}, fmt.Errorf("--require %q: want verdict:k:file (e.g. reproduced:2:rebuilders.keys)", flag)
	}
	k, err := strconv.Atoi(ks)
	if err != nil || strconv.Itoa(k) != ks {
		return Requirement{}, fmt.Errorf("--require %q: k must be a number", flag)
	}
	b, err := read(file)
	if err != nil {
		return Requirement{}, fmt.Errorf("--require %q: %w", flag, err)
	}
	keys, err := ParseKeysFile(b)
	if err != nil {
		return Requirement{}, fmt.Errorf("--require %q: %s: %w", flag, file, err)
	}
	r := Requirement{Verdict: verdict, K: k, Keys: keys, From: file}
	if err := r.validate(); err != nil {
		return Requirement{}, fmt.Errorf("--require %q: %w", flag, err)
	}
	return r, nil
}

// ParseKeysFile reads a keys file (signoff.ParseKeyList: one vkey per
// line, # comments and blank lines ignored, no key twice) and returns its
// vkeys.
func ParseKeysFile(b []byte) ([]string, error) {
	as, err := signoff.ParseKeyList(b)
	if err != nil {
		return nil, err
	}
	if len(as) == 0 {
		return nil, errors.New("no keys")
	}
	keys := make([]string, len(as))
	for i, a := range as {
		keys[i] = a.VKey
	}
	return keys, nil
}

// validate checks a requirement: a known verdict, at most
// MaxRequirementKeys keys that parse as attester keys, no key twice (by key
// id: the same key under two names is one attester), and 1 ≤ K ≤ n.
func (r *Requirement) validate() error {
	if len(r.Keys) > MaxRequirementKeys {
		return fmt.Errorf("%d keys: at most %d per requirement", len(r.Keys), MaxRequirementKeys)
	}
	_, err := r.parse()
	return err
}

// parse returns the requirement in evidence/signoff's terms.
func (r *Requirement) parse() (signoff.Requirement, error) {
	req := signoff.Requirement{Verdict: r.Verdict, K: r.K}
	for _, k := range r.Keys {
		a, err := signoff.ParseAttester(k)
		if err != nil {
			return req, fmt.Errorf("key %q: %w", k, err)
		}
		req.Keys = append(req.Keys, a)
	}
	return req, req.Validate()
}

func (c *Config) validateRequire() error {
	if len(c.Require) > maxRequirements {
		return fmt.Errorf("config: %d sign-off requirements: at most %d", len(c.Require), maxRequirements)
	}
	for i := range c.Require {
		if err := c.Require[i].validate(); err != nil {
			return fmt.Errorf("config: require %s: %w", c.Require[i].Verdict, err)
		}
	}
	return nil
}
