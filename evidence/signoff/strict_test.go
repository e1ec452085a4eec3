package signoff

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseJSON(t *testing.T) {
	for _, ok := range []string{
		`{}`, `[]`, ` {"a":1} `, `{"a":[1,-2.5e+3,0,true,false,null,"x\"\\\u00e9"]}`, `"plain"`, `0`, `-0.0E-1`,
		`{"a":{"b":{"c":[{"d":1}]}}}`, `{"é":"ü"}`,
	} {
		if _, err := parseJSON([]byte(ok)); err != nil {
			t.Errorf("parseJSON(%s): %v", ok, err)
		}
	}
	for _, bad := range []string{
		``, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `{"a":1}{}`, `{"a":1} x`, `{'a':1}`, `{"a":01}`, `{"a":1.}`,
		`{"a":.5}`, `{"a":1e}`, `{"a":+1}`, `{"a":tru}`, `{"a":nul}`, `{"a":"x` + "\x01" + `"}`, `{"a":"` + "\xff" + `"}`,
		`{"a":"\x"}`, `{"a":1,"a":2}`, `{"a":1,"A":2}`, `{"b":{"k":1,"K":2}}`,
		`{"a1":1,"a2":2,"a3":3,"a4":4,"a5":5,"a6":6,"a7":7,"a8":8,"a9":9,"A9":10}`,
		strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
	} {
		if v, err := parseJSON([]byte(bad)); err == nil {
			t.Errorf("parseJSON(%q) = %+v, want error", bad, v)
		}
	}
}

// FuzzParseJSON: the strict reader accepts only what encoding/json
// accepts, and reads strings as it does.
func FuzzParseJSON(f *testing.F) {
	f.Add([]byte(`{"a":[1,"x\u00e9",{"b":null}],"c":-1.5e3}`))
	b, _ := statement(Reproduced, testRepo, testSubject).Format()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseJSON(b)
		if err != nil {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("parseJSON accepted invalid JSON %q", b)
		}
		var walk func(v *jvalue)
		walk = func(v *jvalue) {
			if v.kind == '"' {
				var s string
				if err := json.Unmarshal(v.raw, &s); err != nil || s != v.str {
					t.Fatalf("string %q read as %q, encoding/json reads %q (%v)", v.raw, v.str, s, err)
				}
			}
			for _, m := range append(v.vals, v.elems...) {
				walk(m)
			}
		}
		walk(v)
	})
}
