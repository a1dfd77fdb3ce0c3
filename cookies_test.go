package jwtauth

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// Tests of cookie mode's defaults: Secure, HttpOnly, SameSite=Lax, host-only, and no
// token in a response body, each weakened only by its own Insecure switch.

// cookieAttrs returns the Set-Cookie headers of rec as written on the wire: the name
// mapped to the sorted attributes, the name=value pair left out.
func cookieAttrs(rec *httptest.ResponseRecorder) map[string][]string {
	m := map[string][]string{}
	for _, line := range rec.Result().Header.Values("Set-Cookie") {
		parts := strings.Split(line, "; ")
		name, _, _ := strings.Cut(parts[0], "=")
		attrs := slices.Clone(parts[1:])
		slices.Sort(attrs)
		m[name] = attrs
	}
	return m
}

func without(attrs []string, drop string) []string {
	return slices.DeleteFunc(slices.Clone(attrs), func(a string) bool { return a == drop })
}

var defaultCookieAttrs = []string{"HttpOnly", "Path=/", "SameSite=Lax", "Secure"}

// forCookie is want for the named cookie: the refresh cookie's Path is the refresh
// endpoint's, so that ordinary API requests never carry it.
func forCookie(name string, want []string) []string {
	if name != "refresh_token" {
		return want
	}
	out := slices.Clone(want)
	for i, a := range out {
		if a == "Path=/" {
			out[i] = "Path=/auth/refresh"
		}
	}
	slices.Sort(out)
	return out
}

func TestCookiesAreSecureHttpOnlyLaxByDefault(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Cookies = &Cookies{} })
	login := f.do(t, "POST", "/auth", loginBody("alice"))
	refresh := f.do(t, "POST", "/auth/refresh", "", "Cookie", cookieHeader(login))
	for name, rec := range map[string]*httptest.ResponseRecorder{"login": login, "refresh": refresh} {
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", name, rec.Code, rec.Body)
		}
		got := cookieAttrs(rec)
		if len(got) != 2 {
			t.Errorf("%s set cookies %v, want access_token and refresh_token", name, got)
		}
		for _, cookie := range []string{"__Host-access_token", "refresh_token"} {
			if want := forCookie(cookie, defaultCookieAttrs); !slices.Equal(got[cookie], want) {
				t.Errorf("%s: %s attributes %q, want %q", name, cookie, got[cookie], want)
			}
		}
	}
	// Logout clears them with the same attributes, so that the browser matches them.
	logout := f.do(t, "POST", "/auth/logout", "", "Cookie", cookieHeader(refresh))
	if logout.Code != 204 {
		t.Fatalf("logout: %d %s", logout.Code, logout.Body)
	}
	if n := len(cookieAttrs(logout)); n != 2 {
		t.Errorf("logout cleared %d cookies, want 2", n)
	}
	for cookie, attrs := range cookieAttrs(logout) {
		want := forCookie(cookie, append([]string{"Max-Age=0"}, defaultCookieAttrs...))
		if slices.Sort(want); !slices.Equal(attrs, want) {
			t.Errorf("logout: %s attributes %q, want %q", cookie, attrs, want)
		}
	}
}

// TestEachInsecureCookieSwitchRemovesExactlyItsAttribute: InsecureAllowHTTP takes away
// Secure and nothing else, InsecureScriptAccess HttpOnly and nothing else, and
// InsecureBodyTokens no attribute at all.
func TestEachInsecureCookieSwitchRemovesExactlyItsAttribute(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cookies Cookies
		want    []string
	}{
		{"InsecureAllowHTTP", Cookies{InsecureAllowHTTP: true}, without(defaultCookieAttrs, "Secure")},
		{"InsecureScriptAccess", Cookies{InsecureScriptAccess: true}, without(defaultCookieAttrs, "HttpOnly")},
		{"InsecureBodyTokens", Cookies{InsecureBodyTokens: true}, defaultCookieAttrs},
		{"all three", Cookies{InsecureAllowHTTP: true, InsecureScriptAccess: true, InsecureBodyTokens: true},
			[]string{"Path=/", "SameSite=Lax"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.Cookies = &tc.cookies })
			rec := f.do(t, "POST", "/auth", loginBody("alice"))
			if rec.Code != 200 {
				t.Fatalf("login: %d %s", rec.Code, rec.Body)
			}
			for cookie, attrs := range cookieAttrs(rec) {
				if want := forCookie(cookie, tc.want); !slices.Equal(attrs, want) {
					t.Errorf("%s attributes %q, want %q", cookie, attrs, want)
				}
			}
		})
	}
}

// TestSplitSignatureCookieIsHttpOnlyEvenWithScriptAccess: with Split, the header.payload
// cookie is for scripts and the signature cookie never is.
func TestSplitSignatureCookieIsHttpOnlyEvenWithScriptAccess(t *testing.T) {
	for _, scripts := range []bool{false, true} {
		f := newFixture(t, func(c *Config) { c.Cookies = &Cookies{Split: true, InsecureScriptAccess: scripts} })
		got := cookieAttrs(f.do(t, "POST", "/auth", loginBody("alice")))
		noHTTPOnly := without(defaultCookieAttrs, "HttpOnly")
		if !slices.Equal(got["__Host-access_token"], noHTTPOnly) || !slices.Equal(got["__Host-access_token_signature"], defaultCookieAttrs) {
			t.Errorf("InsecureScriptAccess=%v: %q", scripts, got)
		}
		want := defaultCookieAttrs
		if scripts {
			want = noHTTPOnly
		}
		if want := forCookie("refresh_token", want); !slices.Equal(got["refresh_token"], want) {
			t.Errorf("InsecureScriptAccess=%v: refresh_token %q, want %q", scripts, got["refresh_token"], want)
		}
	}
}

func TestSameSiteDefaultModeIsLaxOnTheWire(t *testing.T) {
	for _, mode := range []http.SameSite{0, http.SameSiteDefaultMode, http.SameSiteLaxMode} {
		f := newFixture(t, func(c *Config) { c.Cookies = &Cookies{SameSite: mode} })
		rec := f.do(t, "POST", "/auth", loginBody("alice"))
		for _, line := range rec.Result().Header.Values("Set-Cookie") {
			if !strings.Contains(line, "; SameSite=Lax") || strings.Count(line, "SameSite") != 1 {
				t.Errorf("SameSite %d: Set-Cookie %q, want SameSite=Lax", mode, line)
			}
		}
	}
	for mode, want := range map[http.SameSite]string{http.SameSiteStrictMode: "SameSite=Strict", http.SameSiteNoneMode: "SameSite=None"} {
		f := newFixture(t, func(c *Config) { c.Cookies = &Cookies{SameSite: mode} })
		rec := f.do(t, "POST", "/auth", loginBody("alice"))
		for _, line := range rec.Result().Header.Values("Set-Cookie") {
			if !strings.Contains(line, "; "+want) || !strings.Contains(line, "; Secure") {
				t.Errorf("Set-Cookie %q, want %s and Secure", line, want)
			}
		}
	}
}

func TestCookieModeLeavesTokensOutOfTheBody(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Cookies = &Cookies{} })
	login := f.do(t, "POST", "/auth", loginBody("alice"))
	refresh := f.do(t, "POST", "/auth/refresh", "", "Cookie", cookieHeader(login))
	for name, rec := range map[string]*httptest.ResponseRecorder{"login": login, "refresh": refresh} {
		if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != "{}" {
			t.Errorf("%s: %d %s; want 200 {}", name, rec.Code, rec.Body)
		}
		for _, c := range rec.Result().Cookies() {
			if strings.Contains(rec.Body.String(), c.Value) {
				t.Errorf("%s: the body holds the %s cookie's value", name, c.Name)
			}
		}
	}
}

func TestInsecureBodyTokensPutsTokensInTheBody(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Cookies = &Cookies{InsecureBodyTokens: true} })
	login := f.do(t, "POST", "/auth", loginBody("alice"))
	refresh := f.do(t, "POST", "/auth/refresh", "", "Cookie", cookieHeader(login))
	for name, rec := range map[string]*httptest.ResponseRecorder{"login": login, "refresh": refresh} {
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", name, rec.Code, rec.Body)
		}
		m := decodeMap(t, rec)
		cs := cookiesByName(rec)
		if len(m) != 2 || cs["__Host-access_token"] == nil || cs["refresh_token"] == nil ||
			m["access_token"] != cs["__Host-access_token"].Value || m["refresh_token"] != cs["refresh_token"].Value {
			t.Errorf("%s: body %v, want the two cookies' tokens", name, m)
		}
	}
}

// TestCookieTossingOfTheAccessCookie (§9.4): with the default cookie settings the access
// cookie is a "__Host-" cookie, which a browser takes only from this host itself. A
// sibling subdomain can plant a cookie of the plain name (Domain=the parent domain), but
// the package does not read it: a victim without a session does not act as the
// attacker, and a victim with one goes on as itself.
func TestCookieTossingOfTheAccessCookie(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Cookies = &Cookies{} })
	bob := cookiesByName(f.do(t, "POST", "/auth", loginBody("bob")))["__Host-access_token"]
	alice := cookiesByName(f.do(t, "POST", "/auth", loginBody("alice")))["__Host-access_token"]
	if bob == nil || alice == nil {
		t.Fatal("no __Host-access_token cookie with the default settings")
	}
	planted := "access_token=" + bob.Value
	checkError(t, f.do(t, "GET", "/orders", "", "Cookie", planted), 401, "MissingAuthorizationCookie", "Authorization cookie not present.")
	rec := f.do(t, "GET", "/orders", "", "Cookie", planted+"; __Host-access_token="+alice.Value)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"user":"alice"`) {
		t.Fatalf("alice beside a planted cookie: %d %s", rec.Code, rec.Body)
	}
}

// TestCookieTossingOfTheRefreshCookie (§9.4): the refresh cookie cannot be a "__Host-"
// cookie (its Path is the refresh endpoint's), so a sibling subdomain can plant one. A
// refresh token of another session than the access token's matches nothing in the
// access token's session: a 401 that ends neither session.
func TestCookieTossingOfTheRefreshCookie(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Cookies = &Cookies{} })
	bob := cookiesByName(f.do(t, "POST", "/auth", loginBody("bob")))
	alice := cookiesByName(f.do(t, "POST", "/auth", loginBody("alice")))
	refresh := func(access, refresh *http.Cookie) *httptest.ResponseRecorder {
		return f.do(t, "POST", "/auth/refresh", "", "Cookie", "__Host-access_token="+access.Value+"; refresh_token="+refresh.Value)
	}
	checkError(t, refresh(alice["__Host-access_token"], bob["refresh_token"]), 401, "AuthenticationFailed", "Authentication failed.")
	for name, jar := range map[string]map[string]*http.Cookie{"alice": alice, "bob": bob} {
		if rec := refresh(jar["__Host-access_token"], jar["refresh_token"]); rec.Code != 200 {
			t.Errorf("%s's own refresh after the planted cookie: %d %s", name, rec.Code, rec.Body)
		}
	}
}

// TestCookieNamesAndPrefixes: the access cookie gets the "__Host-" prefix only where a
// browser would keep it (no Domain, Path=/, Secure), never on top of a prefix the name
// already has; and New matches prefixes without regard to case, as browsers do, so a
// "__host-" name is held to the "__Host-" rules.
func TestCookieNamesAndPrefixes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cookies Cookies
		want    string
	}{
		{"access_token", Cookies{}, "__Host-access_token"},
		{"access_token", Cookies{Domain: "example.com"}, "access_token"},
		{"access_token", Cookies{Path: "/app"}, "access_token"},
		{"access_token", Cookies{InsecureAllowHTTP: true}, "access_token"},
		{"__Secure-at", Cookies{}, "__Secure-at"},
		{"__HOST-at", Cookies{}, "__HOST-at"},
		{"__secure-at", Cookies{Domain: "example.com"}, "__secure-at"},
	} {
		a, err := New(Config{Secret: testSecret, AccessTokenName: tc.name, Cookies: &tc.cookies})
		if err != nil {
			t.Fatal(err)
		}
		if a.cookie != tc.want {
			t.Errorf("AccessTokenName %q with %+v: cookie %q, want %q", tc.name, tc.cookies, a.cookie, tc.want)
		}
	}
	for _, tc := range []struct {
		name, refresh, field string
		cookies              Cookies
	}{
		{"__host-at", "", "Cookies.Domain, Cookies.Path", Cookies{Domain: "example.com"}},
		{"__HOST-at", "", "Cookies.Domain, Cookies.Path", Cookies{Path: "/app"}},
		{"__SECURE-at", "", "Cookies.InsecureAllowHTTP", Cookies{InsecureAllowHTTP: true}},
		{"at", "__host-rt", "RefreshTokenName", Cookies{}},
	} {
		cfg := Config{Secret: testSecret, AccessTokenName: tc.name, RefreshTokenName: tc.refresh, Cookies: &tc.cookies}
		mustReject(t, cfg, tc.field)
	}
}

// TestOneAuthServesBrowsersAndApps (§9.7): with Cookies and HeaderFallback, a browser's
// login and refresh (Origin or Sec-Fetch-Site, or a token cookie) are answered with
// cookies and an empty body, an app's (neither) with the tokens in the body and no
// cookie, on the same routes. The cross-origin check concerns only what a cookie
// authenticated, and a script injected into the page, whose fetch carries those
// headers, never reads a token from a body.
func TestOneAuthServesBrowsersAndApps(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Cookies = &Cookies{}; c.HeaderFallback = true })
	bodyTokens := func(name string, rec *httptest.ResponseRecorder, want bool) {
		t.Helper()
		m := decodeMap(t, rec)
		if rec.Code != 200 || (m["access_token"] != nil) != want || (m["refresh_token"] != nil) != want ||
			(len(rec.Result().Cookies()) > 0) == want {
			t.Fatalf("%s: %d %s, cookies %v: want tokens in the body %v, in cookies %v", name, rec.Code, rec.Body, rec.Result().Cookies(), want, !want)
		}
	}

	app := f.do(t, "POST", "/auth", loginBody("alice"))
	bodyTokens("the app's login", app, true)
	tok := tokensOf(t, app)
	if rec := f.do(t, "POST", "/orders", "", "Authorization", "Bearer "+tok.AccessToken, "Origin", "https://evil.example"); rec.Code != 200 {
		t.Fatalf("the app's POST with the header: %d %s, want 200 (no cross-origin check)", rec.Code, rec.Body)
	}
	bodyTokens("the app's refresh", f.do(t, "POST", "/auth/refresh", refreshBody(tok.RefreshToken), bearer(tok.AccessToken)...), true)

	for _, hdr := range [][]string{{"Sec-Fetch-Site", "same-origin"}, {"Origin", "http://example.com"}} {
		browser := f.do(t, "POST", "/auth", loginBody("alice"), hdr...)
		bodyTokens("a browser's login with "+hdr[0], browser, false)
		jar := cookieHeader(browser)
		bodyTokens("a browser's refresh by its cookie", f.do(t, "POST", "/auth/refresh", "", "Cookie", jar), false)
		if rec := f.do(t, "GET", "/orders", "", "Cookie", jar); rec.Code != 200 {
			t.Fatalf("the browser's GET by its cookie: %d %s", rec.Code, rec.Body)
		}
		checkError(t, f.do(t, "POST", "/orders", "", "Cookie", jar, "Sec-Fetch-Site", "cross-site"),
			403, "CrossOriginRequest", "Cross-origin request refused.")
	}
}
