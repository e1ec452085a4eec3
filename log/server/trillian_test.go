package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/log/server"
)

// TestTrillianConfig: "trillian" is a known storage; a ledger on it needs
// the Trillian address and tree and the PostgreSQL URI, from config.json
// or the serve flags, and Init makes no local log for it.
func TestTrillianConfig(t *testing.T) {
	if _, err := server.ParseConfig([]byte(`{"origin":"o","storage":"trillian","trillian_addr":"127.0.0.1:1","trillian_tree_id":5,"postgres_uri":"postgresql:///x","postgres_schema":"s"}`)); err != nil {
		t.Fatalf("trillian config refused: %v", err)
	}
	if _, err := server.ParseConfig([]byte(`{"origin":"o","storage":"mysql"}`)); err == nil {
		t.Fatal("unknown storage accepted")
	}
	if _, err := server.ParseConfig([]byte(`{"origin":"o","storage":"trillian","trillian_tree":5}`)); err == nil {
		t.Fatal("unknown field accepted")
	}
	dir := t.TempDir()
	cfg := server.Config{Storage: server.StorageTrillian}
	if err := server.Init(context.Background(), dir, server.InitOptions{Origin: "trillian.test/log", Config: &cfg}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, server.LogDir)); !os.IsNotExist(err) {
		t.Errorf("Init made a local log for a Trillian ledger (%v)", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, server.ConfigFile))
	if err != nil || !strings.Contains(string(b), `"storage": "trillian"`) {
		t.Fatalf("config.json: %s %v", b, err)
	}
	for _, o := range []server.Options{
		{},
		{TrillianAddr: "127.0.0.1:1", TrillianTreeID: 5},
		{TrillianAddr: "127.0.0.1:1", PostgresURI: "postgresql:///x"},
	} {
		if _, err := server.Open(context.Background(), dir, o); err == nil || !strings.Contains(err.Error(), "trillian_addr, trillian_tree_id and postgres_uri") {
			t.Errorf("Open with %+v: %v, want the missing settings named", o, err)
		}
	}
	if _, err := server.Open(context.Background(), dir, server.Options{PostgresSchema: "Bad-Name", TrillianAddr: "127.0.0.1:1", TrillianTreeID: 5, PostgresURI: "postgresql:///x"}); err == nil {
		t.Error("a schema name that is not an identifier was accepted")
	}
}
