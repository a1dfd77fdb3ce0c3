//go:build !linux

package redisstore_test

import (
	"os/exec"
	"testing"
)

// setDeathSignal does nothing here: only Linux has Pdeathsig.
func setDeathSignal(*exec.Cmd) {}

// freeze skips: the freeze test sends SIGSTOP, which it only does on Linux.
func freeze(t testing.TB, _ *exec.Cmd) { t.Helper(); t.Skip("SIGSTOP is only sent on Linux") }

func thaw(*exec.Cmd) {}
