package attest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/shiplog/shiplog/evidence/provenance"
)

// Limits bound what a fetch may consume. Zero fields take the defaults.
type Limits struct {
	// MaxArchive bounds a downloaded archive; default 1 GiB.
	MaxArchive int64
	// MaxUnpacked bounds the bytes an archive unpacks to, and the bytes a
	// source copy holds; default 4 GiB.
	MaxUnpacked int64
	// MaxFiles bounds the entries of an archive or a source copy; default 200,000.
	MaxFiles int
	// MaxOutput bounds the built file that is hashed; default 4 GiB.
	MaxOutput int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxArchive <= 0 {
		l.MaxArchive = 1 << 30
	}
	if l.MaxUnpacked <= 0 {
		l.MaxUnpacked = 4 << 30
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = 200000
	}
	if l.MaxOutput <= 0 {
		l.MaxOutput = 4 << 30
	}
	return l
}

// Errors a caller branches on.
var (
	// ErrDigest means the fetched archive does not have the declared SHA-256.
	ErrDigest = errors.New("source archive does not have the declared sha256")
	// ErrRevision means a git checkout's HEAD is not the declared commit.
	ErrRevision = errors.New("git checkout is not at the declared revision")
	// ErrUnsafeArchive means an archive entry would land outside the
	// source directory, or is of a kind that is never unpacked.
	ErrUnsafeArchive = errors.New("unsafe archive entry")
	// ErrTooLarge means a limit of Limits was exceeded.
	ErrTooLarge = errors.New("source exceeds a size limit")
)

// fetcher fetches one declared source into a directory.
type fetcher struct {
	client *http.Client
	limits Limits
	git    string // the git command
}

// fetch places the source p declares in dst (an empty directory); tmp is
// scratch space.
func (f *fetcher) fetch(ctx context.Context, p *provenance.Provenance, dst, tmp string) error {
	if p.Kind() == provenance.Git {
		return f.fetchGit(ctx, p, dst, tmp)
	}
	archive := filepath.Join(tmp, "source-archive")
	if err := f.download(ctx, p.Source.URI, p.Source.SHA256, archive); err != nil {
		return err
	}
	u, _ := url.Parse(p.Source.URI) // Validate parsed it
	return unpack(archive, provenance.ArchiveFormat(u.Path), dst, f.limits)
}

// download copies the archive at uri into file, at most MaxArchive bytes,
// and checks its SHA-256 against want before returning.
func (f *fetcher) download(ctx context.Context, uri, want, file string) error {
	rc, err := f.open(ctx, uri)
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(rc, f.limits.MaxArchive+1))
	if err != nil {
		return fmt.Errorf("couldn't fetch the source archive: %w", err)
	}
	if n > f.limits.MaxArchive {
		return fmt.Errorf("%w: archive over %d bytes", ErrTooLarge, f.limits.MaxArchive)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%w: got %s, declared %s", ErrDigest, got, want)
	}
	return out.Close()
}

func (f *fetcher) open(ctx context.Context, uri string) (io.ReadCloser, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "file" {
		return os.Open(filepath.FromSlash(u.Path))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("couldn't fetch the source archive: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("couldn't fetch the source archive: HTTP %d", resp.StatusCode)
	}
	return resp.Body, nil
}

// fetchGit clones the repository, checks out the declared commit, checks
// HEAD, and copies the tree without .git into dst.
func (f *fetcher) fetchGit(ctx context.Context, p *provenance.Provenance, dst, tmp string) error {
	clone := filepath.Join(tmp, "git")
	remote := strings.TrimPrefix(p.Source.URI, "git+")
	home := filepath.Join(tmp, "git-home")
	if err := os.Mkdir(home, 0o700); err != nil {
		return err
	}
	if _, err := f.runGit(ctx, home, "", "clone", "--quiet", "--no-checkout", "--", remote, clone); err != nil {
		return fmt.Errorf("couldn't clone the source: %w", err)
	}
	if _, err := f.runGit(ctx, home, clone, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", p.Revision+"^{commit}"); err != nil {
		return fmt.Errorf("%w: couldn't check out %s: %w", ErrRevision, p.Revision, err)
	}
	head, err := f.runGit(ctx, home, clone, "rev-parse", "--verify", "HEAD")
	if err != nil {
		return err
	}
	if got := strings.TrimSpace(head); got != p.Revision {
		return fmt.Errorf("%w: HEAD is %q", ErrRevision, got)
	}
	return copyTree(clone, dst, f.limits, ".git")
}

// runGit runs git with a minimal environment (no system or global
// configuration, no prompts) and returns its stdout.
func (f *fetcher) runGit(ctx context.Context, home, dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, f.git, args...)
	c.Dir = dir
	c.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0", "GIT_ALLOW_PROTOCOL=https:file", "LC_ALL=C"}
	var out, errb bytes.Buffer
	c.Stdout = &out
	c.Stderr = &errb
	if err := c.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if len(msg) > 512 {
			msg = msg[:512]
		}
		return "", fmt.Errorf("git %s: %w: %s", args[0], err, msg)
	}
	return out.String(), nil
}
