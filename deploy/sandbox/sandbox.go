// Package sandbox runs the whole of shiplog on one machine and tells the story
// as it goes: a ledger on the embedded default (Tessera POSIX), three
// witnesses under a 2-of-3 policy, an auditor with its dashboard, a vendor's
// TUF repository, and a device. It publishes two releases and updates the
// device after each, then shows the point of the system: a release signed
// with the vendor's real keys but never logged is refused by the device, and a
// release logged with a stolen key is flagged by the auditor. Then
// independent sign-off: the firmware becomes a Go program built
// reproducibly from a published source archive, two rebuilders (each its
// own key and Go build cache) rebuild it and log "reproduced", and a device
// that requires both installs it; a later release whose binary was not
// built from its declared source gets "mismatch" statements, that device
// refuses it and the auditor reports it. These two steps need a Go
// toolchain (go on PATH, or $GOROOT/bin/go) and are skipped, saying so,
// without one.
//
// Servers are the real commands (shiplog ledger serve, shiplog witness serve,
// shiplog audit --serve) started as child processes of the shiplog binary;
// the vendor's steps are the real shiplog repo and publish commands; the
// device is the client/device library that shiplog-device runs. Everything
// listens on 127.0.0.1 on free ports.
package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/internal/localport"
	"github.com/shiplog/shiplog/repo"
)

// Options configure Run.
type Options struct {
	// Exe is the shiplog binary whose commands the sandbox runs.
	Exe string
	// Dir is the working directory; it must be empty or not exist. Empty
	// means a new temporary directory.
	Dir string
	// Once exits after the demonstration instead of serving until ctx ends.
	Once bool
	// Out receives the story; nil means os.Stdout.
	Out io.Writer
}

// Run runs the sandbox. It returns nil when every step behaved as the system
// promises (including both attacks being stopped), and an error naming the
// step otherwise. It stops every process it started before it returns.
func Run(ctx context.Context, o Options) error {
	s, err := newSandbox(o)
	if err != nil {
		return err
	}
	defer s.stopAll()
	if err := s.demo(ctx); err != nil {
		return err
	}
	if o.Once {
		s.say("\nDone: every step behaved as promised. (--once: stopping the servers.)")
		return nil
	}
	s.say("\nThe servers keep running; press Ctrl-C to stop them.")
	<-ctx.Done()
	return nil
}

type sandbox struct {
	exe, dir string
	out      io.Writer
	procs    []*exec.Cmd
	http     *http.Client

	ledgerURL    string
	witnessURLs  []string
	dashboardURL string
	repoURL      string
	findings     chan map[string]any

	// env is added to the environment of the commands run (PATH when the
	// Go toolchain is not on it); goExe is the go the sign-off steps build
	// with.
	env   []string
	goExe string
}

func newSandbox(o Options) (*sandbox, error) {
	s := &sandbox{exe: o.Exe, dir: o.Dir, out: o.Out, http: &http.Client{Timeout: 10 * time.Second}, findings: make(chan map[string]any, 64)}
	if s.out == nil {
		s.out = os.Stdout
	}
	if s.exe == "" {
		return nil, errors.New("sandbox: no shiplog binary")
	}
	if s.dir == "" {
		d, err := os.MkdirTemp("", "shiplog-sandbox-")
		if err != nil {
			return nil, err
		}
		s.dir = d
	} else {
		if entries, err := os.ReadDir(s.dir); err == nil && len(entries) > 0 {
			return nil, fmt.Errorf("sandbox: %s is not empty; give a new or empty directory", s.dir)
		}
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			return nil, err
		}
	}
	abs, err := filepath.Abs(s.dir)
	if err != nil {
		return nil, err
	}
	s.dir = abs
	return s, nil
}

func (s *sandbox) say(format string, args ...any) { fmt.Fprintf(s.out, format+"\n", args...) }

func (s *sandbox) step(n int, title string) { s.say("\n── %d. %s", n, title) }

// path returns a path inside the sandbox directory.
func (s *sandbox) path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

// run runs one shiplog command to completion in the sandbox directory,
// printing it first, and returns its standard output.
func (s *sandbox) run(ctx context.Context, args ...string) (string, error) {
	s.say("   $ shiplog %s", shellJoin(args))
	cmd := exec.CommandContext(ctx, s.exe, args...)
	cmd.Dir = s.dir
	if len(s.env) > 0 {
		cmd.Env = append(os.Environ(), s.env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("shiplog %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// shellJoin writes args as a POSIX shell would need them typed: an argument
// with a space, a quote or another shell character is single-quoted, so a
// printed command can be pasted as it is.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = shellQuote(a)
	}
	return strings.Join(out, " ")
}

func shellQuote(a string) string {
	if a == "" {
		return "''"
	}
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_@%+=:,./-", r)) {
			return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return a
}

// start starts a long-running shiplog command, its output in LOGNAME.log.
func (s *sandbox) start(logName string, stdout io.Writer, args ...string) error {
	s.say("   $ shiplog %s &", shellJoin(args))
	cmd := exec.Command(s.exe, args...)
	cmd.Dir = s.dir
	logf, err := os.Create(s.path(logName + ".log"))
	if err != nil {
		return err
	}
	cmd.Stderr = logf
	cmd.Stdout = logf
	if stdout != nil {
		cmd.Stdout = io.MultiWriter(logf, stdout)
	}
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	s.procs = append(s.procs, cmd)
	return nil
}

// stopAll stops the servers gracefully, then hard after a grace period.
func (s *sandbox) stopAll() {
	var wg sync.WaitGroup
	for _, p := range s.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Process.Signal(syscall.SIGTERM); err != nil {
				p.Process.Kill() // Windows: no SIGTERM to send
			}
			done := make(chan struct{})
			go func() { p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				p.Process.Kill()
				<-done
			}
		}()
	}
	wg.Wait()
}

// freeAddr returns a free 127.0.0.1 address for a server another process
// starts later: its port lies below the ephemeral range (localport.Stable),
// so neither the connections of other programs nor the sandbox's own
// readiness polls can take it before the server binds it.
func freeAddr() (string, error) {
	return localport.Stable()
}

// waitHTTP waits until GET url answers 200.
func (s *sandbox) waitHTTP(ctx context.Context, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := s.http.Do(req); err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not come up within 30s", url)
}

// fetch GETs a small resource.
func (s *sandbox) fetch(ctx context.Context, url string) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, err
}

// serveRepo serves the vendor's repository directory, as any static web
// server or CDN would.
func (s *sandbox) serveRepo() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: repo.Handler(s.path("repo")), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	s.repoURL = "http://" + l.Addr().String()
	return nil
}

// watchFindings reads the auditor's JSON-lines findings.
func (s *sandbox) watchFindings() io.Writer {
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var f map[string]any
			if json.Unmarshal(sc.Bytes(), &f) == nil && f["kind"] != nil {
				select {
				case s.findings <- f:
				default:
				}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	return pw
}

// openDevice opens the simulated device's state directory.
func (s *sandbox) openDevice() (*device.Device, error) {
	return device.Open(s.path("device"), device.Options{Yes: true})
}
