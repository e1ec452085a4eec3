//go:build !unix

package signoff

import "time"

var processStart = time.Now()

// cpuTime is wall time where getrusage(2) does not exist (Windows): the
// benchmark's ratios are then noisier on a busy machine.
func cpuTime() time.Duration { return time.Since(processStart) }
