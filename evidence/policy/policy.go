// Package policy implements the trust policy text of C2SP tlog-policy (the
// Sigsum policy format with C2SP vkeys): which logs a verifier trusts, which
// witnesses it knows, and the quorum of witnesses whose cosignatures make a
// checkpoint acceptable.
//
// One statement per line; '#' starts a comment; blank lines are ignored:
//
//	log example.com/log+3fa45b1e+AcWvd2RX... https://log.example.com
//	witness w1 w1.example+12345678+BBHf3PKn... https://w1.example
//	witness w2 w2.example+9abcdef0+BAQ0Ek7t...
//	witness w3 w3.example+01234567+BO2y4Xyz...
//	group two-of-three 2 w1 w2 w3
//	quorum two-of-three
//
// "log <vkey> [url]" names a log; its origin is the vkey's key name. "witness
// <name> <vkey> [url]" names a witness by an Ed25519 (0x01) or cosignature/v1
// (0x04) vkey. "group <name> all|any|<k> <member>…" makes a k-of-n group of
// witnesses and groups defined earlier. "quorum <name>|none" appears exactly
// once. Witnesses and groups share one namespace; every witness and group is
// used exactly once (as a member of one group, or as the quorum), and no two
// witnesses share a key, so a quorum is always met by distinct keys.
package policy

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/shiplog/shiplog/evidence/notekey"
	"golang.org/x/mod/sumdb/note"
)

// Limits of Parse. They are above the at least 32 logs, 32 witnesses and 32
// groups that a tlog-policy verifier must support.
const (
	MaxLogs      = 64
	MaxWitnesses = 64
	MaxGroups    = 64
	MaxSize      = 64 << 10
	maxLineLen   = 4096
)

// Log is a log the policy trusts.
type Log struct {
	VKey     string
	Origin   string
	Verifier note.Verifier
	URL      string // optional
}

// Witness is a witness the policy knows.
type Witness struct {
	Name     string
	VKey     string        // as written in the policy
	Verifier note.Verifier // cosignature/v1 verifier, 0x04 key ID
	URL      string        // optional
}

// Group is a k-of-n group of witnesses and groups.
type Group struct {
	Name      string
	Threshold int
	Witnesses []*Witness // members that are witnesses
	Groups    []*Group   // members that are groups
}

// Policy is a parsed tlog-policy. It is immutable once parsed and safe for
// concurrent use.
type Policy struct {
	Logs      []*Log
	Witnesses []*Witness
	// Quorum is nil for "quorum none".
	Quorum *Group
}

// Parse parses a policy. It rejects unknown keywords, malformed keys, names
// used twice, members used before definition or in two groups, a witness key
// listed twice, thresholds out of range, a missing or repeated quorum line,
// and more than the Max* limits.
func Parse(b []byte) (*Policy, error) {
	if len(b) > MaxSize {
		return nil, errors.New("policy too large")
	}
	p := &parser{names: map[string]any{}, used: map[string]bool{}, keys: map[string]bool{}, policy: &Policy{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1024), maxLineLen)
	for lineNo := 1; sc.Scan(); lineNo++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if err := p.statement(fields); err != nil {
			return nil, fmt.Errorf("policy line %d: %w", lineNo, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("couldn't read policy: %w", err)
	}
	if !p.quorumSet {
		return nil, errors.New("policy has no quorum line")
	}
	if len(p.policy.Logs) == 0 {
		return nil, errors.New("policy names no log")
	}
	// Every witness and group must count towards the quorum. Besides catching
	// mistakes, this makes a policy fragile in the right way: a member dropped
	// by an edit (or a stray '#') leaves it unused and the policy is refused,
	// rather than silently turning "all a b c" into "all a b".
	for name := range p.names {
		if !p.used[name] && name != p.quorumName {
			return nil, fmt.Errorf("%q is defined but not part of the quorum", name)
		}
	}
	return p.policy, nil
}

type parser struct {
	names      map[string]any // *Witness or *Group
	used       map[string]bool
	keys       map[string]bool
	groups     int
	quorumSet  bool
	quorumName string
	policy     *Policy
}

func (p *parser) statement(f []string) error {
	switch f[0] {
	case "log":
		return p.log(f[1:])
	case "witness":
		return p.witness(f[1:])
	case "group":
		return p.group(f[1:])
	case "quorum":
		return p.quorum(f[1:])
	default:
		return fmt.Errorf("unknown keyword %q", f[0])
	}
}

func (p *parser) log(args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return errors.New(`want "log <vkey> [url]"`)
	}
	if len(p.policy.Logs) == MaxLogs {
		return fmt.Errorf("more than %d logs", MaxLogs)
	}
	v, err := notekey.ParseLogVerifier(args[0])
	if err != nil {
		return fmt.Errorf("log key: %w", err)
	}
	if err := p.claimKey(args[0]); err != nil {
		return err
	}
	l := &Log{VKey: args[0], Origin: v.Name(), Verifier: v}
	if len(args) == 2 {
		if l.URL, err = checkURL(args[1]); err != nil {
			return err
		}
	}
	p.policy.Logs = append(p.policy.Logs, l)
	return nil
}

func (p *parser) witness(args []string) error {
	if len(args) < 2 || len(args) > 3 {
		return errors.New(`want "witness <name> <vkey> [url]"`)
	}
	if len(p.policy.Witnesses) == MaxWitnesses {
		return fmt.Errorf("more than %d witnesses", MaxWitnesses)
	}
	if err := p.claimName(args[0]); err != nil {
		return err
	}
	v, err := notekey.ParseWitnessVerifier(args[1])
	if err != nil {
		return fmt.Errorf("witness %q key: %w", args[0], err)
	}
	if err := p.claimKey(args[1]); err != nil {
		return err
	}
	w := &Witness{Name: args[0], VKey: args[1], Verifier: v}
	if len(args) == 3 {
		if w.URL, err = checkURL(args[2]); err != nil {
			return err
		}
	}
	p.names[w.Name] = w
	p.policy.Witnesses = append(p.policy.Witnesses, w)
	return nil
}

func (p *parser) group(args []string) error {
	if len(args) < 3 {
		return errors.New(`want "group <name> all|any|<k> <member>..."`)
	}
	if p.groups == MaxGroups {
		return fmt.Errorf("more than %d groups", MaxGroups)
	}
	if err := p.claimName(args[0]); err != nil {
		return err
	}
	g := &Group{Name: args[0]}
	members := args[2:]
	switch args[1] {
	case "all":
		g.Threshold = len(members)
	case "any":
		g.Threshold = 1
	default:
		k, err := strconv.Atoi(args[1])
		if err != nil || strconv.Itoa(k) != args[1] || k < 1 || k > len(members) {
			return fmt.Errorf("group %q: threshold %q must be all, any or 1-%d", g.Name, args[1], len(members))
		}
		g.Threshold = k
	}
	for _, m := range members {
		c, ok := p.names[m]
		if !ok {
			return fmt.Errorf("group %q: member %q is not defined above", g.Name, m)
		}
		if p.used[m] {
			return fmt.Errorf("group %q: member %q already belongs to a group", g.Name, m)
		}
		p.used[m] = true
		switch c := c.(type) {
		case *Witness:
			g.Witnesses = append(g.Witnesses, c)
		case *Group:
			g.Groups = append(g.Groups, c)
		}
	}
	p.groups++
	p.names[g.Name] = g
	return nil
}

func (p *parser) quorum(args []string) error {
	if len(args) != 1 {
		return errors.New(`want "quorum <name>|none"`)
	}
	if p.quorumSet {
		return errors.New("second quorum line")
	}
	p.quorumSet = true
	p.quorumName = args[0]
	if args[0] == "none" {
		return nil
	}
	switch c := p.names[args[0]].(type) {
	case *Group:
		p.policy.Quorum = c
	case *Witness:
		p.policy.Quorum = &Group{Name: c.Name, Threshold: 1, Witnesses: []*Witness{c}}
	default:
		return fmt.Errorf("quorum %q is not defined above", args[0])
	}
	return nil
}

var keywords = map[string]bool{"log": true, "witness": true, "group": true, "quorum": true, "all": true, "any": true, "none": true}

func (p *parser) claimName(name string) error {
	if keywords[name] || len(name) > 255 {
		return fmt.Errorf("invalid name %q", name)
	}
	if _, ok := p.names[name]; ok {
		return fmt.Errorf("name %q defined twice", name)
	}
	return nil
}

// claimKey refuses a key listed twice: the same public key counts once
// whatever its name or vkey type.
func (p *parser) claimKey(vkey string) error {
	_, rest, _ := strings.Cut(vkey, "+")
	_, b64, _ := strings.Cut(rest, "+")
	raw, err := base64.StdEncoding.DecodeString(b64) // already parsed by notekey
	if err != nil || len(raw) < 2 {
		return errors.New("malformed key")
	}
	id := string(raw[1:])
	if p.keys[id] {
		return errors.New("key listed twice")
	}
	p.keys[id] = true
	return nil
}

func checkURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("invalid URL %q: want http(s)://host/...", s)
	}
	return s, nil
}

// Log returns the policy's log with the given origin, or nil.
func (p *Policy) Log(origin string) *Log {
	for _, l := range p.Logs {
		if l.Origin == origin {
			return l
		}
	}
	return nil
}

// WitnessVerifiers returns the cosignature verifiers of every witness.
func (p *Policy) WitnessVerifiers() []note.Verifier {
	vs := make([]note.Verifier, len(p.Witnesses))
	for i, w := range p.Witnesses {
		vs[i] = w.Verifier
	}
	return vs
}

// Satisfied reports whether the witnesses whose cosignatures verified,
// identified by name and key ID, meet the quorum. A nil quorum ("none") is
// always satisfied. Each witness counts once however many of its signatures
// are given.
func (p *Policy) Satisfied(cosigned func(w *Witness) bool) bool {
	if p.Quorum == nil {
		return true
	}
	return p.Quorum.satisfied(cosigned)
}

func (g *Group) satisfied(cosigned func(w *Witness) bool) bool {
	n := 0
	for _, w := range g.Witnesses {
		if cosigned(w) {
			n++
		}
	}
	for _, c := range g.Groups {
		if c.satisfied(cosigned) {
			n++
		}
	}
	return n >= g.Threshold
}
