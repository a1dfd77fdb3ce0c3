package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jwtauth/jwtauth"
)

func newTestServer(t *testing.T) (*httptest.Server, *bytes.Buffer) {
	t.Helper()
	var logBuf bytes.Buffer
	handler, err := newServer(config{
		secret:     []byte("demo-test-secret-0123456789abcdef"),
		iterations: 1000, // the real 600 000 would make the test slow
		accessLog:  &logBuf,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(handler)
	t.Cleanup(ts.Close)
	return ts, &logBuf
}

// call is one curl of the walkthrough in cmd/jwtauth-demo/README.md.
func call(t *testing.T, ts *httptest.Server, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: body %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, m
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// TestWalkthrough is the curl walkthrough of cmd/jwtauth-demo/README.md: login, call,
// scope refusal, refresh, logout, and the refresh that the logout refuses.
func TestWalkthrough(t *testing.T) {
	ts, logBuf := newTestServer(t)

	code, m := call(t, ts, "POST", "/auth", "", `{"username": "alice", "password": "wonderland"}`)
	access, refresh := str(m, "access_token"), str(m, "refresh_token")
	if code != 200 || access == "" || len(refresh) != 24 {
		t.Fatalf("login alice: %d %v", code, m)
	}

	if code, m = call(t, ts, "GET", "/api/orders", access, ""); code != 200 || m["user"] != "alice" {
		t.Fatalf("list orders: %d %v", code, m)
	}
	if code, m = call(t, ts, "POST", "/api/orders", access, `{"item": "tea"}`); code != 201 || m["by"] != "alice" {
		t.Fatalf("alice creates: %d %v", code, m)
	}
	if code, m = call(t, ts, "GET", "/auth/me", access, ""); code != 200 {
		t.Fatalf("me: %d %v", code, m)
	}

	code, m = call(t, ts, "POST", "/auth", "", `{"username": "bob", "password": "builder"}`)
	bob := str(m, "access_token")
	if code != 200 || bob == "" {
		t.Fatalf("login bob: %d %v", code, m)
	}
	if code, m = call(t, ts, "POST", "/api/orders", bob, `{"item": "coffee"}`); code != 403 || m["exception"] != "Unauthorized" {
		t.Fatalf("bob creates: %d %v", code, m)
	}
	if code, m = call(t, ts, "GET", "/api/orders", "", ""); code != 401 || m["exception"] != "MissingAuthorizationHeader" {
		t.Fatalf("no token: %d %v", code, m)
	}

	code, m = call(t, ts, "POST", "/auth/refresh", access, `{"refresh_token": "`+refresh+`"}`)
	access2, refresh2 := str(m, "access_token"), str(m, "refresh_token")
	if code != 200 || access2 == "" || refresh2 == "" || refresh2 == refresh {
		t.Fatalf("refresh: %d %v", code, m)
	}
	if code, _ = call(t, ts, "GET", "/api/orders", access2, ""); code != 200 {
		t.Fatalf("new access token: %d", code)
	}

	if code, m = call(t, ts, "POST", "/auth/logout", access2, ""); code != 204 {
		t.Fatalf("logout: %d %v", code, m)
	}
	if code, m = call(t, ts, "POST", "/auth/refresh", access2, `{"refresh_token": "`+refresh2+`"}`); code != 401 || m["exception"] != "AuthenticationFailed" {
		t.Fatalf("refresh after logout: %d %v", code, m)
	}

	if lines := strings.Count(logBuf.String(), "\n"); lines != 11 {
		t.Errorf("access log has %d lines, want one per request (11):\n%s", lines, logBuf)
	}
	if strings.Contains(logBuf.String(), refresh) || strings.Contains(logBuf.String(), "wonderland") {
		t.Error("access log holds a secret")
	}
}

func TestLoginFailures(t *testing.T) {
	ts, _ := newTestServer(t)
	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"username": "alice", "password": "builder"}`, 401},
		{`{"username": "mallory", "password": "wonderland"}`, 401},
		{`{"username": "alice"}`, 401},
		{`username=alice&password=wonderland`, 400}, // not JSON: the client's mistake
	} {
		if code, m := call(t, ts, "POST", "/auth", "", tc.body); code != tc.status || m["exception"] != "AuthenticationFailed" {
			t.Errorf("%s: %d %v, want %d", tc.body, code, m, tc.status)
		}
	}
}

// TestPBKDF2 checks the PBKDF2-HMAC-SHA256 vectors of RFC 7914 §11.
func TestPBKDF2(t *testing.T) {
	for _, tc := range []struct {
		password, salt string
		iterations     int
		want           string
	}{
		{"passwd", "salt", 1, "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"},
		{"Password", "NaCl", 80000, "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"},
	} {
		got := hex.EncodeToString(pbkdf2SHA256([]byte(tc.password), []byte(tc.salt), tc.iterations, 64))
		if got != tc.want {
			t.Errorf("PBKDF2(%q, %q, %d) = %s, want %s", tc.password, tc.salt, tc.iterations, got, tc.want)
		}
	}
}

func TestParseSecret(t *testing.T) {
	for _, tc := range []struct {
		in      string
		wantLen int
		err     bool
	}{
		{"", 0, false},
		{strings.Repeat("ab", 32), 32, false},             // hex
		{strings.Repeat("x", 32), 32, false},              // raw
		{strings.Repeat("ab", 16), 32, false},             // 32 hex digits are 16 bytes: taken raw as 32
		{"short", 0, true},                                // too short either way
		{strings.Repeat("zz", 10), 0, true},               // not hex, 20 bytes raw
		{strings.Repeat("0f", 40), 40, false},             // longer hex
		{"0123456789abcdef0123456789abcdefXY", 34, false}, // not hex: raw
	} {
		got, err := parseSecret(tc.in)
		if (err != nil) != tc.err || len(got) != tc.wantLen {
			t.Errorf("parseSecret(%q) = %d bytes, %v", tc.in, len(got), err)
		}
	}
}

// TestPing checks the load-test pair: the same answer open and protected, and the
// protected one refused without a token.
func TestPing(t *testing.T) {
	ts, logBuf := newTestServer(t)
	code, m := call(t, ts, "POST", "/auth", "", `{"username": "alice", "password": "wonderland"}`)
	access := str(m, "access_token")
	if code != 200 || access == "" {
		t.Fatalf("login alice: %d %v", code, m)
	}
	for _, path := range []string{"/api/ping", "/api/ping/protected"} {
		if code, m := call(t, ts, "GET", path, access, ""); code != 200 || m["pong"] != true {
			t.Errorf("%s with a token: %d %v", path, code, m)
		}
	}
	if code, m := call(t, ts, "GET", "/api/ping", "", ""); code != 200 || m["pong"] != true {
		t.Errorf("/api/ping without a token: %d %v", code, m)
	}
	if code, m := call(t, ts, "GET", "/api/ping/protected", "", ""); code != 401 || m["exception"] != "MissingAuthorizationHeader" {
		t.Errorf("/api/ping/protected without a token: %d %v", code, m)
	}
	if code, m := call(t, ts, "GET", "/api/ping/protected", access+"x", ""); code != 401 {
		t.Errorf("/api/ping/protected with a bad token: %d %v", code, m)
	}
	if lines := strings.Count(logBuf.String(), "\n"); lines != 6 {
		t.Errorf("access log has %d lines, want 6:\n%s", lines, logBuf)
	}
}

// TestQuiet checks that a server without an access log (-quiet) still serves.
func TestQuiet(t *testing.T) {
	handler, err := newServer(config{secret: []byte("demo-test-secret-0123456789abcdef"), iterations: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(handler)
	t.Cleanup(ts.Close)
	if code, m := call(t, ts, "GET", "/api/ping", "", ""); code != 200 || m["pong"] != true {
		t.Errorf("/api/ping: %d %v", code, m)
	}
	if code, _ := call(t, ts, "GET", "/api/ping/protected", "", ""); code != 401 {
		t.Errorf("/api/ping/protected without a token: %d", code)
	}
}

// demoProcess is a demo started by a test, with its stderr read line by line.
type demoProcess struct {
	cmd   *exec.Cmd
	lines chan string // stderr, closed at EOF: when every process holding it has exited
	addr  string      // from the listening line
	pid   int         // from the listening line
}

var listeningLine = regexp.MustCompile(`listening on http://(\S+) \(pid (\d+); Ctrl-C or kill (\d+) stops it\)`)

// startDemo starts cmd (the demo, or go run of it) and waits for its listening line.
func startDemo(t *testing.T, cmd *exec.Cmd) *demoProcess {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("sends SIGTERM")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = w // an *os.File: handed to the process (and to go run's child) as is
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	d := &demoProcess{cmd: cmd, lines: make(chan string, 100)}
	go func() {
		defer close(d.lines)
		defer r.Close()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			d.lines <- sc.Text()
		}
	}()
	timeout := time.After(2 * time.Minute) // go run compiles first, on a busy machine maybe slowly
	for {
		select {
		case line, ok := <-d.lines:
			if !ok {
				t.Fatal("the demo exited before it listened")
			}
			t.Log(line)
			if m := listeningLine.FindStringSubmatch(line); m != nil {
				if m[2] != m[3] {
					t.Fatalf("two PIDs in %q", line)
				}
				d.addr = m[1]
				d.pid, _ = strconv.Atoi(m[2])
				t.Cleanup(func() { // the demo, if a test leaves it running (go run's child)
					if p, err := os.FindProcess(d.pid); err == nil {
						p.Kill()
					}
				})
				return d
			}
		case <-timeout:
			t.Fatal("no listening line")
		}
	}
}

// waitExit waits up to limit for stderr to reach EOF, which happens when the demo has
// exited, and returns what it logged meanwhile.
func (d *demoProcess) waitExit(t *testing.T, limit time.Duration) string {
	t.Helper()
	var logged strings.Builder
	timeout := time.After(limit)
	for {
		select {
		case line, ok := <-d.lines:
			if !ok {
				return logged.String()
			}
			t.Log(line)
			logged.WriteString(line + "\n")
		case <-timeout:
			t.Fatalf("the demo still runs %v later; it logged:\n%s", limit, logged.String())
		}
	}
}

// assertServes checks that the demo answers, and assertPortFree that nothing does.
func assertServes(t *testing.T, addr string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/ping: %s", resp.Status)
	}
}

func assertPortFree(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the demo's port is still taken: %v", err)
	}
	ln.Close()
}

var testSecret = strings.Repeat("5e", 32)

// TestSIGTERM builds the demo, starts it and sends it SIGTERM: it must exit with status
// 0 within a few seconds and free its port.
func TestSIGTERM(t *testing.T) {
	goTool := lookGo(t)
	bin := filepath.Join(t.TempDir(), "jwtauth-demo")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	d := startDemo(t, exec.Command(bin, "-addr", "127.0.0.1:0", "-quiet", "-secret", testSecret))
	if d.pid != d.cmd.Process.Pid {
		t.Fatalf("the demo says pid %d, it is %d", d.pid, d.cmd.Process.Pid)
	}
	assertServes(t, d.addr)

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	logged := d.waitExit(t, 5*time.Second)
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want status 0", err)
	}
	if !strings.Contains(logged, "shutting down") {
		t.Errorf("no shutdown line in:\n%s", logged)
	}
	assertPortFree(t, d.addr)
}

// TestGoRunKilled starts the demo with go run and sends SIGTERM to go run, which does
// not pass it on: the demo must notice that its parent is gone and exit, freeing its
// port. It runs twice, as from Go 1.24 on the second go run starts the executable from
// the build cache rather than from a go-build temporary directory.
func TestGoRunKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the demo with go run")
	}
	goTool := lookGo(t)
	for _, name := range []string{"first", "again"} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(goTool, "run", ".", "-addr", "127.0.0.1:0", "-quiet", "-secret", testSecret)
			// go run killed leaves its go-build directory behind: put it where the test cleans up.
			cmd.Env = append(os.Environ(), "GOTMPDIR="+t.TempDir())
			d := startDemo(t, cmd)
			if d.pid == d.cmd.Process.Pid {
				t.Fatal("the demo's pid is go run's")
			}
			assertServes(t, d.addr)

			if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			d.cmd.Wait() // go run dies of the signal; the demo is now an orphan
			logged := d.waitExit(t, 5*time.Second)
			if want := fmt.Sprintf("go run (pid %d) has exited, shutting down", d.cmd.Process.Pid); !strings.Contains(logged, want) {
				t.Errorf("no %q in:\n%s", want, logged)
			}
			assertPortFree(t, d.addr)
		})
	}
}

// TestBuiltByGoRun pins where go run puts the executable, and that an installed or
// hand-built demo is not taken for one.
func TestBuiltByGoRun(t *testing.T) {
	hash := strings.Repeat("0123456789abcdef", 4)
	for exe, want := range map[string]bool{
		"/tmp/go-build2137534433/b001/exe/jwtauth-demo":             true,
		"/tmp/gotmp/go-build99/b001/exe/jwtauth-demo":               true,
		"/root/.cache/go-build/10/" + hash + "-d/jwtauth-demo":      true,
		"/home/me/go/bin/jwtauth-demo":                              false,
		"/home/me/src/jwtauth/jwtauth-demo":                         false,
		"/home/me/exe/jwtauth-demo":                                 false,
		"/root/.cache/go-build/10/" + hash[:63] + "-d/jwtauth-demo": false,
	} {
		if got := builtByGoRun(filepath.FromSlash(exe)); got != want {
			t.Errorf("builtByGoRun(%q) = %v, want %v", exe, got, want)
		}
	}
}

// lookGo finds the go command; go test puts its own first in $PATH.
func lookGo(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	return goTool
}

// TestReplayIsLoggedAsReuse: log in, refresh once, and present the first refresh token
// again. At once, within the 10 s reuse interval, it is a retry (a client whose answer
// was lost) and gets the same successor; after the interval it is a replay: 401, and a
// reuse_detected line in the event log, which an operator can alert on, with no token
// in it. The test moves the demo's clock rather than sleep.
func TestReplayIsLoggedAsReuse(t *testing.T) {
	var events syncWriter
	var skew atomic.Int64 // how far the demo's clock is ahead of time.Now
	handler, err := newServer(config{
		secret:     []byte("demo-test-secret-0123456789abcdef"),
		iterations: 1000,
		events:     slog.New(slog.NewTextHandler(&events, nil)),
		now:        func() time.Time { return time.Now().Add(time.Duration(skew.Load())) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(handler)
	t.Cleanup(ts.Close)
	_, m := call(t, ts, "POST", "/auth", "", `{"username": "alice", "password": "wonderland"}`)
	access, old := str(m, "access_token"), str(m, "refresh_token")
	code, m := call(t, ts, "POST", "/auth/refresh", access, `{"refresh_token": "`+old+`"}`)
	next := str(m, "refresh_token")
	if code != 200 || next == "" || next == old {
		t.Fatalf("refresh: %d %v", code, m)
	}
	if code, m := call(t, ts, "POST", "/auth/refresh", access, `{"refresh_token": "`+old+`"}`); code != 200 || str(m, "refresh_token") != next {
		t.Fatalf("retry within the reuse interval: %d %v, want 200 and the same refresh token %s", code, m, next)
	}
	if log := events.String(); strings.Contains(log, "reuse_detected") {
		t.Errorf("a retry within the reuse interval is logged as reuse:\n%s", log)
	}

	skew.Store(int64(11 * time.Second)) // past the 10 s reuse interval
	if code, m := call(t, ts, "POST", "/auth/refresh", access, `{"refresh_token": "`+old+`"}`); code != 401 || m["exception"] != "AuthenticationFailed" {
		t.Fatalf("replay after the reuse interval: %d %v, want 401", code, m)
	}
	log := events.String()
	if !strings.Contains(log, `level=WARN msg="jwtauth: reuse_detected" event=reuse_detected user_id=alice session_id=`) ||
		!strings.Contains(log, "generations_behind=1") {
		t.Errorf("no reuse_detected line in the event log:\n%s", log)
	}
	if strings.Contains(log, old) || strings.Contains(log, next) || strings.Contains(log, access) || strings.Contains(log, "wonderland") {
		t.Errorf("the event log holds a secret:\n%s", log)
	}
}

// syncWriter is a buffer safe for the server's goroutines.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// newClockedServer is newTestServer without the access log and with the demo's clock
// (config.now) under the test's control: the returned skew moves it on.
func newClockedServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	skew := new(atomic.Int64)
	handler, err := newServer(config{
		secret:     []byte("demo-test-secret-0123456789abcdef"),
		iterations: 1000,
		now:        func() time.Time { return time.Now().Add(time.Duration(skew.Load())) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(handler)
	t.Cleanup(ts.Close)
	return ts, skew
}

// loginTokens logs the user in as an app does and returns the two tokens.
func loginTokens(t *testing.T, ts *httptest.Server, user, password string) (access, refresh string) {
	t.Helper()
	code, m := call(t, ts, "POST", "/auth", "", fmt.Sprintf(`{"username": %q, "password": %q}`, user, password))
	access, refresh = str(m, "access_token"), str(m, "refresh_token")
	if code != 200 || access == "" || refresh == "" {
		t.Fatalf("login %s/%s: %d %v", user, password, code, m)
	}
	return access, refresh
}

// refreshCode presents the refresh token, as an app does, and returns the status and
// the answer.
func refreshCode(t *testing.T, ts *httptest.Server, access, refresh string) (int, map[string]any) {
	t.Helper()
	return call(t, ts, "POST", "/auth/refresh", access, `{"refresh_token": "`+refresh+`"}`)
}

// payload decodes the claims of a JWT without checking it.
func payload(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	if err == nil {
		err = json.Unmarshal(raw, &m)
	}
	if err != nil {
		t.Fatalf("JWT payload %q: %v", parts[1], err)
	}
	return m
}

// TestPasswordChange is the password-change recipe: right after a login, POST
// /api/password with the current password changes alice's password and ends her other
// sessions (their refresh is a 401) but not the caller's, nor bob's; the old password no
// longer logs in, the new one does. A new password under 8 bytes, or no JSON, is a 400;
// a wrong current password (bob's among them), an empty one or none is a 401
// AuthenticationFailed that changes nothing: the old password still logs in, the other
// session still refreshes.
func TestPasswordChange(t *testing.T) {
	ts, _ := newClockedServer(t)
	here, hereRefresh := loginTokens(t, ts, "alice", "wonderland")
	other, otherRefresh := loginTokens(t, ts, "alice", "wonderland")
	bob, bobRefresh := loginTokens(t, ts, "bob", "builder")

	for _, body := range []string{`{"current": "wonderland", "password": "short"}`, `{"current": "wonderland"}`, `{}`, `current=wonderland&password=looking-glass`} {
		if code, m := call(t, ts, "POST", "/api/password", here, body); code != 400 || str(m, "error") != `send {"current": "...", "password": "..."}, the new password at least 8 bytes` {
			t.Errorf("POST /api/password %s: %d %v, want 400", body, code, m)
		}
	}
	if code, m := call(t, ts, "POST", "/api/password", "", `{"current": "wonderland", "password": "looking-glass"}`); code != 401 || m["exception"] != "MissingAuthorizationHeader" {
		t.Errorf("POST /api/password without a token: %d %v, want 401", code, m)
	}
	for _, body := range []string{
		`{"current": "wonderlant", "password": "looking-glass"}`, // wrong
		`{"current": "builder", "password": "looking-glass"}`,    // bob's
		`{"current": "", "password": "looking-glass"}`,           // empty
		`{"password": "looking-glass"}`,                          // missing
	} {
		code, m := call(t, ts, "POST", "/api/password", here, body)
		if reasons, _ := m["reasons"].([]any); code != 401 || m["exception"] != "AuthenticationFailed" || len(reasons) != 1 || reasons[0] != "The current password is wrong." || len(m) != 2 {
			t.Errorf("POST /api/password %s: %d %v, want 401 AuthenticationFailed, The current password is wrong.", body, code, m)
		}
	}
	// The refused changes changed nothing: the old password logs in, no session ended.
	loginTokens(t, ts, "alice", "wonderland")
	code, m := refreshCode(t, ts, other, otherRefresh)
	other, otherRefresh = str(m, "access_token"), str(m, "refresh_token")
	if code != 200 || otherRefresh == "" {
		t.Fatalf("refresh of alice's other session after the refused changes: %d %v, want 200", code, m)
	}

	code, m = call(t, ts, "POST", "/api/password", here, `{"current": "wonderland", "password": "looking-glass"}`)
	if code != 200 || m["changed"] != true || m["other_sessions_ended"] != true || len(m) != 2 {
		t.Fatalf("POST /api/password: %d %v, want 200 {changed: true, other_sessions_ended: true}", code, m)
	}

	if code, m := refreshCode(t, ts, other, otherRefresh); code != 401 || m["exception"] != "AuthenticationFailed" {
		t.Errorf("refresh of alice's other session: %d %v, want 401", code, m)
	}
	if code, m := refreshCode(t, ts, here, hereRefresh); code != 200 || str(m, "refresh_token") == "" {
		t.Errorf("refresh of the caller's session: %d %v, want 200", code, m)
	}
	if code, m := refreshCode(t, ts, bob, bobRefresh); code != 200 {
		t.Errorf("refresh of bob's session: %d %v, want 200: only alice's sessions end", code, m)
	}
	if code, m := call(t, ts, "GET", "/api/orders", here, ""); code != 200 || m["user"] != "alice" {
		t.Errorf("the caller's access token after the change: %d %v", code, m)
	}

	if code, m := call(t, ts, "POST", "/auth", "", `{"username": "alice", "password": "wonderland"}`); code != 401 || m["exception"] != "AuthenticationFailed" {
		t.Errorf("login with the old password: %d %v, want 401", code, m)
	}
	loginTokens(t, ts, "alice", "looking-glass")
	loginTokens(t, ts, "bob", "builder")
}

// TestPasswordChangeNeedsRecentAuth: the change needs a login of the last 5 minutes.
// Six minutes after the login (the demo's clock moved on) it is a 401
// InsufficientUserAuthentication with a WWW-Authenticate challenge that names
// max_age=300, also with an access token from a refresh (a refresh keeps auth_time).
// POST /auth/reauthenticate with a wrong password is a 401 and with bob's password a
// 403; with alice's own it answers new tokens of the same session with a new
// auth_time, and the change works again, ending alice's other session.
func TestPasswordChangeNeedsRecentAuth(t *testing.T) {
	ts, skew := newClockedServer(t)
	access, refresh := loginTokens(t, ts, "alice", "wonderland")
	other, otherRefresh := loginTokens(t, ts, "alice", "wonderland")
	loginAt := payload(t, access)["auth_time"].(float64)

	skew.Store(int64(6 * time.Minute))
	code, m := refreshCode(t, ts, access, refresh)
	access, refresh = str(m, "access_token"), str(m, "refresh_token")
	if code != 200 || access == "" || payload(t, access)["auth_time"] != loginAt {
		t.Fatalf("refresh 6 minutes on: %d %v, want 200 and the login's auth_time %v", code, m, loginAt)
	}
	change := `{"current": "wonderland", "password": "looking-glass"}`
	bearer := http.Header{"Authorization": {"Bearer " + access}}
	resp, body := appCall(t, ts, "POST", "/api/password", nil, change, bearer)
	challenge := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != 401 || !strings.Contains(body, `"exception":"InsufficientUserAuthentication"`) ||
		!strings.HasPrefix(challenge, `Bearer error="insufficient_user_authentication"`) || !strings.Contains(challenge, "max_age=300") {
		t.Fatalf("POST /api/password 6 minutes after the login: %d %q %s, want 401 InsufficientUserAuthentication, max_age=300", resp.StatusCode, challenge, body)
	}

	for _, tc := range []struct {
		body, exception string
		status          int
	}{
		{`{"username": "alice", "password": "wrong-password"}`, "AuthenticationFailed", 401},
		{`{"username": "bob", "password": "builder"}`, "WrongUser", 403},
	} {
		if code, m := call(t, ts, "POST", "/auth/reauthenticate", access, tc.body); code != tc.status || m["exception"] != tc.exception {
			t.Errorf("reauthenticate %s: %d %v, want %d %s", tc.body, code, m, tc.status, tc.exception)
		}
	}
	if resp, body := appCall(t, ts, "POST", "/api/password", nil, change, bearer); resp.StatusCode != 401 {
		t.Errorf("POST /api/password after the failed reauthentications: %d %s, want 401", resp.StatusCode, body)
	}

	code, m = call(t, ts, "POST", "/auth/reauthenticate", access, `{"username": "alice", "password": "wonderland"}`)
	fresh, freshRefresh := str(m, "access_token"), str(m, "refresh_token")
	if code != 200 || fresh == "" || freshRefresh == "" || freshRefresh == refresh {
		t.Fatalf("reauthenticate: %d %v, want 200 and new tokens", code, m)
	}
	if was, now := payload(t, access), payload(t, fresh); now["sid"] != was["sid"] || now["auth_time"].(float64) < loginAt+360 {
		t.Errorf("reauthentication: sid %v, auth_time %v; want the session's sid %v and an auth_time 6 minutes after %v", now["sid"], now["auth_time"], was["sid"], loginAt)
	}
	if code, m = call(t, ts, "POST", "/api/password", fresh, change); code != 200 || m["changed"] != true || m["other_sessions_ended"] != true {
		t.Fatalf("POST /api/password after reauthenticating: %d %v, want 200", code, m)
	}
	if code, m := refreshCode(t, ts, other, otherRefresh); code != 401 {
		t.Errorf("refresh of alice's other session: %d %v, want 401", code, m)
	}
	if code, m := refreshCode(t, ts, fresh, freshRefresh); code != 200 {
		t.Errorf("refresh of the reauthenticated session: %d %v, want 200", code, m)
	}

	skew.Store(int64(12 * time.Minute)) // 6 minutes after the reauthentication
	if code, m := call(t, ts, "POST", "/api/password", fresh, `{"current": "looking-glass", "password": "through-the-looking-glass"}`); code != 401 || m["exception"] != "InsufficientUserAuthentication" {
		t.Errorf("POST /api/password 6 minutes after the reauthentication: %d %v, want 401", code, m)
	}
}

// TestPasswordChangeWhileLoggingIn changes alice's password while logins (with the old
// password and the new one) and /auth/me calls run: under the race detector this checks
// the lock on the accounts. The requests go to the handler directly, not over a socket,
// as the race detector takes every socket read for a synchronisation with every earlier
// socket write and would see no race there. Every login is a 200 or a 401, and once the
// change is done the old password is refused and the new one accepted.
func TestPasswordChangeWhileLoggingIn(t *testing.T) {
	handler, err := newServer(config{secret: []byte("demo-test-secret-0123456789abcdef"), iterations: 1000})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(method, path, access, body string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if access != "" {
			req.Header.Set("Authorization", "Bearer "+access)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	code, body := serve("POST", "/auth", "", `{"username": "alice", "password": "wonderland"}`)
	var tokens struct {
		Access string `json:"access_token"`
	}
	if json.Unmarshal([]byte(body), &tokens); code != 200 || tokens.Access == "" {
		t.Fatalf("login: %d %s", code, body)
	}
	var wg sync.WaitGroup
	var unexpected atomic.Int32
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				password := []string{"wonderland", "looking-glass"}[(i+j)%2]
				login, _ := serve("POST", "/auth", "", `{"username": "alice", "password": "`+password+`"}`)
				me, _ := serve("GET", "/auth/me", tokens.Access, "")
				if (login != 200 && login != 401) || me != 200 {
					unexpected.Add(1)
				}
			}
		}()
	}
	if code, body := serve("POST", "/api/password", tokens.Access, `{"current": "wonderland", "password": "looking-glass"}`); code != 200 {
		t.Errorf("POST /api/password: %d %s", code, body)
	}
	wg.Wait()
	if n := unexpected.Load(); n > 0 {
		t.Errorf("%d logins or /auth/me calls answered other than 200 or 401 (logins), 200 (/auth/me)", n)
	}
	if code, _ := serve("POST", "/auth", "", `{"username": "alice", "password": "wonderland"}`); code != 401 {
		t.Errorf("login with the old password after the change: %d, want 401", code)
	}
	if code, _ := serve("POST", "/auth", "", `{"username": "alice", "password": "looking-glass"}`); code != 200 {
		t.Errorf("login with the new password after the change: %d, want 200", code)
	}
}

// TestPasswordChangeFromAnEndedSession is the attack of the security review: alice logs
// in on devices A and B, and B's access token falls into an attacker's hands. A changes
// the password, which ends B's session. B's access token is still valid (for 30
// minutes) and its auth_time is fresh, but it can change nothing: RequireRecentAuth
// refuses it (401 Unauthorized, invalid_token) as its session has ended, with the old
// password as current and even with the new one. The password stays A's, A's session
// still refreshes and B's does not.
func TestPasswordChangeFromAnEndedSession(t *testing.T) {
	ts, _ := newClockedServer(t)
	a, aRefresh := loginTokens(t, ts, "alice", "wonderland")
	b, bRefresh := loginTokens(t, ts, "alice", "wonderland")

	if code, m := call(t, ts, "POST", "/api/password", a, `{"current": "wonderland", "password": "looking-glass"}`); code != 200 || m["other_sessions_ended"] != true {
		t.Fatalf("A changes the password: %d %v, want 200", code, m)
	}
	if code, m := call(t, ts, "GET", "/api/orders", b, ""); code != 200 {
		t.Fatalf("B's access token after the change: %d %v, want 200 (valid until its exp)", code, m)
	}
	bearer := http.Header{"Authorization": {"Bearer " + b}}
	for _, body := range []string{
		`{"current": "wonderland", "password": "chosen-by-mallory"}`,
		`{"current": "looking-glass", "password": "chosen-by-mallory"}`,
	} {
		resp, got := appCall(t, ts, "POST", "/api/password", nil, body, bearer)
		if resp.StatusCode != 401 || !strings.Contains(got, `"exception":"Unauthorized"`) || resp.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
			t.Errorf("B changes the password with %s: %d %q %s, want 401 Unauthorized, invalid_token", body, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), got)
		}
	}

	for password, want := range map[string]int{"chosen-by-mallory": 401, "wonderland": 401, "looking-glass": 200} {
		if code, m := call(t, ts, "POST", "/auth", "", fmt.Sprintf(`{"username": "alice", "password": %q}`, password)); code != want {
			t.Errorf("login with %s: %d %v, want %d", password, code, m, want)
		}
	}
	if code, m := refreshCode(t, ts, a, aRefresh); code != 200 || str(m, "refresh_token") == "" {
		t.Errorf("refresh of A's session: %d %v, want 200", code, m)
	}
	if code, m := refreshCode(t, ts, b, bRefresh); code != 401 {
		t.Errorf("refresh of B's session: %d %v, want 401", code, m)
	}
}

// TestPasswordChangeBySessionEndedMeanwhile: when the caller's session ends after
// RequireRecentAuth let the request through, EndOtherSessions ends nothing and returns
// an error wrapping jwtauth.ErrTokenInvalid; the handler then answers 401 with
// invalid_token, saying that the password has changed and the other sessions have not
// ended. The session's end cannot be timed over HTTP, so the test puts the handler
// behind Protected alone (which does not look the session up) and ends the session
// before the request.
func TestPasswordChangeBySessionEndedMeanwhile(t *testing.T) {
	auth, err := jwtauth.New(jwtauth.Config{
		Secret:  []byte("demo-test-secret-0123456789abcdef"),
		Refresh: &jwtauth.Refresh{Store: new(jwtauth.MemStore)},
		RetrieveUser: func(_ context.Context, c *jwtauth.Claims) (*jwtauth.User, error) {
			return &jwtauth.User{ID: c.UserID}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	salt := make([]byte, 16)
	book := &accountBook{accounts: map[string]*account{
		"alice": {salt: salt, hash: pbkdf2SHA256([]byte("wonderland"), salt, 1000, 32)},
	}}
	passwords := &passwordChecker{book: book, iterations: 1000, hashing: make(chan struct{}, 1), dummy: &account{salt: salt, hash: make([]byte, 32)}}
	handler := auth.Protected(&passwordChange{auth: auth, passwords: passwords})

	ctx := context.Background()
	here, err := auth.IssueTokens(ctx, &jwtauth.User{ID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.IssueTokens(ctx, &jwtauth.User{ID: "alice"}); err != nil { // another device
		t.Fatal(err)
	}
	claims, err := auth.Verify(here.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := auth.RevokeSession(ctx, "alice", claims.SessionID); !ok || err != nil {
		t.Fatalf("RevokeSession: %v %v", ok, err)
	}

	req := httptest.NewRequest("POST", "/api/password", strings.NewReader(`{"current": "wonderland", "password": "looking-glass"}`))
	req.Header.Set("Authorization", "Bearer "+here.AccessToken)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || rec.Code != 401 || m["changed"] != true || m["other_sessions_ended"] != false ||
		rec.Header().Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
		t.Fatalf("POST /api/password from an ended session: %d %q %s, want 401 invalid_token, changed true, other_sessions_ended false",
			rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body)
	}
	if acct, _ := passwords.check(ctx, "alice", "looking-glass"); acct == nil {
		t.Error("the new password is not stored")
	}
	if ss, err := auth.Sessions(ctx, "alice"); err != nil || len(ss) != 1 {
		t.Errorf("alice's sessions: %v %v, want the other device's still live", ss, err)
	}
}

// TestConcurrentPasswordChanges: alice's two sessions change her password at the same
// moment, each sending the current one. Exactly one change wins (200); the other is a
// 401, either AuthenticationFailed (the password it sent was no longer the current one)
// or Unauthorized (the winner had ended its session), and the password is the
// winner's. Over the handler directly, for the race detector (see
// TestPasswordChangeWhileLoggingIn), and ten times, as the two may not overlap.
func TestConcurrentPasswordChanges(t *testing.T) {
	for round := 0; round < 10; round++ {
		concurrentPasswordChanges(t)
	}
}

func concurrentPasswordChanges(t *testing.T) {
	t.Helper()
	handler, err := newServer(config{secret: []byte("demo-test-secret-0123456789abcdef"), iterations: 1000})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(path, access, body string) (int, string) {
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		if access != "" {
			req.Header.Set("Authorization", "Bearer "+access)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	var access [2]string
	for i := range access {
		code, body := serve("/auth", "", `{"username": "alice", "password": "wonderland"}`)
		var tokens struct {
			Access string `json:"access_token"`
		}
		if json.Unmarshal([]byte(body), &tokens); code != 200 || tokens.Access == "" {
			t.Fatalf("login: %d %s", code, body)
		}
		access[i] = tokens.Access
	}
	news := [2]string{"looking-glass", "through-the-looking-glass"}
	var codes [2]int
	var bodies [2]string
	var wg sync.WaitGroup
	for i := range access {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], bodies[i] = serve("/api/password", access[i], `{"current": "wonderland", "password": "`+news[i]+`"}`)
		}()
	}
	wg.Wait()
	winner := 0
	if codes[1] == 200 {
		winner = 1
	}
	loser := 1 - winner
	if codes[winner] != 200 || codes[loser] != 401 ||
		!(strings.Contains(bodies[loser], `"exception":"AuthenticationFailed"`) || strings.Contains(bodies[loser], `"exception":"Unauthorized"`)) {
		t.Fatalf("two changes at once: %d %s and %d %s, want one 200 and one 401", codes[0], bodies[0], codes[1], bodies[1])
	}
	for i, want := range map[int]int{winner: 200, loser: 401} {
		if code, _ := serve("/auth", "", `{"username": "alice", "password": "`+news[i]+`"}`); code != want {
			t.Errorf("login with %s: %d, want %d", news[i], code, want)
		}
	}
}
