package witness

import (
	"os"
	"syscall"
)

// fdatasync makes f's written data durable, and the metadata needed to read
// it (its size), without waiting for the rest (times).
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if serr = syscall.Fdatasync(int(fd)); serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}
