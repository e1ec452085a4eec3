//go:build !unix

package log_test

import "time"

var processStart = time.Now()

// processCPU is wall time where getrusage(2) does not exist (Windows).
func processCPU() time.Duration { return time.Since(processStart) }
