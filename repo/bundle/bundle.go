// Package bundle builds shiplog update bundles (the format is documented in
// client/bundle) from a shiplog repository directory: it runs the device's
// own update loop (client/update) over the directory from root version 1,
// resolving each requested target, and records the exact bytes of every
// root, the timestamp, the snapshot and every targets role the loop visited,
// with the tlog-proof beside each root and targets role; then it writes the
// header and streams the payloads, checking each against its metadata as it
// copies. The sign-off evidence the repository serves for each payload's
// digest (metadata/signoff/<sha256>.json) travels in the header too.
// Nothing is signed or re-encoded here: a bundle only carries what
// the repository already published.
package bundle

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shiplog/shiplog/internal/capped"

	cbundle "github.com/shiplog/shiplog/client/bundle"
	"github.com/shiplog/shiplog/client/sigstore"
	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/evidence/proof"
	"github.com/shiplog/shiplog/evidence/signoff"
	pb "github.com/shiplog/shiplog/proto/bundle"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Options configure Build.
type Options struct {
	// Dir is the repository directory (shiplog-repo.json, metadata/,
	// targets/).
	Dir string
	// Targets are the target paths to carry.
	Targets []string
	// OmitSHA256 lists (lowercase hex) SHA-256s of payloads the device
	// already holds: they are left out, and the device must prove it holds
	// them ("personalization").
	OmitSHA256 []string
	// FromRootVersion leaves out root versions up to and including it (the
	// device's root version, when known). 0 carries every root.
	FromRootVersion int64
	// Policy, if set, makes Build verify every proof as a device would.
	Policy *policy.Policy
	// Time is the reference time for expiry; zero means now.
	Time time.Time
}

// Repository reads DIR/shiplog-repo.json and returns the repository id.
func Repository(dir string) (string, error) {
	b, err := readLimited(filepath.Join(dir, "shiplog-repo.json"), 1<<20)
	if err != nil {
		return "", fmt.Errorf("couldn't read repository config: %w", err)
	}
	var cfg struct {
		Repository string `json:"repository"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.Repository == "" {
		return "", fmt.Errorf("%s: no repository id", filepath.Join(dir, "shiplog-repo.json"))
	}
	return cfg.Repository, nil
}

// Build writes a bundle for o.Targets to w and returns its header.
func Build(ctx context.Context, o Options, w io.Writer) (*pb.Header, error) {
	if len(o.Targets) == 0 {
		return nil, errors.New("no targets: name at least one --target")
	}
	repo, err := Repository(o.Dir)
	if err != nil {
		return nil, err
	}
	rem := &dirRemote{dir: o.Dir}
	root1, err := rem.Metadata(ctx, "1.root.json", 512000)
	if err != nil {
		return nil, fmt.Errorf("couldn't read root version 1: %w", err)
	}
	rem.log = nil
	c := &update.Client{Remote: rem, Time: o.Time}
	if o.Policy != nil {
		c.Gate = &update.Gate{Policy: o.Policy, Repository: repo}
	}
	s, err := c.Refresh(ctx, update.Trusted{Root: root1})
	if err != nil {
		return nil, fmt.Errorf("repository metadata does not verify: %w", err)
	}
	var targets []*metadata.TargetFiles
	for _, p := range o.Targets {
		t, err := s.Target(ctx, p)
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	h, err := header(ctx, rem, repo, root1, s, targets, o)
	if err != nil {
		return nil, err
	}
	head, err := cbundle.EncodeHeader(h)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(head); err != nil {
		return nil, err
	}
	for i, p := range h.Payloads {
		if p.Omitted {
			continue
		}
		if err := copyTarget(o.Dir, s, targets[i], w); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// header assembles the header from what the update loop read.
func header(ctx context.Context, rem *dirRemote, repo string, root1 []byte, s *update.Session, targets []*metadata.TargetFiles, o Options) (*pb.Header, error) {
	h := &pb.Header{Repository: repo}
	tm := s.Metadata()
	roots := append([][]byte{root1}, s.NewRoots()...)
	for i, b := range roots {
		v := int64(i + 1)
		if v <= o.FromRootVersion {
			continue
		}
		m, err := withProof(ctx, rem, "root", v, b)
		if err != nil {
			return nil, err
		}
		h.Roots = append(h.Roots, m)
	}
	for _, name := range rem.log {
		if name == "timestamp.json" {
			h.Timestamp = rem.files[name]
		}
		if strings.HasSuffix(name, ".snapshot.json") {
			h.Snapshot = &pb.Metadata{Role: "snapshot", Version: uint64(tm.Snapshot.Signed.Version), Content: rem.files[name]}
		}
	}
	for _, role := range rem.roles {
		md := tm.Targets[role]
		m, err := withProof(ctx, rem, role, md.Signed.Version, s.Roles()[role])
		if err != nil {
			return nil, err
		}
		h.Targets = append(h.Targets, m)
	}
	omit := map[string]bool{}
	for _, x := range o.OmitSHA256 {
		omit[strings.ToLower(x)] = true
	}
	for _, t := range targets {
		sum := t.Hashes["sha256"]
		if len(sum) != 32 {
			return nil, fmt.Errorf("target %s has no sha256", t.Path)
		}
		h.Payloads = append(h.Payloads, &pb.Payload{TargetPath: t.Path, Length: uint64(t.Length), Sha256: sum, Omitted: omit[hex.EncodeToString(sum)]})
	}
	so, err := signoffs(o.Dir, h.Payloads)
	if err != nil {
		return nil, err
	}
	h.Signoffs = so
	return h, nil
}

// signoffs reads the sign-off evidence the repository serves for the
// payloads' digests (metadata/signoff/<sha256 hex>.json, written by
// shiplog repo attestations pull), checked as a device parses it, in
// ascending subject order. A digest without a file carries none.
func signoffs(dir string, payloads []*pb.Payload) ([]*pb.Signoff, error) {
	seen := map[string]bool{}
	var out []*pb.Signoff
	for _, p := range payloads {
		name := hex.EncodeToString(p.Sha256)
		if seen[name] {
			continue
		}
		seen[name] = true
		b, err := readLimited(filepath.Join(dir, "metadata", "signoff", name+".json"), signoff.MaxEvidenceSize)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		e, err := signoff.ParseEvidence(b)
		if err != nil || hex.EncodeToString(e.Subject[:]) != name {
			return nil, fmt.Errorf("metadata/signoff/%s.json: not the evidence file of that digest: %v", name, err)
		}
		out = append(out, &pb.Signoff{Subject: p.Sha256, Evidence: b})
	}
	slices.SortFunc(out, func(a, b *pb.Signoff) int { return bytes.Compare(a.Subject, b.Subject) })
	return out, nil
}

func withProof(ctx context.Context, rem *dirRemote, role string, version int64, content []byte) (*pb.Metadata, error) {
	name := strconv.FormatInt(version, 10) + "." + role + ".json"
	if role != "root" {
		name = update.RoleFileName(role, version)
	}
	p, err := rem.Metadata(ctx, name+".tlog-proof", proof.MaxSize)
	if err == nil {
		return &pb.Metadata{Role: role, Version: uint64(version), Content: content, TlogProof: p}, nil
	}
	// A role logged in a Rekor log carries its Sigstore bundle instead.
	sb, serr := rem.Metadata(ctx, name+update.SigstoreSuffix, sigstore.MaxBundleSize)
	if serr != nil {
		return nil, fmt.Errorf("%s is not logged (run shiplog publish first): %w", name, err)
	}
	return &pb.Metadata{Role: role, Version: uint64(version), Content: content, SigstoreBundle: sb}, nil
}

// copyTarget streams a target file into w, checking it as it goes.
func copyTarget(dir string, s *update.Session, t *metadata.TargetFiles, w io.Writer) error {
	f, err := os.Open(filepath.Join(dir, "targets", filepath.FromSlash(update.TargetFileName(t, true))))
	if err != nil {
		return fmt.Errorf("couldn't open target %s: %w", t.Path, err)
	}
	defer f.Close()
	if err := update.VerifyReader(t, w, f); err != nil {
		return fmt.Errorf("repository file of %s: %w", t.Path, err)
	}
	return nil
}

// dirRemote reads a repository directory and records the metadata read.
type dirRemote struct {
	dir   string
	files map[string][]byte
	log   []string // metadata names read, in order
	roles []string // targets roles read, in order
}

func (r *dirRemote) Metadata(ctx context.Context, name string, max int64) ([]byte, error) {
	if strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") {
		return nil, fmt.Errorf("bad metadata name %q", name)
	}
	b, err := readLimited(filepath.Join(r.dir, "metadata", name), max)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", name, update.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if r.files == nil {
		r.files = map[string][]byte{}
	}
	r.files[name] = b
	r.log = append(r.log, name)
	if role, ok := roleOf(name); ok {
		r.roles = append(r.roles, role)
	}
	return b, nil
}

// roleOf returns the targets role of a "<v>.<role>.json" name.
func roleOf(name string) (string, bool) {
	base, ok := strings.CutSuffix(name, ".json")
	if !ok || strings.HasSuffix(name, update.SigstoreSuffix) {
		return "", false
	}
	_, role, ok := strings.Cut(base, ".")
	if !ok || role == "root" || role == "snapshot" || role == "timestamp" {
		return "", false
	}
	r, err := update.UnescapeRole(role)
	return r, err == nil
}

func (r *dirRemote) Target(ctx context.Context, ref update.TargetRef) (io.ReadCloser, error) {
	return os.Open(filepath.Join(r.dir, "targets", filepath.FromSlash(ref.Name)))
}

func readLimited(path string, max int64) ([]byte, error) {
	return capped.ReadFile(path, max)
}
