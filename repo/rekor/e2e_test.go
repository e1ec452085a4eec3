package rekor_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shiplog/shiplog/audit/alert"
	auditrekor "github.com/shiplog/shiplog/audit/rekor"
	"github.com/shiplog/shiplog/client/approval"
	"github.com/shiplog/shiplog/client/device"
	"github.com/shiplog/shiplog/client/sigstore"
	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/repo"
	rbundle "github.com/shiplog/shiplog/repo/bundle"
	"github.com/shiplog/shiplog/repo/keys"
	"github.com/shiplog/shiplog/repo/rekor"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// vendor is a repository whose keys are all at hand: root and targets
// ECDSA P-256, snapshot and timestamp Ed25519, and a delegated role
// "apps" with an Ed25519 key (logged with Ed25519ph).
type vendor struct {
	dir    string
	keys   map[string]*keys.Private
	policy *policy.Policy
}

func newVendor(t *testing.T, policyText string) *vendor {
	t.Helper()
	v := &vendor{dir: filepath.Join(t.TempDir(), "repo"), keys: map[string]*keys.Private{}}
	var err error
	if v.policy, err = policy.Parse([]byte(policyText)); err != nil {
		t.Fatal(err)
	}
	ks := map[string][]*metadata.Key{}
	for _, role := range repo.TopLevelRoles {
		typ := keys.Ed25519
		if role == "root" || role == "targets" {
			typ = keys.ECDSAP256
		}
		if v.keys[role], err = keys.GenerateDefault(typ); err != nil {
			t.Fatal(err)
		}
		ks[role] = []*metadata.Key{v.keys[role].Public}
	}
	if v.keys["apps"], err = keys.GenerateDefault(keys.Ed25519); err != nil {
		t.Fatal(err)
	}
	if err := repo.Init(v.dir, repo.InitOptions{Repository: "example.com/fw", Keys: ks}); err != nil {
		t.Fatal(err)
	}
	return v
}

func (v *vendor) addTarget(t *testing.T, path string, content []byte) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "payload")
	if err := os.WriteFile(f, content, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(v.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Add(repo.AddOptions{Targets: []repo.TargetInput{{Path: path, File: f}}, Replace: true}); err != nil {
		t.Fatal(err)
	}
}

func (v *vendor) sign(t *testing.T, roles ...string) {
	t.Helper()
	r, err := repo.Open(v.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, role := range roles {
		if _, err := r.Sign(v.keys[role], []string{role}); err != nil {
			t.Fatalf("sign %s: %v", role, err)
		}
	}
}

// deviceUnderTest is a device state directory following a vendor's
// repository served over real HTTP.
type deviceUnderTest struct {
	*device.Device
	Dir string
}

func newDevice(t *testing.T, v *vendor) *deviceUnderTest {
	t.Helper()
	srv := httptest.NewServer(http.FileServer(http.Dir(v.dir)))
	t.Cleanup(srv.Close)
	dir := filepath.Join(t.TempDir(), "device")
	root, err := os.ReadFile(filepath.Join(v.dir, "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	policyText := []byte("")
	for _, l := range v.policy.Logs {
		policyText = append(policyText, []byte("log "+l.VKey+" "+l.URL+"\n")...)
	}
	policyText = append(policyText, "quorum none\n"...)
	cfg := device.Config{Repository: "example.com/fw", RepositoryURL: srv.URL, Approval: approval.Auto}
	if err := device.Init(dir, cfg, root, policyText); err != nil {
		t.Fatal(err)
	}
	d, err := device.Open(dir, device.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return &deviceUnderTest{Device: d, Dir: dir}
}

// installUpdateBundle builds an update bundle of targets with repo/bundle
// and installs it on a new device with no network; a copy whose targets
// Sigstore bundle has one byte flipped is refused.
func installUpdateBundle(t *testing.T, v *vendor, targets []string) {
	t.Helper()
	ctx := context.Background()
	var buf bytes.Buffer
	h, err := rbundle.Build(ctx, rbundle.Options{Dir: v.dir, Targets: targets, Policy: v.policy}, &buf)
	if err != nil {
		t.Fatalf("bundle build: %v", err)
	}
	n := 0
	for _, m := range append(h.Roots, h.Targets...) {
		if len(m.SigstoreBundle) > 0 && len(m.TlogProof) == 0 {
			n++
		}
	}
	if n != len(h.Roots)+len(h.Targets) {
		t.Fatalf("%d of %d header items carry a Sigstore bundle", n, len(h.Roots)+len(h.Targets))
	}
	path := filepath.Join(t.TempDir(), "update.bundle")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// A spoiled copy: one byte of the targets role's Sigstore bundle
	// flipped inside the header (the header is deterministic protobuf, so
	// the same bytes appear verbatim in the file).
	sb := h.Targets[0].SigstoreBundle
	i := bytes.Index(buf.Bytes(), sb)
	if i < 0 {
		t.Fatal("Sigstore bundle not found in the update bundle")
	}
	spoiled := bytes.Clone(buf.Bytes())
	spoiled[i+len(sb)/2] ^= 0x01
	bad := filepath.Join(t.TempDir(), "spoiled.bundle")
	os.WriteFile(bad, spoiled, 0o644)

	d := newDevice(t, v)
	if res, err := d.InstallBundle(ctx, bad); err == nil {
		t.Fatalf("spoiled update bundle installed: %+v", res)
	}
	res, err := d.InstallBundle(ctx, path)
	if err != nil || !res.Installed {
		t.Fatalf("install update bundle: %+v %v", res, err)
	}
}

func (v *vendor) publish(t *testing.T, c *rekor.Client) *repo.PublishResult {
	t.Helper()
	res, err := repo.PublishRekor(context.Background(), v.dir, c, repo.RekorOptions{
		Policy: v.policy, Keys: []*keys.Private{v.keys["root"], v.keys["targets"], v.keys["apps"]},
		SnapshotKey: v.keys["snapshot"], TimestampKey: v.keys["timestamp"],
	})
	if err != nil {
		t.Fatalf("PublishRekor: %v", err)
	}
	return res
}

// TestPublishToRekorServer publishes a repository through a real
// rekor-server on Trillian and PostgreSQL, checks every bundle with the
// device's verifier, and checks that resubmitting is idempotent.
func TestPublishToRekorServer(t *testing.T) {
	srv := startRekor(t)
	ctx := context.Background()
	c, err := rekor.New(srv.URL, rekor.Options{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := c.VKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v := newVendor(t, "log "+vkey+" "+srv.URL+"\nquorum none\n")
	v.addTarget(t, "fw/image.bin", []byte("firmware v1"))
	v.sign(t, "root", "targets")
	res := v.publish(t, c)
	if len(res.Logged) != 2 || res.Exposed == nil {
		t.Fatalf("publish result %+v", res)
	}
	for _, l := range res.Logged {
		bundle, err := os.ReadFile(l.ProofFile)
		if err != nil {
			t.Fatal(err)
		}
		md, err := os.ReadFile(filepath.Join(v.dir, "metadata", filepath.Base(l.ProofFile[:len(l.ProofFile)-len(repo.SigstoreSuffix)])))
		if err != nil {
			t.Fatal(err)
		}
		ks := map[string]*metadata.Key{v.keys[l.Role].ID: v.keys[l.Role].Public}
		ev, err := sigstore.Verify(bundle, md, ks, v.policy)
		if err != nil {
			t.Fatalf("%s: %v", l.Role, err)
		}
		if ev.Checkpoint.Origin[:len(srv.Hostname)] != srv.Hostname {
			t.Errorf("origin %q", ev.Checkpoint.Origin)
		}
		// The signature by a key the role does not list is refused.
		other := map[string]*metadata.Key{v.keys["snapshot"].ID: v.keys["snapshot"].Public}
		if _, err := sigstore.Verify(bundle, md, other, v.policy); !errors.Is(err, sigstore.ErrKeyNotListed) {
			t.Errorf("%s under another key: %v", l.Role, err)
		}
		// Resubmitting the same bytes is harmless: with a randomized ECDSA
		// signature it logs a second entry for the same bytes; the
		// deterministic Ed25519ph case (409) is checked below.
		again, err := c.Submit(ctx, md, v.keys[l.Role])
		if err != nil {
			t.Fatalf("resubmit %s: %v", l.Role, err)
		}
		ev2, err := sigstore.Verify(again, md, ks, v.policy)
		if err != nil {
			t.Fatal(err)
		}
		if ev2.LogIndex <= ev.LogIndex {
			t.Errorf("%s: resubmitted entry at %d, first at %d", l.Role, ev2.LogIndex, ev.LogIndex)
		}
	}

	// A device whose policy names the Rekor log installs the release from
	// the repository directory served over HTTP, with nothing but the
	// Sigstore bundles as transparency evidence.
	d := newDevice(t, v)
	res1, err := d.Update(ctx)
	if err != nil || !res1.Installed {
		t.Fatalf("device update: %+v %v", res1, err)
	}
	if b, err := os.ReadFile(filepath.Join(d.Dir, "install", "current", "fw", "image.bin")); err != nil || string(b) != "firmware v1" {
		t.Errorf("installed image: %q %v", b, err)
	}

	// A second release, with a delegated role signed by an Ed25519 key.
	r, err := repo.Open(v.dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Delegate(repo.DelegateOptions{Name: "apps", Paths: []string{"apps/*"}, Keys: []*metadata.Key{v.keys["apps"].Public}}); err != nil {
		r.Close()
		t.Fatal(err)
	}
	r.Close()
	v.sign(t, "targets")
	v.addTarget(t, "apps/a.bin", []byte("app a"))
	v.sign(t, "apps")
	res = v.publish(t, c)
	if len(res.Logged) != 2 || res.Exposed == nil || res.Exposed.Unchanged {
		t.Fatalf("second publish %+v", res)
	}
	// Offline: an update bundle built from the repository carries the
	// Sigstore bundles; a fresh device installs it, and refuses it when
	// a Sigstore bundle inside is spoiled.
	installUpdateBundle(t, v, []string{"fw/image.bin", "apps/a.bin"})

	// The device moves to it: its newer Rekor v1 checkpoint is proven
	// consistent with the one it holds by the log's own consistency proof
	// (Rekor v1 has no witnesses to vouch for it).
	res2, err := d.Update(ctx)
	if err != nil || !res2.Installed {
		t.Fatalf("second device update: %+v %v", res2, err)
	}
	if b, err := os.ReadFile(filepath.Join(d.Dir, "install", "current", "apps", "a.bin")); err != nil || string(b) != "app a" {
		t.Errorf("installed app: %q %v", b, err)
	}

	// Ed25519ph signatures are deterministic: resubmitting apps finds the
	// existing entry (Rekor answers 409) instead of logging it again.
	md, err := os.ReadFile(filepath.Join(v.dir, "metadata", "1.apps.json"))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(filepath.Join(v.dir, "metadata", "1.apps.json"+repo.SigstoreSuffix))
	again, err := c.Submit(ctx, md, v.keys["apps"])
	if err != nil {
		t.Fatal(err)
	}
	ks := map[string]*metadata.Key{v.keys["apps"].ID: v.keys["apps"].Public}
	ev1, err1 := sigstore.Verify(first, md, ks, v.policy)
	ev2, err2 := sigstore.Verify(again, md, ks, v.policy)
	if err1 != nil || err2 != nil || ev1.LogIndex != ev2.LogIndex {
		t.Errorf("apps resubmitted: %v %v, indexes %v %v", err1, err2, ev1, ev2)
	}

	// The auditor follows the log through its v1 API: every vendor entry
	// is a release the vendor made.
	vendor, err := auditrekor.VendorFromRepoDir(v.dir)
	if err != nil {
		t.Fatal(err)
	}
	acfg := auditrekor.Config{URL: srv.URL, API: auditrekor.V1, Policy: v.policy, Vendor: vendor, StateDir: t.TempDir()}
	ar, err := auditrekor.Run(ctx, acfg)
	if err != nil {
		t.Fatal(err)
	}
	// root, targets, their two resubmissions, targets v2 and apps (the apps resubmission found the same entry).
	if ar.Entries != 6 || ar.VendorEntries != int(ar.Entries) || ar.Expected != ar.VendorEntries || len(ar.Findings) != 0 {
		t.Fatalf("audit: %d entries, %d vendor, %d expected, findings %+v", ar.Entries, ar.VendorEntries, ar.Expected, ar.Findings)
	}
	// Attack: the targets key (stolen) signs a release the vendor never made.
	if _, err := c.Submit(ctx, []byte(`{"signed":{"_type":"targets","version":666}}`), v.keys["targets"]); err != nil {
		t.Fatal(err)
	}
	ar, err = auditrekor.Run(ctx, acfg)
	if err != nil {
		t.Fatal(err)
	}
	if ar.Entries != 1 || len(ar.Findings) != 1 || ar.Findings[0].Kind != alert.KindUnexpected {
		t.Fatalf("audit after a stolen-key entry: %d entries, findings %+v", ar.Entries, ar.Findings)
	}
}
