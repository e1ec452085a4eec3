//go:build !linux

package sandbox

import "syscall"

// childAttr is nil outside Linux, which alone has a parent-death signal:
// there, a sandbox killed with SIGKILL leaves its servers running (a normal
// exit or Ctrl-C still stops them, stopAll).
func childAttr() *syscall.SysProcAttr { return nil }
