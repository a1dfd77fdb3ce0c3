package pgstore_test

import (
	"os/exec"
	"syscall"
)

// canRunAs: as root, the tests can start PostgreSQL as another user.
const canRunAs = true

// setProcAttr runs cmd as o (when o.root) and has the kernel kill it when the test
// binary dies. Go sets the parent-death signal after switching user, so the switch
// does not clear it.
func setProcAttr(cmd *exec.Cmd, o owner) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if o.root {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(o.uid), Gid: uint32(o.gid)}
	}
}
