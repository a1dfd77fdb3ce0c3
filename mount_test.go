package jwtauth

import (
	"net/http"
	"testing"
)

// TestMountServesEveryEndpoint: Mount registers both patterns a ServeMux needs, so the
// login at the prefix itself and every endpoint below it answer, with no redirect.
func TestMountServesEveryEndpoint(t *testing.T) {
	for _, prefix := range []string{"", "/api/auth", "/"} {
		f := newFixture(t, func(c *Config) { c.Endpoints.URLPrefix = prefix })
		mux := http.NewServeMux()
		f.a.Mount(mux)
		f.h = mux
		p := f.a.ep.URLPrefix
		if p == "/" {
			p = ""
		}
		rec := f.do(t, "POST", p+"/", loginBody("alice")) // the login, as /auth/ or /
		if prefix != "/" {
			rec = f.do(t, "POST", p, loginBody("alice")) // and as /auth, with no 307
		}
		if rec.Code != 200 {
			t.Fatalf("prefix %q: login: %d %s", prefix, rec.Code, rec.Body)
		}
		tok := tokensOf(t, rec)
		if rec := f.do(t, "POST", p+"/refresh", refreshBody(tok.RefreshToken), bearer(tok.AccessToken)...); rec.Code != 200 {
			t.Fatalf("prefix %q: refresh: %d %s", prefix, rec.Code, rec.Body)
		}
		if rec := f.do(t, "GET", p+"/sessions", "", bearer(tok.AccessToken)...); rec.Code != 401 && rec.Code != 200 {
			t.Fatalf("prefix %q: sessions: %d %s", prefix, rec.Code, rec.Body)
		}
	}
	// Without Endpoints, Mount still registers the default prefix, which answers 404.
	g := newFixture(t, func(c *Config) { c.Endpoints = nil })
	mux := http.NewServeMux()
	g.a.Mount(mux)
	g.h = mux
	checkError(t, g.do(t, "POST", "/auth", loginBody("alice")), 404, "NotFound", "Not found.")
}

// TestMisroutedHandlerSaysHowToMountIt: a handler that receives an endpoint's name
// outside its prefix (mounted at the wrong place) answers a 404 that names the prefix
// and the fix; any other unknown path is a plain 404.
func TestMisroutedHandlerSaysHowToMountIt(t *testing.T) {
	f := newFixture(t, nil)
	mux := http.NewServeMux()
	mux.Handle("/api/", f.a.Handler())
	f.h = mux
	for _, path := range []string{"/api/refresh", "/api/verify", "/api/me", "/api/logout", "/api/sessions"} {
		checkError(t, f.do(t, "POST", path, ""), 404, "NotFound",
			`Not found: the endpoints are under "/auth"; mount the handler with Auth.Mount, or set Endpoints.URLPrefix.`)
	}
	checkError(t, f.do(t, "GET", "/api/orders", ""), 404, "NotFound", "Not found.")
}

// TestInvalidHeaderReasonNamesTheExpectedForm: the 401 for a malformed Authorization
// header says what the header must hold, with the configured prefix.
func TestInvalidHeaderReasonNamesTheExpectedForm(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{nil, `Authorization header is invalid: expected "Bearer <token>".`},
		{func(c *Config) { c.AuthorizationHeaderPrefix = "Token" }, `Authorization header is invalid: expected "Token <token>".`},
		{func(c *Config) { c.AuthorizationHeaderNoPrefix = true }, `Authorization header is invalid: expected "<token>".`},
	} {
		f := newFixture(t, tc.mod)
		checkError(t, f.do(t, "GET", "/orders", "", "Authorization", "Basic a b"), 401, "InvalidAuthorizationHeader", tc.want)
	}
}
