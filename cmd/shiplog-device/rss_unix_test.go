//go:build unix

package main

import (
	"os"
	"syscall"
)

// maxRSS is a finished process's peak resident set size in KiB (Linux
// reports KiB; macOS bytes, which this does not convert).
func maxRSS(ps *os.ProcessState) int64 { return ps.SysUsage().(*syscall.Rusage).Maxrss }
