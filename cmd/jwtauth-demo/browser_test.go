package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// appCall is one request to the browser app, with cookies given by hand: a test client's
// cookie jar would not send Secure cookies to the httptest server's http:// URL.
func appCall(t *testing.T, ts *httptest.Server, method, path string, cookies []*http.Cookie, body string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	client := *ts.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(raw)
}

// tokenCookies returns the access and refresh cookies a response set, failing the test
// unless both are there with the safe attributes.
func tokenCookies(t *testing.T, resp *http.Response) (access, refresh *http.Cookie) {
	t.Helper()
	for _, c := range resp.Cookies() {
		switch c.Name {
		case "__Host-access_token":
			access = c
		case "refresh_token":
			refresh = c
		}
	}
	if access == nil || refresh == nil {
		t.Fatalf("want __Host-access_token and refresh_token cookies, got %q", resp.Header.Values("Set-Cookie"))
	}
	for _, c := range []*http.Cookie{access, refresh} {
		if c.Value == "" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Domain != "" {
			t.Errorf("cookie %s: want a value, Secure, HttpOnly, SameSite=Lax, no Domain: %q", c.Name, c.String())
		}
	}
	return access, refresh
}

// TestBrowserAppPage checks that the page, its script and its style are served with a
// Content-Security-Policy, and that /app redirects to /app/.
func TestBrowserAppPage(t *testing.T) {
	ts, _ := newTestServer(t)
	for _, tc := range []struct{ path, contentType, contains string }{
		{"/app/", "text/html; charset=utf-8", `<script src="app.js" defer></script>`},
		{"/app/app.js", "text/javascript; charset=utf-8", "credentials: 'same-origin'"},
		{"/app/app.css", "text/css; charset=utf-8", "body {"},
	} {
		resp, body := appCall(t, ts, "GET", tc.path, nil, "", nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tc.contentType || !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: %d %q, body without %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.contains)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); csp != pageCSP {
			t.Errorf("GET %s: Content-Security-Policy %q", tc.path, csp)
		}
	}
	if resp, _ := appCall(t, ts, "GET", "/app", nil, "", nil); resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/app/" {
		t.Errorf("GET /app: %d to %q, want a redirect to /app/", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := appCall(t, ts, "GET", "/app/nothing", nil, "", nil); resp.StatusCode != 404 {
		t.Errorf("GET /app/nothing: %d, want 404", resp.StatusCode)
	}
}

// chromium is what Chromium adds to the page's own requests: without Origin or
// Sec-Fetch-Site a login is an app's, answered with the tokens in the body.
var chromium = http.Header{"Sec-Fetch-Site": {"same-origin"}}

// TestBrowserApp goes through the page's calls without a browser: the login sets the
// cookies and answers {}, the orders API works with the access cookie, a refresh sets
// new cookies, and the logout clears them.
func TestBrowserApp(t *testing.T) {
	ts, _ := newTestServer(t)

	resp, body := appCall(t, ts, "POST", "/auth", nil, `{"username": "alice", "password": "wonderland"}`, chromium)
	if resp.StatusCode != 200 || strings.TrimSpace(body) != "{}" {
		t.Fatalf("login: %d %s, want 200 {}", resp.StatusCode, body)
	}
	access, refresh := tokenCookies(t, resp)
	if access.Path != "/" || refresh.Path != "/auth/refresh" {
		t.Errorf("cookie paths: access %q, refresh %q; want / and /auth/refresh, where it is used", access.Path, refresh.Path)
	}

	resp, body = appCall(t, ts, "GET", "/api/orders", []*http.Cookie{access}, "", chromium)
	if resp.StatusCode != 200 || strings.TrimSpace(body) != `{"orders":[],"user":"alice"}` {
		t.Fatalf("orders with the cookie: %d %s", resp.StatusCode, body)
	}
	resp, body = appCall(t, ts, "POST", "/api/orders", []*http.Cookie{access}, `{"item": "tea"}`, chromium)
	if resp.StatusCode != 201 || strings.TrimSpace(body) != `{"id":1,"item":"tea","by":"alice"}` {
		t.Fatalf("create with the cookie: %d %s", resp.StatusCode, body)
	}
	resp, body = appCall(t, ts, "GET", "/auth/me", []*http.Cookie{access}, "", chromium)
	if resp.StatusCode != 200 || !strings.Contains(body, `"name":"Alice"`) {
		t.Fatalf("me: %d %s", resp.StatusCode, body)
	}
	// No cookie and no header: the 401 names the header, the last place looked, and
	// the page does not try a refresh for it.
	resp, body = appCall(t, ts, "GET", "/api/orders", nil, "", chromium)
	if resp.StatusCode != 401 || !strings.Contains(body, `"MissingAuthorizationHeader"`) {
		t.Errorf("orders with no token: %d %s, want 401 MissingAuthorizationHeader", resp.StatusCode, body)
	}

	resp, body = appCall(t, ts, "POST", "/auth/refresh", []*http.Cookie{access, refresh}, "", chromium)
	if resp.StatusCode != 200 || strings.TrimSpace(body) != "{}" {
		t.Fatalf("refresh: %d %s, want 200 {}", resp.StatusCode, body)
	}
	access2, refresh2 := tokenCookies(t, resp)
	if refresh2.Value == refresh.Value {
		t.Error("refresh kept the refresh token")
	}
	if resp, body = appCall(t, ts, "GET", "/api/orders", []*http.Cookie{access2}, "", chromium); resp.StatusCode != 200 {
		t.Fatalf("orders with the new cookie: %d %s", resp.StatusCode, body)
	}

	resp, body = appCall(t, ts, "POST", "/auth/logout", []*http.Cookie{access2}, "", chromium)
	if resp.StatusCode != 204 {
		t.Fatalf("logout: %d %s", resp.StatusCode, body)
	}
	cleared := map[string]bool{}
	for _, c := range resp.Cookies() {
		cleared[c.Name] = c.MaxAge < 0 && c.Value == ""
	}
	if !cleared["__Host-access_token"] || !cleared["refresh_token"] {
		t.Errorf("logout clears %v; want both cookies: %q", cleared, resp.Header.Values("Set-Cookie"))
	}
	resp, body = appCall(t, ts, "POST", "/auth/refresh", []*http.Cookie{access2, refresh2}, "", chromium)
	var e struct{ Exception string }
	if json.Unmarshal([]byte(body), &e); resp.StatusCode != 401 || e.Exception != "AuthenticationFailed" {
		t.Errorf("refresh after logout: %d %s, want 401 AuthenticationFailed", resp.StatusCode, body)
	}
}

// TestSameRoutesServeAnApp: the routes the page calls serve an app too. A login with
// neither Origin nor Sec-Fetch-Site (curl, a mobile app) gets the tokens in the JSON
// body and no cookie, as does its refresh; the app sends the Authorization header, which
// no cross-origin check concerns, so its POST passes whatever Origin it carries, while
// the same POST authenticated by a browser's cookie from a cross-site page is refused.
// The browser and the app see the same orders.
func TestSameRoutesServeAnApp(t *testing.T) {
	ts, _ := newTestServer(t)

	resp, body := appCall(t, ts, "POST", "/auth", nil, `{"username": "alice", "password": "wonderland"}`, nil)
	var tokens struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	if json.Unmarshal([]byte(body), &tokens); resp.StatusCode != 200 || tokens.Access == "" || tokens.Refresh == "" {
		t.Fatalf("the app's login: %d %s, want 200 and both tokens in the body", resp.StatusCode, body)
	}
	if c := resp.Header.Values("Set-Cookie"); len(c) != 0 {
		t.Errorf("the app's login sets cookies %q, want none", c)
	}

	bearer := http.Header{"Authorization": {"Bearer " + tokens.Access}, "Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}
	if resp, body = appCall(t, ts, "POST", "/api/orders", nil, `{"item": "tea"}`, bearer); resp.StatusCode != 201 {
		t.Errorf("the app's POST with the header and a foreign Origin: %d %s, want 201 (a browser never attaches the header itself)", resp.StatusCode, body)
	}

	resp, _ = appCall(t, ts, "POST", "/auth", nil, `{"username": "alice", "password": "wonderland"}`, chromium)
	access, _ := tokenCookies(t, resp)
	resp, body = appCall(t, ts, "POST", "/api/orders", []*http.Cookie{access}, `{"item": "forged"}`, http.Header{"Sec-Fetch-Site": {"cross-site"}})
	if resp.StatusCode != 403 || !strings.Contains(body, `"exception":"CrossOriginRequest"`) {
		t.Errorf("a cross-site POST with the browser's cookie: %d %s, want 403 CrossOriginRequest", resp.StatusCode, body)
	}
	resp, body = appCall(t, ts, "GET", "/api/orders", []*http.Cookie{access}, "", chromium)
	if resp.StatusCode != 200 || strings.TrimSpace(body) != `{"orders":[{"id":1,"item":"tea","by":"alice"}],"user":"alice"}` {
		t.Errorf("the browser's orders: %d %s, want the app's order and not the forged one", resp.StatusCode, body)
	}

	resp, body = appCall(t, ts, "POST", "/auth/refresh", nil, `{"refresh_token": "`+tokens.Refresh+`"}`, http.Header{"Authorization": {"Bearer " + tokens.Access}})
	var next struct {
		Refresh string `json:"refresh_token"`
	}
	if json.Unmarshal([]byte(body), &next); resp.StatusCode != 200 || next.Refresh == "" || next.Refresh == tokens.Refresh {
		t.Errorf("the app's refresh: %d %s, want 200 and a new refresh token in the body", resp.StatusCode, body)
	}
	if c := resp.Header.Values("Set-Cookie"); len(c) != 0 {
		t.Errorf("the app's refresh sets cookies %q, want none", c)
	}
}

// TestBrowserAppCrossOrigin: an unsafe request that the browser's cookies authorise, and
// a login, are refused (403 CrossOriginRequest) when a browser says they come from
// another origin; the same requests from the app's own origin, or from no browser, pass.
func TestBrowserAppCrossOrigin(t *testing.T) {
	ts, _ := newTestServer(t)
	resp, _ := appCall(t, ts, "POST", "/auth", nil, `{"username": "alice", "password": "wonderland"}`, chromium)
	access, _ := tokenCookies(t, resp)
	cookie := []*http.Cookie{access}
	order := `{"item": "tea"}`
	for _, tc := range []struct {
		name    string
		method  string
		path    string
		cookies []*http.Cookie
		body    string
		header  http.Header
		status  int
	}{
		{"same-site page", "POST", "/api/orders", cookie, order, http.Header{"Sec-Fetch-Site": {"same-site"}}, 403},
		{"cross-site page", "POST", "/api/orders", cookie, order, http.Header{"Sec-Fetch-Site": {"cross-site"}}, 403},
		{"other Origin, no Fetch Metadata", "POST", "/api/orders", cookie, order, http.Header{"Origin": {"http://evil.example"}}, 403},
		{"cross-site logout", "POST", "/auth/logout", cookie, "", http.Header{"Sec-Fetch-Site": {"cross-site"}}, 403},
		{"cross-site login", "POST", "/auth", nil, `{"username": "bob", "password": "builder"}`, http.Header{"Sec-Fetch-Site": {"cross-site"}}, 403},
		{"cross-site password change", "POST", "/api/password", cookie, `{"current": "wonderland", "password": "chosen-by-mallory"}`, http.Header{"Sec-Fetch-Site": {"cross-site"}}, 403},
		{"cross-site end of a session", "DELETE", "/auth/sessions/x", cookie, "", http.Header{"Origin": {"http://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}, 403},
		{"cross-site read", "GET", "/api/orders", cookie, "", http.Header{"Sec-Fetch-Site": {"cross-site"}}, 200},
		{"the app itself", "POST", "/api/orders", cookie, order, http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {ts.URL}}, 201},
		{"no browser", "POST", "/api/orders", cookie, order, nil, 201},
	} {
		resp, body := appCall(t, ts, tc.method, tc.path, tc.cookies, tc.body, tc.header)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %s %s: %d %s, want %d", tc.name, tc.method, tc.path, resp.StatusCode, body, tc.status)
		}
		if tc.status == 403 && !strings.Contains(body, `"exception":"CrossOriginRequest"`) {
			t.Errorf("%s: %s, want CrossOriginRequest", tc.name, body)
		}
	}
}

// TestBrowserAppSessions goes through the page's sessions list without a browser: alice
// logs in in the browser (cookies) and with curl (tokens in the body); GET
// /auth/sessions with the browser's cookie lists both, labelled from their User-Agent
// headers, the browser's as current; a DELETE of the other session that says it comes
// from another site is refused, the page's own (same-origin) ends it, and curl's refresh
// is then a 401.
func TestBrowserAppSessions(t *testing.T) {
	ts, _ := newTestServer(t)
	const chromeUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36"
	browser := http.Header{"Sec-Fetch-Site": {"same-origin"}, "User-Agent": {chromeUA}}
	resp, _ := appCall(t, ts, "POST", "/auth", nil, `{"username": "alice", "password": "wonderland"}`, browser)
	access, _ := tokenCookies(t, resp)
	cookie := []*http.Cookie{access}

	curl := http.Header{"User-Agent": {"curl/8.5.0"}}
	resp, body := appCall(t, ts, "POST", "/auth", nil, `{"username": "alice", "password": "wonderland"}`, curl)
	var app struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	if json.Unmarshal([]byte(body), &app); resp.StatusCode != 200 || app.Refresh == "" {
		t.Fatalf("curl's login: %d %s", resp.StatusCode, body)
	}

	type session struct {
		ID      string `json:"id"`
		Label   string `json:"label"`
		Current bool   `json:"current"`
	}
	list := func() []session {
		t.Helper()
		resp, body := appCall(t, ts, "GET", "/auth/sessions", cookie, "", browser)
		var l struct{ Sessions []session }
		if err := json.Unmarshal([]byte(body), &l); resp.StatusCode != 200 || err != nil {
			t.Fatalf("GET /auth/sessions: %d %s", resp.StatusCode, body)
		}
		return l.Sessions
	}
	got := list()
	if len(got) != 2 || got[0].Label != "Chrome on Linux" || !got[0].Current || got[1].Label != "curl/8.5.0" || got[1].Current {
		t.Fatalf("the sessions: %+v, want the browser's (Chrome on Linux, current), then curl's (curl/8.5.0)", got)
	}
	other := "/auth/sessions/" + got[1].ID

	resp, body = appCall(t, ts, "DELETE", other, cookie, "", http.Header{"Sec-Fetch-Site": {"same-site"}})
	if resp.StatusCode != 403 || !strings.Contains(body, `"exception":"CrossOriginRequest"`) {
		t.Errorf("DELETE from a same-site page: %d %s, want 403 CrossOriginRequest", resp.StatusCode, body)
	}
	pageOwn := http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {ts.URL}}
	if resp, body = appCall(t, ts, "DELETE", other, cookie, "", pageOwn); resp.StatusCode != 204 {
		t.Fatalf("DELETE %s from the page: %d %s, want 204", other, resp.StatusCode, body)
	}
	if got := list(); len(got) != 1 || !got[0].Current {
		t.Errorf("the sessions after the DELETE: %+v, want the browser's alone", got)
	}
	if resp, body = appCall(t, ts, "DELETE", other, cookie, "", pageOwn); resp.StatusCode != 404 {
		t.Errorf("DELETE %s again: %d %s, want 404", other, resp.StatusCode, body)
	}
	resp, body = appCall(t, ts, "POST", "/auth/refresh", nil, `{"refresh_token": "`+app.Refresh+`"}`, http.Header{"Authorization": {"Bearer " + app.Access}})
	if resp.StatusCode != 401 {
		t.Errorf("curl's refresh after the DELETE: %d %s, want 401", resp.StatusCode, body)
	}
}
