package jwtauth

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestCrossOriginAttacks: in cookie mode, an unsafe request from another origin is
// refused with 403 CrossOriginRequest, on protected routes and on the endpoints; safe
// methods, same-origin requests, non-browser clients and trusted origins pass. The host
// of every request is app.example.com.
func TestCrossOriginAttacks(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Cookies = &Cookies{TrustedOrigins: []string{"https://admin.example.com"}}
	})
	jar := cookieHeader(f.do(t, "POST", "/auth", loginBody("alice")))
	for _, tc := range []struct {
		name    string
		method  string
		path    string
		headers []string
		want    int
	}{
		{"cross-site HTML form POST", "POST", "/orders", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example", "Content-Type", "application/x-www-form-urlencoded"}, 403},
		{"cross-site text/plain POST from an old browser", "POST", "/orders", []string{"Origin", "https://evil.example", "Content-Type", "text/plain"}, 403},
		{"sibling subdomain (same-site is not same-origin)", "POST", "/orders", []string{"Sec-Fetch-Site", "same-site", "Origin", "https://blog.example.com"}, 403},
		{"sibling subdomain, old browser", "POST", "/orders", []string{"Origin", "https://blog.example.com"}, 403},
		{"Origin: null (sandboxed iframe, data: URL)", "POST", "/orders", []string{"Origin", "null"}, 403},
		{"mismatched port", "POST", "/orders", []string{"Origin", "https://app.example.com:8443"}, 403},
		{"cross-site logout", "POST", "/auth/logout", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"cross-site logout of every session", "POST", "/auth/logout?scope=all", []string{"Origin", "https://evil.example"}, 403},
		{"cross-site refresh (rotates the victim's token)", "POST", "/auth/refresh", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"cross-site session deletion", "DELETE", "/auth/sessions/AAAAAAAAAAAAAAAAAAAAAA", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"cross-site login (login CSRF)", "POST", "/auth", []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"same-origin POST", "POST", "/orders", []string{"Sec-Fetch-Site", "same-origin", "Origin", "https://app.example.com"}, 200},
		{"same-origin POST from an old browser", "POST", "/orders", []string{"Origin", "https://app.example.com"}, 200},
		{"typed URL or bookmark (Sec-Fetch-Site none)", "POST", "/orders", []string{"Sec-Fetch-Site", "none"}, 200},
		{"non-browser client (no Sec-Fetch-Site, no Origin)", "POST", "/orders", nil, 200},
		{"trusted origin", "POST", "/orders", []string{"Sec-Fetch-Site", "same-site", "Origin", "https://admin.example.com"}, 200},
		{"trusted origin, old browser", "POST", "/orders", []string{"Origin", "https://admin.example.com"}, 200},
		{"cross-site GET (safe method)", "GET", "/orders", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example"}, 200},
		{"cross-site HEAD (safe method)", "HEAD", "/auth/verify", []string{"Sec-Fetch-Site", "cross-site"}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := ""
			if tc.path == "/auth" {
				body = loginBody("alice")
			}
			r := httptest.NewRequest(tc.method, "https://app.example.com"+tc.path, strings.NewReader(body))
			r.Header.Set("Cookie", jar)
			for i := 0; i+1 < len(tc.headers); i += 2 {
				r.Header.Set(tc.headers[i], tc.headers[i+1])
			}
			rec := httptest.NewRecorder()
			f.h.ServeHTTP(rec, r)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.want, rec.Body)
			}
			if tc.want == 403 {
				checkError(t, rec, 403, "CrossOriginRequest", "Cross-origin request refused.")
			}
		})
	}
	// The refused requests changed nothing: the session still refreshes.
	r := httptest.NewRequest("POST", "https://app.example.com/auth/refresh", nil)
	r.Header.Set("Cookie", jar)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, r)
	if rec.Code != 200 {
		t.Fatalf("refresh after the refused attacks: %d %s", rec.Code, rec.Body)
	}
}

// TestCrossOriginCheckSkipsHeaderTokens: a request authenticated by the Authorization
// header is not subject to the check: a browser never attaches that header by itself.
func TestCrossOriginCheckSkipsHeaderTokens(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Cookies, c.HeaderFallback = &Cookies{}, true
	})
	tok := f.login(t, "alice").AccessToken
	rec := f.do(t, "POST", "/orders", "", "Authorization", "Bearer "+tok, "Sec-Fetch-Site", "cross-site")
	if rec.Code != 200 {
		t.Fatalf("header token, cross-site: %d %s", rec.Code, rec.Body)
	}
	// Without cookie mode there is nothing to check.
	g := newFixture(t, nil)
	tok = g.login(t, "alice").AccessToken
	if rec := g.do(t, "POST", "/orders", "", "Authorization", "Bearer "+tok, "Sec-Fetch-Site", "cross-site"); rec.Code != 200 {
		t.Fatalf("header mode, cross-site: %d %s", rec.Code, rec.Body)
	}
}

// TestTrustedOriginsAreValidated: a trusted origin is scheme://host[:port] exactly as
// browsers send it in Origin: an entry no browser sends (a pattern, upper case, a
// default port, a path) would trust nothing while looking as if it trusted something.
func TestTrustedOriginsAreValidated(t *testing.T) {
	for _, o := range []string{"admin.example.com", "https://", "https://admin.example.com/", "https://admin.example.com/path",
		"https://admin.example.com?q", "https://user@admin.example.com", "null", "*", "https://*.example.com",
		"https://Admin.example.com", "HTTPS://admin.example.com", "https://admin.example.com:443", "http://admin.example.com:80",
		"https://adm%69n.example.com"} {
		_, err := New(Config{Secret: testSecret, Cookies: &Cookies{TrustedOrigins: []string{o}}})
		if err == nil || !strings.Contains(err.Error(), "Cookies.TrustedOrigins") {
			t.Errorf("trusted origin %q: %v, want an error naming Cookies.TrustedOrigins", o, err)
		}
	}
	if _, err := New(Config{Secret: testSecret, Cookies: &Cookies{TrustedOrigins: []string{"https://a.example.com:8443", "http://localhost:3000"}}}); err != nil {
		t.Fatal(err)
	}
}

// TestRefreshCookiePathFollowsTheMount: the refresh cookie is scoped to the refresh
// endpoint as the browser addresses it, under a router's prefix and behind
// http.StripPrefix too, so that API requests never carry it.
func TestRefreshCookiePathFollowsTheMount(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Cookies = &Cookies{} })
	for _, tc := range []struct {
		name string
		h    http.Handler
		path string
	}{
		{"mounted at /auth", f.a.Handler(), "/auth"},
		{"mounted at /auth/", f.a.Handler(), "/auth/"},
		{"under a router prefix", f.a.Handler(), "/api/v1/auth"},
		{"behind StripPrefix", http.StripPrefix("/api", f.a.Handler()), "/api/auth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.h.ServeHTTP(rec, httptest.NewRequest("POST", tc.path, strings.NewReader(loginBody("alice"))))
			if rec.Code != 200 {
				t.Fatalf("login: %d %s", rec.Code, rec.Body)
			}
			want := strings.TrimSuffix(tc.path, "/") + "/refresh"
			if c := cookiesByName(rec)["refresh_token"]; c == nil || c.Path != want {
				t.Fatalf("refresh cookie %+v, want Path=%s", c, want)
			}
		})
	}
}

// TestCrossSiteRefreshCannotPlantASession: in cookie mode with HeaderFallback, a page of
// another site posts the attacker's own tokens (in the JSON body with the header, or in
// the query string) to the refresh endpoint, or the attacker's access token and
// credentials to the reauthentication endpoint: answered with cookies, the victim's
// browser would hold the attacker's session (login CSRF). Both are refused as a
// cross-site login is, with 403, no cookie, and the attacker's session not rotated.
func TestCrossSiteRefreshCannotPlantASession(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Cookies = &Cookies{}
		c.HeaderFallback, c.InsecureQueryString = true, true
	})
	attacker := tokensOf(t, f.do(t, "POST", "/auth", loginBody("bob"))) // as an app: tokens in the body
	for name, req := range map[string][]string{
		"body and header":  {"/auth/refresh", refreshBody(attacker.RefreshToken), "Authorization", "Bearer " + attacker.AccessToken},
		"query string":     {"/auth/refresh?access_token=" + attacker.AccessToken + "&refresh_token=" + attacker.RefreshToken, ""},
		"reauthentication": {"/auth/reauthenticate", loginBody("bob"), "Authorization", "Bearer " + attacker.AccessToken},
	} {
		for _, site := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.example"}} {
			rec := f.do(t, "POST", req[0], req[1], append(slices.Clone(req[2:]), site...)...)
			checkError(t, rec, 403, "CrossOriginRequest", "Cross-origin request refused.")
			if c := rec.Result().Cookies(); len(c) > 0 {
				t.Fatalf("%s with %s: cookies %v", name, site[0], c)
			}
		}
	}
	if rec := f.do(t, "POST", "/auth/refresh", refreshBody(attacker.RefreshToken), bearer(attacker.AccessToken)...); rec.Code != 200 {
		t.Fatalf("the refused requests rotated the session: %d %s", rec.Code, rec.Body)
	}
}
