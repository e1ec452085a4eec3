package device

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/shiplog/shiplog/client/approval"
	"github.com/shiplog/shiplog/client/capability"
	"github.com/shiplog/shiplog/client/install"
	"github.com/shiplog/shiplog/client/state"
	"github.com/shiplog/shiplog/client/update"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// plan is a verified update: the targets to install, the manifest they
// make, and the summary shown to the user.
type plan struct {
	targets  map[string]*metadata.TargetFiles
	manifest *state.Manifest
	summary  *approval.Summary
	// evidence is the log evidence of the metadata the update newly
	// trusts: what proves since when the release is public.
	evidence []update.RoleEvidence
	// baseline is the device's first install (it runs nothing from the
	// repository yet): its capabilities need consent like any gain, but
	// deny rules, which are about escalations, do not refuse it.
	baseline bool
}

func (p *plan) message() string {
	if p.summary.Empty() {
		return "up to date"
	}
	return fmt.Sprintf("update available: %d change(s), targets version %d", len(p.summary.Changes), p.summary.ToVersion)
}

// newPlan builds the manifest and the summary of installing targets. It
// fails if a target's declared capabilities do not parse.
func newPlan(repo string, sess *update.Session, s *state.State, targets map[string]*metadata.TargetFiles) (*plan, error) {
	tv := sess.Metadata().Targets[metadata.TARGETS].Signed.Version
	m := &state.Manifest{TargetsVersion: tv, Files: map[string]state.File{}}
	h := sha256.New()
	for _, path := range sortedPaths(targets) {
		t := targets[path]
		f := state.File{Length: t.Length, SHA256: hex.EncodeToString(t.Hashes["sha256"])}
		if t.Custom != nil {
			f.Custom = json.RawMessage(*t.Custom)
		}
		m.Files[path] = f
		fmt.Fprintf(h, "%q %d %s\n", path, f.Length, f.SHA256)
	}
	m.ID = "v" + strconv.FormatInt(tv, 10) + "-" + hex.EncodeToString(h.Sum(nil)[:8])
	if len(m.Files) == 0 {
		m.ID = ""
	}
	sum := &approval.Summary{Repository: repo, ToVersion: tv}
	var old map[string]state.File
	if s.Installed != nil {
		old = s.Installed.Files
		sum.FromVersion = s.Installed.TargetsVersion
	}
	for path, f := range m.Files {
		o, had := old[path]
		caps, err := capability.FromCustom(f.Custom)
		if err != nil {
			return nil, fmt.Errorf("target %s: capabilities: %w", clean(path), err)
		}
		var prev capability.Set
		if had {
			// What the device runs was accepted before; an unreadable old
			// declaration counts as none, so everything new is a gain.
			prev, _ = capability.FromCustom(o.Custom)
		}
		gained, lost := capability.Diff(prev, caps)
		if had && o.SHA256 == f.SHA256 && o.Length == f.Length && len(gained) == 0 && len(lost) == 0 {
			continue
		}
		c := approval.ParseCustom(f.Custom)
		ch := approval.Change{Path: path, Kind: "added", NewLength: f.Length, NewSHA256: f.SHA256, Security: c.Security, ReleaseNotes: c.ReleaseNotes,
			Capabilities: caps, Gained: gained, Lost: lost}
		if had {
			ch.Kind, ch.OldLength, ch.OldSHA256 = "changed", o.Length, o.SHA256
		}
		sum.Changes = append(sum.Changes, ch)
		if !had || o.SHA256 != f.SHA256 || o.Length != f.Length {
			sum.DownloadSize += f.Length
		}
	}
	for path, o := range old {
		if _, ok := m.Files[path]; !ok {
			prev, _ := capability.FromCustom(o.Custom)
			sum.Changes = append(sum.Changes, approval.Change{Path: path, Kind: "removed", OldLength: o.Length, OldSHA256: o.SHA256, Lost: prev})
		}
	}
	for _, e := range sess.Evidence() {
		ev := approval.Evidence{Role: e.Role, Version: e.Version, Log: e.Origin, Index: e.Index, TreeSize: e.TreeSize, Source: e.Source}
		for _, c := range e.Cosigners {
			ev.Witnesses = append(ev.Witnesses, approval.Witness{Name: c.Name, Time: c.Time})
		}
		sum.Evidence = append(sum.Evidence, ev)
	}
	sum.Sort()
	return &plan{targets: targets, manifest: m, summary: sum, evidence: sess.Evidence(), baseline: s.Installed == nil}, nil
}

// fetchFunc streams a verified target into w.
type fetchFunc func(ctx context.Context, t *metadata.TargetFiles, w io.Writer) error

// apply installs p and commits the new trusted state, in this order:
// stage every file (reusing files the device holds, verified by hash),
// ask if the action says so, switch, commit the state, settle. A failure
// before the commit leaves the state and the active version unchanged (a
// switched but uncommitted version is rolled back by the next Open).
func (d *Device) apply(ctx context.Context, s *state.State, sess *update.Session, p *plan, action approval.Action, fetch fetchFunc) (*Result, error) {
	next := d.nextState(sess, s)
	res := &Result{Summary: p.summary, Action: action, Version: s.InstalledID()}
	if p.manifest.ID == s.InstalledID() {
		next.Installed = s.Installed
		if err := d.store.Commit(s, next); err != nil {
			return nil, fmt.Errorf("couldn't commit the trusted state: %w", err)
		}
		res.Message = "up to date"
		return res, nil
	}
	if action == approval.Skip || action == approval.Show {
		res.Message = p.message()
		return res, nil
	}
	if p.manifest.ID == "" {
		return nil, errors.New("the update removes every target; refusing to install nothing")
	}
	stage, err := d.inst.Stage(p.manifest.ID)
	if err != nil {
		return nil, fmt.Errorf("couldn't stage version %s: %w", p.manifest.ID, err)
	}
	d.fault("staged")
	if err := d.stageFiles(ctx, stage, s, p, fetch); err != nil {
		stage.Abort()
		return nil, d.failed(err)
	}
	d.fault("downloaded")
	if action == approval.Prompt {
		ok, err := d.ask(p.summary)
		if err != nil || !ok {
			stage.Abort()
			res.Message = "not installed: the update was not approved"
			if p.summary.Escalates() {
				res.Message = "not installed: the update gains capabilities and needs your consent (answer the prompt, or run again with --yes)"
			}
			if err == nil {
				d.savePending(p, waitingMessage(p.summary))
			}
			return res, err
		}
	}
	if err := stage.Switch(); err != nil {
		stage.Abort()
		return nil, fmt.Errorf("couldn't switch to version %s: %w", p.manifest.ID, err)
	}
	d.fault("switched")
	next.Installed = p.manifest
	if err := d.store.Commit(s, next); err != nil {
		// Roll the installer back to what the state still names.
		if serr := d.inst.Settle(s.InstalledID()); serr != nil {
			return nil, fmt.Errorf("couldn't commit the trusted state (%w) nor roll back (%v)", err, serr)
		}
		return nil, fmt.Errorf("couldn't commit the trusted state: %w", err)
	}
	d.fault("committed")
	if err := d.inst.Settle(p.manifest.ID); err != nil {
		d.log.Warn("couldn't remove the old version", "err", err)
	}
	d.fault("settled")
	d.clearPending()
	res.Installed, res.Version = true, p.manifest.ID
	res.Message = "installed " + p.manifest.ID
	return res, nil
}

func (d *Device) ask(sum *approval.Summary) (bool, error) {
	if d.opts.Yes {
		return true, nil
	}
	if d.opts.Prompt == nil {
		return false, nil
	}
	return d.opts.Prompt(sum)
}

func (d *Device) nextState(sess *update.Session, s *state.State) *state.State {
	t := sess.Trusted()
	return &state.State{Root: t.Root, Timestamp: t.Timestamp, Snapshot: t.Snapshot, Targets: t.Targets, Checkpoints: t.Checkpoints}
}

// stageFiles writes every target of p into stage.
func (d *Device) stageFiles(ctx context.Context, stage install.Stage, s *state.State, p *plan, fetch fetchFunc) error {
	for _, path := range sortedPaths(p.targets) {
		t := p.targets[path]
		w, err := stage.Create(path)
		if err != nil {
			return fmt.Errorf("couldn't stage %s: %w", clean(path), err)
		}
		if held := heldPath(s, p.manifest.Files[path]); held != "" {
			err = d.copyHeld(held, t, w)
		} else {
			err = fetch(ctx, t, w)
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// heldPath returns the path of an installed file with f's length and
// SHA-256, if any.
func heldPath(s *state.State, f state.File) string {
	if s.Installed == nil {
		return ""
	}
	for _, path := range sortedPaths(s.Installed.Files) {
		if o := s.Installed.Files[path]; o.SHA256 == f.SHA256 && o.Length == f.Length {
			return path
		}
	}
	return ""
}

// copyHeld copies an installed file into the stage, checking it against
// the trusted metadata as it goes: the device proves it holds the file.
func (d *Device) copyHeld(path string, t *metadata.TargetFiles, w io.Writer) error {
	r, err := d.inst.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := update.VerifyReader(t, w, r); err != nil {
		return fmt.Errorf("installed copy of %s does not verify: %w", clean(t.Path), err)
	}
	return nil
}

// waitingMessage is what status shows for an update left for the owner:
// not approved, or gaining capabilities without consent.
func waitingMessage(sum *approval.Summary) string {
	var gains []string
	for _, ch := range sum.Changes {
		if len(ch.Gained) > 0 {
			gains = append(gains, clean(ch.Path)+" gains "+strings.Join(ch.Gained, ", "))
		}
	}
	if len(gains) > 0 {
		return fmt.Sprintf("waiting for your consent: targets version %d: %s (run shiplog-device update and answer the prompt, or update --yes)", sum.ToVersion, strings.Join(gains, "; "))
	}
	return fmt.Sprintf("waiting for your approval: targets version %d (run shiplog-device update and answer the prompt, or update --yes)", sum.ToVersion)
}
