package repo

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence/policy"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/shiplog/shiplog/repo/keys"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// fixture is a registered, exposed repository with one key per top-level
// role, served to a fake ledger over real HTTP.
type fixture struct {
	t      testing.TB
	dir    string
	ledger *kit.FakeLedger // nil when the fixture uses another ledger
	token  string
	policy *policy.Policy
	keys   map[string]*keys.Private
}

// ledgerEndpoint is where a fixture publishes: URL, admin token and the
// tlog-policy text its proofs satisfy.
type ledgerEndpoint struct {
	URL, Token, Policy string
}

func genKey(t testing.TB, typ keys.Type) *keys.Private {
	t.Helper()
	k, err := keys.GenerateDefault(typ)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newRepo initialises (but does not register) a repository.
func newRepo(t testing.TB, typ keys.Type) *fixture {
	t.Helper()
	l := kit.NewFakeLedger()
	t.Cleanup(l.Close)
	f := newRepoOn(t, typ, ledgerEndpoint{URL: l.URL, Token: l.Token, Policy: l.Policy})
	f.ledger = l
	return f
}

// newRepoOn initialises a repository that publishes to ledger l.
func newRepoOn(t testing.TB, typ keys.Type, l ledgerEndpoint) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: filepath.Join(t.TempDir(), "repo"), token: l.Token, keys: map[string]*keys.Private{}}
	var err error
	if f.policy, err = policy.Parse([]byte(l.Policy)); err != nil {
		t.Fatal(err)
	}
	ks := map[string][]*metadata.Key{}
	for _, role := range TopLevelRoles {
		f.keys[role] = genKey(t, typ)
		ks[role] = []*metadata.Key{f.keys[role].Public}
	}
	if err := Init(f.dir, InitOptions{Repository: "example.com/fw", Ledger: l.URL, Keys: ks}); err != nil {
		t.Fatal(err)
	}
	return f
}

// newFixture returns a registered repository whose targets v1 is logged
// and exposed.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := newRepo(t, keys.Ed25519)
	f.sign(f.keys["root"], "root")
	f.sign(f.keys["targets"], "targets")
	if _, err := Register(context.Background(), f.dir, f.opts(false)); err != nil {
		t.Fatal(err)
	}
	f.publish(true)
	return f
}

func (f *fixture) opts(expose bool) PublishOptions {
	o := PublishOptions{Policy: f.policy, Token: f.token, Wait: 5 * time.Second, RetryDelay: time.Millisecond}
	if expose {
		o.SnapshotKey, o.TimestampKey = f.keys["snapshot"], f.keys["timestamp"]
	}
	return o
}

func (f *fixture) open() *Repo {
	f.t.Helper()
	r, err := Open(f.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) sign(k *keys.Private, roles ...string) []SignResult {
	f.t.Helper()
	r := f.open()
	defer r.Close()
	res, err := r.Sign(k, roles)
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

func (f *fixture) publish(expose bool) *PublishResult {
	f.t.Helper()
	res, err := Publish(context.Background(), f.dir, f.opts(expose))
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

// add adds files with the given contents at the given target paths.
func (f *fixture) add(targets map[string]string) []AddResult {
	f.t.Helper()
	r := f.open()
	defer r.Close()
	var in []TargetInput
	src := f.t.TempDir()
	for p, content := range targets {
		file := filepath.Join(src, filepath.Base(p))
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			f.t.Fatal(err)
		}
		in = append(in, TargetInput{Path: p, File: file})
	}
	res, err := r.Add(AddOptions{Targets: in})
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

// snapshotDir returns a recursive listing of the repository's files with
// their contents, to assert that a refused command changed nothing.
func snapshotDir(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() || filepath.Base(p) == lockFile {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
