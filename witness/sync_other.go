//go:build !linux

package witness

import "os"

// fdatasync makes f's written data durable: fsync outside Linux.
func fdatasync(f *os.File) error { return f.Sync() }
