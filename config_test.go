package jwtauth

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Tests of New's validation of the reshaped Config: every problem reported at once, and
// the names and combinations that cannot work refused up front.

func okLogin(*http.Request) (*User, error) { return nil, nil }

// mustReject fails unless New(cfg) refuses cfg with ErrInvalidConfig naming every field.
func mustReject(t *testing.T, cfg Config, fields ...string) error {
	t.Helper()
	a, err := New(cfg)
	if a != nil || !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New = %v, %v; want nil, ErrInvalidConfig", a, err)
	}
	for _, f := range fields {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not name %s", err, f)
		}
	}
	return err
}

func TestNewReportsEveryInvalidFieldAtOnce(t *testing.T) {
	err := mustReject(t, Config{
		Secret:       testSecret[:16],
		MaxTokenSize: -1,
		Endpoints:    &Endpoints{URLPrefix: "/verify"},
		Cookies:      &Cookies{Split: true, InsecureBodyTokens: true},
		Refresh:      &Refresh{IdleTimeout: -time.Hour},
	}, "Secret", "MaxTokenSize", "Endpoints.URLPrefix", "Endpoints.Authenticate",
		"Cookies.InsecureBodyTokens", "Refresh.IdleTimeout", "Refresh.Store", "RetrieveUser")
	// errors.Join: one error per problem, one per line, each wrapping ErrInvalidConfig.
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T is not a joined error", err)
	}
	errs := joined.Unwrap()
	if len(errs) != 8 || strings.Count(err.Error(), "\n") != 7 {
		t.Errorf("%d errors on %d lines, want 8:\n%v", len(errs), strings.Count(err.Error(), "\n")+1, err)
	}
	for _, e := range errs {
		if !errors.Is(e, ErrInvalidConfig) {
			t.Errorf("%q does not wrap ErrInvalidConfig", e)
		}
	}
}

func TestNewRejectsNameCollisions(t *testing.T) {
	for _, tc := range []struct {
		name, field string
		cfg         Config
	}{
		{"access token name with a space", "AccessTokenName", Config{AccessTokenName: "access token"}},
		{"refresh token name with a space", "RefreshTokenName", Config{RefreshTokenName: "refresh token"}},
		{"cookie name with a semicolon", "AccessTokenName", Config{AccessTokenName: "a;b", Cookies: &Cookies{}}},
		{"token name with a non-ASCII byte", "RefreshTokenName", Config{RefreshTokenName: "jéton"}},
		{"header prefix with a space", "AuthorizationHeaderPrefix", Config{AuthorizationHeaderPrefix: "Bearer x"}},
		{"header name with a colon", "AuthorizationHeader", Config{AuthorizationHeader: "X-Token:"}},
		{"claim name with a quote", "UserIDClaim", Config{UserIDClaim: `user"id`}},
		{"refresh token named as the split signature cookie", "RefreshTokenName",
			Config{AccessTokenName: "at", RefreshTokenName: "at_signature", Cookies: &Cookies{Split: true}}},
		{"default names, refresh token named access_token_signature", "RefreshTokenName",
			Config{RefreshTokenName: "access_token_signature", Cookies: &Cookies{Split: true}}},
		{"URL prefix equal to /verify", "Endpoints.URLPrefix", Config{Endpoints: &Endpoints{Authenticate: okLogin, URLPrefix: "/verify"}}},
		{"URL prefix equal to /refresh", "Endpoints.URLPrefix", Config{Endpoints: &Endpoints{Authenticate: okLogin, URLPrefix: "/refresh"}}},
		{"URL prefix equal to /me", "Endpoints.URLPrefix", Config{Endpoints: &Endpoints{Authenticate: okLogin, URLPrefix: "/me"}}},
		{"URL prefix equal to /logout", "Endpoints.URLPrefix", Config{Endpoints: &Endpoints{Authenticate: okLogin, URLPrefix: "/logout"}}},
		{"__Host- cookie with a Domain", "Cookies.Domain", Config{AccessTokenName: "__Host-at", Cookies: &Cookies{Domain: "example.com"}}},
		{"__Host- cookie with a Path", "Cookies.Path", Config{AccessTokenName: "__Host-at", Cookies: &Cookies{Path: "/app"}}},
		{"__Host- refresh cookie (scoped to the refresh endpoint, not Path=/)", "RefreshTokenName", Config{RefreshTokenName: "__Host-rt", Cookies: &Cookies{}}},
		{"__Host- cookie over plain HTTP", "Cookies.InsecureAllowHTTP", Config{AccessTokenName: "__Host-at", Cookies: &Cookies{InsecureAllowHTTP: true}}},
		{"__Secure- cookie over plain HTTP", "Cookies.InsecureAllowHTTP", Config{RefreshTokenName: "__Secure-rt", Cookies: &Cookies{InsecureAllowHTTP: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Secret = testSecret
			mustReject(t, tc.cfg, tc.field)
		})
	}
}

func TestNewRejectsUnsafeCombinations(t *testing.T) {
	for _, tc := range []struct {
		name, field string
		cfg         Config
	}{
		{"InsecureBodyTokens with Split", "Cookies.InsecureBodyTokens", Config{Cookies: &Cookies{Split: true, InsecureBodyTokens: true}}},
		{"SameSite=None with InsecureAllowHTTP", "Cookies.SameSite", Config{Cookies: &Cookies{SameSite: http.SameSiteNoneMode, InsecureAllowHTTP: true}}},
		{"Refresh without Store", "Refresh.Store", Config{RetrieveUser: userFromClaims, Refresh: &Refresh{}}},
		{"Refresh without RetrieveUser", "RetrieveUser", Config{Refresh: &Refresh{Store: new(MemStore)}}},
		{"Endpoints without Authenticate", "Endpoints.Authenticate", Config{Endpoints: &Endpoints{}}},
		{"negative Refresh.IdleTimeout", "Refresh.IdleTimeout", Config{RetrieveUser: userFromClaims, Refresh: &Refresh{Store: new(MemStore), IdleTimeout: -time.Second}}},
		// A RevokeBefore in the future would end every login until then at once.
		{"Refresh.RevokeBefore in the future", "Refresh.RevokeBefore",
			Config{RetrieveUser: userFromClaims, Refresh: &Refresh{Store: new(MemStore), RevokeBefore: time.Now().Add(2 * time.Minute)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Secret = testSecret
			mustReject(t, tc.cfg, tc.field)
		})
	}
}

// TestNewAcceptsTheNearMisses: the neighbours of every refused combination are valid.
func TestNewAcceptsTheNearMisses(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"refresh token named as the split signature cookie, without Split",
			Config{AccessTokenName: "at", RefreshTokenName: "at_signature", Cookies: &Cookies{}}},
		{"token names of every token character", Config{AccessTokenName: "!#$%&'*+-.^_`|~09Az", Cookies: &Cookies{}}},
		{"URL prefix /", Config{Endpoints: &Endpoints{Authenticate: okLogin, URLPrefix: "/"}}},
		{"URL prefix ending in an endpoint name", Config{Endpoints: &Endpoints{Authenticate: okLogin, URLPrefix: "/api/verify"}}},
		{"__Host- access cookie, __Secure- refresh cookie", Config{AccessTokenName: "__Host-at", RefreshTokenName: "__Secure-rt", Cookies: &Cookies{Path: "/"}}},
		{"__Secure- cookie with a Domain and a Path", Config{AccessTokenName: "__Secure-at", Cookies: &Cookies{Domain: "example.com", Path: "/app"}}},
		{"InsecureBodyTokens without Split", Config{Cookies: &Cookies{InsecureBodyTokens: true}}},
		{"SameSite=None, Secure", Config{Cookies: &Cookies{SameSite: http.SameSiteNoneMode}}},
		{"InsecureAllowHTTP with plain names", Config{Cookies: &Cookies{InsecureAllowHTTP: true}}},
		{"Refresh with a Store and RetrieveUser", Config{RetrieveUser: userFromClaims, Refresh: &Refresh{Store: new(MemStore)}}},
		{"Refresh.RevokeBefore a minute ahead (a replica's clock behind the operator's)",
			Config{RetrieveUser: userFromClaims, Refresh: &Refresh{Store: new(MemStore), RevokeBefore: time.Now().Add(time.Minute - time.Second)}}},
		{"RetrieveUser without Refresh", Config{RetrieveUser: userFromClaims}},
		{"Cookies without Endpoints (a verify-only service reading cookies)", Config{Cookies: &Cookies{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Secret = testSecret
			if _, err := New(tc.cfg); err != nil {
				t.Fatal(err)
			}
		})
	}
}
