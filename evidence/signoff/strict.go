package signoff

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds JSON nesting (the provenance object is the only nested
// value of any depth; its own spec keeps it shallow).
const maxDepth = 32

var (
	errSyntax    = errors.New("malformed JSON")
	errDuplicate = errors.New("duplicate key")
)

// jvalue is one parsed JSON value: its exact bytes, and for a string its
// decoded text, for an object its members in order, for an array its
// elements.
type jvalue struct {
	kind  byte // '{', '[', '"', '0' (number), 't', 'f', 'n'
	raw   []byte
	str   string
	keys  []string
	vals  []*jvalue
	elems []*jvalue
}

// parseJSON parses one JSON text strictly, in a single pass: RFC 8259
// syntax; strings of valid UTF-8 without control characters; no object
// repeating a key, compared case-insensitively as encoding/json matches
// field names (so two parsers cannot read one text two ways); at most
// maxDepth levels; nothing but white space after the value.
func parseJSON(b []byte) (*jvalue, error) {
	p := &jparser{b: b}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.b) {
		return nil, errors.New("trailing data")
	}
	return v, nil
}

type jparser struct {
	b []byte
	i int
}

func (p *jparser) space() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *jparser) value(depth int) (*jvalue, error) {
	p.space()
	if p.i >= len(p.b) {
		return nil, errSyntax
	}
	start := p.i
	var v *jvalue
	var err error
	switch c := p.b[p.i]; {
	case c == '{':
		v, err = p.object(depth)
	case c == '[':
		v, err = p.array(depth)
	case c == '"':
		var s string
		s, err = p.string()
		v = &jvalue{kind: '"', str: s}
	case c == 't', c == 'f', c == 'n':
		v, err = p.literal()
	case c == '-' || (c >= '0' && c <= '9'):
		v, err = &jvalue{kind: '0'}, p.number()
	default:
		return nil, errSyntax
	}
	if err != nil {
		return nil, err
	}
	v.raw = p.b[start:p.i]
	return v, nil
}

func (p *jparser) object(depth int) (*jvalue, error) {
	if depth >= maxDepth {
		return nil, errors.New("nested too deeply")
	}
	p.i++ // '{'
	v := &jvalue{kind: '{'}
	var seen map[string]bool // lowercased keys, once there are more than a few
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return v, nil
	}
	for {
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, errSyntax
		}
		k, err := p.string()
		if err != nil {
			return nil, err
		}
		if len(v.keys) < 8 {
			for _, o := range v.keys {
				if strings.EqualFold(o, k) {
					return nil, errDuplicate
				}
			}
		} else {
			if seen == nil {
				seen = map[string]bool{}
				for _, o := range v.keys {
					seen[strings.ToLower(o)] = true
				}
			}
			if seen[strings.ToLower(k)] {
				return nil, errDuplicate
			}
			seen[strings.ToLower(k)] = true
		}
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, errSyntax
		}
		p.i++
		m, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v.keys, v.vals = append(v.keys, k), append(v.vals, m)
		p.space()
		if p.i >= len(p.b) {
			return nil, errSyntax
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return v, nil
		default:
			return nil, errSyntax
		}
	}
}

func (p *jparser) array(depth int) (*jvalue, error) {
	if depth >= maxDepth {
		return nil, errors.New("nested too deeply")
	}
	p.i++ // '['
	v := &jvalue{kind: '['}
	p.space()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return v, nil
	}
	for {
		e, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v.elems = append(v.elems, e)
		p.space()
		if p.i >= len(p.b) {
			return nil, errSyntax
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return v, nil
		default:
			return nil, errSyntax
		}
	}
}

// string reads a string at p.i (its opening quote): plain text is taken as
// it is; one with escapes is decoded by encoding/json. Control characters
// and invalid UTF-8 are refused.
func (p *jparser) string() (string, error) {
	start := p.i
	p.i++
	escaped := false
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			raw := p.b[start:p.i]
			if !utf8.Valid(raw) {
				return "", errors.New("invalid UTF-8")
			}
			if !escaped {
				return string(raw[1 : len(raw)-1]), nil
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", errSyntax
			}
			return s, nil
		case c == '\\':
			escaped = true
			p.i += 2
		case c < 0x20:
			return "", errSyntax
		default:
			p.i++
		}
	}
	return "", errSyntax
}

func (p *jparser) literal() (*jvalue, error) {
	for _, lit := range []string{"true", "false", "null"} {
		if strings.HasPrefix(string(p.b[p.i:min(len(p.b), p.i+5)]), lit) {
			p.i += len(lit)
			return &jvalue{kind: lit[0]}, nil
		}
	}
	return nil, errSyntax
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (p *jparser) number() error {
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.b[p.i] == '-' {
		p.i++
	}
	if p.i < len(p.b) && p.b[p.i] == '0' {
		p.i++
	} else if digits() == 0 {
		return errSyntax
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return errSyntax
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return errSyntax
		}
	}
	return nil
}

// object returns the members of an object with exactly the keys the
// caller names: every key of required present, every other key in
// optional. Keys match exactly, not case-insensitively as encoding/json
// does (the parser refused keys repeated in any case).
func object(v *jvalue, required, optional []string) (map[string]*jvalue, error) {
	if v == nil || v.kind != '{' {
		return nil, errors.New("want a JSON object")
	}
	fields := make(map[string]*jvalue, len(v.keys))
	for i, k := range v.keys {
		if !contains(required, k) && !contains(optional, k) {
			return nil, errors.New("unknown field")
		}
		fields[k] = v.vals[i]
	}
	for _, k := range required {
		if _, ok := fields[k]; !ok {
			return nil, errors.New("missing field")
		}
	}
	return fields, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// array returns the elements of a JSON array of at most max elements.
func array(v *jvalue, max int) ([]*jvalue, error) {
	if v == nil || v.kind != '[' {
		return nil, errors.New("want a JSON array")
	}
	if len(v.elems) > max {
		return nil, errors.New("too many elements")
	}
	return v.elems, nil
}

// str reads a JSON string.
func str(v *jvalue) (string, error) {
	if v == nil || v.kind != '"' {
		return "", errors.New("want a string")
	}
	return v.str, nil
}

// boolean reads a JSON true or false.
func boolean(v *jvalue) (bool, error) {
	if v == nil || (v.kind != 't' && v.kind != 'f') {
		return false, errors.New("want a boolean")
	}
	return v.kind == 't', nil
}

// decimal reads a JSON number written as a canonical decimal in [min, max].
func decimal(v *jvalue, min, max uint64) (uint64, error) {
	if v == nil || v.kind != '0' {
		return 0, errors.New("want a canonical decimal")
	}
	s := string(v.raw)
	if len(s) > 1 && s[0] == '0' {
		return 0, errors.New("want a canonical decimal")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n < min || n > max {
		return 0, errors.New("want a canonical decimal in range")
	}
	return n, nil
}

// sha256Hex reads 64 lowercase hex digits.
func sha256Hex(s string) ([32]byte, error) {
	var d [32]byte
	if len(s) != 64 || strings.ToLower(s) != s {
		return d, errors.New("want 64 lowercase hex digits")
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return d, errors.New("want 64 lowercase hex digits")
	}
	return d, nil
}

// digestObject reads {"sha256": "<hex>"}, exactly that key.
func digestObject(v *jvalue) ([32]byte, error) {
	f, err := object(v, []string{"sha256"}, nil)
	if err != nil {
		return [32]byte{}, err
	}
	s, err := str(f["sha256"])
	if err != nil {
		return [32]byte{}, err
	}
	return sha256Hex(s)
}

// base64Std reads canonical standard base64 (with padding) of at most max
// bytes.
func base64Std(s string, max int) ([]byte, error) {
	if base64.StdEncoding.DecodedLen(len(s)) > max+2 {
		return nil, errors.New("too large")
	}
	d, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(d) > max || base64.StdEncoding.EncodeToString(d) != s {
		return nil, errors.New("want canonical standard base64")
	}
	return d, nil
}

// checkObjectDeep refuses a JSON text that is not an object, or that
// parseJSON refuses (a key repeated in any object at any depth, nesting
// deeper than maxDepth, trailing data).
func checkObjectDeep(b []byte) error {
	v, err := parseJSON(b)
	if err != nil {
		return err
	}
	if v.kind != '{' {
		return errors.New("want a JSON object")
	}
	return nil
}
