package policy_test

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/shiplog/shiplog/evidence/evidencetest"
	"github.com/shiplog/shiplog/evidence/notekey"
	"github.com/shiplog/shiplog/evidence/policy"
)

func TestParse(t *testing.T) {
	l := evidencetest.NewLog("example.com/log", 4)
	cosig, _ := notekey.CosignatureVKey(l.Witnesses[3].VKey)
	text := fmt.Sprintf(`# a comment
log %s https://log.example.com
witness a %s https://a.example
witness b %s
witness c %s # trailing comment
witness d %s
group ab any a b
group abc 2 ab c d
quorum abc
`, l.VKey, l.Witnesses[0].VKey, l.Witnesses[1].VKey, l.Witnesses[2].VKey, cosig)
	p, err := policy.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Logs) != 1 || p.Logs[0].Origin != "example.com/log" || p.Logs[0].URL != "https://log.example.com" {
		t.Errorf("logs = %+v", p.Logs[0])
	}
	if len(p.Witnesses) != 4 || p.Quorum.Name != "abc" || p.Quorum.Threshold != 2 {
		t.Errorf("policy = %+v", p)
	}
	signed := func(names ...string) func(*policy.Witness) bool {
		return func(w *policy.Witness) bool {
			for _, n := range names {
				if w.Name == n {
					return true
				}
			}
			return false
		}
	}
	for _, tc := range []struct {
		names []string
		want  bool
	}{
		{nil, false}, {[]string{"a"}, false}, {[]string{"a", "b"}, false}, {[]string{"a", "c"}, true},
		{[]string{"c", "d"}, true}, {[]string{"b", "d"}, true}, {[]string{"d"}, false},
	} {
		if got := p.Satisfied(signed(tc.names...)); got != tc.want {
			t.Errorf("Satisfied(%v) = %v, want %v", tc.names, got, tc.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	l := evidencetest.NewLog("example.com/log", 2)
	w0, w1 := l.Witnesses[0].VKey, l.Witnesses[1].VKey
	cosig0, _ := notekey.CosignatureVKey(w0)
	logLine := "log " + l.VKey + "\n"
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"no quorum", logLine},
		{"no log", "quorum none\n"},
		{"two quorums", logLine + "quorum none\nquorum none\n"},
		{"unknown keyword", logLine + "witnesses a " + w0 + "\nquorum none\n"},
		{"undefined member", logLine + "group g any a\nquorum g\n"},
		{"undefined quorum", logLine + "quorum g\n"},
		{"duplicate name", logLine + "witness a " + w0 + "\nwitness a " + w1 + "\nquorum a\n"},
		{"same key twice", logLine + "witness a " + w0 + "\nwitness b " + w0 + "\ngroup g 2 a b\nquorum g\n"},
		{"same key in both forms", logLine + "witness a " + w0 + "\nwitness b " + cosig0 + "\ngroup g 2 a b\nquorum g\n"},
		{"member in two groups", logLine + "witness a " + w0 + "\nwitness b " + w1 + "\ngroup g any a b\ngroup h any a\nquorum g\n"},
		{"member twice in one group", logLine + "witness a " + w0 + "\nwitness b " + w1 + "\ngroup g 2 a a\nquorum g\n"},
		{"threshold too high", logLine + "witness a " + w0 + "\ngroup g 2 a\nquorum g\n"},
		{"threshold zero", logLine + "witness a " + w0 + "\ngroup g 0 a\nquorum g\n"},
		{"threshold leading zero", logLine + "witness a " + w0 + "\ngroup g 01 a\nquorum g\n"},
		{"keyword as name", logLine + "witness all " + w0 + "\nquorum all\n"},
		{"bad witness key", logLine + "witness a " + strings.Replace(w0, "+", "+0", 1) + "\nquorum a\n"},
		{"wrong key ID", logLine + "witness a " + w0[:len(w0)-50] + "00000000" + w0[len(w0)-45:] + "\nquorum a\n"},
		{"log key as ECDSA garbage", "log x+00000000+AgAA\nquorum none\n"},
		{"bad URL", "log " + l.VKey + " ftp://x\nquorum none\n"},
		{"witness outside the quorum", logLine + "witness a " + w0 + "\nwitness b " + w1 + "\nquorum a\n"},
		{"witnesses with quorum none", logLine + "witness a " + w0 + "\nquorum none\n"},
		{"too large", logLine + strings.Repeat("#", policy.MaxSize) + "\nquorum none\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := policy.Parse([]byte(tc.in)); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// TestLimits: at least 32 logs, 32 witnesses and 32 groups are supported.
func TestLimits(t *testing.T) {
	var b strings.Builder
	var members []string
	for i := 0; i < 32; i++ {
		l := evidencetest.NewLog(fmt.Sprintf("log%d.example", i), 1)
		fmt.Fprintf(&b, "log %s\nwitness w%d %s\ngroup g%d any w%d\n", l.VKey, i, l.Witnesses[0].VKey, i, i)
		members = append(members, fmt.Sprintf("g%d", i))
	}
	fmt.Fprintf(&b, "group top 17 %s\nquorum top\n", strings.Join(members, " "))
	p, err := policy.Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Logs) != 32 || len(p.Witnesses) != 32 {
		t.Errorf("got %d logs, %d witnesses", len(p.Logs), len(p.Witnesses))
	}
}

// meaning is what a policy means to a verifier: its log keys and the quorum
// tree over witness keys. Names, URLs, comments and spacing do not count.
func meaning(p *policy.Policy) string {
	var logs []string
	for _, l := range p.Logs {
		logs = append(logs, l.VKey)
	}
	sort.Strings(logs)
	var group func(g *policy.Group) string
	group = func(g *policy.Group) string {
		if g == nil {
			return "none"
		}
		var ms []string
		for _, w := range g.Witnesses {
			v, _ := notekey.CosignatureVKey(w.VKey)
			ms = append(ms, v)
		}
		for _, c := range g.Groups {
			ms = append(ms, group(c))
		}
		sort.Strings(ms)
		return fmt.Sprintf("%d(%s)", g.Threshold, strings.Join(ms, ","))
	}
	return strings.Join(logs, ",") + "|" + group(p.Quorum)
}

// TestMutations: no one-byte change, truncation or extension of a valid
// policy changes what it means without being refused. A change can only be
// refused, or touch a witness or group name consistently (impossible in one
// byte) or nothing that matters.
func TestMutations(t *testing.T) {
	l := evidencetest.NewLog("example.com/log", 3)
	valid := []byte(fmt.Sprintf("log %s\nwitness a %s\nwitness b %s\nwitness c %s\ngroup g all a b c\nquorum g\n",
		l.VKey, l.Witnesses[0].VKey, l.Witnesses[1].VKey, l.Witnesses[2].VKey))
	p, err := policy.Parse(valid)
	if err != nil {
		t.Fatal(err)
	}
	want := meaning(p)
	check := func(m []byte, what string) {
		q, err := policy.Parse(m)
		if err == nil && meaning(q) != want {
			t.Errorf("%s: mutated policy %q accepted with another meaning", what, m)
		}
	}
	for i := range valid {
		for _, c := range []byte{valid[i] ^ 1, valid[i] ^ 0x20, ' ', '\n', '#', '0', '1', '9'} {
			if c != valid[i] {
				m := bytes.Clone(valid)
				m[i] = c
				check(m, fmt.Sprintf("byte %d→%q", i, c))
			}
		}
		check(valid[:i], fmt.Sprintf("truncation to %d", i))
	}
	for _, ext := range []string{"\n", "#", "x", "quorum none\n", "group h any a\n"} {
		check(append(bytes.Clone(valid), ext...), "extension "+ext)
	}
}

func FuzzParse(f *testing.F) {
	l := evidencetest.NewLog("example.com/log", 3)
	f.Add(l.Policy(2))
	f.Add(l.Policy(0))
	f.Add([]byte("log a+b+c\nwitness x y z\ngroup g any x\nquorum g\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := policy.Parse(b)
		if err != nil {
			return
		}
		if len(p.Logs) == 0 || len(p.Logs) > policy.MaxLogs || len(p.Witnesses) > policy.MaxWitnesses {
			t.Fatalf("accepted out-of-limit policy %q", b)
		}
		p.Satisfied(func(*policy.Witness) bool { return true })
	})
}

func BenchmarkParse(b *testing.B) {
	in := evidencetest.NewLog("example.com/log", 3).Policy(2)
	for b.Loop() {
		if _, err := policy.Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}
