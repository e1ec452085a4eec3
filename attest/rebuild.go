package attest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/shiplog/shiplog/evidence/provenance"
	"github.com/shiplog/shiplog/evidence/signoff"
)

// The verdicts of a rebuild (docs/spec/signoff.md).
const (
	Reproduced = signoff.Reproduced
	Mismatch   = signoff.Mismatch
)

// DefaultTimeout is a build's time limit when Request.Timeout is zero.
const DefaultTimeout = 30 * time.Minute

// ErrRoot means the rebuild would run as root without Request.AllowRoot.
var ErrRoot = errors.New("refusing to run a vendor's build command as root (run as an unprivileged user, or pass --allow-root)")

// Request is one rebuild of one target.
type Request struct {
	// Target is the target path; Subject its SHA-256 from verified metadata.
	Target  string
	Subject [sha256.Size]byte
	// Provenance is the target's declaration. Required.
	Provenance *provenance.Provenance
	// SourceDir, when set, is a local copy of the source used instead of
	// fetching it (it is copied, never built in place).
	SourceDir string
	// Timeout bounds the build; zero means DefaultTimeout.
	Timeout time.Duration
	// PassEnv names variables copied from this process's environment into
	// the build's; Env are NAME=VALUE pairs set in it (buildEnv).
	PassEnv, Env []string
	// AllowRoot lets the build run with effective uid 0; a notice is then
	// written to Notice.
	AllowRoot bool
	// Geteuid reports the effective uid; nil means os.Geteuid.
	Geteuid func() int
	// Log receives the build's stdout and stderr; nil discards.
	Log io.Writer
	// Notice receives warnings for the person running the rebuild; nil discards.
	Notice io.Writer
	// TempDir is where the fresh directory is made; "" means os.TempDir().
	// The directory is removed afterwards.
	TempDir string
	// HTTPClient fetches https:// archives; nil means a client with a
	// 30-minute overall timeout.
	HTTPClient *http.Client
	// Git is the git command; "" means "git" from PATH.
	Git    string
	Limits Limits
}

// Result is what a rebuild found.
type Result struct {
	// Verdict is Reproduced when Built equals Subject, else Mismatch.
	Verdict string
	Subject [sha256.Size]byte
	Built   [sha256.Size]byte
	// Output is the file that was hashed, relative to the source root.
	Output string
	// SourceLocal is true when the source came from Request.SourceDir,
	// not fetched and checked against the declaration; the statement
	// says so (signoff.Statement.SourceLocal).
	SourceLocal bool
}

// Rebuild fetches (or copies) the source req.Provenance declares into a
// fresh temporary directory, runs its build command there, and compares
// the SHA-256 of the output with req.Subject. It refuses root before doing
// anything unless AllowRoot. A failed fetch, a failed or timed-out build
// or a missing output is an error, not a mismatch: only bytes that were
// built are compared.
func Rebuild(ctx context.Context, req Request) (*Result, error) {
	if req.Provenance == nil {
		return nil, errors.New("the target declares no provenance: nothing to rebuild")
	}
	if err := req.Provenance.Validate(); err != nil {
		return nil, err
	}
	output := req.Provenance.OutputFor(req.Target)
	if err := provenance.CheckOutput(output); err != nil {
		return nil, err
	}
	if err := req.checkRoot(); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(req.TempDir, "shiplog-rebuild-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		return nil, err
	}
	l := req.Limits.withDefaults()
	if req.SourceDir != "" {
		err = copyTree(req.SourceDir, src, l, "")
	} else {
		err = req.fetcher(l).fetch(ctx, req.Provenance, src, tmp)
	}
	if err != nil {
		return nil, err
	}
	env, err := buildEnv(tmp, req.PassEnv, req.Env)
	if err != nil {
		return nil, err
	}
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	log := req.Log
	if log == nil {
		log = io.Discard
	}
	built, err := build(ctx, src, req.Provenance.Build.Command, output, env, timeout, log, l.MaxOutput)
	if err != nil {
		return nil, err
	}
	res := &Result{Verdict: Mismatch, Subject: req.Subject, Built: built, Output: output, SourceLocal: req.SourceDir != ""}
	if built == req.Subject {
		res.Verdict = Reproduced
	}
	return res, nil
}

func (req *Request) checkRoot() error {
	euid := os.Geteuid
	if req.Geteuid != nil {
		euid = req.Geteuid
	}
	if euid() != 0 {
		return nil
	}
	if !req.AllowRoot {
		return ErrRoot
	}
	if req.Notice != nil {
		fmt.Fprintln(req.Notice, "shiplog: warning: running the vendor's build command as root (--allow-root)")
	}
	return nil
}

func (req *Request) fetcher(l Limits) *fetcher {
	c := req.HTTPClient
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Minute}
	}
	git := req.Git
	if git == "" {
		git = "git"
	}
	return &fetcher{client: c, limits: l, git: git}
}
