package attest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ErrTimeout means the build did not finish within its time limit; the
// process group was killed.
var ErrTimeout = errors.New("build exceeded its time limit")

// ErrBuildFailed means the build command exited non-zero.
var ErrBuildFailed = errors.New("build command failed")

// build runs command by /bin/sh -c in src with env, killed after timeout,
// and returns the SHA-256 of the file output (relative to src).
func build(ctx context.Context, src, command, output string, env []string, timeout time.Duration, log io.Writer, maxOutput int64) ([sha256.Size]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	c.Dir = src
	c.Env = env
	c.Stdout, c.Stderr = log, log
	c.WaitDelay = 5 * time.Second // a child holding the output pipes open
	ownGroup(c)
	err := c.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return [sha256.Size]byte{}, fmt.Errorf("%w (%s)", ErrTimeout, timeout)
	}
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("%w: %w", ErrBuildFailed, err)
	}
	return hashOutput(src, output, maxOutput)
}

// hashOutput hashes the regular file output inside src; a link leaving
// src is refused by os.Root.
func hashOutput(src, output string, max int64) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	root, err := os.OpenRoot(src)
	if err != nil {
		return sum, err
	}
	defer root.Close()
	f, err := root.Open(output)
	if err != nil {
		return sum, fmt.Errorf("the build produced no %s: %w", output, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return sum, fmt.Errorf("the build output %s is not a regular file", output)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, max+1))
	if err != nil {
		return sum, err
	}
	if n > max {
		return sum, fmt.Errorf("%w: build output over %d bytes", ErrTooLarge, max)
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// buildEnv is the build's whole environment: PATH (the rebuilder's, or a
// default), HOME, TMPDIR and caches under tmp, TZ and LC_ALL fixed, then
// the variables named in pass (copied from the rebuilder's environment
// when set) and the NAME=VALUE pairs in set, which override.
func buildEnv(tmp string, pass, set []string) ([]string, error) {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	cache := filepath.Join(tmp, "cache")
	env := map[string]string{
		"PATH":           path,
		"HOME":           filepath.Join(tmp, "home"),
		"TMPDIR":         filepath.Join(tmp, "tmp"),
		"XDG_CACHE_HOME": cache,
		"GOCACHE":        filepath.Join(cache, "go-build"),
		"GOPATH":         filepath.Join(tmp, "gopath"),
		"TZ":             "UTC",
		"LC_ALL":         "C",
	}
	for _, d := range []string{env["HOME"], env["TMPDIR"], cache} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	for _, n := range pass {
		if v, ok := os.LookupEnv(n); ok {
			env[n] = v
		}
	}
	for _, kv := range set {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--env %q: want NAME=VALUE", kv)
		}
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out, nil
}
