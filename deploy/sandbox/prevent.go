package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shiplog/shiplog/client/approval"
	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/repo"
)

// sandboxWindow is the publicity window of the sandbox's second device: long
// enough for the auditor to raise the alarm and the vendor to withdraw a
// release (a few seconds here), short enough to wait out in the demo.
const sandboxWindow = 15 * time.Second

// mirror serves one of two repository directories: the attacker's while it
// controls the mirror, then the vendor's.
type mirror struct {
	h   atomic.Pointer[http.Handler]
	url string
}

func (s *sandbox) startMirror(dir string) (*mirror, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	m := &mirror{url: "http://" + l.Addr().String()}
	m.serve(s.path(dir))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*m.h.Load()).ServeHTTP(w, r) }),
		ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	return m, nil
}

func (m *mirror) serve(dir string) {
	h := repo.Handler(dir)
	m.h.Store(&h)
}

// attackHeldByWindow: a device with a publicity window meets a release
// logged with the stolen key and pushed to the mirror it updates from. It
// holds it; the auditor raises the alarm; the vendor withdraws the release
// with a later targets version; the device installs that one and never the
// attacker's.
func (s *sandbox) attackHeldByWindow(ctx context.Context) error {
	m, err := s.startMirror("stolen")
	if err != nil {
		return err
	}
	if err := s.initWindowDevice(m.url); err != nil {
		return err
	}
	s.say("   The attacker tries again and pushes the release to the mirror this device updates from.")
	if err := os.WriteFile(s.path("build", "backdoor.bin"), []byte("backdoor 2\n"), 0o644); err != nil {
		return err
	}
	if _, err := s.run(ctx, "repo", "add", "-d", "stolen", "build/backdoor.bin", "--path", "app.bin", "--replace"); err != nil {
		return err
	}
	if _, err := s.run(ctx, "repo", "sign", "-d", "stolen", "--key", "keys/targets.key"); err != nil {
		return err
	}
	out, err := s.run(ctx, "publish", "-d", "stolen", "--snapshot-key", "keys/snapshot.key", "--timestamp-key", "keys/timestamp.key")
	if err != nil {
		return err
	}
	first := strings.Split(strings.TrimSpace(out), "\n")[0]
	s.say("   %s", first)
	var version, index float64
	if _, err := fmt.Sscanf(first, "logged targets v%g at index %g", &version, &index); err != nil {
		return fmt.Errorf("unexpected publish output %q", first)
	}
	res, err := s.updateWindowDevice(ctx)
	if err != nil {
		return err
	}
	if res.Action != approval.Hold {
		return fmt.Errorf("the device with a window did not hold the stolen-key release: %s", res.Message)
	}
	s.say("   The device holds it (no error, nothing trusted changed):\n     %s", res.Message)
	if err := s.waitFinding(ctx, "unexpected-release", index); err != nil {
		return err
	}
	if err := s.withdraw(ctx); err != nil {
		return err
	}
	m.serve(s.path("repo"))
	s.say("   The mirror is restored to the vendor's repository. The device checks every second:")
	return s.waitWindowInstall(ctx)
}

// initWindowDevice makes a second device, household profile with the
// sandbox's short window, following url.
func (s *sandbox) initWindowDevice(url string) error {
	root, err := os.ReadFile(s.path("repo", "metadata", "1.root.json"))
	if err != nil {
		return err
	}
	pol, err := os.ReadFile(s.path("policy.txt"))
	if err != nil {
		return err
	}
	cfg := device.Config{Repository: repository, RepositoryURL: url, Ledger: s.ledgerURL,
		MinPublicAge: device.Duration(sandboxWindow), MinPublicAgeSecurity: device.Duration(sandboxWindow)}
	if err := device.ApplyProfile(&cfg, "household", map[string]bool{device.SettingMinPublicAge: true,
		device.SettingMinPublicAgeSecurity: true, device.SettingMinPublicAgeFloor: true}); err != nil {
		return err
	}
	if err := device.Init(s.path("device-window"), cfg, root, pol); err != nil {
		return err
	}
	s.say("   A second device, profile household (auto, ask on escalation) with the window shortened")
	s.say("   to %v for the sandbox (shiplog-device init --profile household --min-public-age %v).", sandboxWindow, sandboxWindow)
	return nil
}

func (s *sandbox) updateWindowDevice(ctx context.Context) (*device.Result, error) {
	d, err := device.Open(s.path("device-window"), device.Options{})
	if err != nil {
		return nil, err
	}
	defer d.Close()
	res, err := d.Update(ctx)
	if err != nil {
		return nil, fmt.Errorf("window device update: %w", err)
	}
	b, _ := os.ReadFile(s.path("device-window", "install", "current", "app.bin"))
	if strings.Contains(string(b), "backdoor") {
		return nil, errors.New("the device with a window installed the stolen-key release")
	}
	return res, nil
}

// waitFinding waits for the auditor's finding of kind about the entry at
// index; any other finding first is an error.
func (s *sandbox) waitFinding(ctx context.Context, kind string, index float64) error {
	timeout := time.After(60 * time.Second)
	for {
		select {
		case f := <-s.findings:
			if f["kind"] == kind && f["index"] == index {
				s.say("   The auditor reports it (%s): %s", f["severity"], f["message"])
				return nil
			}
			return fmt.Errorf("the auditor raised an unexpected finding: %v", f)
		case <-timeout:
			return fmt.Errorf("the auditor did not report %s at index %v within 60s", kind, index)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// withdraw is the vendor's answer: it continues from the versions in the
// log (the attacker's are logged, and versions only go up) and publishes a
// targets version that no longer lists the backdoor.
func (s *sandbox) withdraw(ctx context.Context) error {
	s.say("   Alerted, the vendor withdraws it: it takes the logged versions as they are (versions only")
	s.say("   go up) and publishes a later targets version without the backdoor.")
	if err := copyDir(s.path("stolen", "metadata"), s.path("repo", "metadata")); err != nil {
		return err
	}
	if err := copyDir(s.path("stolen", "targets"), s.path("repo", "targets")); err != nil {
		return err
	}
	if err := os.WriteFile(s.path("build", "app.bin"), []byte("shiplog sandbox firmware 3.0\n"), 0o644); err != nil {
		return err
	}
	if _, err := s.run(ctx, "repo", "add", "-d", "repo", "build/app.bin", "--path", "app.bin", "--replace",
		"--custom", `{"release_notes":"Firmware 3.0: withdraws the releases made with the stolen key."}`); err != nil {
		return err
	}
	if _, err := s.run(ctx, "repo", "sign", "-d", "repo", "--key", "keys/targets.key"); err != nil {
		return err
	}
	out, err := s.run(ctx, "publish", "-d", "repo", "--snapshot-key", "keys/snapshot.key", "--timestamp-key", "keys/timestamp.key")
	if err != nil {
		return err
	}
	s.say("   %s", strings.Split(strings.TrimSpace(out), "\n")[0])
	return nil
}

// waitWindowInstall updates the window device every second until it has
// installed the vendor's release.
func (s *sandbox) waitWindowInstall(ctx context.Context) error {
	deadline := time.Now().Add(sandboxWindow + 60*time.Second)
	last := ""
	for time.Now().Before(deadline) {
		res, err := s.updateWindowDevice(ctx)
		if err != nil {
			return err
		}
		if res.Installed {
			b, err := os.ReadFile(s.path("device-window", "install", "current", "app.bin"))
			if err != nil {
				return err
			}
			s.say("     installed %s: the device runs %s; the stolen-key release was never installed.", res.Version, strings.TrimSpace(string(b)))
			return nil
		}
		if res.Message != last {
			s.say("     %s", res.Message)
			last = res.Message
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return errors.New("the window device did not install the vendor's release in time")
}

// escalationNeedsConsent: a release whose app gains the camera capability
// is held for consent by the device in mode auto, and reported by the
// auditor to everyone; with consent it installs.
func (s *sandbox) escalationNeedsConsent(ctx context.Context) error {
	if err := os.WriteFile(s.path("build", "app.bin"), []byte("shiplog sandbox firmware 4.0\n"), 0o644); err != nil {
		return err
	}
	if _, err := s.run(ctx, "repo", "add", "-d", "repo", "build/app.bin", "--path", "app.bin", "--replace",
		"--capability", "camera", "--capability", "network", "--custom", `{"release_notes":"Firmware 4.0: video calls."}`); err != nil {
		return err
	}
	if _, err := s.run(ctx, "repo", "sign", "-d", "repo", "--key", "keys/targets.key"); err != nil {
		return err
	}
	out, err := s.run(ctx, "publish", "-d", "repo", "--snapshot-key", "keys/snapshot.key", "--timestamp-key", "keys/timestamp.key")
	if err != nil {
		return err
	}
	first := strings.Split(strings.TrimSpace(out), "\n")[0]
	s.say("   The vendor ships 4.0, declaring new capabilities: shiplog repo add ... --capability camera --capability network")
	s.say("   %s", first)
	var version, index float64
	if _, err := fmt.Sscanf(first, "logged targets v%g at index %g", &version, &index); err != nil {
		return fmt.Errorf("unexpected publish output %q", first)
	}
	d, err := device.Open(s.path("device"), device.Options{})
	if err != nil {
		return err
	}
	res, err := d.Update(ctx)
	d.Close()
	if err != nil {
		return fmt.Errorf("device update: %w", err)
	}
	if res.Installed {
		return errors.New("the device installed a capability escalation without consent")
	}
	s.say("   The first device (mode auto) does not install it on its own:\n     %s", res.Message)
	for _, l := range strings.Split(strings.TrimSpace(res.Summary.Text()), "\n") {
		if strings.Contains(l, "capabilities") || strings.Contains(l, "app.bin") {
			s.say("     %s", strings.TrimSpace(l))
		}
	}
	if err := s.waitFinding(ctx, "capability-escalation", index); err != nil {
		return err
	}
	s.say("   The owner consents (shiplog-device update --yes):")
	d, err = s.openDevice()
	if err != nil {
		return err
	}
	res, err = d.Update(ctx)
	d.Close()
	if err != nil || !res.Installed {
		return fmt.Errorf("consented update: %v %v", res, err)
	}
	s.say("     installed %s", res.Version)
	return nil
}
