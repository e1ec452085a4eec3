package update

import (
	"bytes"
	"sync"

	"github.com/shiplog/shiplog/client/tufmeta"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// trustedRoots keeps the last trusted root this process loaded, decoded and
// checked against its own threshold (TUF §5.2), keyed by its exact bytes:
// a device refreshing again from the same trusted root neither decodes nor
// verifies it again. Verification is a function of the bytes, so the cache
// changes no verdict; expiry is not cached (it is checked against each
// session's reference time, §5.3.10). Sessions share the cached value and
// never modify it (Session.Metadata's callers must not either).
var trustedRoots struct {
	sync.Mutex
	data []byte
	md   *metadata.Metadata[metadata.RootType]
}

// loadTrustedRoot returns data decoded and verified as the trusted root,
// from trustedRoots when it holds these exact bytes.
func loadTrustedRoot(data []byte) (*metadata.Metadata[metadata.RootType], error) {
	trustedRoots.Lock()
	if trustedRoots.md != nil && bytes.Equal(trustedRoots.data, data) {
		md := trustedRoots.md
		trustedRoots.Unlock()
		return md, nil
	}
	trustedRoots.Unlock()
	md, err := tufmeta.LoadRoot(data)
	if err != nil {
		return nil, err
	}
	trustedRoots.Lock()
	trustedRoots.data, trustedRoots.md = bytes.Clone(data), md
	trustedRoots.Unlock()
	return md, nil
}
