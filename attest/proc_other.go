//go:build !unix

package attest

import "os/exec"

// ownGroup: without process groups, cancelling kills the shell only.
func ownGroup(c *exec.Cmd) {}
