package clilog

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestDurationsInSeconds(t *testing.T) {
	var b bytes.Buffer
	l, err := New(&b, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("round done", "took", 1500*time.Millisecond)
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil || m["took"] != 1.5 {
		t.Fatalf("%v %q", err, b.String())
	}
	b.Reset()
	l, _ = New(&b, "debug", "text")
	l.Debug("x", "took", 250*time.Millisecond)
	if !strings.Contains(b.String(), "took=0.25") {
		t.Fatalf("text: %q", b.String())
	}
}

func TestRejectsUnknown(t *testing.T) {
	if _, err := New(nil, "loud", "text"); err == nil {
		t.Fatal("level loud accepted")
	}
	if _, err := New(nil, "info", "xml"); err == nil {
		t.Fatal("format xml accepted")
	}
}

func TestLevelFilters(t *testing.T) {
	var b bytes.Buffer
	l, _ := New(&b, "warn", "text")
	l.Info("hidden")
	if b.Len() != 0 {
		t.Fatalf("info logged at warn: %q", b.String())
	}
}
