package repo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/shiplog/shiplog/client/sigstore"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/durable"
	"github.com/shiplog/shiplog/repo/keys"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// SigstoreSuffix is the suffix of the Sigstore bundle written beside a
// metadata file logged in a Rekor log: <version>.<role>.json.sigstore.json.
const SigstoreSuffix = ".sigstore.json"

// RekorSubmitter logs metadata in a Rekor log (package repo/rekor).
// Submit signs body, the exact bytes of a metadata file, with key, submits
// a hashedrekord entry, waits for its inclusion proof and returns the
// Sigstore bundle (sigstore.ParseBundle's format). It verifies nothing:
// PublishRekor does, under the policy, before it writes anything. Submit
// must be idempotent: resubmitting logged bytes returns the existing entry.
type RekorSubmitter interface {
	Submit(ctx context.Context, body []byte, key *keys.Private) ([]byte, error)
}

// RekorOptions configures PublishRekor.
type RekorOptions struct {
	// Policy must name the Rekor log (and any witness quorum); nil means
	// the config's "policy" file.
	Policy *policy.Policy
	// Keys are the role keys available to sign entries: each role is
	// signed by one of these that the role lists.
	Keys []*keys.Private
	// SnapshotKey and TimestampKey, when both set, expose what was logged.
	SnapshotKey, TimestampKey *keys.Private
	// MoreSnapshotKeys and MoreTimestampKeys: as in PublishOptions.
	MoreSnapshotKeys, MoreTimestampKeys []*keys.Private
	// Logger receives progress; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// PublishRekor is Publish for a vendor that logs in a Rekor log instead of
// a shiplog ledger. Every staged root and targets role version whose
// signatures meet their thresholds (root v1 included: there is no
// registration) is, in the safe order: signed as exact bytes with a key its
// role lists (for root vN, a root key of vN-1; for v1, of itself), submitted
// as a hashedrekord, and the returned bundle is verified with
// sigstore.Verify under the policy; then the bundle is written as
// <version>.<role>.json.sigstore.json and only then the metadata file. With
// both online keys it then exposes them as Publish does, after checking
// every listed role's evidence (a tlog-proof or a Sigstore bundle).
func PublishRekor(ctx context.Context, dir string, rk RekorSubmitter, o RekorOptions) (*PublishResult, error) {
	r, err := open(dir, nowOr(o.Now))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	p := o.Policy
	if p == nil {
		if r.Config.Policy == "" {
			return nil, errors.New("no tlog-policy naming the Rekor log: pass --policy FILE or set \"policy\" in " + ConfigFile + "; bundles are never written unverified")
		}
		path := r.Config.Policy
		if !filepath.IsAbs(path) {
			path = filepath.Join(r.Dir, path)
		}
		if p, err = LoadPolicy(path); err != nil {
			return nil, err
		}
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ready, pending, err := r.readySet()
	if err != nil {
		return nil, err
	}
	res := &PublishResult{Logged: []LoggedEntry{}, Pending: pending}
	for _, role := range r.stagedRoles() {
		if !ready[role] {
			continue
		}
		le, err := r.publishRekorRole(ctx, rk, p, o.Keys, role)
		if err != nil {
			return res, errors.Join(err, r.saveStaging())
		}
		log.Info("logged in Rekor", "role", le.Role, "version", le.Version, "index", le.Index)
		res.Logged = append(res.Logged, *le)
	}
	if err := r.saveStaging(); err != nil {
		return res, err
	}
	if o.SnapshotKey == nil || o.TimestampKey == nil {
		res.NotExposed = "no --snapshot-key and --timestamp-key: logged versions are not exposed to clients yet; run publish again with both keys"
		return res, nil
	}
	if r.root == nil {
		return res, errors.New("root v1 is not logged yet: sign it and publish again")
	}
	if res.Exposed, err = r.expose(p, append([]*keys.Private{o.SnapshotKey}, o.MoreSnapshotKeys...), append([]*keys.Private{o.TimestampKey}, o.MoreTimestampKeys...)); err != nil {
		return res, err
	}
	return res, nil
}

// publishRekorRole logs one ready staged role in Rekor and commits it.
func (r *Repo) publishRekorRole(ctx context.Context, rk RekorSubmitter, p *policy.Policy, ks []*keys.Private, role string) (*LoggedEntry, error) {
	version, _, _ := r.stagedInfo(role)
	body, err := r.stagedBytes(role)
	if err != nil {
		return nil, err
	}
	le := &LoggedEntry{Role: role, Version: version, ProofFile: r.sigstorePath(version, role)}
	if done, err := r.alreadyCommitted(role, version, body); done || err != nil {
		if err == nil {
			r.dropStaged(role)
		}
		return le, err
	}
	roleKeys, err := r.entryKeys(role, version, r.staged.Root)
	if err != nil {
		return nil, err
	}
	k := pickKey(ks, roleKeys)
	if k == nil {
		return nil, fmt.Errorf("no --key given is a key %s v%d may be logged with (one of %s)", role, version, describeIDs(roleKeys))
	}
	bundle, err := rk.Submit(ctx, body, k)
	if err != nil {
		return nil, fmt.Errorf("couldn't log %s v%d in Rekor: %w", role, version, err)
	}
	ev, err := sigstore.Verify(bundle, body, roleKeys, p)
	if err != nil {
		return nil, fmt.Errorf("the Rekor bundle for %s v%d does not verify under the policy, not written: %w", role, version, err)
	}
	if err := r.commitEvidence(r.sigstorePath(version, role), bundle, role, version, body); err != nil {
		return nil, err
	}
	le.Index = uint64(ev.LogIndex)
	return le, nil
}

// entryKeys returns the keys a Rekor entry of version of role may be signed
// with: for root vN the root keys of vN-1 (v1: of itself, staged when not
// committed yet), for targets the targets keys of the committed root, for a
// delegated role the keys its committed delegator gives it. These are the
// keys the device checks against.
func (r *Repo) entryKeys(role string, version int64, stagedRoot *metadata.Metadata[metadata.RootType]) (map[string]*metadata.Key, error) {
	if role == "root" {
		// The root that lists the keys: vN-1 for vN, v1 itself for v1.
		at := max(version-1, 1)
		m := stagedRoot
		if int64(len(r.roots)) >= at {
			var err error
			if m, err = new(metadata.Metadata[metadata.RootType]).FromBytes(r.roots[at-1]); err != nil {
				return nil, err
			}
		} else if version != 1 || m == nil {
			return nil, fmt.Errorf("root v%d: no previous root", version)
		}
		return listed(rootKeysFor(m, "root")), nil
	}
	if r.root == nil {
		return nil, errors.New("no committed root")
	}
	if role == "targets" {
		return listed(rootKeysFor(r.root, "targets")), nil
	}
	dels, err := r.committedView().delegators()
	if err != nil {
		return nil, err
	}
	parent, ok := dels[role]
	if !ok || r.roles[parent] == nil {
		return nil, fmt.Errorf("role %s is not delegated by a committed role", role)
	}
	return listed(targetsKeysFor(r.roles[parent].Meta, role)), nil
}

func listed(ks map[string]*metadata.Key, ids []string, _ int) map[string]*metadata.Key {
	out := map[string]*metadata.Key{}
	for _, id := range ids {
		if k := ks[id]; k != nil {
			out[id] = k
		}
	}
	return out
}

func pickKey(ks []*keys.Private, allowed map[string]*metadata.Key) *keys.Private {
	for _, k := range ks {
		if allowed[k.ID] != nil {
			return k
		}
	}
	return nil
}

func describeIDs(ks map[string]*metadata.Key) string {
	ids := make([]string, 0, len(ks))
	for id := range ks {
		ids = append(ids, short(id))
	}
	slices.Sort(ids)
	return fmt.Sprint(ids)
}

// sigstorePath is the Sigstore bundle file beside a metadata file.
func (r *Repo) sigstorePath(version int64, role string) string {
	return r.metaPath(version, role) + SigstoreSuffix
}

// commitEvidence writes the verified evidence (a tlog-proof or a Sigstore
// bundle) at path, then the metadata file (and root.json), then drops the
// role from staging: a crash at any point leaves no exposed file without its
// evidence, and a rerun resumes.
func (r *Repo) commitEvidence(path string, ev []byte, role string, version int64, body []byte) error {
	if err := durable.WriteFile(path, ev, 0o644); err != nil {
		return err
	}
	if err := durable.WriteFile(r.metaPath(version, role), body, 0o644); err != nil {
		return err
	}
	if role == "root" {
		if err := durable.WriteFile(filepath.Join(r.Dir, MetadataDir, "root.json"), body, 0o644); err != nil {
			return err
		}
		r.roots = append(r.roots, body)
		r.root = r.staged.Root
	} else {
		m, err := new(metadata.Metadata[metadata.TargetsType]).FromBytes(body)
		if err != nil {
			return err
		}
		r.roles[role] = &committed{Version: version, Bytes: body, Meta: m}
	}
	r.dropStaged(role)
	return nil
}

// checkSigstore verifies the Sigstore bundle beside version of role (exact
// bytes b) under p, against the keys the committed metadata gives the role.
// It reports found=false when there is no bundle.
func (r *Repo) checkSigstore(role string, version int64, b []byte, p *policy.Policy) (found bool, err error) {
	bundle, err := readLimited(r.sigstorePath(version, role), sigstore.MaxBundleSize)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	ks, err := r.entryKeys(role, version, nil)
	if err != nil {
		return true, err
	}
	if _, err := sigstore.Verify(bundle, b, ks, p); err != nil {
		return true, fmt.Errorf("Sigstore bundle of %s v%d does not verify under the policy: %w", role, version, err)
	}
	return true, nil
}
