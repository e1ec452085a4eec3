package repo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/shiplog/shiplog/client/capability"
	"github.com/shiplog/shiplog/repo/keys"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// A signing ceremony without shared files: the repository's machine
// exports a request (the canonical bytes each staged role needs signed,
// with a human-readable summary of what changes); each keyholder signs it
// on their own, possibly offline, machine and returns a signature file; the
// repository's machine imports the signatures, checking each one against
// the staged bytes and the role's keys.
//
// Request file (JSON, at most MaxRequestSize bytes):
//
//	{"request": "shiplog/sign-request/v1", "repository": "example.com/fw",
//	 "roles": [{"role": "root", "version": 2, "sha256": "<hex of canonical>",
//	            "canonical": "<base64 of the canonical JSON of signed>",
//	            "authorities": [{"name": "root v1", "threshold": 2, "keyids": [...]}],
//	            "changes": ["root key 1a2b… added", ...]}]}
//
// Signature file:
//
//	{"signatures": "shiplog/signatures/v1", "repository": "example.com/fw",
//	 "signed": [{"role": "root", "version": 2, "sha256": "<hex>", "keyid": "<hex>", "sig": "<hex>"}]}

// Format identifiers and limits of the ceremony files.
const (
	RequestFormat    = "shiplog/sign-request/v1"
	SignaturesFormat = "shiplog/signatures/v1"
	// MaxRequestSize bounds a request: a few roles of at most MaxTargetsSize
	// each, base64-encoded.
	MaxRequestSize = 16 << 20
	// MaxSignaturesSize bounds a signature file.
	MaxSignaturesSize = 1 << 20
	maxRequestRoles   = 1024
)

// SignRequest is what a keyholder is asked to sign.
type SignRequest struct {
	Request    string        `json:"request"`
	Repository string        `json:"repository"`
	Roles      []RequestRole `json:"roles"`
}

// RequestRole is one staged role in a SignRequest.
type RequestRole struct {
	Role    string `json:"role"`
	Version int64  `json:"version"`
	SHA256  string `json:"sha256"`
	// Canonical is the canonical JSON of the role's "signed" object: the
	// exact bytes a TUF signature covers.
	Canonical   []byte      `json:"canonical"`
	Authorities []Authority `json:"authorities"`
	// Changes summarises, for people, how this version differs from the
	// current one, as computed by the exporting machine.
	Changes []string `json:"changes"`
}

// Signatures is a keyholder's answer to a SignRequest.
type Signatures struct {
	Signatures string           `json:"signatures"`
	Repository string           `json:"repository"`
	Signed     []RoleSignatures `json:"signed"`
}

// RoleSignatures is one signature over one role version's canonical bytes.
type RoleSignatures struct {
	Role    string `json:"role"`
	Version int64  `json:"version"`
	SHA256  string `json:"sha256"`
	KeyID   string `json:"keyid"`
	Sig     string `json:"sig"`
}

// ExportRequest returns the request for every staged role (or those in
// roles), refusing expired ones.
func (r *Repo) ExportRequest(roles []string) (*SignRequest, error) {
	staged := r.stagedRoles()
	if len(staged) == 0 {
		return nil, errors.New("nothing is staged: stage changes with `shiplog repo add`, `delegate`, `rotate` or `renew` first")
	}
	req := &SignRequest{Request: RequestFormat, Repository: r.Config.Repository}
	for _, role := range staged {
		if len(roles) > 0 && !slices.Contains(roles, role) {
			continue
		}
		version, expires, _ := r.stagedInfo(role)
		if !expires.After(r.now()) {
			return nil, fmt.Errorf("staged %s v%d expired at %s: restage it with `shiplog repo renew --role %s`", role, version, expires.Format(time.RFC3339), role)
		}
		canon, err := r.stagedCanonical(role)
		if err != nil {
			return nil, err
		}
		auth, err := r.authorities(r.working(), role)
		if err != nil {
			return nil, err
		}
		for i := range auth {
			auth[i].Signed = nil // signatures already present are not the signer's business
		}
		sum := sha256.Sum256(canon)
		req.Roles = append(req.Roles, RequestRole{Role: role, Version: version, SHA256: hex.EncodeToString(sum[:]),
			Canonical: canon, Authorities: auth, Changes: r.changes(role)})
	}
	if len(req.Roles) == 0 {
		return nil, fmt.Errorf("none of %s is staged (staged: %s)", strings.Join(roles, ", "), strings.Join(staged, ", "))
	}
	return req, nil
}

func (r *Repo) stagedCanonical(role string) ([]byte, error) {
	if role == "root" {
		return cjson.EncodeCanonical(r.staged.Root.Signed)
	}
	return cjson.EncodeCanonical(r.staged.Targets[role].Signed)
}

// ParseSignRequest parses a request strictly and checks that each role's
// canonical bytes hash to its sha256 and decode as TUF metadata of the
// stated type and version.
func ParseSignRequest(b []byte) (*SignRequest, error) {
	var req SignRequest
	if err := strictJSON(b, MaxRequestSize, &req); err != nil {
		return nil, fmt.Errorf("malformed sign request: %w", err)
	}
	if req.Request != RequestFormat || len(req.Roles) == 0 || len(req.Roles) > maxRequestRoles {
		return nil, fmt.Errorf("not a %s file", RequestFormat)
	}
	for _, rr := range req.Roles {
		sum := sha256.Sum256(rr.Canonical)
		if hex.EncodeToString(sum[:]) != rr.SHA256 {
			return nil, fmt.Errorf("request for %s v%d: sha256 does not match the canonical bytes", rr.Role, rr.Version)
		}
		if _, err := describeSigned(rr); err != nil {
			return nil, err
		}
	}
	return &req, nil
}

// describeSigned checks that a request role's canonical bytes are TUF
// metadata of its type and version, and returns facts read from those
// bytes (not from the exporter's summary) for the signer to see.
func describeSigned(rr RequestRole) ([]string, error) {
	doc := canonicalToJSON(rr.Canonical)
	var head struct {
		Type    string    `json:"_type"`
		Version int64     `json:"version"`
		Expires time.Time `json:"expires"`
	}
	if err := json.Unmarshal(doc, &head); err != nil || head.Version != rr.Version {
		return nil, fmt.Errorf("request for %s v%d: canonical bytes are not that version's metadata", rr.Role, rr.Version)
	}
	want := "targets"
	if rr.Role == "root" {
		want = "root"
	}
	if head.Type != want {
		return nil, fmt.Errorf("request for %s: canonical bytes are %q metadata", rr.Role, head.Type)
	}
	out := []string{fmt.Sprintf("%s v%d, expires %s", rr.Role, head.Version, head.Expires.UTC().Format(time.RFC3339))}
	if rr.Role == "root" {
		var root metadata.RootType
		if err := json.Unmarshal(doc, &root); err != nil {
			return nil, fmt.Errorf("request for root: %w", err)
		}
		for _, name := range TopLevelRoles {
			if rl := root.Roles[name]; rl != nil {
				out = append(out, fmt.Sprintf("%s: threshold %d of keys %s", name, rl.Threshold, shortIDs(rl.KeyIDs)))
			}
		}
		return out, nil
	}
	var t metadata.TargetsType
	if err := json.Unmarshal(doc, &t); err != nil {
		return nil, fmt.Errorf("request for %s: %w", rr.Role, err)
	}
	paths := make([]string, 0, len(t.Targets))
	for p := range t.Targets {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	out = append(out, fmt.Sprintf("%d targets", len(paths)))
	for i, p := range paths {
		if i == 20 {
			out = append(out, fmt.Sprintf("  … %d more", len(paths)-20))
			break
		}
		tf := t.Targets[p]
		out = append(out, fmt.Sprintf("  %s  %d bytes  sha256 %.16s%s", p, tf.Length, hex.EncodeToString(tf.Hashes["sha256"]), describeCapabilities(tf)))
	}
	if t.Delegations != nil {
		out = append(out, fmt.Sprintf("%d delegated roles", len(t.Delegations.Roles)))
	}
	return out, nil
}

// canonicalToJSON makes canonical JSON (OLPC canonical JSON, as TUF signs
// it) readable by encoding/json: canonical JSON leaves control characters
// in strings unescaped (an ECDSA key's PEM has newlines), and has no
// whitespace between tokens, so every byte below 0x20 is inside a string
// and can be escaped as \u00XX.
func canonicalToJSON(b []byte) []byte {
	var out []byte
	for i, c := range b {
		if c >= 0x20 {
			if out != nil {
				out = append(out, c)
			}
			continue
		}
		if out == nil {
			out = append(make([]byte, 0, len(b)+16), b[:i]...)
		}
		out = fmt.Appendf(out, "\\u%04x", c)
	}
	if out == nil {
		return b
	}
	return out
}

// SignRequestWith signs every role of req that k is a key of (by the
// request's own list of authorities: the importing repository checks again)
// and returns the signature file, plus what was signed, read from the
// canonical bytes, for the signer to review. It refuses a key that signs
// none of the roles.
func SignRequestWith(req *SignRequest, k *keys.Private) (*Signatures, []string, error) {
	signer, err := k.Signer()
	if err != nil {
		return nil, nil, err
	}
	out := &Signatures{Signatures: SignaturesFormat, Repository: req.Repository}
	var seen []string
	for _, rr := range req.Roles {
		if !isKeyOf(rr.Authorities, k.ID) {
			continue
		}
		facts, err := describeSigned(rr)
		if err != nil {
			return nil, nil, err
		}
		sig, err := signer.SignMessage(bytes.NewReader(rr.Canonical))
		if err != nil {
			return nil, nil, fmt.Errorf("couldn't sign %s: %w", rr.Role, err)
		}
		if !verifySig(k.Public, rr.Canonical, sig) {
			return nil, nil, fmt.Errorf("the key's signature over %s does not verify", rr.Role)
		}
		out.Signed = append(out.Signed, RoleSignatures{Role: rr.Role, Version: rr.Version, SHA256: rr.SHA256, KeyID: k.ID, Sig: hex.EncodeToString(sig)})
		seen = append(seen, facts...)
		for _, c := range rr.Changes {
			seen = append(seen, "  change (per the exporter): "+c)
		}
	}
	if len(out.Signed) == 0 {
		return nil, nil, fmt.Errorf("key %s is not a key of any role in the request", short(k.ID))
	}
	return out, seen, nil
}

// ParseSignatures parses a signature file strictly.
func ParseSignatures(b []byte) (*Signatures, error) {
	var s Signatures
	if err := strictJSON(b, MaxSignaturesSize, &s); err != nil {
		return nil, fmt.Errorf("malformed signature file: %w", err)
	}
	if s.Signatures != SignaturesFormat || len(s.Signed) == 0 || len(s.Signed) > maxRequestRoles {
		return nil, fmt.Errorf("not a %s file", SignaturesFormat)
	}
	return &s, nil
}

// ErrOtherBytes means a signature covers other bytes than the staged role:
// the staged role changed after the request was exported, or the
// signature file belongs to another request.
var ErrOtherBytes = errors.New("signature over other bytes than the staged role")

// ImportSignatures adds the signatures of s to the staged roles, all or
// nothing. Each must name a staged role and version, cover exactly its
// canonical bytes (else ErrOtherBytes), come from a key of the role
// (for a new root: of the old or the new root), and verify. A signature
// by a key that already signed replaces the earlier one.
func (r *Repo) ImportSignatures(s *Signatures) ([]SignResult, error) {
	if s.Repository != r.Config.Repository {
		return nil, fmt.Errorf("signatures are for repository %q, this is %q", s.Repository, r.Config.Repository)
	}
	staged := r.stagedRoles()
	var out []SignResult
	for _, rs := range s.Signed {
		if !slices.Contains(staged, rs.Role) {
			return nil, fmt.Errorf("%s has no staged changes", rs.Role)
		}
		version, expires, sigs := r.stagedInfo(rs.Role)
		if rs.Version != version {
			return nil, fmt.Errorf("%w: signature for %s v%d, staged is v%d", ErrOtherBytes, rs.Role, rs.Version, version)
		}
		if !expires.After(r.now()) {
			return nil, fmt.Errorf("staged %s v%d expired at %s", rs.Role, version, expires.Format(time.RFC3339))
		}
		canon, err := r.stagedCanonical(rs.Role)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(canon)
		if hex.EncodeToString(sum[:]) != rs.SHA256 {
			return nil, fmt.Errorf("%w: %s v%d changed after the request was exported; export a new request", ErrOtherBytes, rs.Role, version)
		}
		auth, err := r.authorities(r.working(), rs.Role)
		if err != nil {
			return nil, err
		}
		k := authorityKey(auth, rs.KeyID)
		if k == nil {
			return nil, fmt.Errorf("key %s is not a key of %s (keys %s)", short(rs.KeyID), rs.Role, describeKeys(auth))
		}
		sig, err := hex.DecodeString(rs.Sig)
		if err != nil || !verifySig(k, canon, sig) {
			return nil, fmt.Errorf("the signature by %s over %s v%d does not verify", short(rs.KeyID), rs.Role, version)
		}
		*sigs = append(slices.DeleteFunc(slices.Clone(*sigs), func(x metadata.Signature) bool { return x.KeyID == rs.KeyID }),
			metadata.Signature{KeyID: rs.KeyID, Signature: sig})
		if auth, err = r.authorities(r.working(), rs.Role); err != nil {
			return nil, err
		}
		out = append(out, SignResult{Role: rs.Role, Version: version, KeyID: rs.KeyID, Authorities: auth, Ready: allMet(auth)})
	}
	if err := r.saveStaging(); err != nil {
		return nil, err
	}
	return out, nil
}

// authorityKey returns the key with ID id from the authorities it belongs to.
func authorityKey(auth []Authority, id string) *metadata.Key {
	for _, a := range auth {
		if slices.Contains(a.KeyIDs, id) && a.keys[id] != nil {
			return a.keys[id]
		}
	}
	return nil
}

// changes summarises how the staged version of role differs from the
// committed one.
func (r *Repo) changes(role string) []string {
	if role == "root" {
		return rootChanges(r.root, r.staged.Root)
	}
	var old *metadata.Metadata[metadata.TargetsType]
	if c := r.roles[role]; c != nil {
		old = c.Meta
	}
	return targetsChanges(old, r.staged.Targets[role])
}

func rootChanges(old, next *metadata.Metadata[metadata.RootType]) []string {
	if old == nil {
		return []string{fmt.Sprintf("new repository: root v%d", next.Signed.Version)}
	}
	out := []string{fmt.Sprintf("root v%d -> v%d, expires %s", old.Signed.Version, next.Signed.Version, next.Signed.Expires.UTC().Format(time.RFC3339))}
	for _, name := range TopLevelRoles {
		o, n := old.Signed.Roles[name], next.Signed.Roles[name]
		if o == nil || n == nil {
			continue
		}
		for _, id := range n.KeyIDs {
			if !slices.Contains(o.KeyIDs, id) {
				out = append(out, fmt.Sprintf("%s key %s added", name, short(id)))
			}
		}
		for _, id := range o.KeyIDs {
			if !slices.Contains(n.KeyIDs, id) {
				out = append(out, fmt.Sprintf("%s key %s removed", name, short(id)))
			}
		}
		if o.Threshold != n.Threshold {
			out = append(out, fmt.Sprintf("%s threshold %d -> %d", name, o.Threshold, n.Threshold))
		}
	}
	return out
}

func targetsChanges(old, next *metadata.Metadata[metadata.TargetsType]) []string {
	if old == nil {
		return []string{fmt.Sprintf("new role: v%d with %d targets", next.Signed.Version, len(next.Signed.Targets))}
	}
	out := []string{fmt.Sprintf("v%d -> v%d, expires %s", old.Signed.Version, next.Signed.Version, next.Signed.Expires.UTC().Format(time.RFC3339))}
	var paths []string
	for p := range next.Signed.Targets {
		paths = append(paths, p)
	}
	for p := range old.Signed.Targets {
		if next.Signed.Targets[p] == nil {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		o, n := old.Signed.Targets[p], next.Signed.Targets[p]
		switch {
		case o == nil:
			out = append(out, fmt.Sprintf("target %s added (%d bytes, sha256 %.16s)%s", p, n.Length, hex.EncodeToString(n.Hashes["sha256"]), describeCapabilities(n)))
		case n == nil:
			out = append(out, fmt.Sprintf("target %s removed", p))
		default:
			if !o.Hashes.Equal(n.Hashes) || o.Length != n.Length {
				out = append(out, fmt.Sprintf("target %s replaced (now %d bytes, sha256 %.16s)", p, n.Length, hex.EncodeToString(n.Hashes["sha256"])))
			}
			out = append(out, customChanges(p, o, n)...)
		}
	}
	return out
}

// describeCapabilities is ", capabilities: a, b" for a target that declares
// some (docs/spec/capabilities.md), so that a keyholder sees what the
// software may do; a malformed list is said, never hidden.
func describeCapabilities(tf *metadata.TargetFiles) string {
	caps, err := capability.FromCustom(customBytes(tf))
	switch {
	case err != nil:
		return fmt.Sprintf("  capabilities MALFORMED (%v)", err)
	case len(caps) > 0:
		return "  capabilities: " + strings.Join(caps, ", ")
	}
	return ""
}

// customChanges says how a target's custom metadata changed between two
// versions: capabilities gained and lost by name (the update's "bomb
// radius"), and any other change of its custom metadata.
func customChanges(p string, o, n *metadata.TargetFiles) []string {
	ob, nb := customBytes(o), customBytes(n)
	if bytes.Equal(bytes.TrimSpace(ob), bytes.TrimSpace(nb)) {
		return nil
	}
	var out []string
	oc, oerr := capability.FromCustom(ob)
	nc, nerr := capability.FromCustom(nb)
	switch {
	case nerr != nil:
		out = append(out, fmt.Sprintf("target %s capabilities MALFORMED (%v)", p, nerr))
	case oerr == nil:
		gained, lost := capability.Diff(oc, nc)
		if len(gained) > 0 {
			out = append(out, fmt.Sprintf("target %s GAINS capabilities: %s", p, strings.Join(gained, ", ")))
		}
		if len(lost) > 0 {
			out = append(out, fmt.Sprintf("target %s loses capabilities: %s", p, strings.Join(lost, ", ")))
		}
	}
	var om, nm map[string]json.RawMessage
	json.Unmarshal(ob, &om)
	json.Unmarshal(nb, &nm)
	delete(om, capability.Key)
	delete(nm, capability.Key)
	if !equalRaw(om, nm) {
		out = append(out, fmt.Sprintf("target %s custom metadata changed", p))
	}
	return out
}

func customBytes(tf *metadata.TargetFiles) []byte {
	if tf == nil || tf.Custom == nil {
		return nil
	}
	return *tf.Custom
}

func equalRaw(a, b map[string]json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !bytes.Equal(bytes.TrimSpace(v), bytes.TrimSpace(w)) {
			return false
		}
	}
	return true
}

func shortIDs(ids []string) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = short(id)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// strictJSON decodes b into v refusing unknown fields, trailing data and
// more than max bytes.
func strictJSON(b []byte, max int, v any) error {
	if len(b) > max {
		return fmt.Errorf("larger than %d bytes", max)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}
