package server_test

import (
	"bytes"
	"context"
	"testing"

	ledgerv1 "github.com/shiplog/shiplog/proto/ledger/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// TestAttackDelegationThroughRotatedOutTargets: a thief with the targets
// key logs targets v4 delegating role "evil" to the thief's key; root v2
// rotates the stolen key out. Until the vendor's next targets, the thief's
// targets delegates nothing: "evil" is refused over HTTP (403, saying to
// publish a new targets) and gRPC (PermissionDenied), and nothing is
// appended. The vendor's clean targets is accepted, and "evil" stays
// refused after it.
func TestAttackDelegationThroughRotatedOutTargets(t *testing.T) {
	f := newFixture(t)
	evilKey := f.repo.Delegate("evil")
	if _, r := f.publish(fw, "targets", f.repo.Targets(4), "0"); r.code != 200 {
		t.Fatalf("the thief's targets v4 delegating evil: %d %s", r.code, r.body)
	}
	root2, _ := f.repo.RotateTargetsKey()
	if _, r := f.publish(fw, "root", root2, "0"); r.code != 200 {
		t.Fatalf("root v2 rotating the targets key: %d %s", r.code, r.body)
	}
	before := f.size()
	evil := f.repo.DelegatedTargets("evil", 1, evilKey)
	if _, r := f.publish(fw, "evil", evil, "0"); r.code != 403 || !bytes.Contains(r.body, []byte("publish a new targets")) {
		t.Errorf("HTTP: the thief's delegated role after the rotation: %d %s, want 403 saying to publish a new targets", r.code, r.body)
	}
	_, err := f.grpc.Publish(context.Background(), &ledgerv1.PublishRequest{Repo: fw, Role: "evil", Metadata: f.repo.DelegatedTargets("evil", 2, evilKey), WaitMs: proto.Uint32(0)})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("gRPC: the thief's delegated role after the rotation: %v, want PermissionDenied", err)
	}
	if got := f.size(); got != before {
		t.Errorf("log size went from %d to %d", before, got)
	}
	f.repo.Top.Signed.Delegations = nil
	if _, r := f.publish(fw, "targets", f.repo.Targets(5), "0"); r.code != 200 {
		t.Fatalf("the vendor's clean targets v5: %d %s", r.code, r.body)
	}
	if _, r := f.publish(fw, "evil", evil, "0"); r.code != 403 {
		t.Errorf("the thief's delegated role after the clean targets: %d %s, want 403", r.code, r.body)
	}
}
