package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/shiplog/shiplog/client/ledger"
	"github.com/shiplog/shiplog/client/update"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/evidence/provenance"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Repository is how an attester reads a release: the way a device does,
// from a trusted root, with every targets role proven in the log under
// Policy (client/update's transparency gate).
type Repository struct {
	// ID is the repository id as logged. Required.
	ID string
	// MetadataURL and TargetsURL are the repository's bases (a file://
	// URL reads a local directory). Required.
	MetadataURL, TargetsURL string
	// Root is the trusted root metadata (any version of the repository's
	// chain; newer ones are fetched and checked). Required.
	Root []byte
	// Policy is the C2SP tlog-policy proofs must satisfy. Required.
	Policy *policy.Policy
	// Ledger is the ledger's base URL, optional: proofs and consistency
	// proofs are then also asked of it.
	Ledger string
	// HTTP is the client for the repository and the ledger; nil means
	// update.NewHTTPClient() (with file:// served from the file system).
	HTTP *http.Client
	// Time is the reference time for expiry; zero means now.
	Time   time.Time
	Logger *slog.Logger
}

// Release is one target of verified targets metadata.
type Release struct {
	// Target is the target path, SHA256 the digest of its bytes.
	Target string
	SHA256 [sha256.Size]byte
	Length int64
	// Role and Version name the targets role and version listing it.
	Role    string
	Version int64
	// RoleSHA256 is the SHA-256 of that role version's exact bytes, as
	// logged (an auditor's vendor mode compares it with what the vendor made).
	RoleSHA256 [sha256.Size]byte
	// Provenance is the declaration in the target's custom metadata, nil
	// when there is none; ProvenanceJSON its exact bytes.
	Provenance     *provenance.Provenance
	ProvenanceJSON json.RawMessage
}

// ErrNoTarget means the verified metadata lists no such target.
var ErrNoTarget = errors.New("no such target in the repository's verified targets metadata")

// FindRelease refreshes r's metadata as a device would (TUF 1.0 §5.3–5.6
// with the transparency gate) and returns the target named by path, or,
// when path is empty, the one whose SHA-256 is sha256Hex. Nothing is read
// from unverified metadata.
func FindRelease(ctx context.Context, r Repository, path, sha256Hex string) (*Release, error) {
	if r.ID == "" || r.Root == nil || r.Policy == nil || r.MetadataURL == "" {
		return nil, errors.New("reading a release needs the repository id, its URL, a trusted root and a tlog-policy")
	}
	hc := r.HTTP
	if hc == nil {
		hc = update.NewHTTPClient()
		hc.Transport.(*http.Transport).RegisterProtocol("file", http.NewFileTransport(http.Dir("/")))
	}
	g := &update.Gate{Policy: r.Policy, Repository: r.ID}
	if r.Ledger != "" {
		g.Ledger = &ledger.Client{URL: r.Ledger, HTTP: &http.Client{Transport: hc.Transport, Timeout: 30 * time.Second}}
	}
	c := &update.Client{Remote: &update.HTTPRemote{MetadataURL: r.MetadataURL, TargetsURL: r.TargetsURL, Client: hc},
		Gate: g, Time: r.Time, Logger: r.Logger}
	sess, err := c.Refresh(ctx, update.Trusted{Root: r.Root})
	if err != nil {
		return nil, fmt.Errorf("couldn't verify the repository's metadata: %w", err)
	}
	var tf *metadata.TargetFiles
	if path != "" {
		if tf, err = sess.Target(ctx, path); err != nil {
			if errors.Is(err, update.ErrTargetNotFound) {
				return nil, fmt.Errorf("%w: %s", ErrNoTarget, path)
			}
			return nil, err
		}
	} else if tf, err = byDigest(ctx, sess, sha256Hex); err != nil {
		return nil, err
	}
	return releaseOf(sess, tf)
}

// byDigest finds the target with that SHA-256 (the first path in order).
func byDigest(ctx context.Context, sess *update.Session, want string) (*metadata.TargetFiles, error) {
	all, err := sess.AllTargets(ctx)
	if err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(all))
	for p := range all {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if all[p].Hashes["sha256"].String() == want {
			return all[p], nil
		}
	}
	return nil, fmt.Errorf("%w with sha256 %s", ErrNoTarget, want)
}

func releaseOf(sess *update.Session, tf *metadata.TargetFiles) (*Release, error) {
	h := tf.Hashes["sha256"]
	if len(h) != sha256.Size {
		return nil, fmt.Errorf("target %s lists no sha256", tf.Path)
	}
	rel := &Release{Target: tf.Path, Length: tf.Length}
	copy(rel.SHA256[:], h)
	roles := sess.Metadata().Targets
	names := make([]string, 0, len(roles))
	for n := range roles {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { // the top-level role first
		if (names[i] == metadata.TARGETS) != (names[j] == metadata.TARGETS) {
			return names[i] == metadata.TARGETS
		}
		return names[i] < names[j]
	})
	for _, n := range names {
		if t, ok := roles[n].Signed.Targets[tf.Path]; ok && hex.EncodeToString(t.Hashes["sha256"]) == hex.EncodeToString(h) {
			rel.Role, rel.Version = n, roles[n].Signed.Version
			rel.RoleSHA256 = sha256.Sum256(sess.Roles()[n])
			break
		}
	}
	if tf.Custom != nil {
		p, raw, err := provenance.FromCustom(*tf.Custom)
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", tf.Path, err)
		}
		rel.Provenance, rel.ProvenanceJSON = p, raw
	}
	return rel, nil
}
