package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/url"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/internal/harness/kit"
	ledgerv1 "github.com/shiplog/shiplog/proto/ledger/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// poisoned is a fixture in which a thief with the targets key logged
// targets v2^63−1, the largest version an entry can carry.
func poisoned(t *testing.T) (f *fixture, stolen []byte) {
	f = newFixture(t)
	stolen = f.repo.Targets(math.MaxInt64)
	if _, r := f.publish(fw, "targets", stolen, "0"); r.code != 200 {
		t.Fatalf("the thief's targets v2^63-1: %d %s", r.code, r.body)
	}
	// Without a rotation the repository is locked out: nothing is above it.
	if _, r := f.publish(fw, "targets", f.repo.Targets(4), "0"); r.code != 409 {
		t.Fatalf("targets v4 after the poisoned version: %d %s, want 409", r.code, r.body)
	}
	return f, stolen
}

// TestVersionPoisoningRecoveredByRotation: after a stolen targets key logged
// the largest version, a root that rotates the targets key starts a new
// version sequence, and a clean release with a small version is logged and
// proven, over HTTP and gRPC.
func TestVersionPoisoningRecoveredByRotation(t *testing.T) {
	f, _ := poisoned(t)
	root2, _ := f.repo.RotateTargetsKey()
	if _, r := f.publish(fw, "root", root2, "0"); r.code != 200 {
		t.Fatalf("root v2 rotating the targets key: %d %s", r.code, r.body)
	}
	clean := f.repo.Targets(4)
	rc, r := f.publish(fw, "targets", clean, "5s")
	if r.code != 200 || rc.Duplicate {
		t.Fatalf("clean targets v4 under the new key: %d %s", r.code, r.body)
	}
	if _, err := evidence.VerifyEntry(fw, "targets", 4, clean, []byte(rc.Proof), f.policy); err != nil {
		t.Errorf("proof of the clean release: %v", err)
	}
	if st, err := f.node.Ledger().Role(fw, "targets"); err != nil || st.Version != 4 || st.Index != rc.Index {
		t.Errorf("targets state after the clean release: %+v %v", st, err)
	}
	// The new sequence only goes up: v4 again (other bytes) and v3 are refused;
	// gRPC agrees, and v5 is accepted there.
	for _, v := range []int64{3, 4} {
		if _, r := f.publish(fw, "targets", f.repo.Targets(v, f.repo.TargetsKeys[0], kit.NewKey()), "0"); r.code != 409 {
			t.Errorf("targets v%d after the clean v4: %d %s, want 409", v, r.code, r.body)
		}
	}
	_, err := f.grpc.Publish(context.Background(), &ledgerv1.PublishRequest{Repo: fw, Role: "targets", Metadata: f.repo.Targets(2, f.repo.TargetsKeys[0], kit.NewKey()), WaitMs: proto.Uint32(0)})
	if status.Code(err) != codes.AlreadyExists {
		t.Errorf("gRPC targets v2 after v4: %v, want AlreadyExists", err)
	}
	if _, err := f.grpc.Publish(context.Background(), &ledgerv1.PublishRequest{Repo: fw, Role: "targets", Metadata: f.repo.Targets(5), WaitMs: proto.Uint32(0)}); err != nil {
		t.Errorf("gRPC targets v5: %v", err)
	}
}

// TestReplayOfPoisonedVersionAfterRotation: once the targets key is rotated,
// the thief's version cannot come back: re-signed with the stolen key it is
// refused (403), and its original bytes are only the entry already on
// record (nothing is appended).
func TestReplayOfPoisonedVersionAfterRotation(t *testing.T) {
	f, stolen := poisoned(t)
	root2, rotated := f.repo.RotateTargetsKey()
	stolenKey := rotated[0]
	if _, r := f.publish(fw, "root", root2, "0"); r.code != 200 {
		t.Fatalf("root v2: %d %s", r.code, r.body)
	}
	if _, r := f.publish(fw, "targets", f.repo.Targets(4), "0"); r.code != 200 {
		t.Fatalf("clean targets v4: %d %s", r.code, r.body)
	}
	before := f.size()
	if _, r := f.publish(fw, "targets", f.repo.Targets(math.MaxInt64, stolenKey, kit.NewKey()), "0"); r.code != 403 {
		t.Errorf("v2^63-1 re-signed with the stolen key: %d %s, want 403", r.code, r.body)
	}
	_, err := f.grpc.Publish(context.Background(), &ledgerv1.PublishRequest{Repo: fw, Role: "targets", Metadata: f.repo.Targets(6, stolenKey), WaitMs: proto.Uint32(0)})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("gRPC v6 signed with the stolen key: %v, want PermissionDenied", err)
	}
	rc, r := f.publish(fw, "targets", stolen, "0")
	if r.code != 200 || !rc.Duplicate || rc.Index != 4 {
		t.Errorf("the thief's exact bytes again: %d %s, want the duplicate at index 4", r.code, r.body)
	}
	if got := f.size(); got != before {
		t.Errorf("log size went from %d to %d", before, got)
	}
	if st, err := f.node.Ledger().Role(fw, "targets"); err != nil || st.Version != 4 {
		t.Errorf("targets state after the replays: %+v %v, want v4", st, err)
	}
}

// TestDelegatedVersionPoisoningRecoveredByRotation: a delegated role's
// sequence belongs to the keys its delegator lists for it; a new targets
// version that rotates them starts it again.
func TestDelegatedVersionPoisoningRecoveredByRotation(t *testing.T) {
	f := newFixture(t)
	f.repo.Delegate("apps")
	if _, r := f.publish(fw, "targets", f.repo.Targets(4), "0"); r.code != 200 {
		t.Fatalf("targets v4 delegating apps: %d %s", r.code, r.body)
	}
	if _, r := f.publish(fw, "apps", f.repo.DelegatedTargets("apps", math.MaxInt64), "0"); r.code != 200 {
		t.Fatalf("apps v2^63-1 with the stolen key: %d %s", r.code, r.body)
	}
	if _, r := f.publish(fw, "apps", f.repo.DelegatedTargets("apps", 2), "0"); r.code != 409 {
		t.Fatalf("apps v2 before the rotation: %d %s, want 409", r.code, r.body)
	}
	stolenKey := f.repo.RotateDelegatedKey("apps")
	if _, r := f.publish(fw, "targets", f.repo.Targets(5), "0"); r.code != 200 {
		t.Fatalf("targets v5 rotating the apps key: %d %s", r.code, r.body)
	}
	if _, r := f.publish(fw, "apps", f.repo.DelegatedTargets("apps", 2), "0"); r.code != 200 {
		t.Errorf("clean apps v2 under the new key: %d %s", r.code, r.body)
	}
	if _, r := f.publish(fw, "apps", f.repo.DelegatedTargets("apps", math.MaxInt64-1, stolenKey), "0"); r.code != 403 {
		t.Errorf("apps re-signed with the stolen key: %d %s, want 403", r.code, r.body)
	}
}

// TestRoleRecordAfterRotationHTTPAndGRPC: the role read (HTTP and gRPC)
// names the latest logged entry by position, the clean release after the
// poisoned one, and refuses malformed names before any lookup.
func TestRoleRecordAfterRotationHTTPAndGRPC(t *testing.T) {
	f, _ := poisoned(t)
	root2, _ := f.repo.RotateTargetsKey()
	if _, r := f.publish(fw, "root", root2, "0"); r.code != 200 {
		t.Fatalf("root v2: %d %s", r.code, r.body)
	}
	clean := f.repo.Targets(4)
	rc, r := f.publish(fw, "targets", clean, "0")
	if r.code != 200 {
		t.Fatalf("clean v4: %d %s", r.code, r.body)
	}
	sum := sha256.Sum256(clean)
	var rec struct {
		Version uint64 `json:"version"`
		SHA256  string `json:"sha256"`
		Index   uint64 `json:"index"`
	}
	hr := f.do("GET", "/v1/repositories/example.com%2Ffw/roles/targets", nil)
	if hr.code != 200 || json.Unmarshal(hr.body, &rec) != nil || rec.Version != 4 || rec.Index != rc.Index || rec.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("HTTP role record: %d %s", hr.code, hr.body)
	}
	g, err := f.grpc.Role(context.Background(), &ledgerv1.RoleRequest{Repo: fw, Role: "targets"})
	if err != nil || g.Version != 4 || g.Index != rc.Index || !bytes.Equal(g.Sha256, sum[:]) {
		t.Errorf("gRPC role record: %v %v", g, err)
	}
	long := strings.Repeat("x", 256)
	for _, c := range []struct {
		repo, role string
		http       int
		code       codes.Code
	}{
		{fw, "apps", 404, codes.NotFound},
		{"example.com/nobody", "targets", 404, codes.NotFound},
		{fw, long, 400, codes.InvalidArgument},
		{long, "targets", 400, codes.InvalidArgument},
		{fw, "has%20space", 400, codes.InvalidArgument},
	} {
		if r := f.do("GET", "/v1/repositories/"+url.PathEscape(c.repo)+"/roles/"+c.role, nil); r.code != c.http {
			t.Errorf("HTTP %s/%.20s: %d %s, want %d", c.repo, c.role, r.code, r.body, c.http)
		}
		role, _ := url.PathUnescape(c.role)
		if _, err := f.grpc.Role(context.Background(), &ledgerv1.RoleRequest{Repo: c.repo, Role: role}); status.Code(err) != c.code {
			t.Errorf("gRPC %s/%.20s: %v, want %v", c.repo, c.role, err, c.code)
		}
	}
}
