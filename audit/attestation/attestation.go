// Package attestation is the auditor's pure core for sign-off statements
// (docs/spec/signoff.md): it checks each logged shiplog/attestation/v1 entry
// against the envelope the ledger serves for it, keeps what the statement
// says, and reports what an auditor must tell people about:
//
//   - signoff-mismatch: a rebuilder stated, in the log, that it built other
//     bytes from a target's declared source. Critical in vendor mode for one
//     of the vendor's own repositories (its release may not be what its
//     source says: a compromised build, or a build that is not
//     reproducible), a warning otherwise.
//   - signoff-conflict: one attester key stated both "reproduced" and
//     "mismatch" about the same target digest of the same repository (its
//     statements cannot both be true: a broken or compromised rebuilder).
//     A warning.
//   - signoff-missing (vendor mode): a release of the vendor's (a targets
//     role version) listing a target digest that no logged "reproduced"
//     statement is about, Deadline after the release was logged. A warning.
//
// It is pure: bytes and times in, statements and findings out. The auditor
// stores statements and pending releases and hands back the ones a check
// needs.
package attestation

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/evidence/signoff"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Statement is what the auditor keeps of one logged, verified statement.
type Statement struct {
	Index   uint64 `json:"index"`
	Repo    string `json:"repo"`
	Subject string `json:"subject"` // target sha256, lowercase hex
	Verdict string `json:"verdict"`
	Key     string `json:"key"`      // attester key id, lowercase hex
	Name    string `json:"attester"` // the name in the attester's vkey
	// Target, TargetsRole and TargetsVersion are what the statement says it
	// checked (informational).
	Target         string `json:"target"`
	TargetsRole    string `json:"targets_role"`
	TargetsVersion uint64 `json:"targets_version"`
	// Built is what a rebuilder built (reproduced, mismatch), lowercase hex.
	Built string    `json:"built,omitempty"`
	Seen  time.Time `json:"seen"` // LoggedBy of the entry
}

// Input is one attestation entry with what the auditor fetched for it.
type Input struct {
	Index uint64
	Entry []byte
	// Envelope are the bytes the ledger serves for the entry's sha256, nil
	// when it serves none.
	Envelope []byte
	LoggedBy time.Time
	// Log is the log origin named in findings.
	Log string
	// Vendor reports that the statement's repository is one of the
	// vendor's (vendor mode).
	Vendor bool
}

// Check checks one attestation entry: it parses (a malformed entry is a
// critical malformed-entry finding), the envelope served for it verifies
// under the key it names and rebuilds exactly the entry (otherwise
// metadata-missing or metadata-mismatch, critical: the ledger must store
// what it logged and check what it accepts). prior are the statements
// already logged about the same repository and subject. It returns the
// statement, nil when the entry or its envelope is bad, and the findings.
func Check(in Input, prior []Statement) (*Statement, []alert.Finding) {
	e, err := signoff.ParseEntry(in.Entry)
	if err != nil {
		return nil, []alert.Finding{{Severity: alert.Critical, Kind: alert.KindMalformedEntry, Log: in.Log, Index: alert.At(in.Index),
			Message: "log entry is not a canonical shiplog/attestation/v1 entry", Evidence: map[string]string{"entry_sha256": hexSum(in.Entry)}}}
	}
	base := alert.Finding{Log: in.Log, Index: alert.At(in.Index), Repo: e.Repo}
	if in.Envelope == nil {
		f := base
		f.Severity, f.Kind, f.Message = alert.Critical, alert.KindMetadataMissing, "the ledger does not serve the envelope this attestation entry commits to"
		return nil, []alert.Finding{f}
	}
	env, err := signoff.OpenEnvelope(in.Envelope)
	if err != nil || env.Entry() != e {
		f := base
		f.Severity, f.Kind = alert.Critical, alert.KindMetadataMismatch
		f.Message = "the envelope served does not verify or does not match the attestation entry"
		f.Evidence = map[string]string{"served_sha256": hexSum(in.Envelope), "served_length": fmt.Sprint(len(in.Envelope))}
		return nil, []alert.Finding{f}
	}
	st := env.Statement
	s := &Statement{Index: in.Index, Repo: e.Repo, Subject: hex.EncodeToString(e.Subject[:]), Verdict: e.Verdict,
		Key: e.Key.String(), Name: env.Attester.Name, Target: st.Target, TargetsRole: st.TargetsRole,
		TargetsVersion: st.TargetsVersion, Seen: in.LoggedBy.UTC()}
	if st.Verdict != signoff.Reviewed {
		s.Built = hex.EncodeToString(st.Built[:])
	}
	var fs []alert.Finding
	if s.Verdict == signoff.Mismatch {
		f := base
		f.Severity = alert.Warning
		if in.Vendor {
			f.Severity = alert.Critical
		}
		f.Kind, f.Role, f.Version = alert.KindSignoffMismatch, st.TargetsRole, st.TargetsVersion
		f.Message = fmt.Sprintf("rebuilder %s built other bytes for %s from its declared source", clean(s.Name), clean(st.Target))
		f.Evidence = map[string]string{"subject": s.Subject, "built": s.Built, "attester": s.Name, "key": s.Key,
			"envelope_sha256": hexSum(in.Envelope)}
		fs = append(fs, f)
	}
	if c := conflict(s, prior); c != nil {
		f := base
		f.Severity, f.Kind, f.Role, f.Version = alert.Warning, alert.KindSignoffConflict, st.TargetsRole, st.TargetsVersion
		f.Message = fmt.Sprintf("attester %s stated both reproduced and mismatch about %s (first at index %d)", clean(s.Name), clean(st.Target), c.Index)
		f.Evidence = map[string]string{"subject": s.Subject, "key": s.Key, "first_index": fmt.Sprint(c.Index), "first_verdict": c.Verdict}
		fs = append(fs, f)
	}
	return s, fs
}

// conflict returns the first prior statement by s's key about s's
// repository and subject with the opposite rebuild verdict, if any.
func conflict(s *Statement, prior []Statement) *Statement {
	opposite := map[string]string{signoff.Reproduced: signoff.Mismatch, signoff.Mismatch: signoff.Reproduced}[s.Verdict]
	if opposite == "" {
		return nil
	}
	for i := range prior {
		p := &prior[i]
		if p.Key == s.Key && p.Repo == s.Repo && p.Subject == s.Subject && p.Verdict == opposite {
			return p
		}
	}
	return nil
}

// Pending is a vendor release waiting for its targets to be reproduced.
type Pending struct {
	Index    uint64    `json:"index"`
	Repo     string    `json:"repo"`
	Role     string    `json:"role"`
	Version  uint64    `json:"version"`
	Seen     time.Time `json:"seen"`
	Subjects []Target  `json:"subjects"` // sorted by path
}

// Target is one target of a release: its path and sha256 (hex).
type Target struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// maxTargets bounds the targets a Pending tracks: a release listing more
// tracks its first 1,024 paths.
const maxTargets = 1024

// NewPending returns what signoff-missing tracks of a vendor release: the
// targets of the targets metadata data (a role version that replay found
// valid) with a sha256, at most 1,024, by path. It returns nil when data
// lists none.
func NewPending(index uint64, repo, role string, version uint64, seen time.Time, data []byte) *Pending {
	md, err := metadata.Targets().FromBytes(data)
	if err != nil {
		return nil
	}
	p := &Pending{Index: index, Repo: repo, Role: role, Version: version, Seen: seen.UTC()}
	for path, t := range md.Signed.Targets {
		if h := t.Hashes["sha256"]; len(h) == sha256.Size {
			p.Subjects = append(p.Subjects, Target{Path: path, SHA256: hex.EncodeToString(h)})
		}
	}
	if len(p.Subjects) == 0 {
		return nil
	}
	sort.Slice(p.Subjects, func(i, j int) bool { return p.Subjects[i].Path < p.Subjects[j].Path })
	p.Subjects = p.Subjects[:min(len(p.Subjects), maxTargets)]
	return p
}

// Missing decides a pending release at now: done reports that every
// target has a reproduced statement (reproduced says, per subject) or
// that the deadline passed, in which case f is the signoff-missing
// finding naming the targets nobody reproduced (nil when all were).
func (p *Pending) Missing(reproduced func(subject string) bool, now time.Time, deadline time.Duration, log string) (f *alert.Finding, done bool) {
	var missing []string
	for _, t := range p.Subjects {
		if !reproduced(t.SHA256) {
			missing = append(missing, t.Path)
		}
	}
	if len(missing) == 0 {
		return nil, true
	}
	if now.Sub(p.Seen) < deadline {
		return nil, false
	}
	return &alert.Finding{Severity: alert.Warning, Kind: alert.KindSignoffMissing, Log: log, Index: alert.At(p.Index), Repo: p.Repo, Role: p.Role, Version: p.Version,
		Message:  fmt.Sprintf("no rebuilder reproduced %s within %v of the release", clean(strings.Join(missing, ", ")), deadline),
		Evidence: map[string]string{"targets": strings.Join(missing, ","), "logged_by": p.Seen.Format(time.RFC3339)}}, true
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// clean removes control characters from text shown to people.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
