package rekor_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/client/sigstore/sigstoretest"
	"github.com/shiplog/shiplog/repo"
	"github.com/shiplog/shiplog/repo/keys"
)

// lyingRekor is an in-memory Rekor log that answers Submit with a bundle
// spoiled by spoil (nil: an honest answer).
type lyingRekor struct {
	log   *sigstoretest.Log
	spoil func(l *sigstoretest.Log, body []byte, key *keys.Private) []byte
}

func (r *lyingRekor) Submit(_ context.Context, body []byte, key *keys.Private) ([]byte, error) {
	if r.spoil != nil {
		return r.spoil(r.log, body, key), nil
	}
	return r.log.Bundle(r.log.Add(body, key.CryptoSigner()), key.ID), nil
}

// TestLyingRekorWritesNothing: a Rekor answer that does not verify under
// the policy (another log, other bytes, another key) is refused and
// nothing is written: no bundle, no metadata file, staging kept.
func TestLyingRekorWritesNothing(t *testing.T) {
	for _, tc := range []struct {
		attack string
		spoil  func(l *sigstoretest.Log, body []byte, key *keys.Private) []byte
		want   string
	}{
		{"bundle from a log the policy does not name", func(_ *sigstoretest.Log, body []byte, key *keys.Private) []byte {
			o := sigstoretest.NewV1("evil.example", 7, 0)
			return o.Bundle(o.Add(body, key.CryptoSigner()), key.ID)
		}, "not signed by a log of the policy"},
		{"bundle for other bytes", func(l *sigstoretest.Log, body []byte, key *keys.Private) []byte {
			return l.Bundle(l.Add(append(body, ' '), key.CryptoSigner()), key.ID)
		}, "not the digest of the metadata"},
		{"entry signed by another key", func(l *sigstoretest.Log, body []byte, key *keys.Private) []byte {
			other, _ := keys.GenerateDefault(keys.ECDSAP256)
			return l.Bundle(l.Add(body, other.CryptoSigner()), key.ID)
		}, "key the role does not list"},
	} {
		t.Run(tc.attack, func(t *testing.T) {
			l := sigstoretest.NewV1("rekor.example", 1, 0)
			v := newVendor(t, string(l.Policy(0)))
			v.addTarget(t, "fw/image.bin", []byte("firmware v1"))
			v.sign(t, "root", "targets")
			before := snapshotDir(t, v.dir)
			_, err := repo.PublishRekor(context.Background(), v.dir, &lyingRekor{log: l, spoil: tc.spoil}, repo.RekorOptions{
				Policy: v.policy, Keys: []*keys.Private{v.keys["root"], v.keys["targets"]},
				SnapshotKey: v.keys["snapshot"], TimestampKey: v.keys["timestamp"],
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("PublishRekor = %v, want %q", err, tc.want)
			}
			if after := snapshotDir(t, v.dir); after != before {
				t.Errorf("the repository changed:\n%s\n->\n%s", before, after)
			}
		})
	}
	// The honest log: both roles logged, exposed.
	l := sigstoretest.NewV1("rekor.example", 1, 0)
	v := newVendor(t, string(l.Policy(0)))
	v.addTarget(t, "fw/image.bin", []byte("firmware v1"))
	v.sign(t, "root", "targets")
	res, err := repo.PublishRekor(context.Background(), v.dir, &lyingRekor{log: l}, repo.RekorOptions{
		Policy: v.policy, Keys: []*keys.Private{v.keys["root"], v.keys["targets"]},
		SnapshotKey: v.keys["snapshot"], TimestampKey: v.keys["timestamp"],
	})
	if err != nil || len(res.Logged) != 2 || res.Exposed == nil {
		t.Fatalf("honest Rekor: %+v %v", res, err)
	}
	// Without a key the role lists, nothing is submitted.
	v.addTarget(t, "fw/image.bin", []byte("firmware v2"))
	v.sign(t, "targets")
	_, err = repo.PublishRekor(context.Background(), v.dir, &lyingRekor{log: l}, repo.RekorOptions{Policy: v.policy, Keys: []*keys.Private{v.keys["root"]}})
	if err == nil || !strings.Contains(err.Error(), "no --key given") {
		t.Fatalf("PublishRekor without the targets key = %v", err)
	}
	if _, err := os.Stat(filepath.Join(v.dir, "metadata", "2.targets.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("2.targets.json written without evidence: %v", err)
	}
}

// snapshotDir lists every file of dir with its SHA-256.
func snapshotDir(t *testing.T, dir string) string {
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || strings.HasSuffix(p, ".lock") {
			return err
		}
		c, _ := os.ReadFile(p)
		sum := sha256.Sum256(c)
		fmt.Fprintf(&b, "%s %x\n", strings.TrimPrefix(p, dir), sum[:8])
		return nil
	})
	return b.String()
}
