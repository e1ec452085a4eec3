package policy

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// LogFor returns the policy log whose checkpoints carry origin as their
// first line, or nil. It is Log, extended for Sigstore's Rekor v1: a Rekor
// v1 log signs its checkpoints with an ECDSA key (vkey type 0x02) named by
// the log's host, but their origin line is "<host> - <tree id>", which
// cannot be a key name (it has spaces). So an origin of that form, with a
// canonical decimal tree id in 1..2^63-1, matches the ECDSA log whose key
// name is <host>. Rekor v2 and other C2SP logs use their key name as origin
// and match exactly, as with Log.
//
// Any tree id of that host matches: Rekor v1 shards its log into trees
// signed by the same key, and the inclusion proof binds an entry to the one
// tree its checkpoint names. Callers that keep per-log state (the device's
// newest checkpoint) key it by the full origin.
func (p *Policy) LogFor(origin string) *Log {
	if l := p.Log(origin); l != nil {
		return l
	}
	host, _, ok := ParseRekorV1Origin(origin)
	if !ok {
		return nil
	}
	for _, l := range p.Logs {
		if l.Origin == host && vkeyType(l.VKey) == 0x02 {
			return l
		}
	}
	return nil
}

// NamesRekorV1Log reports whether the policy names a Rekor v1 log (a log
// with an ECDSA key, vkey type 0x02): only then can a Sigstore bundle from
// Rekor v1 be evidence under it. A Rekor v2 log looks like any C2SP log.
func (p *Policy) NamesRekorV1Log() bool {
	for _, l := range p.Logs {
		if vkeyType(l.VKey) == 0x02 {
			return true
		}
	}
	return false
}

// ParseRekorV1Origin splits a Rekor v1 checkpoint origin,
// "<host> - <tree id>", into the host and the tree id. The host must be
// non-empty with no spaces; the tree id a canonical positive decimal int64.
func ParseRekorV1Origin(origin string) (host string, treeID int64, ok bool) {
	host, id, found := strings.Cut(origin, " - ")
	if !found || host == "" || strings.ContainsAny(host, " \t+") || len(origin) > 1024 {
		return "", 0, false
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 || strconv.FormatInt(n, 10) != id {
		return "", 0, false
	}
	return host, n, true
}

// vkeyType returns the type byte of a vkey that Parse accepted.
func vkeyType(vkey string) byte {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return 0
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) == 0 {
		return 0
	}
	return raw[0]
}
