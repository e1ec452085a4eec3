package bundle

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shiplog/shiplog/client/sigstore"
	"github.com/shiplog/shiplog/client/tufmeta"
	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/policy"
	pb "github.com/shiplog/shiplog/proto/bundle"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Verified is a bundle whose metadata verified: the update session (to
// download payloads from, through the same checks as online) and the
// payloads' trusted target metadata, in file order.
type Verified struct {
	Session *update.Session
	Targets []*metadata.TargetFiles
	// Omitted lists the payloads the bundle leaves out.
	Omitted map[string]bool
}

// Options configure Verify.
type Options struct {
	Policy     *policy.Policy
	Repository string
	// Time is the reference time for expiry; zero means now.
	Time time.Time
	// Limits bound the update loop, as for an online update.
	Limits update.Limits
}

// Verify runs the device's update loop over the bundle from trusted, with
// the transparency gate, and resolves every payload's target. It then
// checks that the header holds nothing unverified: every root, role and
// snapshot in it was either used by the loop, or is byte-identical to what
// the device already trusts, or (for older roots) is proven in the log; and
// every payload's declared length and SHA-256 equal its trusted metadata.
// Payload bytes are checked when they are read (Session.Download).
func (b *Bundle) Verify(ctx context.Context, trusted update.Trusted, o Options) (*Verified, error) {
	if b.Header.Repository != o.Repository {
		return nil, fmt.Errorf("bundle is for repository %q, the device follows %q", clean(b.Header.Repository), o.Repository)
	}
	if err := canonical[metadata.TimestampType]("timestamp", b.Header.Timestamp); err != nil {
		return nil, err
	}
	if err := canonical[metadata.SnapshotType]("snapshot", b.Header.Snapshot.Content); err != nil {
		return nil, err
	}
	rem := &remote{b: b, used: map[string]bool{}}
	c := &update.Client{Remote: rem, Gate: &update.Gate{Policy: o.Policy, Repository: o.Repository}, Time: o.Time, Limits: o.Limits}
	s, err := c.Refresh(ctx, trusted)
	if err != nil {
		return nil, fmt.Errorf("bundle metadata: %w", err)
	}
	rem.keys = s.RoleKeys
	v := &Verified{Session: s, Omitted: map[string]bool{}}
	for _, p := range b.Header.Payloads {
		t, err := s.Target(ctx, p.TargetPath)
		if err != nil {
			return nil, fmt.Errorf("bundle payload %s: %w", clean(p.TargetPath), err)
		}
		if t.Length != int64(p.Length) || subtle.ConstantTimeCompare(t.Hashes["sha256"], p.Sha256) != 1 {
			return nil, fmt.Errorf("bundle payload %s: length or sha256 in the header differ from the signed metadata", clean(p.TargetPath))
		}
		v.Targets = append(v.Targets, t)
		if p.Omitted {
			v.Omitted[p.TargetPath] = true
		}
	}
	if err := b.checkUnused(rem, trusted, o); err != nil {
		return nil, err
	}
	return v, nil
}

// checkUnused refuses header items the loop did not need unless they are
// what the device already trusts (or, for old roots, logged).
func (b *Bundle) checkUnused(rem *remote, trusted update.Trusted, o Options) error {
	h := b.Header
	if !rem.used["timestamp.json"] {
		return errors.New("bundle timestamp was not used")
	}
	if name := snapshotName(h.Snapshot.Version); !rem.used[name] && !bytes.Equal(h.Snapshot.Content, trusted.Snapshot) {
		return errors.New("bundle snapshot is neither used nor the device's own")
	}
	for _, m := range h.Roots {
		name := strconv.FormatUint(m.Version, 10) + ".root.json"
		if rem.used[name] && (rem.used[name+".tlog-proof"] || rem.used[name+update.SigstoreSuffix]) {
			continue
		}
		if err := verifyUnused(o, m, func() (map[string]*metadata.Key, error) { return b.rootKeys(m.Version) }); err != nil {
			return fmt.Errorf("bundle root version %d: %w", m.Version, err)
		}
	}
	for _, m := range h.Targets {
		name := roleName(m)
		if rem.used[name] && (rem.used[name+".tlog-proof"] || rem.used[name+update.SigstoreSuffix]) {
			continue
		}
		if !bytes.Equal(m.Content, trusted.Targets[m.Role]) {
			return fmt.Errorf("bundle role %s is not on the path of any payload", clean(m.Role))
		}
		if err := verifyUnused(o, m, func() (map[string]*metadata.Key, error) { return rem.keysOf(m.Role) }); err != nil {
			return fmt.Errorf("bundle role %s: %w", clean(m.Role), err)
		}
	}
	return nil
}

// verifyUnused checks the evidence of a header item the update loop did
// not read: its tlog-proof, or else its Sigstore bundle against the keys
// its role is given.
func verifyUnused(o Options, m *pb.Metadata, keys func() (map[string]*metadata.Key, error)) error {
	if len(m.TlogProof) > 0 || len(m.SigstoreBundle) == 0 {
		_, err := evidence.VerifyEntry(o.Repository, m.Role, m.Version, m.Content, m.TlogProof, o.Policy)
		return err
	}
	ks, err := keys()
	if err != nil {
		return err
	}
	_, err = sigstore.Verify(m.SigstoreBundle, m.Content, ks, o.Policy)
	return err
}

// rootKeys are the keys a Sigstore entry of root version v must be signed
// by: the root keys of version v-1 (of v itself for v1), from the header.
func (b *Bundle) rootKeys(v uint64) (map[string]*metadata.Key, error) {
	want := max(v-1, 1)
	for _, m := range b.Header.Roots {
		if m.Version != want {
			continue
		}
		r, err := new(metadata.Metadata[metadata.RootType]).FromBytes(m.Content)
		if err != nil {
			return nil, err
		}
		out := map[string]*metadata.Key{}
		if role := r.Signed.Roles[metadata.ROOT]; role != nil {
			for _, id := range role.KeyIDs {
				if k := r.Signed.Keys[id]; k != nil {
					out[id] = k
				}
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("no root version %d in the bundle to check the Sigstore entry of root version %d against", want, v)
}

// VerifyPayloads reads every payload present in the bundle through its
// trusted metadata (length and hashes, streaming) and discards it: what
// "shiplog bundle verify" runs after Verify.
func (v *Verified) VerifyPayloads(ctx context.Context) error {
	for _, t := range v.Targets {
		if v.Omitted[t.Path] {
			continue
		}
		if err := v.Session.Download(ctx, t, io.Discard); err != nil {
			return err
		}
	}
	return nil
}

func snapshotName(v uint64) string { return strconv.FormatUint(v, 10) + ".snapshot.json" }

func roleName(m *pb.Metadata) string {
	return strconv.FormatUint(m.Version, 10) + "." + url.PathEscape(m.Role) + ".json"
}

// remote serves the update loop from the header and records what it used.
type remote struct {
	b    *Bundle
	used map[string]bool
	// keys, set once the loop ran, returns the keys of a role as the
	// session's trusted metadata lists them.
	keys func(role string) map[string]*metadata.Key
}

// keysOf returns the keys the trusted metadata the loop read gives role
// (for an unused role that the device already trusts).
func (r *remote) keysOf(role string) (map[string]*metadata.Key, error) {
	if r.keys == nil {
		return nil, fmt.Errorf("no trusted metadata lists the keys of role %s", clean(role))
	}
	ks := r.keys(role)
	if ks == nil {
		return nil, fmt.Errorf("no trusted metadata lists the keys of role %s", clean(role))
	}
	return ks, nil
}

func (r *remote) Metadata(ctx context.Context, name string, max int64) ([]byte, error) {
	b, err := r.lookup(name)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("bundle %s: %w: larger than %d bytes", name, update.ErrTooLarge, max)
	}
	r.used[name] = true
	return b, nil
}

func (r *remote) lookup(name string) ([]byte, error) {
	h := r.b.Header
	if name == "timestamp.json" {
		return h.Timestamp, nil
	}
	base, ev := name, ""
	for _, suffix := range []string{".tlog-proof", update.SigstoreSuffix} {
		if b, ok := strings.CutSuffix(name, suffix); ok {
			base, ev = b, suffix
		}
	}
	for _, m := range h.Roots {
		if base == strconv.FormatUint(m.Version, 10)+".root.json" {
			return pick(m, ev)
		}
	}
	if base == snapshotName(h.Snapshot.Version) && ev == "" {
		return h.Snapshot.Content, nil
	}
	for _, m := range h.Targets {
		if base == roleName(m) {
			return pick(m, ev)
		}
	}
	return nil, fmt.Errorf("bundle has no %s: %w", name, update.ErrNotFound)
}

// pick returns the file of m with suffix ev: the metadata itself (""), its
// tlog-proof or its Sigstore bundle.
func pick(m *pb.Metadata, ev string) ([]byte, error) {
	var b []byte
	switch ev {
	case "":
		return m.Content, nil
	case ".tlog-proof":
		b = m.TlogProof
	default:
		b = m.SigstoreBundle
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("bundle has no %s for %s: %w", ev, m.Role, update.ErrNotFound)
	}
	return b, nil
}

func (r *remote) Target(ctx context.Context, ref update.TargetRef) (io.ReadCloser, error) {
	sr, p, err := r.b.Payload(ref.Path)
	if err != nil {
		return nil, err
	}
	if int64(p.Length) != ref.Length || subtle.ConstantTimeCompare(p.Sha256, ref.SHA256) != 1 {
		return nil, fmt.Errorf("bundle payload %s does not match its metadata", clean(ref.Path))
	}
	return io.NopCloser(sr), nil
}

func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// ErrNotCanonical means a timestamp or snapshot in a bundle is not in one of
// go-tuf's encodings (compact, or indented with tabs) of what it says. TUF
// signatures cover canonical JSON only, and nothing else pins these two
// files' bytes (roots and targets roles are pinned by their log entries and
// the snapshot), so a bundle insists on an encoding that a flipped letter
// case or hex digit would break: every byte of a bundle is then checked.
var ErrNotCanonical = errors.New("metadata is not canonically encoded")

func canonical[T metadata.Roles](name string, b []byte) error {
	f, err := tufmeta.Parse[T](b) // go-tuf's FromBytes, decoding once
	if err != nil {
		return fmt.Errorf("bundle %s: %w", name, err)
	}
	md := f.MD
	for _, pretty := range []bool{false, true} {
		enc, err := md.ToBytes(pretty)
		if err == nil && (bytes.Equal(enc, b) || bytes.Equal(append(enc, '\n'), b)) {
			return nil
		}
	}
	return fmt.Errorf("bundle %s: %w", name, ErrNotCanonical)
}
