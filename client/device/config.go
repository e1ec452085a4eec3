// Package device is the device agent behind shiplog-device: it keeps a state
// directory (configuration, tlog-policy, trusted state), and runs the
// device's rule of docs/ARCHITECTURE.md end to end — the TUF update loop with the
// transparency gate (client/update), consumer approval (client/approval),
// an atomic install (client/install) and an atomic commit of the trusted
// state (client/state) only after the install succeeded — for online
// updates and for offline bundles (client/bundle) alike.
//
// State directory layout:
//
//	DIR/config.json   Config (strict JSON)
//	DIR/policy        the C2SP tlog-policy the device trusts
//	DIR/state         trusted state (client/state)
//	DIR/evidence/     fork evidence written when a log is caught forking
//	DIR/lock          advisory lock: one shiplog-device at a time
//
// The installed versions live where Config.Installer says (default
// DIR/install).
package device

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/shiplog/shiplog/internal/capped"

	"github.com/shiplog/shiplog/client/approval"
	"github.com/shiplog/shiplog/client/install"
	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/durable"
)

// Config is a device's configuration (DIR/config.json).
type Config struct {
	// Repository is the repository id the device follows (the "repo" of
	// every log entry it checks).
	Repository string `json:"repository"`
	// RepositoryURL is the base URL of the repository directory; metadata
	// is read under RepositoryURL/metadata and targets under
	// RepositoryURL/targets unless MetadataURL or TargetsURL override them.
	RepositoryURL string `json:"repository_url,omitempty"`
	MetadataURL   string `json:"metadata_url,omitempty"`
	TargetsURL    string `json:"targets_url,omitempty"`
	// Ledger is the ledger's URL, optional: with it the device fetches
	// fresh proofs and consistency proofs online.
	Ledger string `json:"ledger,omitempty"`
	// Approval is the approval mode (approval.Mode); default "ask".
	Approval approval.Mode `json:"approval,omitempty"`
	// Targets are the target paths to install; empty means all targets of
	// the repository.
	Targets []string `json:"targets,omitempty"`
	// Installer chooses how versions are installed.
	Installer InstallerConfig `json:"installer"`

	// Profile is the preset the policy settings below started from (empty:
	// none); Sources says where each setting came from (ApplyProfile).
	Profile string            `json:"profile,omitempty"`
	Sources map[string]string `json:"sources,omitempty"`
	// MinPublicAge is the publicity window: an update installs only once
	// its release has been public in the log that long, by the witnesses'
	// cosignature timestamps (docs/spec/publicity.md). Zero: no window.
	MinPublicAge Duration `json:"min_public_age,omitempty"`
	// MinPublicAgeSecurity is the window for updates made only of targets
	// marked as security fixes; MinPublicAgeFloor is the owner's floor:
	// neither window may be below it.
	MinPublicAgeSecurity Duration `json:"min_public_age_security,omitempty"`
	MinPublicAgeFloor    Duration `json:"min_public_age_floor,omitempty"`
	// ClockSkew is how far ahead of the device's clock a witness timestamp
	// may be and still count; nil means publicity.DefaultSkew.
	ClockSkew *Duration `json:"clock_skew,omitempty"`
	// DenyCapabilities refuses outright, even with consent, any update in
	// which a target gains one of these capabilities ("storage" and
	// "vendor" match every capability of that kind) over what the device
	// runs. The device's first install is its baseline: what it declares
	// needs consent, and is not refused. See docs/spec/capabilities.md.
	DenyCapabilities []string `json:"deny_capabilities,omitempty"`
	// Require are the sign-off requirements every installed target must
	// meet (docs/spec/signoff.md); none by default.
	Require []Requirement `json:"require,omitempty"`
	// Download bounds target downloads against slow retrieval; zero
	// fields take update.HTTPRemote's defaults.
	Download DownloadConfig `json:"download,omitzero"`
}

// DownloadConfig sets the slow-retrieval guards of target downloads
// (update.HTTPRemote): a download fails when nothing arrives for
// StallTimeoutSeconds (default 30), when it averages less than
// MinRateBytesPerSecond (default 1024) over any RateWindowSeconds (default
// 60), or when it is not complete DeadlineSlackSeconds (default 600) plus
// its signed length at MinRateBytesPerSecond after it started. Zero means
// the default; negative values are refused.
type DownloadConfig struct {
	StallTimeoutSeconds   int64 `json:"stall_timeout_seconds,omitempty"`
	MinRateBytesPerSecond int64 `json:"min_rate_bytes_per_second,omitempty"`
	RateWindowSeconds     int64 `json:"rate_window_seconds,omitempty"`
	DeadlineSlackSeconds  int64 `json:"deadline_slack_seconds,omitempty"`
}

// remote returns the HTTP remote with these guards.
func (c DownloadConfig) remote(metadataURL, targetsURL string, client *http.Client) *update.HTTPRemote {
	return &update.HTTPRemote{MetadataURL: metadataURL, TargetsURL: targetsURL, Client: client,
		StallTimeout: seconds(c.StallTimeoutSeconds), MinRate: c.MinRateBytesPerSecond,
		RateWindow: seconds(c.RateWindowSeconds), DeadlineSlack: seconds(c.DeadlineSlackSeconds)}
}

func seconds(n int64) time.Duration { return time.Duration(min(n, 1<<32)) * time.Second }

// InstallerConfig selects an installer: "dir" (default; versions as
// directories under Path) or "ab" (the target Image written into A/B slots
// under Path). Path defaults to DIR/install.
type InstallerConfig struct {
	Kind  string `json:"kind,omitempty"`
	Path  string `json:"path,omitempty"`
	Image string `json:"image,omitempty"`
}

const (
	configFile = "config.json"
	policyFile = "policy"
	maxConfig  = 1 << 20
)

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Repository == "" {
		return errors.New("config: repository id is required")
	}
	if c.Approval == "" {
		c.Approval = approval.Ask
	}
	if _, err := approval.ParseMode(string(c.Approval)); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := c.validatePolicy(); err != nil {
		return err
	}
	if err := c.validateRequire(); err != nil {
		return err
	}
	if d := c.Download; d.StallTimeoutSeconds < 0 || d.MinRateBytesPerSecond < 0 || d.RateWindowSeconds < 0 || d.DeadlineSlackSeconds < 0 {
		return errors.New("config: download limits must not be negative")
	}
	switch c.Installer.Kind {
	case "", "dir":
	case "ab":
		if c.Installer.Image == "" {
			return errors.New("config: the ab installer needs the image target path")
		}
		if len(c.Targets) == 0 {
			c.Targets = []string{c.Installer.Image}
		}
		if len(c.Targets) != 1 || c.Targets[0] != c.Installer.Image {
			return errors.New("config: the ab installer installs exactly its image target")
		}
	default:
		return fmt.Errorf("config: unknown installer %q: want dir or ab", c.Installer.Kind)
	}
	return nil
}

func (c *Config) metadataURL() string {
	if c.MetadataURL != "" {
		return c.MetadataURL
	}
	return c.RepositoryURL + "/metadata"
}

func (c *Config) targetsURL() string {
	if c.TargetsURL != "" {
		return c.TargetsURL
	}
	return c.RepositoryURL + "/targets"
}

func (c *Config) installer(dir string, fault install.Fault) install.Installer {
	path := c.Installer.Path
	if path == "" {
		path = filepath.Join(dir, "install")
	}
	if c.Installer.Kind == "ab" {
		return &install.AB{Root: path, Image: c.Installer.Image, Fault: fault}
	}
	return &install.Dir{Root: path, Fault: fault}
}

func readLimited(path string, max int64) ([]byte, error) {
	return capped.ReadFile(path, max)
}

func loadConfig(dir string) (*Config, *policy.Policy, error) {
	b, err := readLimited(filepath.Join(dir, configFile), maxConfig)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't read device config: %w", err)
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, nil, fmt.Errorf("device config %s: %w", filepath.Join(dir, configFile), err)
	}
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	pb, err := readLimited(filepath.Join(dir, policyFile), policy.MaxSize)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't read device policy: %w", err)
	}
	p, err := policy.Parse(pb)
	if err != nil {
		return nil, nil, fmt.Errorf("device policy: %w", err)
	}
	if err := checkWindowPolicy(&c, p); err != nil {
		return nil, nil, err
	}
	return &c, p, nil
}

func writeConfig(dir string, c *Config, policyText []byte) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.CreateFile(filepath.Join(dir, policyFile), policyText, 0o644); err != nil {
		return err
	}
	return durable.CreateFile(filepath.Join(dir, configFile), append(b, '\n'), 0o644)
}
