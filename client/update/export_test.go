package update

// ForgetTrustedRoot empties the process's trusted-root cache, so that the
// next Refresh decodes and verifies its trusted root (a device's first
// refresh after it starts).
func ForgetTrustedRoot() {
	trustedRoots.Lock()
	defer trustedRoots.Unlock()
	trustedRoots.data, trustedRoots.md = nil, nil
}
