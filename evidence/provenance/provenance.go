// Package provenance is a target's declared origin, as specified in
// docs/spec/provenance.md: the source it was built from and the recipe that
// builds it, kept in the target's TUF custom metadata (TUF 1.0 §4.5,
// "custom") under the key "provenance":
//
//	{"provenance": {
//	  "source": {"uri": "https://example.com/src/fw-1.4.0.tar.gz", "digest": {"sha256": "9f86…"}},
//	  "revision": "v1.4.0",
//	  "build": {"command": "go build -trimpath -ldflags=-buildid= -o app.bin ./cmd/fw",
//	            "toolchain": "go1.26", "output": "app.bin"}}}
//
// The source is an archive (https:// or file:///, ending in .tar.gz, .tgz,
// .tar or .zip, pinned by the SHA-256 of its bytes) or a git repository
// (git+https:// or git+file:///, pinned by a full commit id in revision).
// Parse is strict: unknown fields, duplicate keys, wrong JSON types and an
// object over MaxSize bytes are refused, so vendors (before staging) and
// rebuilders (before fetching anything) read one declaration one way.
//
// It is pure: no I/O. Nothing here is verified: a Provenance is only worth
// the signature over the targets metadata it was read from.
package provenance

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
	"unicode/utf8"
)

// Key is the custom metadata key holding a target's provenance.
const Key = "provenance"

// Limits of docs/spec/provenance.md.
const (
	// MaxSize bounds the encoded provenance object.
	MaxSize = 8 << 10
	// MaxURILen bounds source.uri.
	MaxURILen = 2048
	// MaxRevisionLen bounds revision.
	MaxRevisionLen = 255
	// MaxCommandLen bounds build.command.
	MaxCommandLen = 4096
	// MaxToolchainLen bounds build.toolchain.
	MaxToolchainLen = 255
	// MaxOutputLen bounds build.output.
	MaxOutputLen = 1024
)

// Kind says how a source is fetched.
type Kind int

// The kinds of source.
const (
	// Archive is a .tar.gz, .tgz, .tar or .zip file fetched by https:// or
	// file:/// and checked against source.digest before it is unpacked.
	Archive Kind = iota + 1
	// Git is a repository cloned by git+https:// or git+file:/// and
	// checked out at the full commit id in revision.
	Git
)

// Provenance is one target's declaration. Fields hold the declared
// values; optional ones are empty when absent.
type Provenance struct {
	Source   Source `json:"source"`
	Revision string `json:"revision,omitempty"`
	Build    Build  `json:"build"`
}

// Source is where the source is.
type Source struct {
	// URI is the archive or repository location, including the git+ prefix.
	URI string `json:"uri"`
	// SHA256 is the lowercase hex SHA-256 of an archive's bytes; empty for git.
	SHA256 string `json:"-"`
}

// MarshalJSON encodes the source with its digest as {"sha256": hex}.
func (s Source) MarshalJSON() ([]byte, error) {
	type digest struct {
		SHA256 string `json:"sha256"`
	}
	type src struct {
		URI    string  `json:"uri"`
		Digest *digest `json:"digest,omitempty"`
	}
	v := src{URI: s.URI}
	if s.SHA256 != "" {
		v.Digest = &digest{s.SHA256}
	}
	return json.Marshal(v)
}

// Build is the recipe.
type Build struct {
	// Command is run by /bin/sh -c in the root of a fresh copy of the source.
	Command string `json:"command"`
	// Toolchain is what the recipe expects (informational), or empty.
	Toolchain string `json:"toolchain,omitempty"`
	// Output is the file the command produces, relative to the source
	// root, or empty for the target path's last element (OutputFor).
	Output string `json:"output,omitempty"`
}

var (
	errTooLarge  = fmt.Errorf("provenance larger than %d bytes", MaxSize)
	errMalformed = errors.New("malformed provenance")
)

// Kind reports the kind of p's source; p must have passed Validate.
func (p *Provenance) Kind() Kind {
	if strings.HasPrefix(p.Source.URI, "git+") {
		return Git
	}
	return Archive
}

// OutputFor is the file a rebuild of the target at targetPath produces:
// build.output, or else targetPath's last element.
func (p *Provenance) OutputFor(targetPath string) string {
	if p.Build.Output != "" {
		return p.Build.Output
	}
	return path.Base(targetPath)
}

// Validate checks every field against docs/spec/provenance.md.
func (p *Provenance) Validate() error {
	if err := checkSource(p.Source, p.Revision); err != nil {
		return err
	}
	if err := checkRevision(p.Revision); err != nil {
		return err
	}
	return checkBuild(p.Build)
}

func checkSource(s Source, revision string) error {
	if s.URI == "" || len(s.URI) > MaxURILen || !printableASCII(s.URI) || strings.ContainsAny(s.URI, " \\") {
		return fmt.Errorf("%w: source.uri must be 1 to %d printable ASCII bytes without spaces", errMalformed, MaxURILen)
	}
	u, err := url.Parse(s.URI)
	if err != nil || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("%w: source.uri must be a URL without credentials, query or fragment", errMalformed)
	}
	if u.Path == "" || path.Clean(u.Path) != u.Path || strings.Contains(u.Path, "/../") {
		return fmt.Errorf("%w: source.uri needs a clean path", errMalformed)
	}
	switch u.Scheme {
	case "https", "git+https":
		if u.Host == "" {
			return fmt.Errorf("%w: source.uri needs a host", errMalformed)
		}
	case "file", "git+file":
		if u.Host != "" || !strings.HasPrefix(s.URI, u.Scheme+":///") {
			return fmt.Errorf("%w: a file source.uri is file:///absolute/path", errMalformed)
		}
	default:
		return fmt.Errorf("%w: source.uri must start with https://, file:///, git+https:// or git+file:///", errMalformed)
	}
	if strings.HasPrefix(u.Scheme, "git+") {
		if s.SHA256 != "" {
			return fmt.Errorf("%w: a git source has no digest: the revision pins it", errMalformed)
		}
		if !isHex(revision, 40) && !isHex(revision, 64) {
			return fmt.Errorf("%w: a git source needs revision, a full commit id (40 or 64 lowercase hex)", errMalformed)
		}
		return nil
	}
	if ArchiveFormat(u.Path) == "" {
		return fmt.Errorf("%w: an archive source.uri ends in .tar.gz, .tgz, .tar or .zip", errMalformed)
	}
	if !isHex(s.SHA256, 64) {
		return fmt.Errorf("%w: an archive source needs digest {\"sha256\": 64 lowercase hex}", errMalformed)
	}
	return nil
}

// ArchiveFormat is the archive format a path's name ends in: "tar.gz"
// (also for .tgz), "tar" or "zip", or "" for none of them.
func ArchiveFormat(p string) string {
	switch {
	case strings.HasSuffix(p, ".tar.gz"), strings.HasSuffix(p, ".tgz"):
		return "tar.gz"
	case strings.HasSuffix(p, ".tar"):
		return "tar"
	case strings.HasSuffix(p, ".zip"):
		return "zip"
	}
	return ""
}

func checkRevision(r string) error {
	if len(r) > MaxRevisionLen || !printableASCII(r) {
		return fmt.Errorf("%w: revision must be at most %d printable ASCII bytes", errMalformed, MaxRevisionLen)
	}
	return nil
}

func checkBuild(b Build) error {
	if b.Command == "" || len(b.Command) > MaxCommandLen || strings.IndexByte(b.Command, 0) >= 0 || !utf8.ValidString(b.Command) {
		return fmt.Errorf("%w: build.command must be 1 to %d bytes of UTF-8 without NUL", errMalformed, MaxCommandLen)
	}
	if len(b.Toolchain) > MaxToolchainLen || !utf8.ValidString(b.Toolchain) || hasControl(b.Toolchain) {
		return fmt.Errorf("%w: build.toolchain must be at most %d bytes of text", errMalformed, MaxToolchainLen)
	}
	if b.Output != "" {
		if err := CheckOutput(b.Output); err != nil {
			return err
		}
	}
	return nil
}

// CheckOutput reports whether o is a clean relative path of printable
// ASCII (no empty, "." or ".." segment, not absolute, no backslash), as
// build.output and a defaulted output must be.
func CheckOutput(o string) error {
	bad := fmt.Errorf("%w: build.output must be a clean relative path inside the source root", errMalformed)
	if o == "" || len(o) > MaxOutputLen || !printableASCII(o) || strings.ContainsAny(o, "\\ ") || o[0] == '/' {
		return bad
	}
	for _, seg := range strings.Split(o, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return bad
		}
	}
	return nil
}

// Parse decodes and validates one provenance object: at most MaxSize
// bytes, exactly the fields of docs/spec/provenance.md with their JSON
// types, no duplicate keys, no trailing data.
func Parse(b []byte) (*Provenance, error) {
	if len(b) > MaxSize {
		return nil, errTooLarge
	}
	top, err := object(b, "source", "revision", "build")
	if err != nil {
		return nil, err
	}
	var p Provenance
	if top["source"] == nil || top["build"] == nil {
		return nil, fmt.Errorf("%w: source and build are required", errMalformed)
	}
	src, err := object(top["source"], "uri", "digest")
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if p.Source.URI, err = str(src, "uri", true); err != nil {
		return nil, err
	}
	if src["digest"] != nil {
		d, err := object(src["digest"], "sha256")
		if err != nil {
			return nil, fmt.Errorf("source.digest: %w", err)
		}
		if p.Source.SHA256, err = str(d, "sha256", true); err != nil {
			return nil, err
		}
	}
	if p.Revision, err = str(top, "revision", false); err != nil {
		return nil, err
	}
	bld, err := object(top["build"], "command", "toolchain", "output")
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	if p.Build.Command, err = str(bld, "command", true); err != nil {
		return nil, err
	}
	if p.Build.Toolchain, err = str(bld, "toolchain", false); err != nil {
		return nil, err
	}
	if p.Build.Output, err = str(bld, "output", false); err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Format encodes p (which must pass Validate) compactly, as Parse reads it.
func Format(p *Provenance) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSize {
		return nil, errTooLarge
	}
	return b, nil
}

// FromCustom reads the provenance of a target from its custom metadata (a
// JSON object, or empty). It returns nil, nil, nil when custom declares
// none; otherwise the parsed declaration and its exact bytes, which a
// rebuilder's statement repeats (docs/spec/signoff.md). A custom object
// that is not a JSON object, or names "provenance" twice, is refused.
func FromCustom(custom json.RawMessage) (*Provenance, json.RawMessage, error) {
	if len(bytes.TrimSpace(custom)) == 0 || string(bytes.TrimSpace(custom)) == "null" {
		return nil, nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(custom, &obj); err != nil {
		return nil, nil, fmt.Errorf("%w: custom is not a JSON object", errMalformed)
	}
	if err := checkTopKeyOnce(custom, Key); err != nil {
		return nil, nil, err
	}
	raw, ok := obj[Key]
	if !ok {
		return nil, nil, nil
	}
	p, err := Parse(raw)
	if err != nil {
		return nil, nil, err
	}
	return p, raw, nil
}

// WithProvenance returns custom (a JSON object, or empty) with its
// "provenance" key set to p's encoding; other keys are kept.
func WithProvenance(custom json.RawMessage, p *Provenance) (json.RawMessage, error) {
	enc, err := Format(p)
	if err != nil {
		return nil, err
	}
	obj := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(custom)) > 0 {
		if err := json.Unmarshal(custom, &obj); err != nil || obj == nil {
			return nil, errors.New("custom must be a JSON object")
		}
	}
	obj[Key] = enc
	return json.Marshal(obj)
}

// object decodes b as one JSON object whose keys are among allowed,
// each at most once (exact, case-sensitive names), with nothing after it.
func object(b []byte, allowed ...string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: want a JSON object", errMalformed)
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errMalformed, err)
		}
		k, _ := tok.(string) // the decoder only yields strings for keys
		known := false
		for _, a := range allowed {
			known = known || a == k
		}
		if !known {
			return nil, fmt.Errorf("%w: unknown field", errMalformed)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%w: duplicate key %q", errMalformed, k)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: %w", errMalformed, err)
		}
		out[k] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data", errMalformed)
	}
	return out, nil
}

// str reads the JSON string obj[k]; a required one must be present.
func str(obj map[string]json.RawMessage, k string, required bool) (string, error) {
	v, ok := obj[k]
	if !ok {
		if required {
			return "", fmt.Errorf("%w: %s is required", errMalformed, k)
		}
		return "", nil
	}
	if len(v) == 0 || v[0] != '"' {
		return "", fmt.Errorf("%w: %s must be a string", errMalformed, k)
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("%w: %s: %w", errMalformed, k, err)
	}
	if !required && s == "" {
		return "", fmt.Errorf("%w: %s is empty: leave it out", errMalformed, k)
	}
	return s, nil
}

// checkTopKeyOnce refuses a JSON object that names key more than once at
// its top level (encoding/json would keep the last one silently).
func checkTopKeyOnce(b []byte, key string) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("%w: %w", errMalformed, err)
	}
	seen := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: %w", errMalformed, err)
		}
		if tok == key {
			if seen {
				return fmt.Errorf("%w: custom names %q twice", errMalformed, key)
			}
			seen = true
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return fmt.Errorf("%w: %w", errMalformed, err)
		}
	}
	return nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}
