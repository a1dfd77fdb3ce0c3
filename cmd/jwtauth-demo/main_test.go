package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func newTestServer(t *testing.T) (*httptest.Server, *bytes.Buffer) {
	t.Helper()
	var logBuf bytes.Buffer
	srv, err := newServer(config{
		secret:     []byte("demo-test-secret-0123456789abcdef"),
		iterations: 1000, // the real 600 000 would make the test slow
		accessLog:  &logBuf,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.handler)
	t.Cleanup(func() { ts.Close(); srv.close() })
	return ts, &logBuf
}

// call is one curl of the README walkthrough.
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

// TestWalkthrough is the README's curl walkthrough: login, call, scope refusal,
// refresh, replay of the old refresh token, logout.
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
	srv, err := newServer(config{secret: []byte("demo-test-secret-0123456789abcdef"), iterations: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.handler)
	t.Cleanup(func() { ts.Close(); srv.close() })
	if code, m := call(t, ts, "GET", "/api/ping", "", ""); code != 200 || m["pong"] != true {
		t.Errorf("/api/ping: %d %v", code, m)
	}
	if code, _ := call(t, ts, "GET", "/api/ping/protected", "", ""); code != 401 {
		t.Errorf("/api/ping/protected without a token: %d", code)
	}
}
