package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shiplog/shiplog/internal/capped"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/audit/replay"
)

// Limits of vendor mode's inputs.
const (
	maxExpectedFile   = 64 << 20 // a hash file: about a million hashes
	maxRepoConfigFile = 1 << 20
	maxMetadataFiles  = 1 << 20
)

// Expected is the set of releases a vendor actually made: the SHA-256 of
// every metadata file it signed, for its repositories. It is safe for
// concurrent use. With WithReload, a release not in the set makes it re-read
// its source before the release is reported, since the vendor keeps releasing
// while the auditor runs.
type Expected struct {
	// Repos are the vendor's repository ids; releases of other
	// repositories are not checked.
	Repos map[string]bool

	mu     sync.Mutex // guards hashes
	hashes map[[sha256.Size]byte]bool
	reload func() (*Expected, error)
	grace  time.Duration
}

// WithReload makes e re-read its source with load when a release is not in
// it, retrying for up to grace: the vendor writes a release's metadata file
// only after the ledger returned its proof, so an auditor can see the entry a
// moment before the file exists. A release still unknown after grace is
// reported. It returns e.
func (e *Expected) WithReload(load func() (*Expected, error), grace time.Duration) *Expected {
	e.reload, e.grace = load, grace
	return e
}

// has reports whether sum is in the set, re-reading the source as
// WithReload says.
func (e *Expected) has(sum [sha256.Size]byte) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.hashes[sum] {
		return true
	}
	if e.reload == nil {
		return false
	}
	deadline := time.Now().Add(e.grace)
	for {
		if fresh, err := e.reload(); err == nil {
			e.hashes = fresh.hashes
			if e.hashes[sum] {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// RepoList returns the vendor's repository ids, sorted.
func (e *Expected) RepoList() []string {
	out := make([]string, 0, len(e.Repos))
	for r := range e.Repos {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// Made reports whether the vendor made the metadata file with SHA-256 sum
// (re-reading the source as WithReload says): the check vendor mode applies
// to every release, which a reviewer applies before signing off
// (shiplog attest review --vendor-dir).
func (e *Expected) Made(sum [sha256.Size]byte) bool { return e.has(sum) }

// Len returns the number of expected metadata hashes.
func (e *Expected) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.hashes)
}

// ParseExpectedHashes parses a file of expected hashes: one lowercase hex
// SHA-256 per line; '#' starts a comment; blank lines are ignored.
func ParseExpectedHashes(b []byte, repos ...string) (*Expected, error) {
	if len(b) > maxExpectedFile {
		return nil, errors.New("expected-hashes file too large")
	}
	e := &Expected{Repos: map[string]bool{}, hashes: map[[sha256.Size]byte]bool{}}
	for _, r := range repos {
		e.Repos[r] = true
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		raw, err := hex.DecodeString(line)
		if err != nil || len(raw) != sha256.Size || strings.ToLower(line) != line {
			return nil, fmt.Errorf("expected-hashes line %d: want one lowercase hex SHA-256", n)
		}
		e.hashes[[sha256.Size]byte(raw)] = true
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return e, nil
}

// ExpectedFromRepoDir builds the expected set from a vendor repository
// directory: DIR/shiplog-repo.json names the repository ({"repository":
// "<id>", ...}) and every file in DIR/metadata named <v>.<role>.json is a
// release the vendor made.
func ExpectedFromRepoDir(dir string) (*Expected, error) {
	cfg, err := readCapped(filepath.Join(dir, "shiplog-repo.json"), maxRepoConfigFile)
	if err != nil {
		return nil, err
	}
	var rc struct {
		Repository string `json:"repository"`
	}
	if err := json.Unmarshal(cfg, &rc); err != nil || rc.Repository == "" {
		return nil, fmt.Errorf("%s: want a JSON object with a \"repository\" id", filepath.Join(dir, "shiplog-repo.json"))
	}
	e := &Expected{Repos: map[string]bool{rc.Repository: true}, hashes: map[[sha256.Size]byte]bool{}}
	names, err := filepath.Glob(filepath.Join(dir, "metadata", "*.json"))
	if err != nil {
		return nil, err
	}
	if len(names) > maxMetadataFiles {
		return nil, fmt.Errorf("more than %d metadata files", maxMetadataFiles)
	}
	for _, n := range names {
		base := filepath.Base(n)
		if v, _, ok := strings.Cut(base, "."); !ok || v == "" || strings.Trim(v, "0123456789") != "" {
			continue // unversioned copies (timestamp.json) are not releases
		}
		b, err := readCapped(n, maxMetadataSize)
		if err != nil {
			return nil, err
		}
		e.hashes[sha256.Sum256(b)] = true
	}
	return e, nil
}

func readCapped(path string, max int64) ([]byte, error) {
	return capped.ReadFile(path, max)
}

// check reports a release of the vendor's repositories that it did not make.
func (e *Expected) check(r *replay.Release) (alert.Finding, bool) {
	if !e.Repos[r.Repo] {
		return alert.Finding{}, false
	}
	raw, err := hex.DecodeString(r.SHA256)
	if err == nil && len(raw) == sha256.Size && e.has([sha256.Size]byte(raw)) {
		return alert.Finding{}, false
	}
	return alert.Finding{Severity: alert.Critical, Kind: alert.KindUnexpected, Index: alert.At(r.Index),
		Repo: r.Repo, Role: r.Role, Version: r.Version,
		Message:  "the log holds a release of this repository that the vendor did not make (stolen or misused key?)",
		Evidence: map[string]string{"sha256": r.SHA256}}, true
}
