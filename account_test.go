package jwtauth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestDeviceLabels: the default label names the browser and the system from well-known
// product tokens, else the first product token, and is never more than 64 printable
// bytes of the header.
func TestDeviceLabels(t *testing.T) {
	for ua, want := range map[string]string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0":          "Edge on Windows",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15":                     "Safari on macOS",
		"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0":                                                         "Firefox on Linux",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36":                  "Chrome on Android",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0 Mobile/15E148 Safari/604.1": "Chrome on iOS",
		"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/109.0":               "Opera on ChromeOS",
		"Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15":       "Firefox on iPadOS",
		"MyApp/2.1 (iOS 17.4; iPhone15,2)": "MyApp/2.1",
		"okhttp/4.12.0":                    "okhttp/4.12.0",
		"Chrome/124.0":                     "Chrome",
		"":                                 "",
	} {
		if got := deviceLabel(ua); got != want {
			t.Errorf("deviceLabel(%q) = %q, want %q", ua, got, want)
		}
	}
	a := testAuth(t, nil)
	r, _ := http.NewRequest("POST", "/auth", nil)
	r.Header.Set("User-Agent", strings.Repeat("\x00é", 40)+strings.Repeat("B", 100))
	if got := a.sessionLabel(r); got != strings.Repeat("B", 64) {
		t.Errorf("sessionLabel of a hostile User-Agent = %q", got)
	}
}

// TestRequireRecentAuthRefusesATokenWithoutAuthTime: a token without auth_time (signed
// by the app, or by another issuer with the Secret) never passes the step-up, however
// new it is, and neither does one whose auth_time is ahead of the clock by more than
// Leeway (a replica whose clock runs ahead, or a careless Sign).
func TestRequireRecentAuthRefusesATokenWithoutAuthTime(t *testing.T) {
	a := testAuth(t, nil) // no sessions: the auth_time alone decides
	now := a.cfg.Now()
	h := a.RequireRecentAuth(time.Hour, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, tc := range []struct {
		name     string
		authTime time.Time
		want     int
	}{
		{"without auth_time", time.Time{}, 401},
		{"with auth_time now", now, 200},
		{"with auth_time an hour ago", now.Add(-time.Hour), 200},
		{"with auth_time an hour and a second ago", now.Add(-time.Hour - time.Second), 401},
		{"with auth_time within Leeway ahead", now.Add(3 * time.Minute), 200},
		{"with auth_time beyond Leeway ahead", now.Add(3*time.Minute + time.Second), 401},
	} {
		tok, err := a.Sign(&Claims{UserID: "alice", ExpiresAt: now.Add(time.Minute), AuthTime: tc.authTime})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, rec.Code, tc.want)
		}
	}
}

// TestReauthenticationInCookieMode: a browser reauthenticates with its cookies and gets
// new ones, the refresh cookie on the refresh endpoint's path; a page of another site
// cannot make it reauthenticate, as it cannot make it log in.
func TestReauthenticationInCookieMode(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Cookies = &Cookies{} })
	login := f.do(t, "POST", "/auth", loginBody("alice"))
	jar := cookieHeader(login)
	checkError(t, f.do(t, "POST", "/auth/reauthenticate", loginBody("alice"), "Cookie", jar, "Sec-Fetch-Site", "cross-site"),
		403, "CrossOriginRequest", "Cross-origin request refused.")
	rec := f.do(t, "POST", "/auth/reauthenticate", loginBody("alice"), "Cookie", jar, "Sec-Fetch-Site", "same-origin")
	cs := cookiesByName(rec)
	if rec.Code != 200 || cs["__Host-access_token"] == nil || cs["refresh_token"] == nil || strings.TrimSpace(rec.Body.String()) != "{}" {
		t.Fatalf("reauthentication in cookie mode: %d %s, cookies %v", rec.Code, rec.Body, rec.Result().Cookies())
	}
	if p := cs["refresh_token"].Path; p != "/auth/refresh" {
		t.Errorf("the refresh cookie's Path %q, want /auth/refresh", p)
	}
}

// TestReauthenticationWithoutRotation: with InsecureNoRotation a reauthentication
// answers as a refresh does, with a new access token and no refresh token: the
// session's one refresh token goes on working.
func TestReauthenticationWithoutRotation(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Refresh.InsecureNoRotation = true })
	tok := f.login(t, "alice")
	f.clock.add(time.Minute)
	rec := f.do(t, "POST", "/auth/reauthenticate", loginBody("alice"), bearer(tok.AccessToken)...)
	m := decodeMap(t, rec)
	if rec.Code != 200 || m["access_token"] == nil || m["refresh_token"] != nil {
		t.Fatalf("reauthentication without rotation: %d %v", rec.Code, m)
	}
	if c, err := f.a.Verify(m["access_token"].(string)); err != nil || !c.AuthTime.Equal(f.clock.now().Truncate(time.Second)) {
		t.Fatalf("the new access token: %v, %v", c, err)
	}
	if rec := f.do(t, "POST", "/auth/refresh", refreshBody(tok.RefreshToken), bearer(tok.AccessToken)...); rec.Code != 200 {
		t.Fatalf("the session's refresh token after it: %d %s", rec.Code, rec.Body)
	}
}
