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
	if err := canonical("timestamp", b.Header.Timestamp, metadata.Timestamp()); err != nil {
		return nil, err
	}
	if err := canonical("snapshot", b.Header.Snapshot.Content, metadata.Snapshot()); err != nil {
		return nil, err
	}
	rem := &remote{b: b, used: map[string]bool{}}
	c := &update.Client{Remote: rem, Gate: &update.Gate{Policy: o.Policy, Repository: o.Repository}, Time: o.Time, Limits: o.Limits}
	s, err := c.Refresh(ctx, trusted)
	if err != nil {
		return nil, fmt.Errorf("bundle metadata: %w", err)
	}
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
		if rem.used[name] && rem.used[name+".tlog-proof"] {
			continue
		}
		if _, err := evidence.VerifyEntry(o.Repository, "root", m.Version, m.Content, m.TlogProof, o.Policy); err != nil {
			return fmt.Errorf("bundle root version %d: %w", m.Version, err)
		}
	}
	for _, m := range h.Targets {
		name := roleName(m)
		if rem.used[name] && rem.used[name+".tlog-proof"] {
			continue
		}
		if !bytes.Equal(m.Content, trusted.Targets[m.Role]) {
			return fmt.Errorf("bundle role %s is not on the path of any payload", clean(m.Role))
		}
		if _, err := evidence.VerifyEntry(o.Repository, m.Role, m.Version, m.Content, m.TlogProof, o.Policy); err != nil {
			return fmt.Errorf("bundle role %s: %w", clean(m.Role), err)
		}
	}
	return nil
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
	base, isProof := strings.CutSuffix(name, ".tlog-proof")
	for _, m := range h.Roots {
		if base == strconv.FormatUint(m.Version, 10)+".root.json" {
			return pick(m, isProof)
		}
	}
	if base == snapshotName(h.Snapshot.Version) && !isProof {
		return h.Snapshot.Content, nil
	}
	for _, m := range h.Targets {
		if base == roleName(m) {
			return pick(m, isProof)
		}
	}
	return nil, fmt.Errorf("bundle has no %s: %w", name, update.ErrNotFound)
}

func pick(m *pb.Metadata, proof bool) ([]byte, error) {
	if !proof {
		return m.Content, nil
	}
	if len(m.TlogProof) == 0 {
		return nil, fmt.Errorf("bundle has no proof for %s: %w", m.Role, update.ErrNotFound)
	}
	return m.TlogProof, nil
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

func canonical[T metadata.Roles](name string, b []byte, empty *metadata.Metadata[T]) error {
	md, err := empty.FromBytes(b)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", name, err)
	}
	for _, pretty := range []bool{false, true} {
		enc, err := md.ToBytes(pretty)
		if err == nil && (bytes.Equal(enc, b) || bytes.Equal(append(enc, '\n'), b)) {
			return nil
		}
	}
	return fmt.Errorf("bundle %s: %w", name, ErrNotCanonical)
}
