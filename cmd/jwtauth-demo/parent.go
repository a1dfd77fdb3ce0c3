package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// startedByGoRun reports whether this executable is one that go run built.
func startedByGoRun() bool {
	exe, err := os.Executable()
	return err == nil && builtByGoRun(exe)
}

// cacheEntryDir is a build cache directory entry: 64 hex digits and "-d".
var cacheEntryDir = regexp.MustCompile(`^[0-9a-f]{64}-d$`)

// builtByGoRun reports whether exe is where go run puts the program it builds: a
// temporary go-build…/b001/exe/NAME, or (Go 1.24 on, when the build is cached) the
// build cache, as $GOCACHE/xx/HASH-d/NAME.
func builtByGoRun(exe string) bool {
	dir := filepath.Dir(exe)
	if filepath.Base(dir) == "exe" {
		for d := filepath.Dir(dir); d != filepath.Dir(d); d = filepath.Dir(d) {
			if strings.HasPrefix(filepath.Base(d), "go-build") {
				return true
			}
		}
	}
	return cacheEntryDir.MatchString(filepath.Base(dir))
}

// parentGone returns a channel that is closed once the parent process ppid has exited,
// seen as a change of os.Getppid() (an orphan is adopted by init or a subreaper),
// checked every interval until done is closed. go run does not pass SIGTERM on to the
// program it runs, so without this `kill <pid of go run>` would leave the demo running
// and holding its port. Where parents are not replaced (Windows), it never fires.
func parentGone(ppid int, interval time.Duration, done <-chan struct{}) <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if os.Getppid() != ppid {
					close(gone)
					return
				}
			}
		}
	}()
	return gone
}
