package witness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/shiplog/shiplog/evidence/notekey"
	"golang.org/x/mod/sumdb/note"
)

// Limits of ParseLogList.
const (
	MaxLogListSize  = 8 << 20
	MaxLogs         = 100_000
	MaxKeysPerLog   = 8
	maxLogListLine  = 4096
	logListHeader   = "logs/v0"
	maxOriginLength = 1024
)

// Log is a log the witness cosigns for: its origin, the keys whose
// signature makes a checkpoint of that origin acceptable, and its quota.
type Log struct {
	Origin string
	// VKeys are the log's verifier keys as written in the list, and
	// Verifiers the parsed keys, in the same order.
	VKeys     []string
	Verifiers []note.Verifier
	known     note.Verifiers
	// QPD is the number of add-checkpoint requests per day the log may make;
	// 0 means no limit.
	QPD uint64
}

// LogList is a parsed list of the logs a witness cosigns for. It is
// immutable once parsed and safe for concurrent use.
type LogList struct {
	logs map[string]*Log
}

// Log returns the log with origin, or nil.
func (l *LogList) Log(origin string) *Log {
	if l == nil {
		return nil
	}
	return l.logs[origin]
}

// Len returns the number of logs in l.
func (l *LogList) Len() int {
	if l == nil {
		return 0
	}
	return len(l.logs)
}

// ParseLogList parses the witness network's log list format ("logs/v0"), as
// published by the public witness network and read by litewitness's
// witnessctl:
//
//	logs/v0
//	# comments and blank lines are ignored
//	vkey example.com/log+3fa45b1e+AcWvd2RX...
//	origin example.com/log
//	qpd 1440
//	contact ops@example.com
//
// Every entry starts with a "vkey" line (an Ed25519 or ECDSA note key, see
// notekey.ParseLogVerifier); an optional "origin" line sets the checkpoint
// origin (default: the key's name), "qpd" the requests per day the log may
// make (decimal, default unlimited) and "contact" is kept for operators.
// Entries with the same origin add keys to one log (key rotation); their
// qpd lines must agree. Unlike the lenient parsers of other witnesses, it
// refuses unknown keywords, repeated lines within an entry, a key listed
// twice, and more than MaxLogs logs or MaxKeysPerLog keys per log, so that a
// typo fails loudly instead of silently dropping a log.
func ParseLogList(b []byte) (*LogList, error) {
	if len(b) > MaxLogListSize {
		return nil, fmt.Errorf("log list larger than %d bytes", MaxLogListSize)
	}
	p := &logListParser{list: &LogList{logs: map[string]*Log{}}, keys: map[string]bool{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1024), maxLogListLine)
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := p.line(line); err != nil {
			return nil, fmt.Errorf("log list line %d: %w", lineNo, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("couldn't read log list: %w", err)
	}
	if !p.header {
		return nil, errors.New("log list has no logs/v0 header")
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	for _, l := range p.list.logs {
		l.known = note.VerifierList(l.Verifiers...)
	}
	return p.list, nil
}

type logListParser struct {
	list   *LogList
	keys   map[string]bool
	header bool
	cur    *logEntry
}

type logEntry struct {
	vkey     string
	verifier note.Verifier
	origin   string
	qpd      uint64
	seen     map[string]bool
}

func (p *logListParser) line(line string) error {
	if !p.header {
		if line != logListHeader {
			return fmt.Errorf("want the %s header first", logListHeader)
		}
		p.header = true
		return nil
	}
	key, value, _ := strings.Cut(line, " ")
	value = strings.TrimSpace(value)
	if key == "vkey" {
		if err := p.finish(); err != nil {
			return err
		}
		return p.start(value)
	}
	if p.cur == nil {
		return fmt.Errorf("%q before the first vkey line", key)
	}
	if p.cur.seen[key] {
		return fmt.Errorf("second %q line in one entry", key)
	}
	p.cur.seen[key] = true
	switch key {
	case "origin":
		if value == "" || len(value) > maxOriginLength || strings.ContainsAny(value, "\n\r") {
			return errors.New("invalid origin")
		}
		p.cur.origin = value
	case "qpd":
		n, err := strconv.ParseUint(value, 10, 64)
		if err != nil || strconv.FormatUint(n, 10) != value {
			return fmt.Errorf("qpd %q: want a decimal", value)
		}
		p.cur.qpd = n
	case "contact":
	default:
		return fmt.Errorf("unknown keyword %q", key)
	}
	return nil
}

func (p *logListParser) start(vkey string) error {
	v, err := notekey.ParseLogVerifier(vkey)
	if err != nil {
		return fmt.Errorf("vkey: %w", err)
	}
	if p.keys[vkey] {
		return errors.New("vkey listed twice")
	}
	p.keys[vkey] = true
	p.cur = &logEntry{vkey: vkey, verifier: v, origin: v.Name(), seen: map[string]bool{}}
	return nil
}

// finish adds the current entry to the list.
func (p *logListParser) finish() error {
	e := p.cur
	if e == nil {
		return nil
	}
	p.cur = nil
	l := p.list.logs[e.origin]
	if l == nil {
		if len(p.list.logs) == MaxLogs {
			return fmt.Errorf("more than %d logs", MaxLogs)
		}
		l = &Log{Origin: e.origin, QPD: e.qpd}
		p.list.logs[e.origin] = l
	} else if l.QPD != e.qpd {
		return fmt.Errorf("log %q: entries disagree on qpd", e.origin)
	}
	if len(l.VKeys) == MaxKeysPerLog {
		return fmt.Errorf("log %q: more than %d keys", e.origin, MaxKeysPerLog)
	}
	for _, v := range l.Verifiers {
		if v.Name() == e.verifier.Name() && v.KeyHash() == e.verifier.KeyHash() {
			// note.VerifierList could not tell them apart.
			return fmt.Errorf("log %q: two keys share a name and key ID", e.origin)
		}
	}
	l.VKeys = append(l.VKeys, e.vkey)
	l.Verifiers = append(l.Verifiers, e.verifier)
	return nil
}

// FormatLogEntry returns the log list entry for a log key, with an origin
// line if origin differs from the key's name and a qpd line if qpd is not
// zero. It is what "shiplog witness add-log" appends to the list.
func FormatLogEntry(vkey, origin string, qpd uint64) (string, error) {
	v, err := notekey.ParseLogVerifier(vkey)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("vkey " + vkey + "\n")
	if origin != "" && origin != v.Name() {
		b.WriteString("origin " + origin + "\n")
	}
	if qpd != 0 {
		b.WriteString("qpd " + strconv.FormatUint(qpd, 10) + "\n")
	}
	return b.String(), nil
}
