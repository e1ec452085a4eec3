package server

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/transparency-dev/tessera/api/layout"
)

// FuzzParseTilePath: any path is either refused or parses to a resource
// whose canonical path is exactly the input.
func FuzzParseTilePath(f *testing.F) {
	for _, s := range []string{"0/000", "0/x001/x234/067.p/8", "entries/000.p/1", "entries/x001/000", "63/000", "64/000",
		"0/00.p/1", "0/000.p/0", "0/000.p/256", "entries/.p/5", "entries/000.p", "0/x000/000", "1/-01", "0/000.p/01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		ref, ok := parseTilePath(p)
		if !ok {
			return
		}
		var want string
		if ref.entries {
			want = layout.EntriesPath(ref.index, ref.width)
		} else {
			want = layout.TilePath(ref.level, ref.index, ref.width)
		}
		if want != "tile/"+p {
			t.Fatalf("%q parsed to %+v whose path is %q", p, ref, want)
		}
	})
}

// FuzzParseConfig: a config either fails or re-encodes to one that parses
// to the same value (strict decoding accepts nothing it would drop).
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"origin":"example.com/log","storage":"posix"}`))
	f.Add([]byte(`{"origin":"o","storage":"posix","batch_max_age":"50ms","rate_limit":-1,"http_addr":"127.0.0.1:0"}`))
	f.Add([]byte(`{"origin":"o","storage":"posix","unknown":1}`))
	f.Add([]byte(`{"origin":"o","storage":"posix","challenge_allowed_nets":["127.0.0.1/32"],"challenge_hosts":{"a.example.com":"127.0.0.1:1"},"max_connections":3}`))
	f.Add([]byte(`{"origin":"o","storage":"posix"} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := ParseConfig(again)
		if err != nil || !reflect.DeepEqual(c2, c) {
			t.Fatalf("%s re-encoded as %s: %+v, %v", b, again, c2, err)
		}
		if strings.TrimSpace(c.Origin) == "" && c.Origin == "" {
			t.Fatal("empty origin accepted")
		}
	})
}
