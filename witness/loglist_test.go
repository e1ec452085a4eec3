package witness

import (
	"strings"
	"testing"

	"github.com/shiplog/shiplog/evidence/evidencetest"
)

func TestParseLogList(t *testing.T) {
	a := evidencetest.NewLog("example.com/a", 0)
	b := evidencetest.NewLog("example.com/b", 0)
	rotated := evidencetest.NewLog("example.com/a", 0)
	text := "# witness network list\n\nlogs/v0\n" +
		"vkey " + a.VKey + "\nqpd 1440\ncontact ops@example.com\n\n" +
		"vkey " + b.VKey + "\norigin sigsum.org/v1/tree/abc\n" +
		"vkey " + rotated.VKey + "\nqpd 1440\n"
	l, err := ParseLogList([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 2 {
		t.Fatalf("Len = %d, want 2", l.Len())
	}
	if la := l.Log("example.com/a"); la == nil || la.QPD != 1440 || len(la.Verifiers) != 2 {
		t.Errorf("log a = %+v", la)
	}
	if lb := l.Log("sigsum.org/v1/tree/abc"); lb == nil || lb.QPD != 0 || lb.VKeys[0] != b.VKey {
		t.Errorf("log b = %+v", lb)
	}
	if l.Log("example.com/b") != nil {
		t.Error("origin line ignored")
	}
	empty, err := ParseLogList([]byte("logs/v0\n"))
	if err != nil || empty.Len() != 0 {
		t.Errorf("empty list: %v", err)
	}
}

func TestParseLogListRefuses(t *testing.T) {
	a := evidencetest.NewLog("example.com/a", 0)
	tests := map[string]string{
		"no header":        "vkey " + a.VKey + "\n",
		"wrong header":     "logs/v1\nvkey " + a.VKey + "\n",
		"unknown keyword":  "logs/v0\nvkey " + a.VKey + "\nqps 3\n",
		"line before vkey": "logs/v0\nqpd 3\n",
		"bad key":          "logs/v0\nvkey example.com/a+00000000+AAAA\n",
		"key twice":        "logs/v0\nvkey " + a.VKey + "\nvkey " + a.VKey + "\n",
		"qpd twice":        "logs/v0\nvkey " + a.VKey + "\nqpd 1\nqpd 2\n",
		"qpd not decimal":  "logs/v0\nvkey " + a.VKey + "\nqpd 0x10\n",
		"qpd leading zero": "logs/v0\nvkey " + a.VKey + "\nqpd 010\n",
		"qpd disagree": "logs/v0\nvkey " + a.VKey + "\nqpd 1\nvkey " +
			evidencetest.NewLog("example.com/a", 0).VKey + "\nqpd 2\n",
		"empty origin": "logs/v0\nvkey " + a.VKey + "\norigin\n",
		"long line":    "logs/v0\nvkey " + strings.Repeat("a", 5000) + "\n",
	}
	for name, text := range tests {
		if _, err := ParseLogList([]byte(text)); err == nil {
			t.Errorf("%s: accepted %q", name, text)
		}
	}
}

func TestFormatLogEntry(t *testing.T) {
	a := evidencetest.NewLog("example.com/a", 0)
	e, err := FormatLogEntry(a.VKey, "other.example/a", 24)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseLogList([]byte("logs/v0\n" + e))
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Log("other.example/a"); got == nil || got.QPD != 24 {
		t.Errorf("round trip: %+v", got)
	}
}

func FuzzParseLogList(f *testing.F) {
	a := evidencetest.NewLog("example.com/a", 0)
	f.Add([]byte("logs/v0\nvkey " + a.VKey + "\nqpd 1440\ncontact x\n"))
	f.Add([]byte("logs/v0\n# c\n\nvkey " + a.VKey + "\norigin o\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseLogList(b)
		if err != nil {
			return
		}
		for origin, lg := range l.logs {
			if origin == "" || len(lg.Verifiers) == 0 || len(lg.Verifiers) > MaxKeysPerLog || len(lg.VKeys) != len(lg.Verifiers) {
				t.Errorf("bad log %q: %+v", origin, lg)
			}
		}
	})
}
