package tufmeta

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// decode is the fast decoder: a file in the regular form (see node) whose
// objects have exactly the fields go-tuf writes back for the values they
// hold, so that go-tuf's re-encoding of the decoded value is the signed
// part's own canonical bytes. It returns the value go-tuf's decoder would
// return for the same bytes and those canonical bytes, or ok false for any
// other input (unknown fields included).
func decode[T metadata.Roles](data []byte) (md *metadata.Metadata[T], signed []byte, ok bool) {
	top, err := scan(data)
	if err != nil || !top.hasFields([]string{"signatures", "signed"}, nil) {
		return nil, nil, false
	}
	md = &metadata.Metadata[T]{UnrecognizedFields: map[string]any{}}
	if md.Signatures, ok = signatures(top.get("signatures")); !ok {
		return nil, nil, false
	}
	s := top.get("signed")
	switch p := any(&md.Signed).(type) {
	case *metadata.RootType:
		*p, ok = rootType(s)
	case *metadata.TimestampType:
		var t metadata.TimestampType
		t.Type, t.SpecVersion, t.Version, t.Expires, t.Meta, ok = metaType(s, metadata.TIMESTAMP)
		t.UnrecognizedFields = map[string]any{}
		*p = t
	case *metadata.SnapshotType:
		var t metadata.SnapshotType
		t.Type, t.SpecVersion, t.Version, t.Expires, t.Meta, ok = metaType(s, metadata.SNAPSHOT)
		t.UnrecognizedFields = map[string]any{}
		*p = t
	case *metadata.TargetsType:
		*p, ok = targetsType(s)
	default:
		ok = false
	}
	if !ok {
		return nil, nil, false
	}
	return md, compact(s.span), true
}

// hasFields reports whether n is an object whose keys are all of required
// and any of optional.
func (n *node) hasFields(required, optional []string) bool {
	if n == nil || n.kind != '{' {
		return false
	}
	for _, k := range n.keys {
		if !slices.Contains(required, k) && !slices.Contains(optional, k) {
			return false
		}
	}
	for _, k := range required {
		if n.get(k) == nil {
			return false
		}
	}
	return true
}

func (n *node) get(key string) *node {
	for i, k := range n.keys {
		if k == key {
			return n.vals[i]
		}
	}
	return nil
}

func str(n *node) (string, bool) {
	if n == nil || n.kind != '"' {
		return "", false
	}
	return n.str, true
}

func integer(n *node) (int64, bool) {
	if n == nil || n.kind != '0' {
		return 0, false
	}
	v, err := strconv.ParseInt(n.str, 10, 64)
	return v, err == nil
}

func boolean(n *node) (bool, bool) {
	if n == nil || (n.kind != 't' && n.kind != 'f') {
		return false, false
	}
	return n.kind == 't', true
}

// timestamp decodes an RFC 3339 time that encoding/json writes back as it
// is (so "+00:00", lowercase "z" or trailing zeros are irregular).
func timestamp(n *node) (time.Time, bool) {
	var t time.Time
	if n == nil || n.kind != '"' || t.UnmarshalJSON(n.span) != nil {
		return time.Time{}, false
	}
	b, err := t.MarshalJSON()
	return t, err == nil && bytes.Equal(b, n.span)
}

// hexBytes decodes lowercase hex (go-tuf writes hex in lowercase).
func hexBytes(n *node) (metadata.HexBytes, bool) {
	if n == nil || n.kind != '"' || len(n.str)%2 != 0 {
		return nil, false
	}
	for i := 0; i < len(n.str); i++ {
		if c := n.str[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return nil, false
		}
	}
	b := make([]byte, len(n.str)/2)
	if _, err := hex.Decode(b, []byte(n.str)); err != nil {
		return nil, false
	}
	return b, true
}

func strings(n *node) ([]string, bool) {
	if n == nil || n.kind != '[' {
		return nil, false
	}
	out := make([]string, 0, len(n.vals))
	for _, v := range n.vals {
		s, ok := str(v)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

func hashes(n *node) (metadata.Hashes, bool) {
	if n == nil || n.kind != '{' || len(n.keys) == 0 { // go-tuf omits empty hashes (and refuses them on targets)
		return nil, false
	}
	h := make(metadata.Hashes, len(n.keys))
	for i, k := range n.keys {
		b, ok := hexBytes(n.vals[i])
		if !ok {
			return nil, false
		}
		h[k] = b
	}
	return h, true
}

func signatures(n *node) ([]metadata.Signature, bool) {
	if n == nil || n.kind != '[' {
		return nil, false
	}
	out := make([]metadata.Signature, 0, len(n.vals))
	for _, v := range n.vals {
		if !v.hasFields([]string{"keyid", "sig"}, nil) {
			return nil, false
		}
		id, ok1 := str(v.get("keyid"))
		sig, ok2 := hexBytes(v.get("sig"))
		if !ok1 || !ok2 {
			return nil, false
		}
		for _, o := range out {
			if o.KeyID == id { // go-tuf refuses a key's second signature
				return nil, false
			}
		}
		out = append(out, metadata.Signature{KeyID: id, Signature: sig, UnrecognizedFields: map[string]any{}})
	}
	return out, true
}

// common decodes the fields every role has, requiring _type to be role.
func common(n *node, role string) (typ, spec string, version int64, expires time.Time, ok bool) {
	typ, ok1 := str(n.get("_type"))
	spec, ok2 := str(n.get("spec_version"))
	version, ok3 := integer(n.get("version"))
	expires, ok4 := timestamp(n.get("expires"))
	return typ, spec, version, expires, ok1 && ok2 && ok3 && ok4 && typ == role
}

func rootType(n *node) (metadata.RootType, bool) {
	var r metadata.RootType
	if !n.hasFields([]string{"_type", "consistent_snapshot", "expires", "keys", "roles", "spec_version", "version"}, nil) {
		return r, false
	}
	var ok, ok1, ok2, ok3 bool
	r.Type, r.SpecVersion, r.Version, r.Expires, ok = common(n, metadata.ROOT)
	r.ConsistentSnapshot, ok1 = boolean(n.get("consistent_snapshot"))
	r.Keys, ok2 = keys(n.get("keys"))
	r.Roles, ok3 = roles(n.get("roles"))
	r.UnrecognizedFields = map[string]any{}
	return r, ok && ok1 && ok2 && ok3
}

func keys(n *node) (map[string]*metadata.Key, bool) {
	if n == nil || n.kind != '{' {
		return nil, false
	}
	out := make(map[string]*metadata.Key, len(n.keys))
	for i, id := range n.keys {
		v := n.vals[i]
		if !v.hasFields([]string{"keytype", "keyval", "scheme"}, nil) {
			return nil, false
		}
		kv := v.get("keyval")
		if !kv.hasFields([]string{"public"}, nil) {
			return nil, false
		}
		typ, ok1 := str(v.get("keytype"))
		scheme, ok2 := str(v.get("scheme"))
		pub, ok3 := str(kv.get("public"))
		if !ok1 || !ok2 || !ok3 {
			return nil, false
		}
		out[id] = &metadata.Key{Type: typ, Scheme: scheme,
			Value:              metadata.KeyVal{PublicKey: pub, UnrecognizedFields: map[string]any{}},
			UnrecognizedFields: map[string]any{}}
	}
	return out, true
}

func roles(n *node) (map[string]*metadata.Role, bool) {
	if n == nil || n.kind != '{' {
		return nil, false
	}
	out := make(map[string]*metadata.Role, len(n.keys))
	for i, name := range n.keys {
		v := n.vals[i]
		if !v.hasFields([]string{"keyids", "threshold"}, nil) {
			return nil, false
		}
		ids, ok1 := strings(v.get("keyids"))
		threshold, ok2 := integer(v.get("threshold"))
		if !ok1 || !ok2 {
			return nil, false
		}
		out[name] = &metadata.Role{KeyIDs: ids, Threshold: int(threshold), UnrecognizedFields: map[string]any{}}
	}
	return out, true
}

// metaType decodes timestamp and snapshot, which have the same fields.
func metaType(n *node, role string) (typ, spec string, version int64, expires time.Time, meta map[string]*metadata.MetaFiles, ok bool) {
	if !n.hasFields([]string{"_type", "expires", "meta", "spec_version", "version"}, nil) {
		return
	}
	typ, spec, version, expires, ok = common(n, role)
	m := n.get("meta")
	if !ok || m.kind != '{' {
		return typ, spec, version, expires, nil, false
	}
	meta = make(map[string]*metadata.MetaFiles, len(m.keys))
	for i, name := range m.keys {
		f, ok := metaFile(m.vals[i])
		if !ok {
			return typ, spec, version, expires, nil, false
		}
		meta[name] = f
	}
	return typ, spec, version, expires, meta, true
}

// metaFile decodes a MetaFiles; go-tuf omits a zero length and empty
// hashes when it writes one, so those are irregular here.
func metaFile(n *node) (*metadata.MetaFiles, bool) {
	if !n.hasFields([]string{"version"}, []string{"hashes", "length"}) {
		return nil, false
	}
	f := &metadata.MetaFiles{UnrecognizedFields: map[string]any{}}
	var ok bool
	if f.Version, ok = integer(n.get("version")); !ok {
		return nil, false
	}
	if l := n.get("length"); l != nil {
		if f.Length, ok = integer(l); !ok || f.Length == 0 {
			return nil, false
		}
	}
	if h := n.get("hashes"); h != nil {
		if f.Hashes, ok = hashes(h); !ok {
			return nil, false
		}
	}
	return f, true
}

func targetsType(n *node) (metadata.TargetsType, bool) {
	var t metadata.TargetsType
	if !n.hasFields([]string{"_type", "expires", "spec_version", "targets", "version"}, []string{"delegations"}) {
		return t, false
	}
	var ok bool
	if t.Type, t.SpecVersion, t.Version, t.Expires, ok = common(n, metadata.TARGETS); !ok {
		return t, false
	}
	if d := n.get("delegations"); d != nil {
		if t.Delegations, ok = delegations(d); !ok {
			return t, false
		}
	}
	tn := n.get("targets")
	if tn.kind != '{' {
		return t, false
	}
	t.Targets = make(map[string]*metadata.TargetFiles, len(tn.keys))
	for i, path := range tn.keys {
		f, ok := targetFile(tn.vals[i])
		if !ok {
			return t, false
		}
		f.Path = path
		t.Targets[path] = f
	}
	t.UnrecognizedFields = map[string]any{}
	return t, true
}

func targetFile(n *node) (*metadata.TargetFiles, bool) {
	if !n.hasFields([]string{"hashes", "length"}, []string{"custom"}) {
		return nil, false
	}
	f := &metadata.TargetFiles{UnrecognizedFields: map[string]any{}}
	var ok1, ok2 bool
	f.Length, ok1 = integer(n.get("length"))
	f.Hashes, ok2 = hashes(n.get("hashes"))
	if !ok1 || !ok2 {
		return nil, false
	}
	if c := n.get("custom"); c != nil {
		raw := json.RawMessage(bytes.Clone(c.span))
		f.Custom = &raw
	}
	return f, true
}

// delegations decodes a Delegations with roles or succinct roles (go-tuf
// writes only the roles when both are present: irregular) or neither.
func delegations(n *node) (*metadata.Delegations, bool) {
	if !n.hasFields([]string{"keys"}, []string{"roles", "succinct_roles"}) || n.get("roles") != nil && n.get("succinct_roles") != nil {
		return nil, false
	}
	d := &metadata.Delegations{UnrecognizedFields: map[string]any{}}
	var ok bool
	if d.Keys, ok = keys(n.get("keys")); !ok {
		return nil, false
	}
	if r := n.get("roles"); r != nil {
		if r.kind != '[' {
			return nil, false
		}
		d.Roles = make([]metadata.DelegatedRole, 0, len(r.vals))
		for _, v := range r.vals {
			dr, ok := delegatedRole(v)
			if !ok {
				return nil, false
			}
			d.Roles = append(d.Roles, dr)
		}
	}
	if sr := n.get("succinct_roles"); sr != nil {
		if d.SuccinctRoles, ok = succinctRoles(sr); !ok {
			return nil, false
		}
	}
	return d, true
}

// delegatedRole decodes a DelegatedRole with paths or path hash prefixes
// (go-tuf refuses to write both) or neither.
func delegatedRole(n *node) (metadata.DelegatedRole, bool) {
	var r metadata.DelegatedRole
	if !n.hasFields([]string{"keyids", "name", "terminating", "threshold"}, []string{"path_hash_prefixes", "paths"}) ||
		n.get("paths") != nil && n.get("path_hash_prefixes") != nil {
		return r, false
	}
	var ok1, ok2, ok3, ok4 bool
	r.Name, ok1 = str(n.get("name"))
	r.KeyIDs, ok2 = strings(n.get("keyids"))
	threshold, ok3 := integer(n.get("threshold"))
	r.Terminating, ok4 = boolean(n.get("terminating"))
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return r, false
	}
	r.Threshold = int(threshold)
	var ok bool
	if p := n.get("paths"); p != nil {
		if r.Paths, ok = strings(p); !ok {
			return r, false
		}
	}
	if p := n.get("path_hash_prefixes"); p != nil {
		if r.PathHashPrefixes, ok = strings(p); !ok {
			return r, false
		}
	}
	r.UnrecognizedFields = map[string]any{}
	return r, true
}

// succinctRoles decodes SuccinctRoles; a bit length outside 1-32 is
// go-tuf's to refuse.
func succinctRoles(n *node) (*metadata.SuccinctRoles, bool) {
	if !n.hasFields([]string{"bit_length", "keyids", "name_prefix", "threshold"}, nil) {
		return nil, false
	}
	ids, ok1 := strings(n.get("keyids"))
	threshold, ok2 := integer(n.get("threshold"))
	bits, ok3 := integer(n.get("bit_length"))
	prefix, ok4 := str(n.get("name_prefix"))
	if !ok1 || !ok2 || !ok3 || !ok4 || bits < 1 || bits > 32 {
		return nil, false
	}
	return &metadata.SuccinctRoles{KeyIDs: ids, Threshold: int(threshold), BitLength: int(bits), NamePrefix: prefix,
		UnrecognizedFields: map[string]any{}}, true
}
