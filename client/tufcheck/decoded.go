package tufcheck

import (
	"errors"
	"fmt"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Unverified is a metadata file decoded once, as a root or as a targets
// role, before any signature is checked: what a caller that checks the same
// file in several ways (the auditor's replay: header, role, then the
// signatures against one or more possible signers) passes around instead of
// the bytes, so that the file is decoded only once. Nothing in it is
// trusted. It is immutable and safe for concurrent use.
type Unverified struct {
	role string // metadata.ROOT or metadata.TARGETS: how it was decoded
	hdr  Header
	// hdrErr is PeekUnverified's error; err is what InitialRoot,
	// NextRoot, TopLevelTargets or DelegatedTargets return before they
	// check anything else (the parse error), nil when the file decoded.
	hdrErr, err error
	root        *rootFile
	targets     *targetsFile
}

// DecodeUnverified decodes data as metadata of role: metadata.ROOT decodes
// a root, any other role a targets file. It decodes once with go-tuf; only
// a file go-tuf refuses is read again, for its header, to classify the
// refusal exactly as the functions that take bytes do.
func DecodeUnverified(data []byte, role string) *Unverified {
	u := &Unverified{role: metadata.TARGETS}
	if role == metadata.ROOT {
		u.role = metadata.ROOT
		u.root, u.err = parseRoot(data)
		if u.err == nil {
			s := u.root.MD.Signed
			u.hdr = Header{Type: s.Type, Version: s.Version, Expires: s.Expires}
		}
	} else {
		u.targets, u.err = parseTargets(data)
		if u.err == nil {
			s := u.targets.MD.Signed
			u.hdr = Header{Type: s.Type, Version: s.Version, Expires: s.Expires}
		}
	}
	if u.err != nil {
		u.hdr, u.hdrErr = PeekUnverified(data)
	}
	return u
}

// Header returns what PeekUnverified returns for the same bytes.
func (u *Unverified) Header() (Header, error) { return u.hdr, u.hdrErr }

// Targets returns the decoded, unverified targets file, nil when it did not
// decode as one. Its signatures are unchecked: use it only to show what an
// unverifiable release would have changed.
func (u *Unverified) Targets() *metadata.Metadata[metadata.TargetsType] {
	if u.targets == nil {
		return nil
	}
	return u.targets.MD
}

var errDecodedAs = errors.New("tufcheck: metadata decoded as another role")

func (u *Unverified) rootOrErr() (*rootFile, error) {
	if u.role != metadata.ROOT {
		return nil, errDecodedAs
	}
	return u.root, u.err
}

func (u *Unverified) targetsOrErr() (*targetsFile, error) {
	if u.role != metadata.TARGETS {
		return nil, errDecodedAs
	}
	return u.targets, u.err
}

// InitialRootDecoded is InitialRoot on a file DecodeUnverified decoded as a
// root; it returns the same result and error.
func InitialRootDecoded(u *Unverified, now time.Time) (*Root, error) {
	r, err := u.rootOrErr()
	if err != nil {
		return nil, err
	}
	return initialRoot(r, now)
}

// NextRootDecoded is NextRoot on a file DecodeUnverified decoded as a root.
func NextRootDecoded(trusted *Root, u *Unverified, now time.Time) (*Root, error) {
	r, err := u.rootOrErr()
	if err != nil {
		return nil, err
	}
	return nextRoot(trusted, r, now)
}

// TopLevelTargetsDecoded is TopLevelTargets on a file DecodeUnverified
// decoded as targets.
func TopLevelTargetsDecoded(root *Root, u *Unverified, now time.Time) (*Targets, error) {
	t, err := u.targetsOrErr()
	if err != nil {
		return nil, err
	}
	return topLevelTargets(root, t, now)
}

// DelegatedTargetsDecoded is DelegatedTargets on a file DecodeUnverified
// decoded as targets.
func DelegatedTargetsDecoded(delegator *Targets, role string, u *Unverified, now time.Time) (*Targets, error) {
	if !Delegates(delegator, role) {
		return nil, fmt.Errorf("%w: %q", ErrNoDelegation, role)
	}
	t, err := u.targetsOrErr()
	if err != nil {
		return nil, err
	}
	return delegatedTargets(delegator, role, t, now)
}
