package signoff

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
)

// maxDepth bounds JSON nesting (the provenance object is the only nested
// value of any depth; its own spec keeps it shallow).
const maxDepth = 32

// object reads one JSON object with exactly the keys the caller names:
// every key of required must be present, every other key must be in
// optional, no key may repeat (encoding/json would keep the last one
// silently, so two parsers could read one text two ways), and nothing may
// follow the object. Keys match exactly, not case-insensitively as
// encoding/json does. The values are returned undecoded.
func object(b []byte, required, optional []string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("want a JSON object")
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := tok.(string) // inside an object the decoder yields only string keys here
		if _, dup := fields[k]; dup {
			return nil, errors.New("duplicate key")
		}
		if !contains(required, k) && !contains(optional, k) {
			return nil, errors.New("unknown field")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		fields[k] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data")
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

// array reads a JSON array of at most max elements, undecoded.
func array(b []byte, max int) ([]json.RawMessage, error) {
	var a []json.RawMessage
	if !bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("[")) {
		return nil, errors.New("want a JSON array")
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, err
	}
	if len(a) > max {
		return nil, errors.New("too many elements")
	}
	return a, nil
}

// str reads a JSON string.
func str(b json.RawMessage) (string, error) {
	var s string
	if !bytes.HasPrefix(b, []byte(`"`)) {
		return "", errors.New("want a string")
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return "", err
	}
	return s, nil
}

// boolean reads a JSON true or false.
func boolean(b json.RawMessage) (bool, error) {
	switch string(b) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errors.New("want a boolean")
}

// decimal reads a JSON number written as a canonical decimal in [min, max].
func decimal(b json.RawMessage, min, max uint64) (uint64, error) {
	s := string(b)
	if s == "" || (len(s) > 1 && s[0] == '0') {
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
func digestObject(b json.RawMessage) ([32]byte, error) {
	f, err := object(b, []string{"sha256"}, nil)
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

// checkObjectDeep refuses a JSON value that is not an object, that repeats
// a key in any object at any depth (case-insensitively, as encoding/json
// matches field names) or nests deeper than maxDepth.
func checkObjectDeep(b []byte) error {
	if !bytes.HasPrefix(b, []byte("{")) {
		return errors.New("want a JSON object")
	}
	type frame struct {
		keys      map[string]bool // nil for an array
		expectKey bool
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].keys != nil {
				stack[len(stack)-1].expectKey = true
			}
			continue
		}
		if top != nil && top.keys != nil && top.expectKey {
			k := strings.ToLower(tok.(string)) // the decoder yields only strings here
			if top.keys[k] {
				return errors.New("duplicate key")
			}
			top.keys[k], top.expectKey = true, false
			continue
		}
		if d, ok := tok.(json.Delim); ok {
			if len(stack) >= maxDepth {
				return errors.New("nested too deeply")
			}
			f := &frame{}
			if d == '{' {
				f.keys, f.expectKey = map[string]bool{}, true
			}
			stack = append(stack, f)
			continue
		}
		if top != nil && top.keys != nil {
			top.expectKey = true
		}
	}
}
