package update

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"path"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// ErrTargetMismatch means a target file's length or hash is not what the
// trusted metadata says (TUF §5.7.3: wrong software, endless data).
var ErrTargetMismatch = errors.New("target file does not match its metadata")

// targetRef names the remote file of t: with consistent snapshots
// "<dir>/<hash>.<basename>" (TUF §5.7.3), using the SHA-256 when listed.
func (s *Session) targetRef(t *metadata.TargetFiles) TargetRef {
	name := TargetFileName(t, s.tm.Root.Signed.ConsistentSnapshot)
	return TargetRef{Path: t.Path, Name: escapePath(name), Length: t.Length, SHA256: t.Hashes["sha256"]}
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i := range parts {
		parts[i] = url.PathEscape(parts[i])
	}
	return strings.Join(parts, "/")
}

// targetHasher checks a target stream against its metadata.
type targetHasher struct {
	t      *metadata.TargetFiles
	hashes map[string]hash.Hash
}

// newTargetHasher refuses metadata without a hash, with an unknown hash
// algorithm, or with a negative length, before anything is fetched.
func newTargetHasher(t *metadata.TargetFiles) (*targetHasher, error) {
	if len(t.Hashes) == 0 {
		return nil, fmt.Errorf("target %s: no hashes in metadata", t.Path)
	}
	if t.Length < 0 {
		return nil, fmt.Errorf("target %s: negative length", t.Path)
	}
	h := &targetHasher{t: t, hashes: map[string]hash.Hash{}}
	for alg := range t.Hashes {
		switch alg {
		case "sha256":
			h.hashes[alg] = sha256.New()
		case "sha512":
			h.hashes[alg] = sha512.New()
		default:
			return nil, fmt.Errorf("target %s: unsupported hash algorithm %q", t.Path, alg)
		}
	}
	return h, nil
}

// VerifyReader streams r into w, at most t.Length bytes, and checks length
// and every hash of t. It is how both downloads and files the device already
// holds are checked. On error w may have received unverified bytes.
func VerifyReader(t *metadata.TargetFiles, w io.Writer, r io.Reader) error {
	h, err := newTargetHasher(t)
	if err != nil {
		return err
	}
	return h.copy(w, r)
}

func (h *targetHasher) copy(w io.Writer, r io.Reader) error {
	ws := []io.Writer{w}
	for _, x := range h.hashes {
		ws = append(ws, x)
	}
	n, err := io.Copy(io.MultiWriter(ws...), io.LimitReader(r, h.t.Length+1))
	if err != nil {
		return fmt.Errorf("target %s: %w", h.t.Path, err)
	}
	if n != h.t.Length {
		return fmt.Errorf("%w: %s: length %d, want %d", ErrTargetMismatch, h.t.Path, n, h.t.Length)
	}
	for alg, x := range h.hashes {
		if subtle.ConstantTimeCompare(x.Sum(nil), h.t.Hashes[alg]) != 1 {
			return fmt.Errorf("%w: %s: %s mismatch", ErrTargetMismatch, h.t.Path, alg)
		}
	}
	return nil
}

// RoleFileName is the consistent-snapshot file name of a targets role
// version: "<version>.<URL-escaped role>.json".
func RoleFileName(role string, version int64) string {
	return fmt.Sprintf("%d.%s.json", version, url.PathEscape(role))
}

// UnescapeRole reverses the escaping of a role name in a file name.
func UnescapeRole(s string) (string, error) { return url.PathUnescape(s) }

// TargetFileName is the file name of target t under the targets base URL:
// with consistent snapshots "<dir>/<sha256 hex>.<basename>" (TUF §5.7.3).
func TargetFileName(t *metadata.TargetFiles, consistent bool) string {
	if !consistent {
		return t.Path
	}
	h := t.Hashes["sha256"]
	if h == nil {
		h = t.Hashes["sha512"]
	}
	dir, base := path.Split(t.Path)
	return dir + hex.EncodeToString(h) + "." + base
}
