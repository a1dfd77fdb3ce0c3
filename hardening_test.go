package jwtauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Tests for findings of the security review: each is named after what it prevents.

// TestCookieModeKeepsTokensFromScripts: in cookie mode, by default, neither the login
// nor the refresh response has a token in its body, where a script could read it.
func TestCookieModeKeepsTokensFromScripts(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Cookies = &Cookies{} })
	rec := f.do(t, "POST", "/auth", loginBody("alice"))
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != "{}" {
		t.Fatalf("login: %d %s; want 200 {}", rec.Code, rec.Body)
	}
	var cookies []string
	for _, c := range rec.Result().Cookies() {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	if len(cookies) != 2 {
		t.Fatalf("cookies %q", cookies)
	}
	rec = f.do(t, "POST", "/auth/refresh", "", "Cookie", strings.Join(cookies, "; "))
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != "{}" || len(rec.Result().Cookies()) != 2 {
		t.Fatalf("refresh: %d %s; want 200 {} and new cookies", rec.Code, rec.Body)
	}
}

func TestEmptyCookieIsMissingNotInvalid(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Cookies = &Cookies{} })
	checkError(t, f.do(t, "GET", "/orders", "", "Cookie", "access_token="), 401,
		"MissingAuthorizationCookie", "Authorization cookie not present.")
}

func TestNewRejectsUnsafeRedirectsAndCookies(t *testing.T) {
	base := func() Config { return Config{Secret: testSecret} }
	for _, u := range []string{"//evil.example/login", `/\evil.example`, "/\t/evil.example", "/login\r\nX: y", "javascript:alert(1)", "evil.example"} {
		cfg := base()
		cfg.LoginRedirectURL = u
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "LoginRedirectURL") {
			t.Errorf("LoginRedirectURL %q: %v", u, err)
		}
	}
	for _, u := range []string{"/login", "https://example.com/login"} {
		cfg := base()
		cfg.LoginRedirectURL = u
		if _, err := New(cfg); err != nil {
			t.Errorf("LoginRedirectURL %q: %v", u, err)
		}
	}
	cfg := base()
	cfg.Cookies = &Cookies{Split: true, InsecureBodyTokens: true}
	if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "Cookies.InsecureBodyTokens") {
		t.Errorf("InsecureBodyTokens with Split: %v", err)
	}
	cfg = base()
	cfg.Cookies = &Cookies{SameSite: http.SameSiteNoneMode, InsecureAllowHTTP: true}
	if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "Cookies.SameSite") {
		t.Errorf("SameSite=None without Secure: %v", err)
	}
	cfg.Cookies.InsecureAllowHTTP = false
	if _, err := New(cfg); err != nil {
		t.Errorf("SameSite=None with Secure: %v", err)
	}
}

// TestSignRefusesTokensVerifyWouldReject: a token that can never verify is an error at
// issue time, not a 200 with a useless token.
func TestSignRefusesTokensVerifyWouldReject(t *testing.T) {
	a := testAuth(t, nil)
	exp := testNow.Add(time.Hour)
	for name, v := range map[string]any{
		"raw duplicate names":    json.RawMessage(`{"a":1,"a":2}`),
		"raw unpaired surrogate": json.RawMessage(`"\ud800"`),
		"raw nesting too deep":   json.RawMessage(strings.Repeat("[", 40) + strings.Repeat("]", 40)),
		"longer than the cap":    strings.Repeat("x", defaultMaxTokenSize),
	} {
		tok, err := a.Sign(&Claims{UserID: "u", ExpiresAt: exp, Extra: map[string]any{"x": v}})
		if !errors.Is(err, ErrInvalidClaims) {
			t.Errorf("%s: Sign = %q, %v; want ErrInvalidClaims", name, tok, err)
		}
	}
	if _, err := a.Sign(&Claims{UserID: "u", ExpiresAt: exp, Extra: map[string]any{"x": json.RawMessage(`{"a":[1,2]}`)}}); err != nil {
		t.Errorf("strict raw JSON refused: %v", err)
	}
}

// TestRefreshBodyMemberIsNotBuilt: a refresh_token member that is a huge array is
// refused without building it in memory.
func TestRefreshBodyMemberIsNotBuilt(t *testing.T) {
	body := `{"refresh_token":[` + strings.Repeat("0,", 400_000) + `0]}`
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := bodyToken(strings.NewReader(body), "refresh_token")
	runtime.ReadMemStats(&after)
	if !errors.Is(err, errBadBody) {
		t.Fatalf("err = %v, want errBadBody", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8*uint64(len(body)) {
		t.Errorf("a %d-byte body allocated %d bytes", len(body), grew)
	}
}
