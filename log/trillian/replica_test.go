package trillian_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/trillian"
	"github.com/shiplog/shiplog/evidence/entry"
	"github.com/shiplog/shiplog/internal/harness/kit"
	"github.com/shiplog/shiplog/log/conformance"
	"github.com/shiplog/shiplog/log/pgstore"
	"github.com/shiplog/shiplog/log/server"
	"github.com/shiplog/shiplog/log/trillian/trilliantest"
)

// TestDeadReplicaCannotSplitAVersion: a replica queues targets v2 in
// Trillian and dies before indexing it. Another replica, offered a
// different (validly signed) copy of v2, must not log it too: it first
// finishes the dead replica's append, then refuses the copy as a replay
// (409), so the log never holds two v2s for auditors to call equivocation.
func TestDeadReplicaCannotSplitAVersion(t *testing.T) {
	c := trilliantest.Shared(t)
	tree, schema := c.NewTree(t), trilliantest.NewSchema()
	l := conformance.Start(t, conformance.StartOptions{Config: server.Config{
		Storage: server.StorageTrillian, TrillianAddr: c.TrillianAddr, TrillianTreeID: tree,
		PostgresURI: c.PostgresURI, PostgresSchema: schema,
	}})
	const repo = "example.com/split"
	hc := &http.Client{Timeout: 30 * time.Second}
	r := kit.NewRandomRepo(time.Now().Add(time.Hour))
	post := func(path string, body []byte, header ...string) (int, string) {
		req, _ := http.NewRequest("POST", l.URLs[0]+path, bytes.NewReader(body))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, b := post("/v1/admin/repositories?wait=0&id="+url.QueryEscape(repo), r.RootBytes(), "Authorization", "Bearer "+l.Token); code != 200 {
		t.Fatalf("register: %d %s", code, b)
	}
	publish := func(data []byte) (int, string) {
		return post(fmt.Sprintf("/v1/publish?repo=%s&role=targets&wait=0", url.QueryEscape(repo)), data)
	}
	if code, b := publish(r.Targets(1)); code != 200 {
		t.Fatalf("v1: %d %s", code, b)
	}

	// The dying replica: metadata stored, entry recorded as appending and
	// queued in Trillian, never indexed.
	a := r.Targets(2, r.TargetsKeys[0], kit.NewKey())
	e, err := entry.New(repo, "targets", 2, a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := pgstore.Open(context.Background(), pgstore.Options{URI: c.PostgresURI, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.MetadataStore().Put(a); err != nil {
		t.Fatal(err)
	}
	if err := db.Coordinator().SetAppending(ctx, repo, e.Format()); err != nil {
		t.Fatal(err)
	}
	if _, err := trillian.NewTrillianLogClient(c.Client(t)).QueueLeaf(ctx, &trillian.QueueLeafRequest{LogId: tree, Leaf: &trillian.LogLeaf{LeafValue: e.Format()}}); err != nil {
		t.Fatal(err)
	}

	b := r.Targets(2, r.TargetsKeys[0], kit.NewKey())
	if code, body := publish(b); code != 409 {
		t.Fatalf("a second copy of v2 after a replica died mid-append: %d %s, want 409", code, body)
	}
	resp, err := hc.Get(l.URLs[0] + "/v1/repositories/" + repo + "/roles/targets")
	if err != nil {
		t.Fatal(err)
	}
	role, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum := sha256.Sum256(a)
	if !strings.Contains(string(role), hex.EncodeToString(sum[:])) || !strings.Contains(string(role), `"version":2`) {
		t.Fatalf("logged targets: %s, want the dead replica's v2", role)
	}
	if code, body := publish(a); code != 200 || !strings.Contains(body, `"duplicate":true`) {
		t.Fatalf("resubmitting the dead replica's v2: %d %s, want a duplicate", code, body)
	}
	if got, err := db.Coordinator().Appending(ctx, repo); err != nil || got != nil {
		t.Fatalf("appending entry left behind: %q %v", got, err)
	}
}

// TestQueuedVersionCannotBeSplit: a replica releases a repository's lock
// once its entry is queued in Trillian, before Trillian's signer sequenced
// it. A second copy of the same version offered meanwhile (through the
// other replica) must still be refused as a replay: the lock's next holder
// finishes the queued append before it checks. The signer is stopped so
// the first entry stays queued while the second arrives.
func TestQueuedVersionCannotBeSplit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and stops Trillian's signer")
	}
	c := trilliantest.Start(t) // its own cluster: the test stops the signer
	schema := trilliantest.NewSchema()
	l := conformance.Start(t, conformance.StartOptions{Replicas: 2, Config: server.Config{
		Storage: server.StorageTrillian, TrillianAddr: c.TrillianAddr, TrillianTreeID: c.TreeID,
		PostgresURI: c.PostgresURI, PostgresSchema: schema,
	}})
	const repo = "example.com/queued"
	hc := &http.Client{Timeout: 2 * time.Minute}
	r := kit.NewRandomRepo(time.Now().Add(time.Hour))
	post := func(base, path string, body []byte, header ...string) (int, string) {
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(body))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, b := post(l.URLs[0], "/v1/admin/repositories?wait=0&id="+url.QueryEscape(repo), r.RootBytes(), "Authorization", "Bearer "+l.Token); code != 200 {
		t.Fatalf("register: %d %s", code, b)
	}
	publish := func(base string, data []byte) (int, string) {
		return post(base, fmt.Sprintf("/v1/publish?repo=%s&role=targets&wait=0", url.QueryEscape(repo)), data)
	}
	if code, b := publish(l.URLs[0], r.Targets(1)); code != 200 {
		t.Fatalf("v1: %d %s", code, b)
	}
	db, err := pgstore.Open(context.Background(), pgstore.Options{URI: c.PostgresURI, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()

	if err := c.Kill("log_signer"); err != nil {
		t.Fatal(err)
	}
	a, b := r.Targets(2, r.TargetsKeys[0], kit.NewKey()), r.Targets(2, r.TargetsKeys[0], kit.NewKey())
	ea, err := entry.New(repo, "targets", 2, a)
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan int, 1)
	go func() { code, _ := publish(l.URLs[0], a); first <- code }()
	// The first copy is recorded as appending (then queued, then its lock
	// released) before the second is offered.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		e, err := db.Coordinator().Appending(ctx, repo)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(e, ea.Format()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first copy of v2 was never recorded as appending")
		}
	}
	second := make(chan int, 1)
	go func() { code, _ := publish(l.URLs[1], b); second <- code }()
	if err := c.Restart("log_signer"); err != nil {
		t.Fatal(err)
	}
	// Either request may time out (503) on a slow machine while the signer
	// restarts; the second copy is offered again until it gets an answer.
	if code := <-first; code != 200 && code != 503 {
		t.Fatalf("the first copy of v2: %d", code)
	}
	code := <-second
	for deadline := time.Now().Add(2 * time.Minute); code == 503 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		code, _ = publish(l.URLs[1], b)
	}
	if code != 409 {
		t.Fatalf("a second copy of v2 while the first was queued: %d, want 409", code)
	}
	resp, err := hc.Get(l.URLs[0] + "/v1/repositories/" + repo + "/roles/targets")
	if err != nil {
		t.Fatal(err)
	}
	role, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum := sha256.Sum256(a)
	if !strings.Contains(string(role), hex.EncodeToString(sum[:])) || !strings.Contains(string(role), `"version":2`) {
		t.Fatalf("logged targets: %s, want the first copy of v2", role)
	}
}
