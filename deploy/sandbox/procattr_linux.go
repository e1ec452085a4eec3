package sandbox

import "syscall"

// childAttr makes Linux send SIGTERM to a server the sandbox started when the
// sandbox itself dies, so no server outlives a killed sandbox.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
