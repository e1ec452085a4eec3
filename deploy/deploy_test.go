// Package deploy_test checks the deployment files that can be checked on this
// machine: systemd units with systemd-analyze verify and the flags of every
// ExecStart, the nginx configuration with nginx -t and a live request, the
// Prometheus rules against the metrics shiplog exports, and the compose
// file's commands against the CLI.
package deploy_test

import (
	"github.com/shiplog/shiplog/internal/harness/kit"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shiplog/shiplog/internal/durable"
	"github.com/shiplog/shiplog/repo"
	"github.com/shiplog/shiplog/repo/keys"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"go.yaml.in/yaml/v3"
)

// need returns the path of tool, skipping the test when it is missing
// outside CI (scripts/setup.d/70-deploy-tools.sh installs it).
func need(t *testing.T, tool string, alt ...string) string {
	t.Helper()
	for _, name := range append([]string{tool}, alt...) {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not installed (scripts/setup.d/70-deploy-tools.sh installs it)", tool)
	}
	t.Skipf("%s is not installed; run scripts/setup.d/70-deploy-tools.sh", tool)
	return ""
}

var (
	binDir     string
	shiplogBin string
)

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "shiplog-deploy-test-")
	if err != nil {
		panic(err)
	}
	binDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// buildShiplog builds the shiplog command once for the package's tests.
func buildShiplog(t *testing.T) string {
	t.Helper()
	if shiplogBin != "" {
		return shiplogBin
	}
	bin := filepath.Join(binDir, "shiplog")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/shiplog")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	shiplogBin = bin
	return bin
}

// checkFlags runs a shiplog command line with --help appended: cobra refuses
// unknown flags and wrong subcommands even then.
func checkFlags(t *testing.T, bin string, args []string) {
	t.Helper()
	cmd := exec.Command(bin, append(args, "--help")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("shiplog %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestSystemdUnits(t *testing.T) {
	analyze := need(t, "systemd-analyze")
	bin := buildShiplog(t)
	dir := t.TempDir()
	units, _ := filepath.Glob("systemd/*")
	if len(units) < 4 {
		t.Fatalf("found %d unit files", len(units))
	}
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), "/usr/local/bin/shiplog", bin)
		for _, line := range strings.Split(text, "\n") {
			if exec, ok := strings.CutPrefix(line, "ExecStart="); ok {
				f := strings.Fields(exec)
				if f[0] == bin {
					checkFlags(t, bin, f[1:])
				}
			}
		}
		p := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestNginx checks the configuration with nginx -t, then serves a repository
// directory with it and checks what is public and how it is cached. The
// repository's target is stored by the repository code itself under a
// vendor's umask of 077, and nginx's workers run as an unprivileged user
// (nobody), as in production: a target written 0600 would be answered 403.
func TestNginx(t *testing.T) {
	nginx := need(t, "nginx", "/usr/sbin/nginx")
	dir := t.TempDir()
	repoDir := filepath.Join(dir, "repo")
	stored := makeRepo(t, repoDir)
	evidence := "metadata/signoff/" + strings.Repeat("ab", 32) + ".json"
	for name, content := range map[string]string{"metadata/timestamp.json": "{}", "metadata/3.targets.json": "{}", evidence: "{}"} {
		if err := durable.MkdirAll(filepath.Dir(filepath.Join(repoDir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := durable.WriteFile(filepath.Join(repoDir, name), []byte(content), durable.Public); err != nil {
			t.Fatal(err)
		}
	}
	addr := kit.StableAddr(t)
	conf, err := os.ReadFile("nginx/shiplog.conf")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer("/var/cache/nginx/shiplog", filepath.Join(dir, "cache"),
		"/srv/tuf/repo", repoDir, "listen 80;", "listen "+addr+";").Replace(string(conf))
	os.WriteFile(filepath.Join(dir, "shiplog.conf"), []byte(text), 0o644)
	user := ""
	if os.Geteuid() == 0 {
		// Workers run as nobody; they must traverse the test's directories.
		user = "user nobody nogroup;\n"
		for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	main := user + "events {}\nhttp {\n  access_log off;\n  include " + filepath.Join(dir, "shiplog.conf") + ";\n  include " +
		mustAbs(t, "nginx/upstreams.conf") + ";\n}\n"
	os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644)
	args := []string{"-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-g", "pid " + filepath.Join(dir, "nginx.pid") + "; error_log stderr; daemon off;"}
	if out, err := exec.Command(nginx, append([]string{"-t"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	srv := exec.Command(nginx, args...)
	srv.Stderr = os.Stderr
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-srv.Process.Pid, syscall.SIGTERM) // master and workers
		srv.Wait()
	})

	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Host = "updates.example.com"
		var resp *http.Response
		for i := 0; i < 600; i++ { // 60 s: a loaded machine
			if resp, err = client.Do(req); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Cache-Control")
	}
	for _, tc := range []struct {
		path  string
		code  int
		cache string
	}{
		{"/metadata/timestamp.json", 200, "no-cache"},
		{"/metadata/3.targets.json", 200, "public, max-age=31536000, immutable"},
		{"/" + evidence, 200, "no-cache"},
		{"/targets/" + stored, 200, "public, max-age=31536000, immutable"},
		{"/staging.json", 404, ""},
		{"/shiplog-repo.json", 404, ""},
	} {
		code, cache := get(tc.path)
		if code != tc.code || cache != tc.cache {
			t.Errorf("GET %s = %d %q, want %d %q", tc.path, code, cache, tc.code, tc.cache)
		}
	}
}

// makeRepo creates a repository in dir and stages one target with the
// repository code, under a umask of 077; it returns the target's stored name.
func makeRepo(t *testing.T, dir string) string {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	o := repo.InitOptions{Repository: "example.com/fw", Keys: map[string][]*metadata.Key{}}
	for _, role := range repo.TopLevelRoles {
		k, err := keys.GenerateDefault(keys.Ed25519)
		if err != nil {
			t.Fatal(err)
		}
		o.Keys[role] = []*metadata.Key{k.Public}
	}
	if err := repo.Init(dir, o); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "app.bin")
	os.WriteFile(src, []byte("app"), 0o600)
	r, err := repo.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res, err := r.Add(repo.AddOptions{Targets: []repo.TargetInput{{Path: "app.bin", File: src}}})
	if err != nil {
		t.Fatal(err)
	}
	return res[0].Stored
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var metricName = regexp.MustCompile(`\bshiplog_[a-z_]+`)

// TestPrometheusRules: the configuration parses, and every metric the alerts
// use is one that the ledger, witness or auditor registers (built
// in-process, as for the Grafana dashboard).
func TestPrometheusRules(t *testing.T) {
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "prometheus/prometheus.yml", &cfg)
	if len(cfg.ScrapeConfigs) < 2 || len(cfg.RuleFiles) != 1 {
		t.Fatalf("prometheus.yml: %+v", cfg)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, filepath.Join("prometheus", cfg.RuleFiles[0]), &rules)
	exported := registeredMetrics(t)
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || r.Expr == "" {
				t.Errorf("rule without alert or expr: %+v", r)
			}
			for _, m := range metricName.FindAllString(r.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")
				if !exported[base] {
					t.Errorf("alert %s uses %s, which shiplog does not export", r.Alert, m)
				}
			}
		}
	}
	if n < 5 {
		t.Errorf("only %d alert rules", n)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestCompose: the compose file parses, and every service's command is a
// command line the shiplog CLI accepts.
func TestCompose(t *testing.T) {
	var c struct {
		Services map[string]struct {
			Build   any      `yaml:"build"`
			Image   string   `yaml:"image"`
			Command []string `yaml:"command"`
		} `yaml:"services"`
	}
	b, err := os.ReadFile("compose/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	bin := buildShiplog(t)
	shiplogServices := 0
	for name, s := range c.Services {
		if s.Build == nil {
			continue
		}
		shiplogServices++
		if len(s.Command) == 0 {
			t.Errorf("service %s has no command", name)
			continue
		}
		checkFlags(t, bin, s.Command)
	}
	if shiplogServices < 4 {
		t.Errorf("%d shiplog services, want ledger, two witnesses and an auditor", shiplogServices)
	}
}
