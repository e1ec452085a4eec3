// Package approval is the consumer's say over updates (docs/ARCHITECTURE.md,
// the device's rule 4): a policy per device — never check, check and notify,
// download and ask, install automatically, or install security updates
// automatically — and the informed summary shown before asking: what
// changes (targets added, removed, changed, with sizes), the release notes
// from the targets' custom metadata, and the log evidence (log, index,
// witnesses that cosigned, and when).
//
// Target custom metadata understood here (JSON object, other keys ignored):
//
//	{"release_notes": "Fixes CVE-2026-1234", "security": true}
//
// "security": true marks a target as a security fix: mode security installs
// updates made only of such targets, and a device may give them a shorter
// publicity window (docs/spec/publicity.md). A target's declared
// capabilities (client/capability) are compared with what the device runs:
// an update in which any target gains one needs explicit consent in every
// mode (Decide never returns Install for it).
//
// It is pure: no I/O; the prompt is the caller's.
package approval

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"
)

// Mode is a device's approval policy.
type Mode string

// The approval modes.
const (
	Never    Mode = "never"    // never check for updates
	Notify   Mode = "notify"   // check and show what is available
	Ask      Mode = "ask"      // download, then install only if the user agrees
	Auto     Mode = "auto"     // install automatically
	Security Mode = "security" // install security updates automatically, ask for others
)

// ParseMode parses a mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Never, Notify, Ask, Auto, Security:
		return m, nil
	}
	return "", fmt.Errorf("unknown approval mode %q: want never, notify, ask, auto or security", s)
}

// Action is what to do with an available update.
type Action string

// The actions.
const (
	Skip    Action = "skip"    // do nothing (mode never)
	Show    Action = "notify"  // show the summary only
	Prompt  Action = "ask"     // download, show, ask; install on yes
	Install Action = "install" // install without asking
	// Hold is the device's, not Decide's: the release is not yet public
	// for long enough (docs/spec/publicity.md); a later check decides again.
	Hold Action = "hold"
)

// Decide returns the action for an update summarized by s under mode m.
// An update that escalates (a target gains a capability) is never
// installed without asking, whatever the mode: like a browser extension
// update that asks for new permissions.
func Decide(m Mode, s *Summary) Action {
	switch m {
	case Notify:
		return Show
	case Ask:
		return Prompt
	case Auto:
		if s.Escalates() {
			return Prompt
		}
		return Install
	case Security:
		if s.SecurityOnly() && !s.Escalates() {
			return Install
		}
		return Prompt
	}
	return Skip
}

// Custom is the part of a target's custom metadata this package reads.
type Custom struct {
	ReleaseNotes string `json:"release_notes,omitempty"`
	Security     bool   `json:"security,omitempty"`
}

// MaxReleaseNotes bounds the release notes shown per target.
const MaxReleaseNotes = 4096

// ParseCustom reads custom metadata; anything unreadable counts as none.
func ParseCustom(raw []byte) Custom {
	var c Custom
	if len(raw) == 0 || json.Unmarshal(raw, &c) != nil {
		return Custom{}
	}
	if len(c.ReleaseNotes) > MaxReleaseNotes {
		c.ReleaseNotes = c.ReleaseNotes[:MaxReleaseNotes] + "…"
	}
	return c
}

// Change is one target that an update adds, removes or changes.
type Change struct {
	Path         string `json:"path"`
	Kind         string `json:"kind"` // "added", "removed", "changed"
	OldLength    int64  `json:"old_length,omitempty"`
	NewLength    int64  `json:"new_length,omitempty"`
	OldSHA256    string `json:"old_sha256,omitempty"`
	NewSHA256    string `json:"new_sha256,omitempty"`
	Security     bool   `json:"security,omitempty"`
	ReleaseNotes string `json:"release_notes,omitempty"`
	// Capabilities are what the new version declares; Gained and Lost
	// compare them with the version the device runs (an added target gains
	// all it declares).
	Capabilities []string `json:"capabilities,omitempty"`
	Gained       []string `json:"capabilities_gained,omitempty"`
	Lost         []string `json:"capabilities_lost,omitempty"`
	// Denied are the gained capabilities the device policy forbids: the
	// update is refused.
	Denied []string `json:"capabilities_denied,omitempty"`
}

// Publicity is since when an update is proven public in the log and when
// the device's publicity window lets it install (docs/spec/publicity.md).
type Publicity struct {
	// Public is false while no quorum of witness cosignatures proves it.
	Public bool      `json:"public"`
	Since  time.Time `json:"public_since,omitzero"`
	// Window is the window that applies to this update (the security
	// window for a security-only update); EligibleAt is Since + Window.
	Window     string    `json:"window"`
	EligibleAt time.Time `json:"eligible_at,omitzero"`
	Eligible   bool      `json:"eligible"`
}

// Witness is one cosignature on the checkpoint that proves a role.
type Witness struct {
	Name string    `json:"name"`
	Time time.Time `json:"time"`
}

// Evidence is the log evidence of one role version.
type Evidence struct {
	Role      string    `json:"role"`
	Version   int64     `json:"version"`
	Log       string    `json:"log"`
	Index     uint64    `json:"index"`
	TreeSize  uint64    `json:"tree_size"`
	Source    string    `json:"source"`
	Witnesses []Witness `json:"witnesses"`
}

// Summary describes an available update.
type Summary struct {
	Repository  string     `json:"repository"`
	FromVersion int64      `json:"from_targets_version"`
	ToVersion   int64      `json:"to_targets_version"`
	Changes     []Change   `json:"changes"`
	Evidence    []Evidence `json:"evidence"`
	// DownloadSize is the bytes to fetch (added and changed targets).
	DownloadSize int64 `json:"download_size"`
	// Publicity is set when the device could compute it (a policy with a
	// witness quorum and evidence for the update).
	Publicity *Publicity `json:"publicity,omitempty"`
	// Signoff is, per target the update installs, what the device's
	// sign-off requirements found (docs/spec/signoff.md); empty when the
	// device requires none.
	Signoff []Signoff `json:"signoff,omitempty"`
}

// Signoff is what a device's sign-off requirements found for one target:
// per requirement, which trusted attesters' statements counted, and which
// trusted rebuilders objected (a proven "mismatch").
type Signoff struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	// Met is true when every requirement is met and nobody objected.
	Met          bool                 `json:"met"`
	Requirements []SignoffRequirement `json:"requirements"`
	// Mismatch names the trusted rebuilders whose proven statement says
	// they built other bytes (or who stated both): the target is refused.
	Mismatch []string `json:"mismatch,omitempty"`
	// MismatchSourceLocal names those of Mismatch whose statement says
	// they built from a local copy of the source ("source_local" in
	// docs/spec/signoff.md), not the declared source fetched and checked.
	// The mismatch refuses all the same.
	MismatchSourceLocal []string `json:"mismatch_source_local,omitempty"`
	// Refusal says why the sign-off is not met, empty when it is.
	Refusal string `json:"refusal,omitempty"`
}

// SignoffRequirement is one requirement ("k of these n keys stated
// verdict") and the attesters whose statements counted for it, by the name
// in their key.
type SignoffRequirement struct {
	Verdict string   `json:"verdict"`
	K       int      `json:"k"`
	N       int      `json:"n"`
	By      []string `json:"by"`
	Missing []string `json:"missing,omitempty"`
	// SourceLocal names those of By whose statement says they built from
	// a local copy of the source ("source_local" in docs/spec/signoff.md)
	// instead of fetching the declared source and checking its digest:
	// the statement counts, and rests on that copy being the declared
	// source. Information for the owner, who chooses whom to trust.
	SourceLocal []string `json:"source_local,omitempty"`
}

// SignedOff reports whether every target's sign-off is met.
func (s *Summary) SignedOff() bool {
	for _, so := range s.Signoff {
		if !so.Met {
			return false
		}
	}
	return true
}

// Escalates reports whether any target gains a capability.
func (s *Summary) Escalates() bool {
	for _, c := range s.Changes {
		if len(c.Gained) > 0 {
			return true
		}
	}
	return false
}

// Empty reports whether nothing changes.
func (s *Summary) Empty() bool { return len(s.Changes) == 0 }

// SecurityOnly reports whether every added or changed target is marked as
// a security update (removals need no mark) and there is at least one.
func (s *Summary) SecurityOnly() bool {
	n := 0
	for _, c := range s.Changes {
		if c.Kind == "removed" {
			continue
		}
		if !c.Security {
			return false
		}
		n++
	}
	return n > 0
}

// Sort orders changes by path and evidence by log index.
func (s *Summary) Sort() {
	sort.Slice(s.Changes, func(i, j int) bool { return s.Changes[i].Path < s.Changes[j].Path })
	sort.SliceStable(s.Evidence, func(i, j int) bool { return s.Evidence[i].Index < s.Evidence[j].Index })
}

// Text returns the summary for a person, with control characters from the
// metadata removed.
func (s *Summary) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Update for %s: targets version %d -> %d\n", clean(s.Repository), s.FromVersion, s.ToVersion)
	if s.Empty() {
		b.WriteString("  no target changes\n")
	}
	for _, c := range s.Changes {
		mark := ""
		if c.Security {
			mark = " [security]"
		}
		switch c.Kind {
		case "added":
			fmt.Fprintf(&b, "  + %s (%s)%s\n", clean(c.Path), size(c.NewLength), mark)
		case "removed":
			fmt.Fprintf(&b, "  - %s (%s)\n", clean(c.Path), size(c.OldLength))
		default:
			fmt.Fprintf(&b, "  ~ %s (%s -> %s)%s\n", clean(c.Path), size(c.OldLength), size(c.NewLength), mark)
		}
		if len(c.Gained) > 0 {
			fmt.Fprintf(&b, "      GAINS capabilities: %s (needs your consent)\n", clean(strings.Join(c.Gained, ", ")))
		}
		if len(c.Denied) > 0 {
			fmt.Fprintf(&b, "      DENIED by this device's policy: %s\n", clean(strings.Join(c.Denied, ", ")))
		}
		if len(c.Lost) > 0 {
			fmt.Fprintf(&b, "      drops capabilities: %s\n", clean(strings.Join(c.Lost, ", ")))
		}
		if c.ReleaseNotes != "" {
			for _, l := range strings.Split(clean(c.ReleaseNotes), "\n") {
				fmt.Fprintf(&b, "      %s\n", l)
			}
		}
	}
	fmt.Fprintf(&b, "  to download: %s\n", size(s.DownloadSize))
	if p := s.Publicity; p != nil && !s.Empty() {
		switch {
		case !p.Public:
			fmt.Fprintf(&b, "  not yet proven public (no witness quorum with timestamps up to now); window %s\n", p.Window)
		case p.Eligible:
			fmt.Fprintf(&b, "  public since %s; window %s met\n", p.Since.UTC().Format(time.RFC3339), p.Window)
		default:
			fmt.Fprintf(&b, "  public since %s; window %s: eligible at %s\n", p.Since.UTC().Format(time.RFC3339), p.Window, p.EligibleAt.UTC().Format(time.RFC3339))
		}
	}
	for i := range s.Signoff {
		b.WriteString(s.Signoff[i].Text())
	}
	if len(s.Evidence) > 0 {
		b.WriteString("Transparency log evidence:\n")
	}
	for _, e := range s.Evidence {
		fmt.Fprintf(&b, "  %s v%d: %s entry %d (tree size %d, proof from %s)\n", clean(e.Role), e.Version, clean(e.Log), e.Index, e.TreeSize, e.Source)
		for _, w := range e.Witnesses {
			fmt.Fprintf(&b, "      cosigned by %s at %s\n", clean(w.Name), w.Time.UTC().Format(time.RFC3339))
		}
	}
	return b.String()
}

// Text returns the sign-off of one target for a person: per requirement
// who counted (and who of them built from a local copy of the source),
// and who objected; control characters from the metadata removed.
func (so *Signoff) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Sign-off of %s (sha256 %s):\n", clean(so.Path), so.SHA256)
	for _, r := range so.Requirements {
		by := "nobody"
		if len(r.By) > 0 {
			by = clean(strings.Join(r.By, ", "))
		}
		fmt.Fprintf(&b, "  %s by %s (%d of %d required", r.Verdict, by, r.K, r.N)
		if len(r.By) < r.K {
			b.WriteString("; NOT MET")
		}
		b.WriteString(")\n")
		localSource(&b, r.SourceLocal)
	}
	if len(so.Mismatch) > 0 {
		fmt.Fprintf(&b, "  MISMATCH stated by %s: they rebuilt it and got other bytes\n", clean(strings.Join(so.Mismatch, ", ")))
		localSource(&b, so.MismatchSourceLocal)
	}
	return b.String()
}

// localSource notes, under a sign-off line, the attesters who built from
// a local copy of the source rather than the declared source.
func localSource(b *strings.Builder, names []string) {
	if len(names) > 0 {
		fmt.Fprintf(b, "      built from a local copy of the source, not the release's declared source fetched and checked: %s\n", clean(strings.Join(names, ", ")))
	}
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// clean removes control characters (terminal escapes) except newlines.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' {
			return r
		}
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, s)
}
