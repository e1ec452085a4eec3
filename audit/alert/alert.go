// Package alert defines the auditor's findings and where they go: one JSON
// object per line on a writer (stdout by default) and, optionally, a webhook
// that receives each finding as an HTTP POST of the same JSON.
//
// A finding is one line such as
//
//	{"time":"2026-11-25T10:00:00Z","severity":"critical","kind":"equivocation","log":"example.com/log","index":42,"repo":"example.com/fw","role":"targets","version":7,"message":"...","evidence":{...}}
//
// Severity is one of info, warning and critical. Kinds are stable strings
// listed as the Kind constants below; docs/auditor.md says what each means.
package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Severity orders findings: Info < Warning < Critical.
type Severity int

// Severities. The JSON encoding is the lowercase name.
const (
	Info Severity = iota
	Warning
	Critical
)

func (s Severity) String() string {
	switch s {
	case Info:
		return "info"
	case Warning:
		return "warning"
	case Critical:
		return "critical"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// MarshalText encodes s as its name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSeverity parses "info", "warning" or "critical".
func ParseSeverity(name string) (Severity, error) {
	switch name {
	case "info":
		return Info, nil
	case "warning":
		return Warning, nil
	case "critical":
		return Critical, nil
	}
	return 0, fmt.Errorf("unknown severity %q: want info, warning or critical", name)
}

// Kind names what a finding is about.
type Kind string

// Kinds of finding. The ledger side: the log's own structure and signatures.
const (
	// KindFork: two checkpoints of the log signed by its key are not
	// consistent. Evidence: a shiplog/fork/v1 text (evidence.Fork).
	KindFork Kind = "fork"
	// KindTreeMismatch: the entries served do not hash to the root of the
	// verified checkpoint (entries dropped, altered or reordered).
	KindTreeMismatch Kind = "tree-mismatch"
	// KindTileMismatch: a hash tile served differs from the tile computed
	// from the entries (proofs built from it would fail).
	KindTileMismatch Kind = "tile-mismatch"
	// KindBadCheckpoint: a checkpoint fails the policy (log signature or
	// witness quorum).
	KindBadCheckpoint Kind = "bad-checkpoint"
	// KindStaleView: a witness or peer auditor has held a larger checkpoint
	// than the ledger's tiles support for the auditor's StaleViewAfter, or
	// the ledger serves an older checkpoint than one it served before (a
	// freeze, or a stale cache).
	KindStaleView Kind = "stale-view"
	// KindGossipUnavailable: a witness or peer could not be queried.
	KindGossipUnavailable Kind = "gossip-unavailable"
	// KindLedgerUnreachable: the ledger has not answered the auditor with a
	// checkpoint that verifies (or with the entries under it) for a while:
	// warning after Config.UnreachableAfter, critical after twelve times
	// that. A log that refuses to answer its monitors hides whatever it
	// does meanwhile. Evidence: the time of the last useful answer and the
	// threshold crossed (one finding per outage and severity); the message
	// carries the latest error.
	KindLedgerUnreachable Kind = "ledger-unreachable"
	// KindTimestampLapsed: a watched repository (audit --repo) serves a
	// timestamp.json that has expired (or is not timestamp metadata), so
	// devices silently stop getting updates, security fixes included. One
	// finding per lapsed timestamp version. Evidence: the source, version
	// and expiry.
	KindTimestampLapsed Kind = "timestamp-lapsed"
)

// Kinds of finding about entries and their metadata.
const (
	KindMalformedEntry   Kind = "malformed-entry"
	KindMetadataMissing  Kind = "metadata-missing"
	KindMetadataMismatch Kind = "metadata-mismatch"
	KindMalformedMeta    Kind = "malformed-metadata"
	KindWrongRole        Kind = "wrong-role"
	KindVersionMismatch  Kind = "version-mismatch"
	KindUnknownRepo      Kind = "unknown-repository"
	KindBadSignature     Kind = "bad-signature"
	KindNotDelegated     Kind = "not-delegated"
	KindRootGap          Kind = "root-gap"
	KindRollback         Kind = "rollback"
	KindEquivocation     Kind = "equivocation"
	KindDuplicate        Kind = "duplicate"
	KindExpiredWhenSeen  Kind = "expired-when-logged"
	KindExpiryTooFar     Kind = "expiry-too-far"
	KindUnexpected       Kind = "unexpected-release"
	// KindCapabilityEscalation (info): a valid targets release declares a
	// capability for a target that the role's previous version did not
	// (docs/spec/capabilities.md); devices ask before installing it.
	KindCapabilityEscalation Kind = "capability-escalation"
	// KindMalformedCapabilities (warning): a valid targets release declares
	// capabilities that do not parse; devices refuse it.
	KindMalformedCapabilities Kind = "malformed-capabilities"
	// Sign-off statements (docs/spec/signoff.md, package audit/attestation).
	// KindSignoffMismatch (critical in vendor mode for the vendor's own
	// repository, warning otherwise): a rebuilder stated in the log that it
	// built other bytes from a target's declared source.
	KindSignoffMismatch Kind = "signoff-mismatch"
	// KindSignoffConflict (warning): one attester key stated both
	// reproduced and mismatch about the same target digest.
	KindSignoffConflict Kind = "signoff-conflict"
	// KindSignoffMissing (warning, vendor mode): a target of a vendor's
	// release that no rebuilder reproduced within the configured deadline.
	KindSignoffMissing Kind = "signoff-missing"
)

// Finding is one thing the auditor found. Evidence holds what a third party
// needs to check it (checkpoints, proofs, hashes); its shape depends on Kind.
type Finding struct {
	Time     time.Time         `json:"time"`
	Severity Severity          `json:"severity"`
	Kind     Kind              `json:"kind"`
	Log      string            `json:"log,omitempty"`
	Index    *uint64           `json:"index,omitempty"`
	Repo     string            `json:"repo,omitempty"`
	Role     string            `json:"role,omitempty"`
	Version  uint64            `json:"version,omitempty"`
	Message  string            `json:"message"`
	Evidence map[string]string `json:"evidence,omitempty"`
}

// At returns a pointer to index, for Finding.Index.
func At(index uint64) *uint64 { return &index }

// Sink receives findings. Implementations are safe for concurrent use.
type Sink interface {
	Alert(ctx context.Context, f Finding) error
}

// JSONLines writes one JSON object per line to W. It is safe for concurrent
// use.
type JSONLines struct {
	mu sync.Mutex
	W  io.Writer
}

// Alert writes f as one line.
func (j *JSONLines) Alert(_ context.Context, f Finding) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	_, err = j.W.Write(append(b, '\n'))
	return err
}

// Webhook POSTs each finding as JSON (Content-Type application/json) to URL
// with Client, which must have a timeout. A response other than 2xx is an
// error; the response body is discarded (at most 64 KiB read).
type Webhook struct {
	URL    string
	Client *http.Client
}

// Alert posts f.
func (w *Webhook) Alert(ctx context.Context, f Finding) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.Client.Do(req)
	if err != nil {
		return fmt.Errorf("couldn't post alert: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("couldn't post alert: webhook answered %s", resp.Status)
	}
	return nil
}

// Multi sends each finding to every sink in order, and returns the errors of
// those that failed, joined.
type Multi []Sink

// Alert sends f to every sink.
func (m Multi) Alert(ctx context.Context, f Finding) error {
	var errs []error
	for _, s := range m {
		if err := s.Alert(ctx, f); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
