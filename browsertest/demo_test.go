package browsertest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// demo is the demo server, built from ../cmd/jwtauth-demo (a module of its own) and run as a process, with
// its access log read as it is written.
type demo struct {
	base string // http://127.0.0.1:PORT, the origin of the app

	mu       sync.Mutex
	requests []request // the access log so far
	events   []string  // the names of jwtauth's security events so far
	stderr   bytes.Buffer
}

// request is one line of the demo's access log: what the server saw and answered.
type request struct {
	Method, Path string
	Status       int
}

func (r request) String() string { return fmt.Sprintf("%s %s %d", r.Method, r.Path, r.Status) }

var (
	listeningLine = regexp.MustCompile(`listening on http://(\S+) \(pid \d+;`)
	appLine       = regexp.MustCompile(`browser app: (http://\S+)`)
	eventLine     = regexp.MustCompile(`msg="jwtauth: \w+" event=(\w+)`)
)

// demoSecret is a fixed secret, so that the demo does not warn about a random one.
var demoSecret = strings.Repeat("b7", 32)

// startDemo builds the demo with the race detector and starts it on a free port of
// 127.0.0.1, and stops it when the test ends; a data race it reports fails the test.
func startDemo(t *testing.T) *demo {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("no go command to build the demo:", err)
	}
	bin := filepath.Join(t.TempDir(), "jwtauth-demo")
	build := exec.Command(goTool, "build", "-race", "-o", bin, ".")
	build.Dir = "../cmd/jwtauth-demo"
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -race in cmd/jwtauth-demo: %v\n%s", err, out)
	}

	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-secret", demoSecret)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &demo{}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); d.readAccessLog(stdout) }()
	lines := make(chan string, 16)
	go func() {
		defer readers.Done()
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			d.mu.Lock()
			d.stderr.WriteString(sc.Text() + "\n")
			if m := eventLine.FindStringSubmatch(sc.Text()); m != nil {
				d.events = append(d.events, m[1])
			}
			d.mu.Unlock()
			select {
			case lines <- sc.Text():
			default: // nobody waits any more
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		exited := make(chan struct{})
		go func() { readers.Wait(); cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if strings.Contains(d.stderrText(), "WARNING: DATA RACE") {
			t.Error("the demo reported a data race")
		}
		if t.Failed() {
			t.Logf("the demo's stderr:\n%s", d.stderrText())
		}
	})

	timeout := time.After(30 * time.Second)
	var addr string
	for d.base == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the demo exited before it listened:\n%s", d.stderrText())
			}
			if m := listeningLine.FindStringSubmatch(line); m != nil {
				addr = m[1]
			}
			if m := appLine.FindStringSubmatch(line); m != nil {
				if want := "http://" + addr + "/app/"; m[1] != want {
					t.Fatalf("the demo prints the app at %s, want %s", m[1], want)
				}
				d.base = "http://" + addr
			}
		case <-timeout:
			t.Fatalf("the demo printed no listening line and app URL:\n%s", d.stderrText())
		}
	}
	return d
}

func (d *demo) stderrText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stderr.String()
}

// readAccessLog reads the demo's access log: "DATE TIME REMOTE METHOD PATH STATUS
// BYTES DURATION", one line per request.
func (d *demo) readAccessLog(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			continue
		}
		status, err := strconv.Atoi(f[5])
		if err != nil {
			continue
		}
		d.mu.Lock()
		d.requests = append(d.requests, request{Method: f[3], Path: f[4], Status: status})
		d.mu.Unlock()
	}
}

// mark returns where the access log is now, for since and waitPosts.
func (d *demo) mark() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.requests)
}

// since returns the requests logged after mark.
func (d *demo) since(mark int) []request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]request(nil), d.requests[mark:]...)
}

// waitPosts waits until n POST requests have been logged after mark, and returns them.
func (d *demo) waitPosts(t *testing.T, mark, n int, limit time.Duration) []request {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var posts []request
		for _, r := range d.since(mark) {
			if r.Method == "POST" {
				posts = append(posts, r)
			}
		}
		if len(posts) >= n {
			return posts
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo logged %d POST requests in %v, want %d: %v", len(posts), limit, n, d.since(mark))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventMark returns where the event log is now, for waitEvents.
func (d *demo) eventMark() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.events)
}

// waitEvents waits until the demo has logged n security events of the name after mark,
// and a little longer for any more; it returns how many it logged.
func (d *demo) waitEvents(t *testing.T, mark int, name string, n int, limit time.Duration) int {
	t.Helper()
	count := func() int {
		d.mu.Lock()
		defer d.mu.Unlock()
		c := 0
		for _, e := range d.events[mark:] {
			if e == name {
				c++
			}
		}
		return c
	}
	deadline := time.Now().Add(limit)
	for count() < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if c := count(); c != n {
		t.Errorf("the demo logged %d %s events, want %d", c, name, n)
		return c
	}
	return n
}
