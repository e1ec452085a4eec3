package rekor

import (
	"crypto"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"

	"github.com/shiplog/shiplog/internal/capped"

	"github.com/shiplog/shiplog/audit/alert"
	"github.com/shiplog/shiplog/client/sigstore"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Limits of VendorFromRepoDir.
const (
	maxMetadataFiles = 1 << 20
	maxMetadataSize  = 5 << 20 // go-tuf's targets cap
)

// Vendor is what vendor mode knows of the vendor: its TUF keys (an entry
// signed by one of them is the vendor's) and the digests of every metadata
// file it made (the releases it expects to find). It is immutable and safe
// for concurrent use.
type Vendor struct {
	Repository string
	keys       []vendorKey
	expected   map[string]string // hex SHA-256 or SHA-512 -> file name
}

type vendorKey struct {
	id  string
	pub interface{ Equal(crypto.PublicKey) bool }
}

var metaFile = regexp.MustCompile(`^[1-9][0-9]{0,18}\.[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.json$`)

// VendorFromRepoDir reads a vendor repository directory (repo's layout):
// every <version>.<role>.json in DIR/metadata is a release the vendor made,
// and every key listed in its roots and delegations is the vendor's.
func VendorFromRepoDir(dir string) (*Vendor, error) {
	names, err := filepath.Glob(filepath.Join(dir, "metadata", "*.json"))
	if err != nil {
		return nil, err
	}
	if len(names) > maxMetadataFiles {
		return nil, fmt.Errorf("more than %d metadata files", maxMetadataFiles)
	}
	v := &Vendor{expected: map[string]string{}}
	if cfg, err := readCapped(filepath.Join(dir, "shiplog-repo.json"), 1<<20); err == nil {
		var rc struct {
			Repository string `json:"repository"`
		}
		if json.Unmarshal(cfg, &rc) == nil {
			v.Repository = rc.Repository
		}
	}
	seen := map[string]bool{}
	for _, n := range names {
		base := filepath.Base(n)
		if !metaFile.MatchString(base) {
			continue // timestamp.json, root.json: copies or not releases
		}
		b, err := readCapped(n, maxMetadataSize)
		if err != nil {
			return nil, err
		}
		s256, s512 := digests(b)
		v.expected[s256], v.expected[s512] = base, base
		ks, err := listedKeys(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		for id, k := range ks {
			if seen[id] {
				continue
			}
			pub, err := k.ToPublicKey()
			if err != nil {
				continue // a key type no hashedrekord can carry
			}
			if eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); ok {
				seen[id] = true
				v.keys = append(v.keys, vendorKey{id, eq})
			}
		}
	}
	if len(v.keys) == 0 {
		return nil, fmt.Errorf("%s holds no metadata with keys: not a shiplog repository?", dir)
	}
	return v, nil
}

// listedKeys returns the keys a root or targets metadata file lists.
func listedKeys(b []byte) (map[string]*metadata.Key, error) {
	var head struct {
		Signed struct {
			Type string `json:"_type"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, err
	}
	switch head.Signed.Type {
	case metadata.ROOT:
		m, err := new(metadata.Metadata[metadata.RootType]).FromBytes(b)
		if err != nil {
			return nil, err
		}
		return m.Signed.Keys, nil
	case metadata.TARGETS:
		m, err := new(metadata.Metadata[metadata.TargetsType]).FromBytes(b)
		if err != nil {
			return nil, err
		}
		if m.Signed.Delegations == nil {
			return nil, nil
		}
		return m.Signed.Delegations.Keys, nil
	}
	return nil, nil // snapshot: lists no keys
}

// check reports whether entry body is the vendor's (a hashedrekord signed
// by one of its keys) and, if so, whether it logs a metadata file the
// vendor made; f is the finding when it does not.
func (v *Vendor) check(body []byte) (f alert.Finding, mine, expected bool) {
	h, err := sigstore.ParseHashedRekord(body)
	if err != nil {
		return alert.Finding{}, false, false // another kind, or not ours to judge
	}
	var id string
	for _, k := range v.keys {
		if k.pub.Equal(h.PublicKey) {
			id = k.id
			break
		}
	}
	if id == "" {
		return alert.Finding{}, false, false
	}
	d := fmt.Sprintf("%x", h.Digest)
	if _, ok := v.expected[d]; ok {
		return alert.Finding{}, true, true
	}
	return alert.Finding{
		Severity: alert.Critical, Kind: alert.KindUnexpected, Repo: v.Repository,
		Message:  "the Rekor log holds an entry signed by the vendor's key for bytes the vendor never released (stolen or misused key?)",
		Evidence: map[string]string{"key_id": id, "digest": d, "entry": string(body)},
	}, true, false
}

func readCapped(path string, max int64) ([]byte, error) {
	return capped.ReadFile(path, max)
}
