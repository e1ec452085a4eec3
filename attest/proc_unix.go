//go:build unix

package attest

import (
	"os/exec"
	"syscall"
)

// ownGroup runs c in its own process group and makes cancelling it kill
// the whole group, so that a build's children do not outlive its time limit.
func ownGroup(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
}
