package repo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"time"

	"github.com/shiplog/shiplog/client/tufcheck"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// loggedRoleTimeout bounds one question to the ledger while staging.
const loggedRoleTimeout = 10 * time.Second

// LoggedLookup returns the exact bytes of the latest logged metadata of a
// role of this repository (nil, nil when the ledger logged none).
type LoggedLookup func(role string) ([]byte, error)

// AskLedger makes staging ask the ledger at base (the config's ledger when
// empty) for the latest logged version of each role it stages: the
// ledger's record (GET /v1/repositories/<id>/roles/<role>), then the
// metadata it commits to (GET /metadata/<sha256>), checked against the
// record's sha256. Without a ledger URL staging uses local metadata only.
// One attempt per question, at most 10 s: a ledger that does not answer
// leaves a warning in Warnings and the local versions.
func (r *Repo) AskLedger(base string, hc *http.Client) error {
	if base == "" {
		base = r.Config.Ledger
	}
	if base == "" {
		return nil
	}
	c, err := newLedgerClient(base, hc, nil, 0)
	if err != nil {
		return err
	}
	r.Logged = func(role string) ([]byte, error) { return c.latest(r.Config.Repository, role) }
	return nil
}

// latest fetches the latest logged metadata of role, nil when none.
func (c *ledgerClient) latest(repoID, role string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), loggedRoleTimeout)
	defer cancel()
	get := func(path, rawPath string, max int64) ([]byte, error) {
		u := *c.base
		u.RawPath = u.EscapedPath() + rawPath
		u.Path += path
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, err
		}
		b, _, err := c.once(req, "read "+role, max)
		return b, err
	}
	b, err := get("/v1/repositories/"+repoID+"/roles/"+role, "/v1/repositories/"+url.PathEscape(repoID)+"/roles/"+url.PathEscape(role), maxErrorSize)
	var le *LedgerError
	if errors.As(err, &le) && le.Status == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sum, err := parseRoleRecord(b)
	if err != nil {
		return nil, fmt.Errorf("malformed ledger record of %s: %w", role, err)
	}
	md, err := get("/metadata/"+sum, "/metadata/"+sum, MaxMetadataUpload)
	if err != nil {
		return nil, err
	}
	if got := sha256.Sum256(md); hex.EncodeToString(got[:]) != sum {
		return nil, fmt.Errorf("the ledger served metadata for %s that does not match its record", role)
	}
	return md, nil
}

// parseRoleRecord reads the ledger's role record (docs/spec/ledger-api.md:
// {"version": V, "sha256": "<hex>", "index": N}, at most 4 KiB) and
// returns its sha256: 64 lowercase hex digits, or an error.
func parseRoleRecord(b []byte) (string, error) {
	if len(b) > maxErrorSize {
		return "", errors.New("record too large")
	}
	var rec struct {
		Version uint64 `json:"version"`
		SHA256  string `json:"sha256"`
		Index   uint64 `json:"index"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return "", errors.New("not the JSON record")
	}
	sum, err := hex.DecodeString(rec.SHA256)
	if err != nil || len(sum) != sha256.Size || hex.EncodeToString(sum) != rec.SHA256 || rec.Version < 1 {
		return "", errors.New("bad sha256 or version")
	}
	return rec.SHA256, nil
}

// logged is what the ledger says of a role: the version of its latest
// logged metadata, and whether that metadata still meets the role's keys
// in the working view (staged root and delegators included), that is,
// whether it still binds the next version (docs/spec/versions.md).
type logged struct {
	version int64
	binds   bool
}

// loggedRole asks r.Logged about role once per Repo; nil without an answer.
func (r *Repo) loggedRole(role string) (*logged, error) {
	if r.Logged == nil {
		return nil, nil
	}
	if r.loggedCache == nil {
		r.loggedCache = map[string]*logged{}
	}
	if l, ok := r.loggedCache[role]; ok {
		return l, nil
	}
	b, err := r.Logged(role)
	if err != nil {
		r.Warnings = append(r.Warnings, fmt.Sprintf("couldn't ask the ledger for the latest logged %s (%v): staged from local versions only", role, err))
		r.loggedCache[role] = nil
		return nil, nil
	}
	var l *logged
	if b != nil {
		t, err := metadata.Targets().FromBytes(b)
		if err != nil {
			return nil, fmt.Errorf("couldn't parse the ledger's latest %s: %w", role, err)
		}
		l = &logged{version: t.Signed.Version, binds: r.binds(role, t)}
	}
	r.loggedCache[role] = l
	return l, nil
}

// binds applies the ledger's rule (tufcheck.TargetsFloor) with the working
// view's keys for role.
func (r *Repo) binds(role string, t *metadata.Metadata[metadata.TargetsType]) bool {
	w := r.working()
	if role == metadata.TARGETS {
		root := w.rootMeta()
		return root != nil && tufcheck.TargetsFloor(root, t) > 0
	}
	ds, err := w.delegators()
	if err != nil {
		return true
	}
	d := w.targets(ds[role])
	return d == nil || tufcheck.DelegatedFloor(d, role, t) > 0
}

// placeVersion gives m, the staged version of targets role role (fresh:
// just created from the committed version), its version.
//
// With r.Version set, that version, refused unless it is above the local
// committed version and above the ledger's latest while that still binds.
// Otherwise m keeps its version if it is above every version known (local,
// staged, logged) or becomes one more than the highest known. When the
// highest known is 2^63−1 there is no such version: if the ledger's
// latest still binds the error says to rotate the role's keys; if it no
// longer does (the rotation is staged), an already staged version above
// the local ones stands, and a fresh one must be chosen with --version,
// since the ledger names only its latest version and a thief may have
// logged others below it (docs/spec/versions.md).
func (r *Repo) placeVersion(role string, m *metadata.Metadata[metadata.TargetsType], fresh bool) error {
	var local int64
	if c := r.roles[role]; c != nil {
		local = c.Version
	}
	l, err := r.loggedRole(role)
	if err != nil {
		return err
	}
	if r.Version != 0 {
		return r.placeExplicit(role, m, local, l)
	}
	top := local
	if l != nil && l.version > top {
		top = l.version
	}
	if top < math.MaxInt64 {
		if m.Signed.Version <= top {
			m.Signed.Version = top + 1
		}
		return nil
	}
	switch {
	case l == nil || l.binds:
		return fmt.Errorf("%s v%d, the largest version there is, is logged and still signed by the role's current keys: rotate the role's keys (`shiplog repo rotate --role %s`) to start a new version sequence, and stage it with --version N (docs/spec/versions.md)", role, top, role)
	case fresh || m.Signed.Version <= local:
		return fmt.Errorf("the ledger's latest %s is v%d, the largest version there is, signed by keys the role no longer has, so a new version sequence starts: choose its first version with --version N, above every version of %s that the auditor reported (a thief may have logged some below v%d; docs/spec/versions.md)", role, top, role, top)
	}
	return nil
}

func (r *Repo) placeExplicit(role string, m *metadata.Metadata[metadata.TargetsType], local int64, l *logged) error {
	n := r.Version
	if n < 1 {
		return fmt.Errorf("--version %d: versions start at 1", n)
	}
	if n <= local {
		return fmt.Errorf("--version %d is not above %s v%d, committed in this repository", n, role, local)
	}
	if l != nil && l.binds && n <= l.version {
		return fmt.Errorf("--version %d is not above %s v%d, the latest version the ledger logged, which the role's current keys still sign: choose a higher version, or rotate the role's keys (`shiplog repo rotate`) to start a new version sequence (docs/spec/versions.md)", n, role, l.version)
	}
	m.Signed.Version = n
	return nil
}
