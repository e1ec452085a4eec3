package tufmeta

import (
	"errors"
	"strconv"
)

// errIrregular means the input is outside the regular form the fast
// decoder handles; the caller falls back to go-tuf's decoder, which gives
// the input's real verdict. It is never returned to callers of the package.
var errIrregular = errors.New("tufmeta: irregular encoding")

// maxDepth bounds the nesting the fast decoder follows (TUF metadata nests
// five deep; deeper "custom" values go to go-tuf's decoder).
const maxDepth = 32

// node is one JSON value in the regular form: objects with their keys in
// strictly increasing byte order, strings of printable ASCII with no
// escapes but encoding/json's \u003c, \u003e and \u0026, integers without
// sign on zero, fraction or exponent, true and false (no null). In that
// form a value's canonical JSON (OLPC, as TUF signs it) is its bytes with
// the whitespace between tokens removed and those three escapes replaced
// (compact).
type node struct {
	kind byte   // '{', '[', '"', '0' (integer), 't', 'f'
	str  string // a string's contents, an integer's literal
	span []byte // the value's bytes in the input
	keys []string
	vals []*node // object values, array elements
}

type scanner struct {
	data  []byte
	pos   int
	nodes []node // the current block nodes are allocated from
	// keys and vals are stacks the members of the objects and arrays
	// being read are collected on, copied out at each one's end.
	keys []string
	vals []*node
}

// node returns a new node of kind from the current block (one allocation
// per 64 nodes, not one per node).
func (s *scanner) node(kind byte) *node {
	if len(s.nodes) == cap(s.nodes) {
		s.nodes = make([]node, 0, 64)
	}
	s.nodes = append(s.nodes, node{kind: kind})
	return &s.nodes[len(s.nodes)-1]
}

// names are the field names of TUF metadata and common hash algorithms:
// reading one returns the constant (no allocation).
var names = map[string]string{}

func init() {
	for _, n := range []string{"signatures", "signed", "keyid", "sig", "_type", "spec_version", "version",
		"expires", "consistent_snapshot", "keys", "roles", "keytype", "keyval", "scheme", "public", "keyids",
		"threshold", "meta", "length", "hashes", "targets", "custom", "delegations", "name", "terminating",
		"paths", "path_hash_prefixes", "succinct_roles", "bit_length", "name_prefix", "sha256", "sha512",
		"ed25519", "root", "timestamp", "snapshot", "snapshot.json", "targets.json", "1.0.0", "1.0.31"} {
		names[n] = n
	}
}

// scan parses data as one regular value (whitespace around it allowed).
func scan(data []byte) (*node, error) {
	s := &scanner{data: data}
	n, err := s.value(0)
	if err != nil {
		return nil, err
	}
	s.ws()
	if s.pos != len(s.data) {
		return nil, errIrregular
	}
	return n, nil
}

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) value(depth int) (*node, error) {
	if depth > maxDepth {
		return nil, errIrregular
	}
	s.ws()
	if s.pos >= len(s.data) {
		return nil, errIrregular
	}
	start := s.pos
	var n *node
	var err error
	switch c := s.data[s.pos]; {
	case c == '{':
		n, err = s.object(depth)
	case c == '[':
		n, err = s.array(depth)
	case c == '"':
		var str string
		str, err = s.string()
		n = s.node('"')
		n.str = str
	case c == '-' || c >= '0' && c <= '9':
		n, err = s.integer()
	case c == 't':
		n, err = s.literal("true", 't')
	case c == 'f':
		n, err = s.literal("false", 'f')
	default:
		return nil, errIrregular
	}
	if err != nil {
		return nil, err
	}
	n.span = s.data[start:s.pos]
	return n, nil
}

func (s *scanner) literal(lit string, kind byte) (*node, error) {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return nil, errIrregular
	}
	s.pos += len(lit)
	return s.node(kind), nil
}

// htmlEscapes are the only escapes a regular string may hold: encoding/json
// (and so go-tuf) writes '<', '>' and '&' this way.
var htmlEscapes = map[string]byte{`\u003c`: '<', `\u003e`: '>', `\u0026`: '&'}

// string reads a string of printable ASCII other than '"' and '\\', but for
// the escapes in htmlEscapes, and returns its value (also its canonical
// encoding: canonical JSON escapes only '"' and '\\').
func (s *scanner) string() (string, error) {
	s.pos++ // '"'
	start := s.pos
	escaped := false
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			raw := s.data[start:s.pos]
			s.pos++
			if escaped {
				return string(unescape(nil, raw)), nil
			}
			if name, ok := names[string(raw)]; ok {
				return name, nil
			}
			return string(raw), nil
		case c == '\\':
			if len(s.data)-s.pos < 6 || htmlEscapes[string(s.data[s.pos:s.pos+6])] == 0 {
				return "", errIrregular
			}
			escaped = true
			s.pos += 6
		case c < 0x20 || c > 0x7e:
			return "", errIrregular
		default:
			s.pos++
		}
	}
	return "", errIrregular
}

// unescape appends raw (the inside of a regular string) to out with its
// escapes replaced by the characters they stand for.
func unescape(out, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\\' {
			out = append(out, htmlEscapes[string(raw[i:i+6])])
			i += 5
			continue
		}
		out = append(out, raw[i])
	}
	return out
}

// integer reads -?(0|[1-9][0-9]*) within int64, not "-0", not followed by
// a fraction or exponent.
func (s *scanner) integer() (*node, error) {
	start := s.pos
	if s.data[s.pos] == '-' {
		s.pos++
	}
	digits := s.pos
	for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
		s.pos++
	}
	lit := string(s.data[start:s.pos])
	switch {
	case s.pos == digits, // no digits
		s.pos-digits > 1 && s.data[digits] == '0', // leading zero
		lit == "-0":
		return nil, errIrregular
	}
	if s.pos < len(s.data) {
		if c := s.data[s.pos]; c == '.' || c == 'e' || c == 'E' {
			return nil, errIrregular
		}
	}
	if _, err := strconv.ParseInt(lit, 10, 64); err != nil {
		return nil, errIrregular
	}
	n := s.node('0')
	n.str = lit
	return n, nil
}

func (s *scanner) object(depth int) (*node, error) {
	s.pos++ // '{'
	n := s.node('{')
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return n, nil
	}
	kbase, vbase := len(s.keys), len(s.vals)
	for {
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return nil, errIrregular
		}
		k, err := s.string()
		if err != nil {
			return nil, err
		}
		if len(s.keys) > kbase && k <= s.keys[len(s.keys)-1] { // canonical order, no duplicates
			return nil, errIrregular
		}
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return nil, errIrregular
		}
		s.pos++
		v, err := s.value(depth + 1) // pops what it pushes
		if err != nil {
			return nil, err
		}
		s.keys, s.vals = append(s.keys, k), append(s.vals, v)
		s.ws()
		if s.pos >= len(s.data) {
			return nil, errIrregular
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			n.keys = append([]string(nil), s.keys[kbase:]...)
			n.vals = append([]*node(nil), s.vals[vbase:]...)
			s.keys, s.vals = s.keys[:kbase], s.vals[:vbase]
			return n, nil
		default:
			return nil, errIrregular
		}
	}
}

func (s *scanner) array(depth int) (*node, error) {
	s.pos++ // '['
	n := s.node('[')
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return n, nil
	}
	vbase := len(s.vals)
	for {
		v, err := s.value(depth + 1)
		if err != nil {
			return nil, err
		}
		s.vals = append(s.vals, v)
		s.ws()
		if s.pos >= len(s.data) {
			return nil, errIrregular
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case ']':
			s.pos++
			n.vals = append([]*node(nil), s.vals[vbase:]...)
			s.vals = s.vals[:vbase]
			return n, nil
		default:
			return nil, errIrregular
		}
	}
}

// compact returns span (a regular value) without the whitespace between
// its tokens and with its strings' escapes replaced: its canonical JSON.
// Regular strings hold no '"' and no '\\' but in an escape, so a quote
// always opens or closes a string.
func compact(span []byte) []byte {
	out := make([]byte, 0, len(span))
	in := false
	for i := 0; i < len(span); i++ {
		c := span[i]
		switch {
		case c == '"':
			in = !in
		case in && c == '\\':
			out = append(out, htmlEscapes[string(span[i:i+6])])
			i += 5
			continue
		case !in && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			continue
		}
		out = append(out, c)
	}
	return out
}
