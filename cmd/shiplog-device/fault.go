//go:build shiplog_fault

package main

import (
	"fmt"
	"os"
	"strconv"
)

// faultHook returns the SHIPLOG_DEVICE_FAULT hook: kill the process (SIGKILL
// on Unix, TerminateProcess on Windows) at the Nth install step, as a power
// loss would. Only builds with the shiplog_fault tag have it; the tests
// build the binary with the tag, release builds (scripts/release.sh) never
// set it.
func faultHook() func(string) {
	n, err := strconv.Atoi(os.Getenv("SHIPLOG_DEVICE_FAULT"))
	if err != nil || n <= 0 {
		return nil
	}
	count := 0
	return func(step string) {
		count++
		if count == n {
			fmt.Fprintf(os.Stderr, "shiplog-device: fault injected at step %d (%s)\n", n, step)
			if p, err := os.FindProcess(os.Getpid()); err == nil {
				p.Kill()
			}
			select {}
		}
	}
}
