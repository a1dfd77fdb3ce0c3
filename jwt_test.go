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

func off() *bool { b := false; return &b }

// testAuth returns an Auth without endpoints and with a fixed clock.
func testAuth(t testing.TB, mod func(*Config)) *Auth {
	t.Helper()
	cfg := Config{Secret: testSecret, AuthMode: off(), Now: fixedNow}
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
		{"no secret", "Secret", Config{AuthMode: off()}},
		{"secret of 31 bytes (RFC 7518 §3.2)", "Secret", Config{Secret: testSecret[:31], AuthMode: off()}},
		{"short previous secret", "PreviousSecrets[0]", Config{Secret: testSecret, PreviousSecrets: [][]byte{[]byte("short")}, AuthMode: off()}},
		{"negative ExpirationDelta", "ExpirationDelta", Config{Secret: testSecret, AuthMode: off(), ExpirationDelta: -time.Second}},
		{"negative Leeway", "Leeway", Config{Secret: testSecret, AuthMode: off(), Leeway: -time.Second}},
		{"negative NotBeforeDelta", "NotBeforeDelta", Config{Secret: testSecret, AuthMode: off(), NotBeforeDelta: -1}},
		{"negative RefreshWindow", "RefreshWindow", Config{Secret: testSecret, AuthMode: off(), RefreshWindow: -1}},
		{"negative MaxTokenSize", "MaxTokenSize", Config{Secret: testSecret, AuthMode: off(), MaxTokenSize: -1}},
		{"negative MaxBodyBytes", "MaxBodyBytes", Config{Secret: testSecret, AuthMode: off(), MaxBodyBytes: -1}},
		{"blank user id claim", "UserIDClaim", Config{Secret: testSecret, AuthMode: off(), UserIDClaim: " "}},
		{"blank scopes claim", "ScopesClaim", Config{Secret: testSecret, AuthMode: off(), ScopesClaim: "\t"}},
		{"user id claim is exp", "UserIDClaim", Config{Secret: testSecret, AuthMode: off(), UserIDClaim: "exp"}},
		{"scopes claim equals user id claim", "ScopesClaim", Config{Secret: testSecret, AuthMode: off(), ScopesClaim: "user_id"}},
		{"blank access token name", "AccessTokenName", Config{Secret: testSecret, AuthMode: off(), AccessTokenName: "  "}},
		{"same token names", "RefreshTokenName", Config{Secret: testSecret, AuthMode: off(), RefreshTokenName: "access_token"}},
		{"URL prefix without slash", "URLPrefix", Config{Secret: testSecret, AuthMode: off(), URLPrefix: "auth"}},
		{"endpoints on without Authenticate", "Authenticate", Config{Secret: testSecret}},
		{"refresh without store hook", "StoreRefreshToken", Config{Secret: testSecret, Authenticate: login, RefreshTokenEnabled: true}},
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
	a := testAuth(t, func(c *Config) { c.Now = nil })
	c := a.Config()
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"MaxTokenSize", c.MaxTokenSize, 8 << 10},
		{"MaxBodyBytes", c.MaxBodyBytes, int64(1 << 20)},
		{"URLPrefix", c.URLPrefix, "/auth"},
		{"ExpirationDelta", c.ExpirationDelta, 30 * time.Minute},
		{"Leeway", c.Leeway, 180 * time.Second},
		{"UserIDClaim", c.UserIDClaim, "user_id"},
		{"ScopesClaim", c.ScopesClaim, "scopes"},
		{"AccessTokenName", c.AccessTokenName, "access_token"},
		{"RefreshTokenName", c.RefreshTokenName, "refresh_token"},
		{"AuthorizationHeader", c.AuthorizationHeader, "Authorization"},
		{"AuthorizationHeaderPrefix", c.AuthorizationHeaderPrefix, "Bearer"},
		{"CookiePath", c.CookiePath, "/"},
		{"CookieSameSite", c.CookieSameSite, http.SameSiteLaxMode},
		{"CookieSplitSignatureName", c.CookieSplitSignatureName, "access_token_signature"},
		{"verify exp", a.verifyExp, true},
		{"rotate refresh tokens", a.rotate, true},
		{"cookie HttpOnly", a.httpOnly, true},
		{"cookie strict", a.cookieStrict, true},
		{"query strict", a.queryStrict, true},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if c.Now == nil || c.ErrorLog == nil || c.GenerateRefreshToken == nil || c.ScopeValidator == nil {
		t.Error("New left a default hook nil")
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
		ErrInvalidScope, ErrAuthenticationFailed, ErrRefreshTokenNotFound, ErrUserNotFound,
		ErrInvalidClaims, ErrInvalidConfig, ErrClaimNotFound,
	} {
		if !strings.HasPrefix(err.Error(), "jwtauth: ") {
			t.Errorf("%q lacks the jwtauth: prefix", err)
		}
	}
}
