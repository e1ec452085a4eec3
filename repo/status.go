package repo

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// RoleStatus is the state of one committed role.
type RoleStatus struct {
	Role    string    `json:"role"`
	Version int64     `json:"version"`
	Expires time.Time `json:"expires"`
	// Logged is true when the version has a tlog-proof file.
	Logged bool `json:"logged"`
	// Exposed is the version the current snapshot lists (0 if none).
	Exposed int64 `json:"exposed,omitempty"`
	Targets int   `json:"targets"`
}

// StagedStatus is the state of one staged role.
type StagedStatus struct {
	Role        string      `json:"role"`
	Version     int64       `json:"version"`
	Expires     time.Time   `json:"expires"`
	Authorities []Authority `json:"authorities"`
	Ready       bool        `json:"ready"`
	Error       string      `json:"error,omitempty"`
}

// Status is what `shiplog repo status` prints.
type Status struct {
	Repository string         `json:"repository"`
	Ledger     string         `json:"ledger,omitempty"`
	Root       *RoleStatus    `json:"root,omitempty"`
	Snapshot   *RoleStatus    `json:"snapshot,omitempty"`
	Timestamp  *RoleStatus    `json:"timestamp,omitempty"`
	Roles      []RoleStatus   `json:"roles"`
	Staged     []StagedStatus `json:"staged"`
	// Unexposed lists committed (logged) role versions that the current
	// snapshot does not list yet.
	Unexposed []string `json:"unexposed"`
	// Warnings lists expired and soon-expiring roles.
	Warnings []string `json:"warnings"`
	// Next is the next step of the safe workflow.
	Next []string `json:"next"`
}

// Status reports what is committed, logged, exposed and pending, what
// expires when, and the next step in the safe order: sign staged roles,
// publish (log) them, then expose them with a new snapshot and timestamp.
func (r *Repo) Status() (*Status, error) {
	now := r.now()
	s := &Status{Repository: r.Config.Repository, Ledger: r.Config.Ledger, Roles: []RoleStatus{}, Staged: []StagedStatus{},
		Unexposed: []string{}, Warnings: []string{}, Next: []string{}}
	if r.root != nil {
		s.Root = &RoleStatus{Role: "root", Version: r.root.Signed.Version, Expires: r.root.Signed.Expires, Logged: r.logged(r.root.Signed.Version, "root")}
		s.warn(now, "root", r.root.Signed.Expires, r.Config.Expires.Root)
	}
	if r.snapshot != nil {
		s.Snapshot = &RoleStatus{Role: "snapshot", Version: r.snapshot.Signed.Version, Expires: r.snapshot.Signed.Expires}
		s.Timestamp = &RoleStatus{Role: "timestamp", Version: r.timestamp.Signed.Version, Expires: r.timestamp.Signed.Expires}
		s.warn(now, "snapshot", r.snapshot.Signed.Expires, r.Config.Expires.Snapshot)
		s.warn(now, "timestamp", r.timestamp.Signed.Expires, r.Config.Expires.Timestamp)
	}
	err := r.committedView().walk(func(d delegation, m *metadata.Metadata[metadata.TargetsType]) error {
		c := r.roles[d.Role]
		if c == nil {
			return nil
		}
		rs := RoleStatus{Role: d.Role, Version: c.Version, Expires: c.Meta.Signed.Expires, Logged: r.logged(c.Version, d.Role), Targets: len(c.Meta.Signed.Targets)}
		if r.snapshot != nil {
			if mf := r.snapshot.Signed.Meta[d.Role+".json"]; mf != nil {
				rs.Exposed = mf.Version
			}
		}
		if rs.Exposed != rs.Version {
			s.Unexposed = append(s.Unexposed, fmt.Sprintf("%s v%d", d.Role, c.Version))
		}
		s.Roles = append(s.Roles, rs)
		s.warn(now, d.Role, c.Meta.Signed.Expires, Duration(r.Config.Expires.For(d.Role)))
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, role := range r.stagedRoles() {
		version, expires, _ := r.stagedInfo(role)
		st := StagedStatus{Role: role, Version: version, Expires: expires}
		auth, err := r.authorities(r.working(), role)
		if err != nil {
			st.Error = err.Error()
		} else {
			st.Authorities, st.Ready = auth, allMet(auth)
		}
		s.Staged = append(s.Staged, st)
	}
	s.Next = r.nextSteps(s)
	return s, nil
}

// warn records an expired role, or one with less than a tenth of its
// validity period left.
func (s *Status) warn(now time.Time, role string, expires time.Time, period Duration) {
	switch {
	case !expires.After(now):
		s.Warnings = append(s.Warnings, fmt.Sprintf("%s EXPIRED at %s", role, expires.Format(time.RFC3339)))
	case expires.Sub(now) < time.Duration(period)/10:
		s.Warnings = append(s.Warnings, fmt.Sprintf("%s expires soon, at %s", role, expires.Format(time.RFC3339)))
	}
}

func (r *Repo) nextSteps(s *Status) []string {
	var next []string
	var unsigned, ready []string
	for _, st := range s.Staged {
		if st.Ready {
			ready = append(ready, st.Role)
		} else {
			unsigned = append(unsigned, st.Role)
		}
	}
	if len(unsigned) > 0 {
		next = append(next, fmt.Sprintf("1. sign: keyholders run `shiplog repo sign -d %s --key KEY` (needs signatures: %s)", r.Dir, strings.Join(unsigned, ", ")))
	}
	if r.root == nil {
		next = append(next, fmt.Sprintf("2. register: `shiplog repo register -d %s --ledger URL --policy POLICY --token-file FILE` logs root v1 (or `--challenge-dir DIR` for an id whose first segment is your DNS name)", r.Dir))
	} else if len(ready) > 0 {
		next = append(next, fmt.Sprintf("2. log: `shiplog publish -d %s --policy POLICY` logs %s and writes their tlog-proofs", r.Dir, strings.Join(ready, ", ")))
	}
	if r.root != nil && (len(ready) > 0 || len(s.Unexposed) > 0 || r.snapshot == nil) {
		next = append(next, fmt.Sprintf("3. expose: `shiplog publish -d %s --policy POLICY --snapshot-key KEY --timestamp-key KEY` writes snapshot and timestamp, only for logged versions", r.Dir))
	}
	if len(next) == 0 {
		next = append(next, fmt.Sprintf("nothing pending; keep timestamp and snapshot fresh with `shiplog repo refresh -d %s --timestamp-key KEY --snapshot-key KEY` (from deploy/systemd/shiplog-repo-refresh.timer, or long-running with --interval 1h)", r.Dir))
	}
	return next
}

// Print writes s for humans.
func (s *Status) Print(w io.Writer) {
	fmt.Fprintf(w, "repository %s", s.Repository)
	if s.Ledger != "" {
		fmt.Fprintf(w, " (ledger %s)", s.Ledger)
	}
	fmt.Fprintln(w)
	line := func(rs *RoleStatus, extra string) {
		fmt.Fprintf(w, "  %-20s v%-6d expires %s%s\n", rs.Role, rs.Version, rs.Expires.Format(time.RFC3339), extra)
	}
	fmt.Fprintln(w, "published:")
	if s.Root == nil {
		fmt.Fprintln(w, "  (nothing yet)")
	} else {
		line(s.Root, logMark(s.Root.Logged))
	}
	for i := range s.Roles {
		rs := &s.Roles[i]
		exp := "  exposed"
		if rs.Exposed != rs.Version {
			exp = "  NOT EXPOSED"
		}
		line(rs, fmt.Sprintf("%s%s  %d targets", logMark(rs.Logged), exp, rs.Targets))
	}
	if s.Snapshot != nil {
		line(s.Snapshot, "")
		line(s.Timestamp, "")
	}
	if len(s.Staged) > 0 {
		fmt.Fprintln(w, "staged (signed locally, not logged, not visible to clients):")
		names := make([]string, 0, len(s.Staged))
		for _, st := range s.Staged {
			state := "READY to publish"
			if st.Error != "" {
				state = "ERROR: " + st.Error
			} else if !st.Ready {
				state = "needs " + describeNeeds(st.Authorities)
			}
			names = append(names, fmt.Sprintf("  %-20s v%-6d expires %s  %s", st.Role, st.Version, st.Expires.Format(time.RFC3339), state))
		}
		fmt.Fprintln(w, strings.Join(names, "\n"))
	}
	for _, warn := range s.Warnings {
		fmt.Fprintln(w, "warning:", warn)
	}
	fmt.Fprintln(w, "next (safe order: sign → log → expose):")
	for _, n := range s.Next {
		fmt.Fprintln(w, " ", n)
	}
}

func logMark(logged bool) string {
	if logged {
		return "  logged"
	}
	return "  NOT LOGGED"
}
