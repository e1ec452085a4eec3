//go:build unix

package signoff

import (
	"syscall"
	"time"
)

// cpuTime returns the process's user and system CPU time: on a machine
// shared with other work it moves less than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
