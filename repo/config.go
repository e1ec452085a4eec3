package repo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/shiplog/shiplog/evidence/entry"
)

// ConfigFile is the repository configuration file name inside DIR.
const ConfigFile = "shiplog-repo.json"

// MaxConfigSize bounds shiplog-repo.json.
const MaxConfigSize = 64 << 10

// Config is DIR/shiplog-repo.json. It is decoded strictly: unknown fields
// are refused.
//
//	{"repository": "example.com/firmware", "ledger": "https://ledger.example",
//	 "policy": "/etc/shiplog/policy.txt",
//	 "expires": {"root": "8760h", "targets": "2160h", "delegated": "2160h",
//	             "snapshot": "168h", "timestamp": "24h"}}
type Config struct {
	// Repository is the repository id logged in every entry (printable ASCII,
	// no spaces, at most 255 bytes).
	Repository string `json:"repository"`
	// Ledger is the ledger's base URL, used when --ledger is not given.
	Ledger string `json:"ledger,omitempty"`
	// Policy is the path of the C2SP tlog-policy file that proofs must
	// satisfy, used when --policy is not given; relative to DIR.
	Policy string `json:"policy,omitempty"`
	// Expires is how long each role's new versions are valid.
	Expires Expiry `json:"expires"`
}

// Expiry holds one validity period per role, as Go durations ("24h").
type Expiry struct {
	Root      Duration `json:"root"`
	Targets   Duration `json:"targets"`
	Delegated Duration `json:"delegated"`
	Snapshot  Duration `json:"snapshot"`
	Timestamp Duration `json:"timestamp"`
}

// DefaultExpiry is the validity used by init when none is given: a year for
// root, 90 days for targets roles, a week for snapshot and a day for
// timestamp.
var DefaultExpiry = Expiry{
	Root:      Duration(365 * 24 * time.Hour),
	Targets:   Duration(90 * 24 * time.Hour),
	Delegated: Duration(90 * 24 * time.Hour),
	Snapshot:  Duration(7 * 24 * time.Hour),
	Timestamp: Duration(24 * time.Hour),
}

// For returns the validity of role's new versions.
func (e Expiry) For(role string) time.Duration {
	switch role {
	case "root":
		return time.Duration(e.Root)
	case "targets":
		return time.Duration(e.Targets)
	case "snapshot":
		return time.Duration(e.Snapshot)
	case "timestamp":
		return time.Duration(e.Timestamp)
	}
	return time.Duration(e.Delegated)
}

// Duration is a time.Duration encoded in JSON as a Go duration string.
type Duration time.Duration

// MarshalJSON encodes d as "8760h0m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON decodes a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("duration must be a string such as \"24h\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseConfig decodes and validates shiplog-repo.json.
func ParseConfig(b []byte) (*Config, error) {
	if len(b) > MaxConfigSize {
		return nil, errors.New("config too large")
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("couldn't parse %s: %w", ConfigFile, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("couldn't parse %s: trailing data", ConfigFile)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks the repository id and that every expiry is between one
// minute and ten years.
func (c *Config) Validate() error {
	if err := (entry.Entry{Repo: c.Repository, Role: "root", Version: 1, Length: 1}).Validate(); err != nil {
		return err
	}
	for role, d := range map[string]Duration{"root": c.Expires.Root, "targets": c.Expires.Targets,
		"delegated": c.Expires.Delegated, "snapshot": c.Expires.Snapshot, "timestamp": c.Expires.Timestamp} {
		if time.Duration(d) < time.Minute || time.Duration(d) > 10*365*24*time.Hour {
			return fmt.Errorf("expiry of %s is %v: want between 1m and 87600h", role, time.Duration(d))
		}
	}
	return nil
}

// Format encodes c for shiplog-repo.json.
func (c *Config) Format() []byte {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		panic("repo: config does not encode: " + err.Error())
	}
	return append(b, '\n')
}
