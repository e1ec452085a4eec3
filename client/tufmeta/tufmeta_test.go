package tufmeta

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

type key struct {
	pub    *metadata.Key
	signer signature.Signer
	id     string
}

func newKey(t testing.TB) key {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	check(t, err)
	k, err := metadata.KeyFromPublicKey(pub)
	check(t, err)
	s, err := signature.LoadSigner(priv, crypto.Hash(0))
	check(t, err)
	id, err := k.ID()
	check(t, err)
	return key{k, s, id}
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var expires = time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)

// repo is a small repository: root (one key per role), timestamp,
// snapshot and targets with a few targets, one with custom metadata.
type repo struct {
	keys      map[string]key
	root      *metadata.Metadata[metadata.RootType]
	timestamp *metadata.Metadata[metadata.TimestampType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	targets   *metadata.Metadata[metadata.TargetsType]
}

func newRepo(t testing.TB) *repo {
	r := &repo{keys: map[string]key{}, root: metadata.Root(expires), timestamp: metadata.Timestamp(expires),
		snapshot: metadata.Snapshot(expires), targets: metadata.Targets(expires)}
	for _, role := range []string{metadata.ROOT, metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS} {
		k := newKey(t)
		r.keys[role] = k
		check(t, r.root.Signed.AddKey(k.pub, role))
	}
	for i, p := range []string{"fw/a.bin", "fw/b<&>.bin", "x"} {
		tf, err := metadata.TargetFile().FromBytes(p, bytes.Repeat([]byte{'p'}, i+1), "sha256", "sha512")
		check(t, err)
		if i == 1 {
			c := json.RawMessage(`{"notes":"n","size":[1,2,{"z":true}]}`)
			tf.Custom = &c
		}
		r.targets.Signed.Targets[p] = tf
	}
	r.snapshot.Signed.Meta["targets.json"] = &metadata.MetaFiles{Version: 1, Length: 1234, Hashes: metadata.Hashes{"sha256": bytes.Repeat([]byte{0xab}, 32)}}
	return r
}

func sign[T metadata.Roles](t testing.TB, m *metadata.Metadata[T], pretty bool, ks ...key) []byte {
	m.ClearSignatures()
	for _, k := range ks {
		_, err := m.Sign(k.signer)
		check(t, err)
	}
	b, err := m.ToBytes(pretty)
	check(t, err)
	return b
}

// files returns the repository's four files, compact and pretty.
func (r *repo) files(t testing.TB) [][]byte {
	var out [][]byte
	for _, pretty := range []bool{false, true} {
		out = append(out,
			sign(t, r.root, pretty, r.keys[metadata.ROOT]),
			sign(t, r.timestamp, pretty, r.keys[metadata.TIMESTAMP]),
			sign(t, r.snapshot, pretty, r.keys[metadata.SNAPSHOT]),
			sign(t, r.targets, pretty, r.keys[metadata.TARGETS]))
	}
	return out
}

// capture is a signature.Signer that records the message go-tuf signs:
// cjson.EncodeCanonical of the decoded value's signed part.
type capture struct{ msg []byte }

func (c *capture) PublicKey(...signature.PublicKeyOption) (crypto.PublicKey, error) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	return pub, err
}

func (c *capture) SignMessage(m io.Reader, _ ...signature.SignOption) ([]byte, error) {
	var err error
	c.msg, err = io.ReadAll(m)
	return make([]byte, ed25519.SignatureSize), err
}

// sameAsGoTUF checks that the fast decoder, when it decodes data as T,
// returns exactly what go-tuf's FromBytes returns and, as the bytes
// signatures cover, exactly what go-tuf signs and verifies over.
func sameAsGoTUF[T metadata.Roles](t *testing.T, data []byte) (fast bool) {
	t.Helper()
	md, signed, ok := decode[T](data)
	if !ok {
		return false
	}
	want, err := new(metadata.Metadata[T]).FromBytes(data)
	if err != nil {
		t.Fatalf("fast decoder accepted what go-tuf refuses (%v):\n%s", err, data)
	}
	if !reflect.DeepEqual(md, want) {
		t.Fatalf("fast decoder's value differs from go-tuf's:\n%#v\n%#v\n%s", md, want, data)
	}
	c := &capture{}
	if _, err := want.Sign(c); err != nil {
		t.Fatalf("go-tuf cannot canonicalise what the fast decoder accepted (%v):\n%s", err, data)
	}
	if !bytes.Equal(c.msg, signed) {
		t.Fatalf("canonical bytes differ:\nfast   %s\ngo-tuf %s", signed, c.msg)
	}
	return true
}

func sameForEveryType(t *testing.T, data []byte) bool {
	a := sameAsGoTUF[metadata.RootType](t, data)
	b := sameAsGoTUF[metadata.TimestampType](t, data)
	c := sameAsGoTUF[metadata.SnapshotType](t, data)
	d := sameAsGoTUF[metadata.TargetsType](t, data)
	return a || b || c || d
}

// TestParseDecodesGoTUFOutputInOnePass: what go-tuf writes, compact or
// pretty, takes the fast path (else the device pays go-tuf's decoding
// again), and decodes to go-tuf's value with go-tuf's canonical bytes.
func TestParseDecodesGoTUFOutputInOnePass(t *testing.T) {
	for i, f := range newRepo(t).files(t) {
		if !sameForEveryType(t, f) {
			t.Errorf("file %d not decoded in one pass:\n%s", i, f)
		}
	}
}

// TestParseIrregularGoesToGoTUF: encodings go-tuf would normalise when it
// re-encodes (so its signatures cover other bytes than these), and
// delegations and unknown fields, are left to go-tuf's decoder.
func TestParseIrregularGoesToGoTUF(t *testing.T) {
	r := newRepo(t)
	ts := string(sign(t, r.timestamp, false, r.keys[metadata.TIMESTAMP]))
	for name, data := range map[string]string{
		"time with offset":    replace(ts, `"2031-01-02T03:04:05Z"`, `"2031-01-02T03:04:05+00:00"`),
		"unknown field":       replace(ts, `"_type"`, `"extra":1,"_type"`),
		"unsorted keys":       replace(ts, `"_type":"timestamp","expires"`, `"expires"`) + "",
		"escaped string":      replace(ts, `"spec_version":"1.0.31"`, `"spec_version":"1.0\u002e31"`),
		"null":                replace(ts, `"spec_version":"1.0.31"`, `"spec_version":null`),
		"float version":       replace(ts, `"version":1}`, `"version":1.0}`),
		"zero length omitted": replace(ts, `"version":1}}`, `"length":0,"version":1}}`),
		"uppercase hash":      replace(ts, `"version":1}}`, `"hashes":{"sha256":"AB"},"version":1}}`),
		"trailing data":       ts + "x",
		"uppercase escape":    replace(ts, `"spec_version":"1.0.31"`, `"spec_version":"1.0\u003C31"`),
		"newline escape":      replace(ts, `"spec_version":"1.0.31"`, `"spec_version":"1.0\n31"`),
		"short escape":        replace(ts, `"spec_version":"1.0.31"`, `"spec_version":"1.0\u003"`),
	} {
		if _, _, ok := decode[metadata.TimestampType]([]byte(data)); ok {
			t.Errorf("%s: decoded in one pass:\n%s", name, data)
		}
		sameForEveryType(t, []byte(data))
	}
}

// delegating returns r's targets delegating to two roles by paths and
// hash prefixes, or to hash bins, compact and pretty.
func (r *repo) delegating(t testing.TB) [][]byte {
	other := newKey(t)
	keys := map[string]*metadata.Key{other.id: other.pub}
	var out [][]byte
	for _, d := range []*metadata.Delegations{
		{Keys: keys, Roles: []metadata.DelegatedRole{
			{Name: "a", KeyIDs: []string{other.id}, Threshold: 1, Paths: []string{"fw/*"}, Terminating: true},
			{Name: "b", KeyIDs: []string{}, Threshold: 2, PathHashPrefixes: []string{"8f"}},
			{Name: "c", KeyIDs: []string{other.id}, Threshold: 1}}},
		{Keys: keys, SuccinctRoles: &metadata.SuccinctRoles{KeyIDs: []string{other.id}, Threshold: 1, BitLength: 4, NamePrefix: "bin"}},
		{Keys: map[string]*metadata.Key{}},
	} {
		r.targets.Signed.Delegations = d
		out = append(out, sign(t, r.targets, false, r.keys[metadata.TARGETS]), sign(t, r.targets, true, r.keys[metadata.TARGETS]))
	}
	r.targets.Signed.Delegations = nil
	return out
}

// TestParseDecodesDelegationsInOnePass: roles by paths, by hash prefixes,
// succinct hash bins and empty delegations take the fast path.
func TestParseDecodesDelegationsInOnePass(t *testing.T) {
	for i, f := range newRepo(t).delegating(t) {
		if !sameAsGoTUF[metadata.TargetsType](t, f) {
			t.Errorf("delegating targets %d not decoded in one pass:\n%s", i, f)
		}
	}
	r := newRepo(t)
	d := string(r.delegating(t)[0])
	for name, data := range map[string]string{
		"paths and prefixes": replace(d, `"paths":["fw/*"]`, `"path_hash_prefixes":["00"],"paths":["fw/*"]`),
		"bit length 33":      replace(string(r.delegating(t)[2]), `"bit_length":4`, `"bit_length":33`),
	} {
		if _, _, ok := decode[metadata.TargetsType]([]byte(data)); ok {
			t.Errorf("%s: decoded in one pass", name)
		}
		sameForEveryType(t, []byte(data))
	}
}

func replace(s, old, new string) string {
	out := bytes.Replace([]byte(s), []byte(old), []byte(new), 1)
	if bytes.Equal(out, []byte(s)) {
		panic("replace: " + old + " not found")
	}
	return string(out)
}

// TestVerifyDelegateAgreesWithGoTUF: the threshold verdict and its error
// are go-tuf's, for a good signature, a signature over other bytes, a
// missing signature and a threshold of two met twice by one key listed
// under two key ids (thresholds count distinct keys).
func TestVerifyDelegateAgreesWithGoTUF(t *testing.T) {
	r := newRepo(t)
	k := r.keys[metadata.TIMESTAMP]
	good := sign(t, r.timestamp, true, k)
	r.timestamp.Signed.Version = 2
	other := sign(t, r.timestamp, false, k)
	var tampered metadata.Metadata[metadata.TimestampType]
	check(t, json.Unmarshal(good, &tampered))
	unsigned := sign(t, r.timestamp, false)
	// the same public key again under a second key id (another scheme)
	twin := metadata.Key{Type: k.pub.Type, Scheme: "ed25519-twin", Value: metadata.KeyVal{PublicKey: k.pub.Value.PublicKey}}
	twinID, err := twin.ID()
	check(t, err)
	root := metadata.Root(expires)
	check(t, root.Signed.AddKey(k.pub, metadata.TIMESTAMP))
	root.Signed.Keys[twinID] = &twin
	root.Signed.Roles[metadata.TIMESTAMP].KeyIDs = append(root.Signed.Roles[metadata.TIMESTAMP].KeyIDs, twinID)
	root.Signed.Roles[metadata.TIMESTAMP].Threshold = 2
	twinSigned := sign(t, r.timestamp, false, k)
	var m metadata.Metadata[metadata.TimestampType]
	check(t, json.Unmarshal(twinSigned, &m))
	m.Signatures = append(m.Signatures, metadata.Signature{KeyID: twinID, Signature: m.Signatures[0].Signature})
	twinBoth, err := m.ToBytes(false)
	check(t, err)

	cases := []struct {
		name  string
		root  *metadata.Metadata[metadata.RootType]
		data  []byte
		valid bool
	}{
		{"good", r.root, good, true},
		{"good, compact", r.root, other, true},
		{"signature over other bytes", r.root, []byte(replace(string(other), `"version":2}`, `"version":3}`)), false},
		{"no signature", r.root, unsigned, false},
		{"one key twice", root, twinBoth, false},
	}
	for _, c := range cases {
		f, err := Parse[metadata.TimestampType]([]byte(c.data))
		check(t, err)
		want := c.root.VerifyDelegate(metadata.TIMESTAMP, f.MD)
		got := VerifyDelegate(c.root, metadata.TIMESTAMP, f)
		if (want == nil) != c.valid || (got == nil) != (want == nil) || (got != nil && got.Error() != want.Error()) {
			t.Errorf("%s: VerifyDelegate = %v, go-tuf %v, want valid %v", c.name, got, want, c.valid)
		}
		if f.signed == nil {
			t.Errorf("%s: not decoded in one pass", c.name)
		}
		var unsignedErr *metadata.ErrUnsignedMetadata
		if !c.valid && !errors.As(got, &unsignedErr) {
			t.Errorf("%s: error %v is not go-tuf's ErrUnsignedMetadata", c.name, got)
		}
	}
}

// FuzzParse holds the fast decoder to go-tuf's on any input: whatever it
// decodes, go-tuf decodes to the same value, and go-tuf's canonical
// encoding of it (what signatures cover) is the fast decoder's.
func FuzzParse(f *testing.F) {
	r := newRepo(f)
	for _, b := range append(r.files(f), r.delegating(f)...) {
		f.Add(b)
	}
	f.Add([]byte(`{"signatures":[],"signed":{"_type":"timestamp","expires":"2031-01-02T03:04:05.5Z","meta":{"snapshot.json":{"version":1}},"spec_version":"1","version":-3}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sameForEveryType(t, data)
	})
}

// step is one call of the state machine with some bytes.
type step struct {
	call string // "root", "timestamp", "snapshot", "trusted-snapshot", "targets"
	data []byte
}

// TestTrustedAgreesWithGoTUF runs go-tuf's trustedmetadata and this
// package's state machine side by side over the same sequences of files,
// honest and hostile (bad signatures, rollbacks, wrong types, expired,
// mismatched hashes and versions), and requires the same error (type and
// text) at every step and the same trusted state after it.
func TestTrustedAgreesWithGoTUF(t *testing.T) {
	r := newRepo(t)
	root1 := sign(t, r.root, false, r.keys[metadata.ROOT])
	ts := func(m func(*metadata.Metadata[metadata.TimestampType]), ks ...key) []byte {
		c := *r.timestamp
		c.Signed.Meta = map[string]*metadata.MetaFiles{}
		for k, v := range r.timestamp.Signed.Meta {
			vv := *v
			c.Signed.Meta[k] = &vv
		}
		m(&c)
		if ks == nil {
			ks = []key{r.keys[metadata.TIMESTAMP]}
		}
		return sign(t, &c, true, ks...)
	}
	targets := sign(t, r.targets, true, r.keys[metadata.TARGETS])
	snap := func(v int64, targetsVersion int64, data []byte, ks ...key) []byte {
		c := *r.snapshot
		c.Signed.Version = v
		tf, err := metadata.TargetFile().FromBytes("", data, "sha256")
		check(t, err)
		c.Signed.Meta = map[string]*metadata.MetaFiles{"targets.json": {Version: targetsVersion, Length: tf.Length, Hashes: tf.Hashes}}
		if ks == nil {
			ks = []key{r.keys[metadata.SNAPSHOT]}
		}
		return sign(t, &c, false, ks...)
	}
	snap1 := snap(1, 1, targets)
	tsFor := func(v, snapVersion int64, snapData []byte) []byte {
		return ts(func(m *metadata.Metadata[metadata.TimestampType]) {
			m.Signed.Version = v
			tf, err := metadata.TargetFile().FromBytes("", snapData, "sha256")
			check(t, err)
			m.Signed.Meta["snapshot.json"] = &metadata.MetaFiles{Version: snapVersion, Length: tf.Length, Hashes: tf.Hashes}
		})
	}
	r.root.Signed.Version = 2
	root2 := sign(t, r.root, true, r.keys[metadata.ROOT])
	root2Unsigned := sign(t, r.root, true, r.keys[metadata.TIMESTAMP])
	r.root.Signed.Version = 3
	root3 := sign(t, r.root, true, r.keys[metadata.ROOT])
	r.root.Signed.Version = 1
	expired := *r.targets
	expired.Signed.Expires = expires.Add(-48 * time.Hour)
	expiredTargets := sign(t, &expired, false, r.keys[metadata.TARGETS])

	scenarios := map[string][]step{
		"honest":               {{"root", root2}, {"timestamp", tsFor(1, 1, snap1)}, {"snapshot", snap1}, {"targets", targets}},
		"root skips a version": {{"root", root3}},
		"root badly signed":    {{"root", root2Unsigned}},
		"root is a timestamp":  {{"root", tsFor(1, 1, snap1)}},
		"timestamp rollback":   {{"timestamp", tsFor(2, 1, snap1)}, {"timestamp", tsFor(1, 1, snap1)}},
		"timestamp equal":      {{"timestamp", tsFor(2, 1, snap1)}, {"timestamp", tsFor(2, 1, snap1)}, {"snapshot", snap1}},
		"timestamp badly signed": {{"timestamp", ts(func(*metadata.Metadata[metadata.TimestampType]) {},
			r.keys[metadata.SNAPSHOT])}},
		"snapshot rollback": {{"timestamp", tsFor(1, 3, snap(3, 1, targets))}, {"trusted-snapshot", snap(2, 2, targets)},
			{"snapshot", snap(3, 1, targets)}},
		"snapshot hash mismatch":  {{"timestamp", tsFor(1, 1, snap1)}, {"snapshot", snap(1, 1, expiredTargets)}},
		"snapshot version":        {{"timestamp", tsFor(1, 2, snap1)}, {"trusted-snapshot", snap1}, {"targets", targets}},
		"snapshot badly signed":   {{"timestamp", tsFor(1, 1, snap(1, 1, targets, r.keys[metadata.TARGETS]))}, {"snapshot", snap(1, 1, targets, r.keys[metadata.TARGETS])}},
		"targets expired":         {{"timestamp", tsFor(1, 1, snap(1, 1, expiredTargets))}, {"snapshot", snap(1, 1, expiredTargets)}, {"targets", expiredTargets}},
		"targets version":         {{"timestamp", tsFor(1, 1, snap(1, 2, targets))}, {"snapshot", snap(1, 2, targets)}, {"targets", targets}},
		"targets hash mismatch":   {{"timestamp", tsFor(1, 1, snap1)}, {"snapshot", snap1}, {"targets", expiredTargets}},
		"targets before snapshot": {{"targets", targets}},
		"garbage":                 {{"timestamp", []byte(`{"signed":`)}},
	}
	for name, steps := range scenarios {
		theirs, err := trustedmetadata.New(root1)
		check(t, err)
		theirs.RefTime = expires.Add(-24 * time.Hour)
		mine := &trustedmetadata.TrustedMetadata{Targets: map[string]*metadata.Metadata[metadata.TargetsType]{}, RefTime: theirs.RefTime}
		if mine.Root, err = LoadRoot(root1); err != nil {
			t.Fatal(err)
		}
		for i, s := range steps {
			var errT, errM error
			switch s.call {
			case "root":
				_, errT = theirs.UpdateRoot(s.data)
				_, errM = UpdateRoot(mine, s.data)
			case "timestamp":
				_, errT = theirs.UpdateTimestamp(s.data)
				_, errM = UpdateTimestamp(mine, s.data)
			case "snapshot", "trusted-snapshot":
				_, errT = theirs.UpdateSnapshot(s.data, s.call == "trusted-snapshot")
				_, errM = UpdateSnapshot(mine, s.data, s.call == "trusted-snapshot")
			case "targets":
				_, errT = theirs.UpdateTargets(s.data)
				_, errM = UpdateDelegatedTargets(mine, s.data, metadata.TARGETS, metadata.ROOT)
			}
			if fmt.Sprintf("%T %v", errT, errT) != fmt.Sprintf("%T %v", errM, errM) {
				t.Errorf("%s, step %d (%s): error %T %v, go-tuf %T %v", name, i, s.call, errM, errM, errT, errT)
			}
			if !reflect.DeepEqual(mine, theirs) {
				t.Errorf("%s, step %d (%s): trusted state differs from go-tuf's", name, i, s.call)
			}
		}
		if name == "honest" && mine.Targets[metadata.TARGETS] == nil {
			t.Errorf("honest: targets not trusted")
		}
	}
}

// BenchmarkParse decodes a pretty targets file of 100 targets (with custom
// metadata) and checks its signature: tufmeta next to go-tuf's FromBytes and
// VerifyDelegate on the same bytes.
func BenchmarkParse(b *testing.B) {
	r := newRepo(b)
	for i := 0; i < 100; i++ {
		tf, err := metadata.TargetFile().FromBytes("", []byte{byte(i)}, "sha256")
		check(b, err)
		c := json.RawMessage(`{"notes":"release notes"}`)
		tf.Custom = &c
		r.targets.Signed.Targets[fmt.Sprintf("fw/image-%03d.bin", i)] = tf
	}
	data := sign(b, r.targets, true, r.keys[metadata.TARGETS])
	b.Run("tufmeta", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, err := Parse[metadata.TargetsType](data)
			if err != nil || VerifyDelegate(r.root, metadata.TARGETS, f) != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-tuf", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			md, err := metadata.Targets().FromBytes(data)
			if err != nil || r.root.VerifyDelegate(metadata.TARGETS, md) != nil {
				b.Fatal(err)
			}
		}
	})
}
