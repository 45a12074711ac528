//go:build linux

package reliability

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes a child process die when the test process does, even
// when the test binary is killed (a timeout) before its cleanup runs.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
