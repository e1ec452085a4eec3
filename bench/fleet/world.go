package main

// The world the fleet polls: a ledger, three witnesses (2-of-3 policy) and
// a vendor's repository, made and run with the shiplog binary as real
// processes on 127.0.0.1, the ledger and the witnesses behind counting
// proxies; and nginx serving the repository directory with deploy/nginx's
// configuration.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shiplog/shiplog/internal/localport"
)

const (
	repository = "fleet.example/firmware"
	repoHost   = "updates.example.com" // deploy/nginx's server_name of the repository
	deviceUA   = "shiplog-fleet-device"
)

type world struct {
	exe, dir string
	procs    []*exec.Cmd
	servers  []*http.Server
	ledger   *counter
	wits     []*counter
	nginxURL string
}

// counter is a reverse proxy that counts the requests it forwards, and
// those that carry the simulated devices' User-Agent.
type counter struct {
	name           string
	all, fromFleet atomic.Int64
	url            string
}

func (w *world) path(elem ...string) string {
	return filepath.Join(append([]string{w.dir}, elem...)...)
}

func (w *world) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, w.exe, args...)
	cmd.Dir = w.dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("shiplog %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (w *world) start(logName string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = w.dir
	logf, err := os.Create(w.path(logName + ".log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	w.procs = append(w.procs, cmd)
	return nil
}

// stop stops the proxies and every process (nginx's workers with their
// master: each process runs in its own group).
func (w *world) stop() {
	for _, s := range w.servers {
		s.Close()
	}
	var wg sync.WaitGroup
	for _, p := range w.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			syscall.Kill(-p.Process.Pid, syscall.SIGTERM)
			done := make(chan struct{})
			go func() { p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
				<-done
			}
		}()
	}
	wg.Wait()
}

// freeAddr returns a free 127.0.0.1 address for a server started in
// another process: below the ephemeral range (localport.Stable), so that no
// outgoing connection, nor a readiness poll connecting to itself, takes the
// port before the server binds it.
func freeAddr() (string, error) {
	return localport.Stable()
}

func waitHTTP(ctx context.Context, u string, host string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer 200: %v", u, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// proxy starts a counting reverse proxy to target on 127.0.0.1.
func (w *world) proxy(name, target string) (*counter, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	c := &counter{name: name, url: "http://" + addr}
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		c.all.Add(1)
		if r.UserAgent() == deviceUA {
			c.fromFleet.Add(1)
		}
		rp.ServeHTTP(rw, r)
	})}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	go srv.Serve(l)
	w.servers = append(w.servers, srv)
	return c, nil
}

var cosigVKeyLine = regexp.MustCompile(`(?m)^cosignature/v1 vkey: (\S+)$`)

// build makes and starts everything, then logs release 1.
func (w *world) build(ctx context.Context, nginxBin, deployDir string) error {
	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	if _, err := w.run(ctx, "ledger", "init", "ledger", "--origin", "fleet.example/log", "--http", httpAddr, "--grpc", "127.0.0.1:0"); err != nil {
		return err
	}
	if w.ledger, err = w.proxy("ledger", "http://"+httpAddr); err != nil {
		return err
	}
	vkey, err := os.ReadFile(w.path("ledger", "log.vkey"))
	if err != nil {
		return err
	}
	var policy strings.Builder
	fmt.Fprintf(&policy, "log %s %s\n", strings.TrimSpace(string(vkey)), w.ledger.url)
	for i := 1; i <= 3; i++ {
		dir := fmt.Sprintf("witness-%d", i)
		out, err := w.run(ctx, "witness", "init", "--dir", dir, "--name", fmt.Sprintf("witness-%d.fleet.example", i))
		if err != nil {
			return err
		}
		m := cosigVKeyLine.FindStringSubmatch(out)
		if m == nil {
			return fmt.Errorf("witness init printed no cosignature/v1 vkey: %q", out)
		}
		if _, err := w.run(ctx, "witness", "add-log", "--dir", dir, strings.TrimSpace(string(vkey))); err != nil {
			return err
		}
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		if err := w.start(dir, w.exe, "witness", "serve", "--dir", dir, "--listen", addr); err != nil {
			return err
		}
		if err := waitHTTP(ctx, "http://"+addr+"/healthz", ""); err != nil {
			return err
		}
		c, err := w.proxy(dir, "http://"+addr)
		if err != nil {
			return err
		}
		w.wits = append(w.wits, c)
		fmt.Fprintf(&policy, "witness w%d %s %s\n", i, m[1], c.url)
	}
	policy.WriteString("group two-of-three 2 w1 w2 w3\nquorum two-of-three\n")
	for _, p := range []string{w.path("policy.txt"), w.path("ledger", "witnesses.policy")} {
		if err := os.WriteFile(p, []byte(policy.String()), 0o644); err != nil {
			return err
		}
	}
	if err := w.start("ledger", w.exe, "ledger", "serve", "ledger"); err != nil {
		return err
	}
	if err := waitHTTP(ctx, "http://"+httpAddr+"/checkpoint", ""); err != nil {
		return err
	}
	if err := os.MkdirAll(w.path("keys"), 0o700); err != nil {
		return err
	}
	for _, k := range []string{"root", "targets", "snapshot", "timestamp"} {
		if _, err := w.run(ctx, "repo", "key", "generate", "--insecure-plaintext", "keys/"+k+".key"); err != nil {
			return err
		}
	}
	if _, err := w.run(ctx, "repo", "init", "repo", "--repository", repository,
		"--root-key", "keys/root.key.pub", "--targets-key", "keys/targets.key.pub",
		"--snapshot-key", "keys/snapshot.key.pub", "--timestamp-key", "keys/timestamp.key.pub",
		"--ledger", w.ledger.url, "--policy", "policy.txt"); err != nil {
		return err
	}
	for _, k := range []string{"root", "targets"} {
		if _, err := w.run(ctx, "repo", "sign", "repo", "--key", "keys/"+k+".key"); err != nil {
			return err
		}
	}
	if _, err := w.run(ctx, "repo", "register", "repo", "--token", "ledger/admin.token"); err != nil {
		return err
	}
	if err := w.release(ctx, 1); err != nil {
		return err
	}
	return w.startNginx(ctx, nginxBin, deployDir)
}

// release adds firmware n (replacing n-1), signs it and publishes it: the
// vendor's whole path, through the ledger and the witnesses.
func (w *world) release(ctx context.Context, n int) error {
	if err := os.MkdirAll(w.path("build"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(w.path("build", "app.bin"), []byte(fmt.Sprintf("fleet firmware %d.0\n%s", n, strings.Repeat("x", 4096))), 0o644); err != nil {
		return err
	}
	args := []string{"repo", "add", "repo", "build/app.bin", "--path", "app.bin"}
	if n > 1 {
		args = append(args, "--replace")
	}
	if _, err := w.run(ctx, args...); err != nil {
		return err
	}
	if _, err := w.run(ctx, "repo", "sign", "repo", "--key", "keys/targets.key"); err != nil {
		return err
	}
	_, err := w.run(ctx, "publish", "repo", "--snapshot-key", "keys/snapshot.key", "--timestamp-key", "keys/timestamp.key")
	return err
}

// startNginx serves the repository with deploy/nginx/shiplog.conf and
// upstreams.conf, rewritten only for paths and the listen address (as
// deploy's own test does).
func (w *world) startNginx(ctx context.Context, nginxBin, deployDir string) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	conf, err := os.ReadFile(filepath.Join(deployDir, "nginx", "shiplog.conf"))
	if err != nil {
		return err
	}
	text := strings.NewReplacer("/var/cache/nginx/shiplog", w.path("nginx-cache"),
		"/srv/tuf/repo", w.path("repo"), "listen 80;", "listen "+addr+";").Replace(string(conf))
	if err := os.WriteFile(w.path("shiplog.conf"), []byte(text), 0o644); err != nil {
		return err
	}
	upstreams, err := filepath.Abs(filepath.Join(deployDir, "nginx", "upstreams.conf"))
	if err != nil {
		return err
	}
	user := ""
	if os.Geteuid() == 0 { // workers run as nobody: they must traverse the directories
		user = "user nobody nogroup;\n"
		for d := w.dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				return err
			}
		}
	}
	main := user + "worker_processes 1;\nevents { worker_connections 4096; }\nhttp {\n  access_log off;\n  include " + w.path("shiplog.conf") +
		";\n  include " + upstreams + ";\n}\n"
	if err := os.WriteFile(w.path("nginx.conf"), []byte(main), 0o644); err != nil {
		return err
	}
	args := []string{"-p", w.dir, "-c", w.path("nginx.conf"), "-g", "pid " + w.path("nginx.pid") + "; error_log stderr; daemon off;"}
	if out, err := exec.Command(nginxBin, append([]string{"-t"}, args...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("nginx -t: %v\n%s", err, out)
	}
	if err := w.start("nginx", nginxBin, args...); err != nil {
		return err
	}
	w.nginxURL = "http://" + addr
	return waitHTTP(ctx, w.nginxURL+"/metadata/timestamp.json", repoHost)
}
