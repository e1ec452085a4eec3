package evidencetest

import "bytes"

// IndexOf returns the index of the first entry with RFC 6962 leaf hash
// leaf, for fakes of the ledger's proof-by-leaf endpoint.
func (l *Log) IndexOf(leaf []byte) (uint64, bool) {
	for i := uint64(0); i < l.tree.Size(); i++ {
		if bytes.Equal(l.tree.LeafHash(i), leaf) {
			return i, true
		}
	}
	return 0, false
}
