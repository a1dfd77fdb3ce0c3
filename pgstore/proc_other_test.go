//go:build !linux

package pgstore_test

import "os/exec"

// canRunAs: as root, the tests can start PostgreSQL as another user (Linux only).
const canRunAs = false

// setProcAttr does nothing: the tests run PostgreSQL as themselves.
func setProcAttr(cmd *exec.Cmd, o owner) {}
