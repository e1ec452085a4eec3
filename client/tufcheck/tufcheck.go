// Package tufcheck decides whether one TUF metadata file is validly signed by
// the keys that delegate to it (TUF 1.0 §5.3.4, §5.3.5, §5.6.3, §5.6.6): a
// root by its predecessor's and its own thresholds, top-level targets by the
// root's targets keys, a delegated targets role by its delegator's keys for
// that role. It is the one rule the ledger (on publish), the auditor (when it
// replays the log) and the vendor tools (before they publish) share.
//
// It is pure: metadata bytes and a reference time in, verified metadata out.
// Thresholds count distinct public keys (go-tuf's VerifyDelegate). It does not
// compare versions against history, which is the caller's to keep.
package tufcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/shiplog/shiplog/client/tufmeta"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Root and Targets are verified metadata of those types.
type (
	Root    = metadata.Metadata[metadata.RootType]
	Targets = metadata.Metadata[metadata.TargetsType]
)

// MaxSize is the largest metadata file accepted, go-tuf's default cap for
// targets metadata.
const MaxSize = 5 << 20

// Errors callers branch on. Every error returned wraps exactly one of them.
var (
	ErrMalformed    = errors.New("malformed TUF metadata")
	ErrWrongRole    = errors.New("metadata is not of the expected role")
	ErrThreshold    = errors.New("signature threshold not met")
	ErrExpired      = errors.New("metadata expired")
	ErrVersion      = errors.New("bad metadata version")
	ErrNoDelegation = errors.New("role is not delegated")
)

// Header is the part of a metadata file readable before any check: its type
// and version. It is not trusted.
type Header struct {
	Type    string
	Version int64
	Expires time.Time
}

// PeekUnverified reads the type, version and expiry of a metadata file
// without checking anything else.
func PeekUnverified(data []byte) (Header, error) {
	if len(data) > MaxSize {
		return Header{}, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxSize)
	}
	var m struct {
		Signed struct {
			Type        string    `json:"_type"`
			Version     int64     `json:"version"`
			Expires     time.Time `json:"expires"`
			SpecVersion string    `json:"spec_version"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return Header{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	s := m.Signed
	if s.Type == "" || s.Version < 1 || s.Expires.IsZero() {
		return Header{}, fmt.Errorf("%w: missing _type, version or expires", ErrMalformed)
	}
	return Header{Type: s.Type, Version: s.Version, Expires: s.Expires}, nil
}

// InitialRoot parses the first root of a repository (trust on first use): it
// must be of type root, signed by its own root threshold, and not expired at
// now.
func InitialRoot(data []byte, now time.Time) (*Root, error) {
	r, err := parseRoot(data)
	if err != nil {
		return nil, err
	}
	return initialRoot(r, now)
}

func initialRoot(f *rootFile, now time.Time) (*Root, error) {
	r := f.MD
	if err := tufmeta.VerifyDelegate(r, metadata.ROOT, f); err != nil {
		return nil, fmt.Errorf("%w: root not signed by its own threshold: %v", ErrThreshold, err)
	}
	if r.Signed.IsExpired(now) {
		return nil, fmt.Errorf("%w: root v%d expired at %s", ErrExpired, r.Signed.Version, r.Signed.Expires.UTC().Format(time.RFC3339))
	}
	return r, nil
}

// NextRoot verifies data as the successor of trusted (TUF 1.0 §5.3.4-§5.3.5):
// version trusted+1, signed by the threshold of trusted's root keys and by its
// own threshold of its own root keys, and not expired at now.
func NextRoot(trusted *Root, data []byte, now time.Time) (*Root, error) {
	r, err := parseRoot(data)
	if err != nil {
		return nil, err
	}
	return nextRoot(trusted, r, now)
}

func nextRoot(trusted *Root, f *rootFile, now time.Time) (*Root, error) {
	r := f.MD
	if r.Signed.Version != trusted.Signed.Version+1 {
		return nil, fmt.Errorf("%w: root v%d does not follow v%d", ErrVersion, r.Signed.Version, trusted.Signed.Version)
	}
	if err := tufmeta.VerifyDelegate(trusted, metadata.ROOT, f); err != nil { // §5.3.4: old threshold
		return nil, fmt.Errorf("%w: root v%d not signed by the keys of v%d: %v", ErrThreshold, r.Signed.Version, trusted.Signed.Version, err)
	}
	if err := tufmeta.VerifyDelegate(r, metadata.ROOT, f); err != nil { // §5.3.4: new threshold
		return nil, fmt.Errorf("%w: root v%d not signed by its own keys: %v", ErrThreshold, r.Signed.Version, err)
	}
	if r.Signed.IsExpired(now) {
		return nil, fmt.Errorf("%w: root v%d", ErrExpired, r.Signed.Version)
	}
	return r, nil
}

// TopLevelTargets verifies data as the top-level targets role under root:
// type targets, signed by the root's targets threshold, not expired at now.
func TopLevelTargets(root *Root, data []byte, now time.Time) (*Targets, error) {
	t, err := parseTargets(data)
	if err != nil {
		return nil, err
	}
	return topLevelTargets(root, t, now)
}

func topLevelTargets(root *Root, f *targetsFile, now time.Time) (*Targets, error) {
	t := f.MD
	if err := tufmeta.VerifyDelegate(root, metadata.TARGETS, f); err != nil {
		return nil, fmt.Errorf("%w: targets v%d: %v", ErrThreshold, t.Signed.Version, err)
	}
	if t.Signed.IsExpired(now) {
		return nil, fmt.Errorf("%w: targets v%d", ErrExpired, t.Signed.Version)
	}
	return t, nil
}

// Delegates reports whether delegator delegates to role, by name or as a
// valid succinct hash-bin name.
func Delegates(delegator *Targets, role string) bool {
	d := delegator.Signed.Delegations
	if d == nil {
		return false
	}
	if d.SuccinctRoles != nil {
		return d.SuccinctRoles.IsDelegatedRole(role) // go-tuf's VerifyDelegate does not check the bin name
	}
	for _, r := range d.Roles {
		if r.Name == role {
			return true
		}
	}
	return false
}

// DelegatedTargets verifies data as delegated targets role, delegated to by
// delegator: type targets, signed by the threshold of the keys delegator
// lists for role, not expired at now.
func DelegatedTargets(delegator *Targets, role string, data []byte, now time.Time) (*Targets, error) {
	if !Delegates(delegator, role) {
		return nil, fmt.Errorf("%w: %q", ErrNoDelegation, role)
	}
	t, err := parseTargets(data)
	if err != nil {
		return nil, err
	}
	return delegatedTargets(delegator, role, t, now)
}

func delegatedTargets(delegator *Targets, role string, f *targetsFile, now time.Time) (*Targets, error) {
	t := f.MD
	if err := tufmeta.VerifyDelegate(delegator, role, f); err != nil {
		return nil, fmt.Errorf("%w: %s v%d: %v", ErrThreshold, role, t.Signed.Version, err)
	}
	if t.Signed.IsExpired(now) {
		return nil, fmt.Errorf("%w: %s v%d", ErrExpired, role, t.Signed.Version)
	}
	return t, nil
}

// parseRoot and parseTargets decode data once, with tufmeta (one pass for
// a file in go-tuf's regular form, keeping its canonical signed bytes, else
// go-tuf's FromBytes); only when that fails do they read the header, to
// tell a file of the wrong role from a malformed one. They accept exactly
// what PeekUnverified followed by go-tuf's FromBytes accepts: a file go-tuf
// decodes as the role is one PeekUnverified decodes too, given a type, a
// version of at least 1 and an expiry, which they check.
func parseRoot(data []byte) (*rootFile, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxSize)
	}
	f, err := tufmeta.Parse[metadata.RootType](data)
	if err != nil {
		return nil, parseError(data, metadata.ROOT, err)
	}
	if err := checkHeader(f.MD.Signed.Type, f.MD.Signed.Version, f.MD.Signed.Expires); err != nil {
		return nil, err
	}
	return f, nil
}

func parseTargets(data []byte) (*targetsFile, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxSize)
	}
	f, err := tufmeta.Parse[metadata.TargetsType](data)
	if err != nil {
		return nil, parseError(data, metadata.TARGETS, err)
	}
	if err := checkHeader(f.MD.Signed.Type, f.MD.Signed.Version, f.MD.Signed.Expires); err != nil {
		return nil, err
	}
	return f, nil
}

// rootFile and targetsFile are decoded files with, when tufmeta decoded
// them in one pass, their canonical signed bytes: tufmeta.VerifyDelegate
// checks Ed25519 signatures over those directly, with go-tuf's verdict.
type (
	rootFile    = tufmeta.File[metadata.RootType]
	targetsFile = tufmeta.File[metadata.TargetsType]
)

// checkHeader applies PeekUnverified's checks to a decoded file.
func checkHeader(typ string, version int64, expires time.Time) error {
	if typ == "" || version < 1 || expires.IsZero() {
		return fmt.Errorf("%w: missing _type, version or expires", ErrMalformed)
	}
	return nil
}

// parseError classifies a file go-tuf refused as role: PeekUnverified's
// error, ErrWrongRole, or ErrMalformed with go-tuf's reason.
func parseError(data []byte, role string, tufErr error) error {
	h, err := PeekUnverified(data)
	if err != nil {
		return err
	}
	if h.Type != role {
		return fmt.Errorf("%w: want %s, got %q", ErrWrongRole, role, h.Type)
	}
	return fmt.Errorf("%w: %v", ErrMalformed, tufErr)
}

// TargetsFloor returns the version that the next version of the top-level
// targets role must be above, given root, the latest trusted (for the ledger
// and the auditor: logged) root, and latest, the role's latest trusted
// version (nil if none): latest's version while latest still meets the
// threshold of root's targets keys, else 0.
//
// 0 means the role's version sequence starts again: root rotated the
// targets keys so that the metadata signed under the old ones no longer
// verifies. This is TUF's fast-forward attack recovery (TUF 1.0 §5.3.11,
// which drops trusted timestamp and snapshot metadata when their keys
// rotate) applied to the targets role, scoped to the role's key set (key
// ids and threshold): metadata the current keys would not accept is no
// rollback reference, and by the same check cannot be installed or logged
// again. A rotation that leaves latest verifying (say, a key added) does
// not restart the sequence, so an old high version can never be replayed
// over a lower one. Expiry does not matter here. docs/spec/versions.md
// states the rule for every party.
func TargetsFloor(root *Root, latest *Targets) int64 {
	if !TargetsCurrent(root, latest) {
		return 0
	}
	return latest.Signed.Version
}

// DelegatedFloor is TargetsFloor for delegated targets role role, whose
// current keys are those that delegator, the latest trusted version of
// its delegating role, lists for it: 0 when delegator no longer delegates
// to role or latest does not meet its threshold of those keys. delegator
// must itself be current (TargetsCurrent, DelegatedCurrent): the keys a
// delegator that its own keys no longer accept lists count for nothing.
func DelegatedFloor(delegator *Targets, role string, latest *Targets) int64 {
	if !DelegatedCurrent(delegator, role, latest) {
		return 0
	}
	return latest.Signed.Version
}

// TargetsCurrent reports whether latest, the latest trusted top-level
// targets metadata, still meets the threshold of root's targets keys
// (signatures only; expiry does not matter): TargetsFloor's test. Only a
// current targets role is a delegator. After a root that rotates the
// targets keys away from the latest targets (a stolen key revoked), that
// targets' delegations authorise nothing until a targets signed by the new
// keys is trusted: otherwise a thief's targets would keep delegating to
// the thief's keys (docs/spec/versions.md, "Delegators").
func TargetsCurrent(root *Root, latest *Targets) bool {
	return latest != nil && root.VerifyDelegate(metadata.TARGETS, latest) == nil
}

// DelegatedCurrent is TargetsCurrent for delegated targets role role:
// whether latest still meets the threshold of the keys delegator lists for
// it. A delegated role delegates further only while it is current under a
// current delegator.
func DelegatedCurrent(delegator *Targets, role string, latest *Targets) bool {
	return latest != nil && Delegates(delegator, role) && delegator.VerifyDelegate(role, latest) == nil
}

// CheckAboveFloor returns an error wrapping ErrVersion unless version is
// above floor (from TargetsFloor or DelegatedFloor).
func CheckAboveFloor(role string, version, floor int64) error {
	if version <= floor {
		return fmt.Errorf("%w: %s v%d is not above v%d, the latest version signed by the role's current keys", ErrVersion, role, version, floor)
	}
	return nil
}
