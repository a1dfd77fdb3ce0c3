package jwtauth

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef") // exactly 32 bytes

// testAuth returns a verify-only Auth (no Endpoints, no Refresh) with a fixed clock.
func testAuth(t testing.TB, mod func(*Config)) *Auth {
	t.Helper()
	cfg := Config{Secret: testSecret, Now: fixedNow}
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var testNow = time.Unix(1_700_000_000, 0).UTC()

func fixedNow() time.Time { return testNow }

func TestNewRejectsInvalidConfig(t *testing.T) {
	login := func(*http.Request) (*User, error) { return nil, nil }
	for _, tc := range []struct {
		name, field string
		cfg         Config
	}{
		{"no secret", "Secret", Config{}},
		{"secret of 31 bytes (RFC 7518 §3.2)", "Secret", Config{Secret: testSecret[:31]}},
		{"short previous secret", "PreviousSecrets[0]", Config{Secret: testSecret, PreviousSecrets: [][]byte{[]byte("short")}}},
		{"negative ExpirationDelta", "ExpirationDelta", Config{Secret: testSecret, ExpirationDelta: -time.Second}},
		{"negative Leeway", "Leeway", Config{Secret: testSecret, Leeway: -time.Second}},
		{"negative NotBeforeDelta", "NotBeforeDelta", Config{Secret: testSecret, NotBeforeDelta: -1}},
		{"negative Refresh.ReuseInterval", "Refresh.ReuseInterval", Config{Secret: testSecret, RetrieveUser: userFromClaims,
			Refresh: &Refresh{Store: new(MemStore), ReuseInterval: -time.Second}}},
		{"negative Refresh.Window", "Refresh.Window", Config{Secret: testSecret, RetrieveUser: userFromClaims,
			Refresh: &Refresh{Store: new(MemStore), Window: -1}}},
		{"negative MaxTokenSize", "MaxTokenSize", Config{Secret: testSecret, MaxTokenSize: -1}},
		{"negative Endpoints.MaxBodyBytes", "Endpoints.MaxBodyBytes", Config{Secret: testSecret,
			Endpoints: &Endpoints{Authenticate: login, MaxBodyBytes: -1}}},
		{"negative Cookies.MaxAge", "Cookies.MaxAge", Config{Secret: testSecret, Cookies: &Cookies{MaxAge: -1}}},
		{"blank user id claim", "UserIDClaim", Config{Secret: testSecret, UserIDClaim: " "}},
		{"blank scopes claim", "ScopesClaim", Config{Secret: testSecret, ScopesClaim: "\t"}},
		{"user id claim is exp", "UserIDClaim", Config{Secret: testSecret, UserIDClaim: "exp"}},
		{"scopes claim equals user id claim", "ScopesClaim", Config{Secret: testSecret, ScopesClaim: "user_id"}},
		{"blank access token name", "AccessTokenName", Config{Secret: testSecret, AccessTokenName: "  "}},
		{"same token names", "RefreshTokenName", Config{Secret: testSecret, RefreshTokenName: "access_token"}},
		{"URL prefix without slash", "URLPrefix", Config{Secret: testSecret, Endpoints: &Endpoints{Authenticate: login, URLPrefix: "auth"}}},
		{"URL prefix ending in a slash", "URLPrefix", Config{Secret: testSecret, Endpoints: &Endpoints{Authenticate: login, URLPrefix: "/auth/"}}},
		{"endpoints without Authenticate", "Endpoints.Authenticate", Config{Secret: testSecret, Endpoints: &Endpoints{}}},
		{"refresh without a store", "Refresh.Store", Config{Secret: testSecret, RetrieveUser: userFromClaims, Refresh: &Refresh{}}},
		{"unsafe login redirect", "LoginRedirectURL", Config{Secret: testSecret, LoginRedirectURL: "//evil.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(tc.cfg)
			if a != nil || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New = %v, %v; want nil, ErrInvalidConfig", a, err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name the field %s", err, tc.field)
			}
		})
	}
}

func TestNewAppliesDefaults(t *testing.T) {
	login := func(*http.Request) (*User, error) { return nil, nil }
	a, err := New(Config{
		Secret:       testSecret,
		Endpoints:    &Endpoints{Authenticate: login},
		Cookies:      &Cookies{},
		RetrieveUser: userFromClaims,
		Refresh:      &Refresh{Store: new(MemStore)},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := a.cfg
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"MaxTokenSize", c.MaxTokenSize, 8 << 10},
		{"Endpoints.MaxBodyBytes", a.ep.MaxBodyBytes, int64(1 << 20)},
		{"Endpoints.URLPrefix", a.ep.URLPrefix, "/auth"},
		{"ExpirationDelta", c.ExpirationDelta, 30 * time.Minute},
		{"Leeway", c.Leeway, 180 * time.Second},
		{"leeway in force", a.tok.leeway, 180 * time.Second},
		{"UserIDClaim", c.UserIDClaim, "user_id"},
		{"ScopesClaim", c.ScopesClaim, "scopes"},
		{"AccessTokenName", c.AccessTokenName, "access_token"},
		{"RefreshTokenName", c.RefreshTokenName, "refresh_token"},
		{"AuthorizationHeader", c.AuthorizationHeader, "Authorization"},
		{"AuthorizationHeaderPrefix", c.AuthorizationHeaderPrefix, "Bearer"},
		{"Cookies.Path", a.cookies.Path, "/"},
		{"Cookies.SameSite", a.cookies.SameSite, http.SameSiteLaxMode},
		{"Cookies.Domain", a.cookies.Domain, ""},
		{"Cookies.InsecureAllowHTTP", a.cookies.InsecureAllowHTTP, false},
		{"Cookies.InsecureScriptAccess", a.cookies.InsecureScriptAccess, false},
		{"Cookies.InsecureBodyTokens", a.cookies.InsecureBodyTokens, false},
		{"Refresh.IdleTimeout", a.sess.cfg.IdleTimeout, 30 * 24 * time.Hour},
		{"Refresh.ReuseInterval", a.sess.cfg.ReuseInterval, 10 * time.Second},
		{"Refresh.InsecureNoRotation", a.sess.cfg.InsecureNoRotation, false},
		{"verify exp", a.tok.verifyExp, true},
		{"HeaderFallback", c.HeaderFallback, false},
		{"InsecureQueryString", c.InsecureQueryString, false},
		{"InsecureDebug", c.InsecureDebug, false},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if c.Now == nil || c.ErrorLog == nil || c.RetrieveUser == nil {
		t.Error("New left a default hook nil")
	}
}

func TestNewCopiesGroups(t *testing.T) {
	login := func(*http.Request) (*User, error) { return nil, nil }
	cfg := Config{
		Secret:       testSecret,
		Endpoints:    &Endpoints{Authenticate: login},
		Cookies:      &Cookies{},
		RetrieveUser: userFromClaims,
		Refresh:      &Refresh{Store: new(MemStore)},
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The caller changes its groups after New: the Auth keeps what it validated.
	cfg.Endpoints.URLPrefix = "no slash"
	cfg.Cookies.InsecureAllowHTTP = true
	cfg.Refresh.IdleTimeout = -1
	if a.ep.URLPrefix != "/auth" || a.cookies.InsecureAllowHTTP || a.sess.cfg.IdleTimeout != defaultIdleTimeout {
		t.Errorf("Auth follows the caller's groups: %+v %+v %+v", a.ep, a.cookies, a.sess.cfg)
	}
}

func TestNoLeewayMeansExactChecks(t *testing.T) {
	if a := testAuth(t, func(c *Config) { c.Leeway = NoLeeway }); a.tok.leeway != 0 {
		t.Errorf("NoLeeway: leeway %v, want 0", a.tok.leeway)
	}
}

func TestNewCopiesSecret(t *testing.T) {
	secret := append([]byte(nil), testSecret...)
	a := testAuth(t, func(c *Config) { c.Secret = secret })
	tok, err := a.Sign(&Claims{UserID: "u", ExpiresAt: testNow.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	secret[0] ^= 1 // the caller reuses its buffer
	if _, err := a.Verify(tok); err != nil {
		t.Fatalf("Verify after the caller changed its secret slice: %v", err)
	}
}

func TestSentinelErrorsArePrefixed(t *testing.T) {
	for _, err := range []error{
		ErrTokenMissing, ErrInvalidAuthorizationHeader, ErrTokenInvalid, ErrTokenExpired,
		ErrTokenNotYetValid, ErrInvalidIssuer, ErrInvalidAudience, ErrVerificationFailed,
		ErrInvalidScope, ErrAuthenticationFailed, ErrUserNotFound,
		ErrInvalidClaims, ErrInvalidConfig, ErrClaimNotFound,
	} {
		if !strings.HasPrefix(err.Error(), "jwtauth: ") {
			t.Errorf("%q lacks the jwtauth: prefix", err)
		}
	}
}
