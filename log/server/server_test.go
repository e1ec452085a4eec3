package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shiplog/shiplog/evidence"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/shiplog/shiplog/log/server"
	ledgerv1 "github.com/shiplog/shiplog/proto/ledger/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// fixture is a node with repository "example.com/fw" registered and
// targets v1..v3 logged.
type fixture struct {
	*testNode
	repo *kit.Repo
	t3   []byte
}

const fw = "example.com/fw"

func newFixture(t *testing.T) *fixture {
	n := startNode(t, nodeOptions{})
	repo := kit.NewRandomRepo(expires)
	if _, r := n.register(fw, repo.RootBytes()); r.code != 200 {
		t.Fatalf("register: %d %s", r.code, r.body)
	}
	f := &fixture{testNode: n, repo: repo}
	for v := int64(1); v <= 3; v++ {
		b := repo.Targets(v)
		rc, r := n.publish(fw, "targets", b, "0")
		if r.code != 200 || rc.Index != uint64(v) {
			t.Fatalf("targets v%d: %d %s", v, r.code, r.body)
		}
		f.t3 = b
	}
	return f
}

// badInput is one refused submission, with its HTTP status and gRPC code.
type badInput struct {
	name       string
	repo, role string
	body       func(f *fixture) []byte
	httpCode   int
	grpcCode   codes.Code
}

func badInputs() []badInput {
	return []badInput{
		{"malformed", fw, "targets", func(*fixture) []byte { return []byte("{not json") }, 400, codes.InvalidArgument},
		{"malformed-empty", fw, "targets", func(*fixture) []byte { return nil }, 400, codes.InvalidArgument},
		{"oversized", fw, "targets", func(*fixture) []byte { return bytes.Repeat([]byte(" "), 5<<20+1) }, 413, codes.ResourceExhausted},
		{"unsigned-targets", fw, "targets", func(f *fixture) []byte { return unsigned(f.repo.Targets(4)) }, 403, codes.PermissionDenied},
		{"signed-by-wrong-key", fw, "targets", func(f *fixture) []byte { return f.repo.Targets(4, kit.NewKey()) }, 403, codes.PermissionDenied},
		{"under-signed-root-rotation", fw, "root", func(f *fixture) []byte { return f.repo.UnderSignedRotation() }, 403, codes.PermissionDenied},
		{"wrong-role-root-as-targets", fw, "targets", func(f *fixture) []byte { return f.repo.RootBytes() }, 400, codes.InvalidArgument},
		{"wrong-role-targets-as-root", fw, "root", func(f *fixture) []byte { return f.repo.Targets(4) }, 400, codes.InvalidArgument},
		{"snapshot-refused", fw, "snapshot", func(f *fixture) []byte { return f.repo.Snapshot(1) }, 400, codes.InvalidArgument},
		{"timestamp-refused", fw, "timestamp", func(f *fixture) []byte { return f.repo.Snapshot(1) }, 400, codes.InvalidArgument},
		{"rolled-back", fw, "targets", func(f *fixture) []byte { return f.repo.Targets(2, f.repo.TargetsKeys[0], kit.NewKey()) }, 409, codes.AlreadyExists},
		{"replayed-different-bytes", fw, "targets", func(f *fixture) []byte { return f.repo.Targets(3, f.repo.TargetsKeys[0], kit.NewKey()) }, 409, codes.AlreadyExists},
		{"expired", fw, "targets", func(f *fixture) []byte { return f.repo.TargetsExpiring(4, time.Now().Add(-time.Hour)) }, 410, codes.FailedPrecondition},
		{"unknown-repository", "example.com/nobody", "targets", func(f *fixture) []byte { return f.repo.Targets(4) }, 404, codes.NotFound},
		{"not-delegated", fw, "apps", func(f *fixture) []byte { return f.repo.DelegatedTargets("apps", 1, kit.NewKey()) }, 403, codes.PermissionDenied},
		{"bad-role-name", fw, "has space", func(f *fixture) []byte { return f.repo.Targets(4) }, 400, codes.InvalidArgument},
	}
}

// unsigned strips the signatures of a metadata file.
func unsigned(b []byte) []byte {
	i := bytes.Index(b, []byte(`"signatures":[`))
	j := bytes.Index(b[i:], []byte("]"))
	return append(append(append([]byte{}, b[:i]...), `"signatures":[`...), b[i+j:]...)
}

// TestBadSubmissionsRefusedHTTP and ...GRPC: every malformed, oversized,
// unsigned, under-signed, wrong-role, rolled-back, expired, unknown
// repository or replayed submission gets its status and changes nothing.
func TestBadSubmissionsRefusedHTTP(t *testing.T) {
	f := newFixture(t)
	before := f.size()
	for _, c := range badInputs() {
		t.Run(c.name, func(t *testing.T) {
			body := c.body(f)
			_, r := f.publish(c.repo, c.role, body, "0")
			if r.code != c.httpCode {
				t.Errorf("status %d (%s), want %d", r.code, r.body, c.httpCode)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || bytes.Count(r.body, []byte("\n")) != 1 {
				t.Errorf("error response %q of type %q: want one text/plain line", r.body, ct)
			}
		})
	}
	if got := f.size(); got != before {
		t.Errorf("log size changed from %d to %d", before, got)
	}
	if st, err := f.node.Ledger().Role(fw, "targets"); err != nil || st.Version != 3 {
		t.Errorf("targets state changed: %+v %v", st, err)
	}
}

func TestBadSubmissionsRefusedGRPC(t *testing.T) {
	f := newFixture(t)
	before := f.size()
	ctx := context.Background()
	for _, c := range badInputs() {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.grpc.Publish(ctx, &ledgerv1.PublishRequest{Repo: c.repo, Role: c.role, Metadata: c.body(f), WaitMs: proto.Uint32(0)})
			if got := status.Code(err); got != c.grpcCode {
				t.Errorf("code %v (%v), want %v", got, err, c.grpcCode)
			}
		})
	}
	if got := f.size(); got != before {
		t.Errorf("log size changed from %d to %d", before, got)
	}
}

func TestIdempotentResubmission(t *testing.T) {
	f := newFixture(t)
	before := f.size()
	rc, r := f.publish(fw, "targets", f.t3, "5s")
	if r.code != 200 || rc.Index != 3 || !rc.Duplicate {
		t.Fatalf("HTTP resubmission: %d %s", r.code, r.body)
	}
	if _, err := evidence.VerifyEntry(fw, "targets", 3, f.t3, []byte(rc.Proof), f.policy); err != nil {
		t.Errorf("proof of the resubmission: %v", err)
	}
	g, err := f.grpc.Publish(context.Background(), &ledgerv1.PublishRequest{Repo: fw, Role: "targets", Metadata: f.t3})
	if err != nil || g.Index != 3 || !g.Duplicate {
		t.Fatalf("gRPC resubmission: %v %v", g, err)
	}
	if _, err := evidence.VerifyEntry(fw, "targets", 3, f.t3, g.Proof, f.policy); err != nil {
		t.Errorf("gRPC proof: %v", err)
	}
	if f.size() != before {
		t.Errorf("resubmission grew the log")
	}
}

func TestRootRotationAndDelegation(t *testing.T) {
	f := newFixture(t)
	// A delegated role is accepted only once a logged targets delegates it.
	f.repo.Delegate("apps")
	apps := f.repo.DelegatedTargets("apps", 1)
	if _, r := f.publish(fw, "apps", apps, "0"); r.code != 403 {
		t.Fatalf("apps before its delegation is logged: %d %s", r.code, r.body)
	}
	if _, r := f.publish(fw, "targets", f.repo.Targets(4), "0"); r.code != 200 {
		t.Fatalf("targets v4 with the delegation: %d %s", r.code, r.body)
	}
	rc, r := f.publish(fw, "apps", apps, "5s")
	if r.code != 200 {
		t.Fatalf("apps v1: %d %s", r.code, r.body)
	}
	if _, err := evidence.VerifyEntry(fw, "apps", 1, apps, []byte(rc.Proof), f.policy); err != nil {
		t.Fatal(err)
	}
	// Root rotation: N+1 signed by old and new keys; then targets still by the targets key.
	oldKeys := f.repo.RootKeys
	v2 := f.repo.RotateRoot()
	if _, r := f.publish(fw, "root", v2, "0"); r.code != 200 {
		t.Fatalf("root v2: %d %s", r.code, r.body)
	}
	// A root v3 signed by the v1 keys only (which v2 revoked) is refused.
	f.repo.RootKeys = oldKeys
	f.repo.Root.Signed.Version = 3
	if _, r := f.publish(fw, "root", f.repo.RootBytes(), "0"); r.code != 403 {
		t.Fatalf("root v3 signed by revoked keys: %d %s", r.code, r.body)
	}
	// Skipping a root version is a version error.
	f.repo.Root.Signed.Version = 5
	if _, r := f.publish(fw, "root", f.repo.RootBytes(), "0"); r.code != 409 && r.code != 403 {
		t.Fatalf("root v5 after v2: %d %s", r.code, r.body)
	}
}

func TestAdminRegistration(t *testing.T) {
	n := startNode(t, nodeOptions{})
	repo := kit.NewRandomRepo(expires)
	root := repo.RootBytes()
	cases := []struct {
		name   string
		header []string
		want   int
	}{
		{"no-token", nil, 401},
		{"wrong-token", []string{"Authorization", "Bearer " + strings.Repeat("0", 64)}, 401},
		{"basic-auth", []string{"Authorization", "Basic " + n.token}, 401},
	}
	for _, c := range cases {
		if r := n.do("POST", "/v1/admin/repositories?id="+fw, root, c.header...); r.code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, r.code, r.body, c.want)
		}
	}
	if n.size() != 0 {
		t.Fatal("unauthenticated registration changed the log")
	}
	rc, r := n.register(fw, root)
	if r.code != 200 || rc.Index != 0 {
		t.Fatalf("register: %d %s", r.code, r.body)
	}
	if rc2, r := n.register(fw, root); r.code != 200 || rc2.Index != 0 || !rc2.Duplicate {
		t.Fatalf("registering again with the same root: %d %s", r.code, r.body)
	}
	if _, r := n.register(fw, kit.NewRandomRepo(expires).RootBytes()); r.code != 409 {
		t.Fatalf("registering again with another root: %d %s", r.code, r.body)
	}
	expired := kit.NewRandomRepo(time.Now().Add(-time.Hour))
	if _, r := n.register("example.com/old", expired.RootBytes()); r.code != 410 {
		t.Fatalf("expired initial root: %d %s", r.code, r.body)
	}
	self := kit.NewRandomRepo(expires)
	self.RootKeys = []kit.Key{kit.NewKey()}
	if _, r := n.register("example.com/unsigned", self.RootBytes()); r.code != 403 {
		t.Fatalf("root not signed by its own keys: %d %s", r.code, r.body)
	}
	if n.size() != 1 {
		t.Fatalf("log size %d after refused registrations, want 1", n.size())
	}
}

func TestRateLimitPerClient(t *testing.T) {
	n := startNode(t, nodeOptions{config: server.Config{RateLimit: 1, RateBurst: 3}})
	seen := map[int]int{}
	for i := 0; i < 6; i++ {
		seen[n.do("GET", "/v1/proof?index=0", nil).code]++
	}
	if seen[429] < 2 {
		t.Fatalf("statuses %v: want 429 after the burst", seen)
	}
	if r := n.do("GET", "/healthz", nil); r.code != 200 {
		t.Fatalf("healthz rate limited: %d", r.code)
	}
	_, err := n.grpc.Checkpoint(context.Background(), &ledgerv1.CheckpointRequest{})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("gRPC after the burst: %v", err)
	}
}

func TestReadAPI(t *testing.T) {
	f := newFixture(t)
	first, err := evidence.VerifyCheckpoint(f.do("GET", "/checkpoint", nil).body, f.policy)
	if err != nil {
		t.Fatal(err)
	}
	rc, r := f.publish(fw, "targets", f.repo.Targets(4), "5s")
	if r.code != 200 || rc.Proof == "" {
		t.Fatalf("publish: %d %s", r.code, r.body)
	}
	cpResp := f.do("GET", "/checkpoint", nil)
	if cpResp.code != 200 || cpResp.header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("checkpoint: %d %v", cpResp.code, cpResp.header)
	}
	cp, err := evidence.VerifyCheckpoint(cpResp.body, f.policy)
	if err != nil {
		t.Fatal(err)
	}
	size := cp.Size
	// Entry bundle 0 (partial) holds the entries; the metadata bundle
	// holds their bytes in the same order.
	eb := f.do("GET", fmt.Sprintf("/tile/entries/000.p/%d", size), nil)
	if eb.code != 200 || eb.header.Get("Content-Type") != "application/octet-stream" || !strings.Contains(eb.header.Get("Cache-Control"), "max-age") {
		t.Fatalf("entry bundle: %d %v", eb.code, eb.header)
	}
	mb := f.do("GET", fmt.Sprintf("/metadata/bundle/000.p/%d", size), nil)
	if mb.code != 200 {
		t.Fatalf("metadata bundle: %d %s", mb.code, mb.body)
	}
	entries := splitBundle(t, eb.body, 2)
	metas := splitBundle(t, mb.body, 4)
	if uint64(len(entries)) != size || len(metas) != len(entries) {
		t.Fatalf("%d entries, %d metadata, size %d", len(entries), len(metas), size)
	}
	for i := range entries {
		e, err := entry.Parse(entries[i])
		if err != nil {
			t.Fatal(err)
		}
		if !e.Matches(e.Repo, e.Role, metas[i]) {
			t.Errorf("metadata %d does not match its entry", i)
		}
		m := f.do("GET", "/metadata/"+hex.EncodeToString(e.SHA256[:]), nil)
		if m.code != 200 || !bytes.Equal(m.body, metas[i]) || !strings.Contains(m.header.Get("Cache-Control"), "immutable") {
			t.Errorf("metadata %d: %d", i, m.code)
		}
		lh := sha256.Sum256(append([]byte{0}, entries[i]...))
		p := f.do("GET", "/v1/proof?leaf="+hex.EncodeToString(lh[:]), nil)
		if p.code != 200 {
			t.Fatalf("proof by leaf %d: %d %s", i, p.code, p.body)
		}
		if _, err := evidence.VerifyInclusion(entries[i], p.body, f.policy); err != nil {
			t.Errorf("proof by leaf %d: %v", i, err)
		}
	}
	tile := f.do("GET", fmt.Sprintf("/tile/0/000.p/%d", size), nil)
	if tile.code != 200 || len(tile.body) != int(size)*32 {
		t.Fatalf("hash tile: %d, %d bytes", tile.code, len(tile.body))
	}
	for _, path := range []string{
		fmt.Sprintf("/tile/0/000.p/%d", size+1), // beyond the cosigned tree
		"/tile/entries/000", "/tile/0/000", "/tile/0/00.p/1", "/tile/0/x000/000.p/1", "/tile/entries/000.p/0",
		"/tile/64/000", "/metadata/" + strings.Repeat("00", 32), "/metadata/XYZ", "/metadata/bundle/001",
	} {
		if r := f.do("GET", path, nil); r.code != 404 {
			t.Errorf("GET %s: %d, want 404", path, r.code)
		}
	}
	// Consistency between two cosigned sizes verifies.
	cons := f.do("GET", fmt.Sprintf("/v1/consistency?old=%d&new=%d", first.Size, size), nil)
	if cons.code != 200 {
		t.Fatalf("consistency: %d %s", cons.code, cons.body)
	}
	var hs [][sha256.Size]byte
	for _, l := range strings.Fields(string(cons.body)) {
		h, _ := base64.StdEncoding.DecodeString(l)
		hs = append(hs, [sha256.Size]byte(h))
	}
	if r := f.do("GET", fmt.Sprintf("/v1/consistency?old=1&new=%d", size+1), nil); r.code != 400 {
		t.Errorf("consistency beyond the cosigned size: %d", r.code)
	}
	role := f.do("GET", "/v1/repositories/example.com/fw/roles/targets", nil)
	if role.code != 200 || !strings.Contains(string(role.body), `"version":4`) {
		t.Errorf("role: %d %s", role.code, role.body)
	}
	if r := f.do("GET", "/v1/repositories/example.com/fw/roles/apps", nil); r.code != 404 {
		t.Errorf("unlogged role: %d", r.code)
	}
	for _, q := range []string{"index=99", "index=01", "index=x", "leaf=00", "index=1&leaf=" + strings.Repeat("00", 32)} {
		want := 400
		if q == "index=99" {
			want = 504
		}
		if r := f.do("GET", "/v1/proof?"+q, nil); r.code != want {
			t.Errorf("proof?%s: %d, want %d", q, r.code, want)
		}
	}
	// The same proof over gRPC.
	g, err := f.grpc.Proof(context.Background(), &ledgerv1.ProofRequest{Entry: &ledgerv1.ProofRequest_Index{Index: rc.Index}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := evidence.VerifyInclusion([]byte(rc.Entry), g.Proof, f.policy); err != nil {
		t.Fatal(err)
	}
	if err := evidence.CheckConsistency(first.Signed, cp.Signed, hs); err != nil {
		t.Errorf("consistency proof %d -> %d: %v", first.Size, cp.Size, err)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if r := f.do("GET", p, nil); r.code != 200 {
			t.Errorf("%s: %d", p, r.code)
		}
	}
	if r := f.do("GET", "/metrics", nil); !bytes.Contains(r.body, []byte("shiplog_ledger_submissions_total")) {
		t.Error("metrics lack shiplog_ledger_submissions_total")
	}
	if r := f.do("GET", "/metrics", nil); !bytes.Contains(r.body, []byte("shiplog_build_info{goversion=")) {
		t.Error("metrics lack shiplog_build_info")
	}
}

func splitBundle(t *testing.T, b []byte, lenBytes int) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		if len(b) < lenBytes {
			t.Fatal("truncated bundle")
		}
		var n int
		if lenBytes == 2 {
			n = int(binary.BigEndian.Uint16(b))
		} else {
			n = int(binary.BigEndian.Uint32(b))
		}
		b = b[lenBytes:]
		if len(b) < n {
			t.Fatal("truncated bundle")
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}
