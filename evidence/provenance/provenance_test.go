package provenance

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

const (
	sha  = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	rev  = "0123456789abcdef0123456789abcdef01234567"
	good = `{"source":{"uri":"https://example.com/src/fw-1.4.0.tar.gz","digest":{"sha256":"` + sha + `"}},"revision":"v1.4.0","build":{"command":"go build -trimpath -o app.bin ./cmd/fw","toolchain":"go1.26","output":"app.bin"}}`
	git  = `{"source":{"uri":"git+https://example.com/fw.git"},"revision":"` + rev + `","build":{"command":"make"}}`
)

func TestParseAccepts(t *testing.T) {
	for name, in := range map[string]string{
		"archive":      good,
		"git":          git,
		"git file":     `{"source":{"uri":"git+file:///srv/fw"},"revision":"` + rev + `","build":{"command":"make"}}`,
		"file tgz":     `{"source":{"uri":"file:///srv/fw.tgz","digest":{"sha256":"` + sha + `"}},"build":{"command":"make"}}`,
		"zip":          `{"source":{"uri":"https://example.com/a.zip","digest":{"sha256":"` + sha + `"}},"build":{"command":"make","output":"out/app.bin"}}`,
		"sha256 git":   `{"source":{"uri":"git+https://example.com/fw.git"},"revision":"` + sha + `","build":{"command":"make"}}`,
		"white spaces": " {\n \"build\" : {\"command\":\"make\"}, \"source\":{\"uri\":\"file:///a.tar\",\"digest\":{\"sha256\":\"" + sha + "\"}}}\n",
	} {
		t.Run(name, func(t *testing.T) {
			p, err := Parse([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			enc, err := Format(p)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Parse(enc)
			if err != nil || *again != *p {
				t.Fatalf("round trip: %+v, %v", again, err)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"unknown field":        strings.Replace(good, `"revision"`, `"rev":"x","revision"`, 1),
		"unknown build field":  strings.Replace(good, `"toolchain"`, `"env":"x","toolchain"`, 1),
		"other case":           strings.Replace(good, `"revision"`, `"Revision"`, 1),
		"duplicate key":        strings.Replace(good, `"revision":"v1.4.0"`, `"revision":"v1.4.0","revision":"v2"`, 1),
		"duplicate uri":        strings.Replace(good, `"uri":`, `"uri":"https://evil.example/x.tar","uri":`, 1),
		"trailing data":        good + `{}`,
		"no source":            `{"build":{"command":"make"}}`,
		"no build":             `{"source":{"uri":"git+https://example.com/fw.git"},"revision":"` + rev + `"}`,
		"no command":           strings.Replace(git, `"command":"make"`, `"output":"a"`, 1),
		"empty command":        strings.Replace(git, `"command":"make"`, `"command":""`, 1),
		"NUL in command":       strings.Replace(git, `"command":"make"`, `"command":"make\u0000rm"`, 1),
		"number command":       strings.Replace(git, `"command":"make"`, `"command":1`, 1),
		"null revision":        strings.Replace(git, `"`+rev+`"`, `null`, 1),
		"git short revision":   strings.Replace(git, rev, rev[:12], 1),
		"git upper revision":   strings.Replace(git, rev, strings.ToUpper(rev), 1),
		"git tag revision":     strings.Replace(git, `"`+rev+`"`, `"v1.4.0"`, 1),
		"git no revision":      strings.Replace(git, `"revision":"`+rev+`",`, ``, 1),
		"git with digest":      strings.Replace(git, `.git"`, `.git","digest":{"sha256":"`+sha+`"}`, 1),
		"archive no digest":    strings.Replace(good, `,"digest":{"sha256":"`+sha+`"}`, ``, 1),
		"archive sha512":       strings.Replace(good, `"sha256"`, `"sha512"`, 1),
		"archive two digests":  strings.Replace(good, `"sha256":"`+sha+`"`, `"sha256":"`+sha+`","sha512":"`+sha+`"`, 1),
		"archive upper digest": strings.Replace(good, sha, strings.ToUpper(sha), 1),
		"archive short digest": strings.Replace(good, sha, sha[:62], 1),
		"archive not archive":  strings.Replace(good, "fw-1.4.0.tar.gz", "fw-1.4.0.exe", 1),
		"http":                 strings.Replace(good, "https://", "http://", 1),
		"ftp":                  strings.Replace(good, "https://", "ftp://", 1),
		"credentials":          strings.Replace(good, "https://", "https://user:pw@", 1),
		"query":                strings.Replace(good, ".tar.gz", ".tar.gz?x=1", 1),
		"fragment":             strings.Replace(good, ".tar.gz", ".tar.gz#x", 1),
		"no host":              strings.Replace(good, "https://example.com/", "https:///", 1),
		"file with host":       strings.Replace(good, "https://example.com/", "file://host/", 1),
		"relative file":        strings.Replace(good, "https://example.com/src/", "file:src/", 1),
		"dotdot uri":           strings.Replace(good, "/src/", "/src/../", 1),
		"space in uri":         strings.Replace(good, "/src/", "/s rc/", 1),
		"revision control":     strings.Replace(good, "v1.4.0", `v1\n4`, 1),
		"empty revision":       strings.Replace(good, `"v1.4.0"`, `""`, 1),
		"empty output":         strings.Replace(good, `"output":"app.bin"`, `"output":""`, 1),
		"absolute output":      strings.Replace(good, `"output":"app.bin"`, `"output":"/etc/passwd"`, 1),
		"dotdot output":        strings.Replace(good, `"output":"app.bin"`, `"output":"../app.bin"`, 1),
		"inner dotdot output":  strings.Replace(good, `"output":"app.bin"`, `"output":"a/../../b"`, 1),
		"dot output":           strings.Replace(good, `"output":"app.bin"`, `"output":"./app.bin"`, 1),
		"backslash output":     strings.Replace(good, `"output":"app.bin"`, `"output":"..\\\\app.bin"`, 1),
		"long command":         strings.Replace(git, `"command":"make"`, `"command":"`+strings.Repeat("m", MaxCommandLen+1)+`"`, 1),
		"long toolchain":       strings.Replace(good, `"go1.26"`, `"`+strings.Repeat("g", MaxToolchainLen+1)+`"`, 1),
		"too large":            strings.Replace(good, `"go1.26"`, `"go1.26`+strings.Repeat(" ", MaxSize)+`"`, 1),
		"array":                `[` + good + `]`,
		"source array":         `{"source":[],"build":{"command":"make"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if p, err := Parse([]byte(in)); err == nil {
				t.Fatalf("accepted %+v", p)
			}
		})
	}
}

func TestFromCustom(t *testing.T) {
	custom := []byte(`{"notes":"fixes boot","provenance":` + git + `}`)
	p, raw, err := FromCustom(custom)
	if err != nil || p == nil || string(raw) != git {
		t.Fatalf("FromCustom = %+v, %s, %v", p, raw, err)
	}
	if p.Kind() != Git || p.OutputFor("fw/app.bin") != "app.bin" {
		t.Errorf("kind %v, output %q", p.Kind(), p.OutputFor("fw/app.bin"))
	}
	for _, none := range []string{``, `null`, `{"notes":"x"}`} {
		if p, _, err := FromCustom([]byte(none)); p != nil || err != nil {
			t.Errorf("FromCustom(%s) = %+v, %v", none, p, err)
		}
	}
	twice := []byte(`{"provenance":` + good + `,"provenance":` + git + `}`)
	if _, _, err := FromCustom(twice); err == nil {
		t.Error("accepted custom naming provenance twice")
	}
	if _, _, err := FromCustom([]byte(`{"provenance":{"source":{}}}`)); err == nil {
		t.Error("accepted an invalid provenance")
	}
}

func TestWithProvenanceKeepsOtherKeys(t *testing.T) {
	p, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	c, err := WithProvenance([]byte(`{"capabilities":["network"],"notes":"x"}`), p)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(c, &obj); err != nil {
		t.Fatal(err)
	}
	if string(obj["capabilities"]) != `["network"]` || string(obj["notes"]) != `"x"` {
		t.Errorf("other keys lost: %s", c)
	}
	got, _, err := FromCustom(c)
	if err != nil || *got != *p {
		t.Errorf("FromCustom(WithProvenance) = %+v, %v", got, err)
	}
	if _, err := WithProvenance([]byte(`[1]`), p); err == nil {
		t.Error("accepted a custom array")
	}
}

// TestParseRefusesEveryTruncation: no prefix of a declaration is one.
func TestParseRefusesEveryTruncation(t *testing.T) {
	for i := range len(good) {
		if _, err := Parse([]byte(good[:i])); err == nil {
			t.Errorf("accepted a truncation to %d bytes", i)
		}
	}
}

// FuzzParse: whatever Parse accepts is valid, formats within the limits,
// and reads back the same.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(git))
	f.Add([]byte(`{"source":{"uri":"file:///a.zip","digest":{"sha256":"` + sha + `"}},"build":{"command":"x","output":"a/b"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted invalid %+v: %v", p, err)
		}
		enc, err := Format(p)
		if err != nil {
			t.Fatalf("Format of accepted %+v: %v", p, err)
		}
		again, err := Parse(enc)
		if err != nil || *again != *p {
			t.Fatalf("round trip of %s: %+v, %v", enc, again, err)
		}
		if !bytes.Equal(enc, mustFormat(t, again)) {
			t.Fatal("two encodings")
		}
	})
}

func mustFormat(t *testing.T, p *Provenance) []byte {
	b, err := Format(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
