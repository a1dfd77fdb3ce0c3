package redisstore_test

import (
	"os/exec"
	"syscall"
	"testing"
)

// setDeathSignal makes the kernel kill a test's redis-server when the test binary
// dies without running its cleanups (a timeout panic, a SIGKILL).
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

func freeze(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
}

func thaw(cmd *exec.Cmd) { cmd.Process.Signal(syscall.SIGCONT) }
