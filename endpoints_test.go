package jwtauth

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fixture: a directory of two users, a recording store over a MemStore, a settable
// clock, and a mux with the endpoints and three kinds of protected route.

var httpSecret = []byte("test-secret-0123456789abcdef-0123456789")

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type dirEntry struct {
	password string
	user     User
}

// directory is the application's user database.
type directory struct {
	mu    sync.Mutex
	users map[string]*dirEntry
	err   error // RetrieveUser fails with it when set
}

func newDirectory() *directory {
	return &directory{users: map[string]*dirEntry{
		"alice": {"alice-pw", User{ID: "alice", Scopes: []string{"orders:read", "orders:write"}}},
		"bob":   {"bob-pw", User{ID: "bob", Scopes: []string{"orders:read"}}},
	}}
}

// authenticate answers with its own messages through *Error: a 400 for a body that is
// not credentials, a 401 for wrong ones.
func (d *directory) authenticate(r *http.Request) (*User, error) {
	var creds struct{ Username, Password string }
	if err := json.NewDecoder(r.Body).Decode(&creds); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, fmt.Errorf("reading credentials: %w", err)
		}
		return nil, &Error{Status: http.StatusBadRequest, Reason: "malformed credentials"}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.users[creds.Username]
	if e == nil || subtle.ConstantTimeCompare([]byte(e.password), []byte(creds.Password)) != 1 {
		return nil, &Error{Status: http.StatusUnauthorized, Reason: "wrong username or password"}
	}
	u := e.user
	return &u, nil
}

func (d *directory) retrieveUser(_ context.Context, c *Claims) (*User, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return nil, d.err
	}
	e := d.users[c.UserID]
	if e == nil {
		return nil, nil
	}
	u := e.user
	return &u, nil
}

func (d *directory) update(id string, f func(*User)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(&d.users[id].user)
}

func (d *directory) remove(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.users, id)
}

func (d *directory) failWith(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.err = err
}

// syncBuffer is a log destination safe for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	a     *Auth
	h     http.Handler
	dir   *directory
	store *testStore
	clock *clock
	log   *syncBuffer
}

// newFixture builds an Auth with the endpoints and refresh tokens on (a testStore over a
// MemStore that runs on the fixture's clock), then lets mod change the Config.
func newFixture(t testing.TB, mod func(*Config)) *fixture {
	t.Helper()
	f := &fixture{dir: newDirectory(), clock: &clock{t: time.Unix(1_700_000_000, 0)}, log: &syncBuffer{}}
	f.store = newTestStore(f.clock.now)
	cfg := Config{
		Secret:       httpSecret,
		Now:          f.clock.now,
		Endpoints:    &Endpoints{Authenticate: f.dir.authenticate},
		RetrieveUser: f.dir.retrieveUser,
		Refresh:      &Refresh{Store: f.store},
		ErrorLog:     slog.New(slog.NewTextHandler(f.log, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.a = a
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := ClaimsFromContext(r.Context())
		if !ok {
			t.Error("protected handler without claims")
		}
		u, _ := UserFromContext(r.Context())
		json.NewEncoder(w).Encode(map[string]any{"user": c.UserID, "injected": u != nil})
	})
	mux := http.NewServeMux()
	mux.Handle("/auth", a.Handler())
	mux.Handle("/auth/", a.Handler())
	mux.Handle("GET /orders", a.Protected(echo))
	mux.Handle("POST /orders", a.Scoped([]string{"orders:write"}, echo))
	mux.Handle("GET /whoami", a.InjectUser(echo))
	f.h = mux
	return f
}

// do sends a request through the fixture's mux; hdr holds header names and values.
func (f *fixture) do(t testing.TB, method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, r)
	return rec
}

func loginBody(user string) string {
	return fmt.Sprintf(`{"username":%q,"password":%q}`, user, user+"-pw")
}

// login logs user in and returns its tokens (see tokensOf).
func (f *fixture) login(t testing.TB, user string) *Tokens {
	t.Helper()
	rec := f.do(t, "POST", "/auth", loginBody(user))
	if rec.Code != 200 {
		t.Fatalf("login %s: %d %s", user, rec.Code, rec.Body)
	}
	return tokensOf(t, rec)
}

// tokensOf returns the tokens of a login or refresh response: those of the JSON body or,
// where the body has none (cookie mode), those of the cookies, a split access token
// joined again.
func tokensOf(t testing.TB, rec *httptest.ResponseRecorder) *Tokens {
	t.Helper()
	var body struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("token response %q: %v", rec.Body, err)
	}
	cs := cookiesByName(rec)
	if c := cs["__Host-access_token"]; body.Access == "" && c != nil {
		body.Access = c.Value
		if sig := cs["__Host-access_token_signature"]; sig != nil {
			body.Access += "." + sig.Value
		}
	}
	if c := cs["refresh_token"]; body.Refresh == "" && c != nil {
		body.Refresh = c.Value
	}
	return &Tokens{AccessToken: body.Access, RefreshToken: body.Refresh}
}

func decodeMap(t testing.TB, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	return m
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// checkError checks an error response: status, JSON content type, exception and, when
// reason is not empty, the one reason.
func checkError(t testing.TB, rec *httptest.ResponseRecorder, status int, exception, reason string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var body struct {
		Reasons   []string `json:"reasons"`
		Exception string   `json:"exception"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q: %v", rec.Body, err)
	}
	if body.Exception != exception {
		t.Errorf("exception %q, want %q", body.Exception, exception)
	}
	if len(body.Reasons) != 1 || reason != "" && body.Reasons[0] != reason {
		t.Errorf("reasons %q, want [%q]", body.Reasons, reason)
	}
}

// tamper flips the last signature character that matters, keeping the encoding canonical.
func tamper(t testing.TB, tok string) string {
	t.Helper()
	c := tok[len(tok)-2]
	r := byte('A')
	if c == 'A' {
		r = 'B'
	}
	return tok[:len(tok)-2] + string(r) + tok[len(tok)-1:]
}

func otherAuth(t testing.TB) *Auth {
	a, err := New(Config{Secret: []byte(strings.Repeat("z", 32))})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func cookiesByName(rec *httptest.ResponseRecorder) map[string]*http.Cookie {
	m := map[string]*http.Cookie{}
	for _, c := range rec.Result().Cookies() {
		m[c.Name] = c
	}
	return m
}

// cookieHeader turns a response's Set-Cookie headers into a request's Cookie header.
func cookieHeader(rec *httptest.ResponseRecorder) string {
	var parts []string
	for _, c := range rec.Result().Cookies() {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// storedSessions returns user's sessions as the store holds them: the record opened
// with the fixture's Auth, its MAC and encoding checked. A record the package cannot
// open fails the test.
func (f *fixture) storedSessions(t testing.TB, user string) []session {
	t.Helper()
	ss, err := openRecord(f.a.tok.keys, user, f.store.get(user))
	if err != nil {
		t.Fatalf("%s's record: %v", user, err)
	}
	return ss
}

// sessionToken returns the current refresh token of the session that the access token
// (expired or not) names, as the store's record derives it, or "" when the record holds
// no such session or it has ended.
func (f *fixture) sessionToken(t testing.TB, access string) string {
	t.Helper()
	c, err := f.a.tok.verify(access, true, newClaims)
	if err != nil {
		t.Fatalf("access token: %v", err)
	}
	id, ok := parseSessionID(c.SessionID)
	if !ok {
		t.Fatalf("access token with the sid %q", c.SessionID)
	}
	ss := f.storedSessions(t, c.UserID)
	i := find(ss, id)
	if i < 0 || f.a.sess.ended(&ss[i], f.clock.now().UnixMilli()) != nil {
		return ""
	}
	return ss[i].current(f.a.tok.keys[0])
}

// sidOf returns the sid claim of an access token, expired or not.
func sidOf(t testing.TB, a *Auth, access string) string {
	t.Helper()
	c, err := a.tok.verify(access, true, newClaims)
	if err != nil {
		t.Fatalf("access token: %v", err)
	}
	return c.SessionID
}

// The tests.

func TestLogin(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Issuer = "https://auth.example.com"
		c.Audience = "orders-api"
		c.SetIssuedAt = true
		c.NotBeforeDelta = time.Second
	})
	f.dir.update("alice", func(u *User) { u.Claims = map[string]any{"tenant": "acme", "n": 7} })
	rec := f.do(t, "POST", "/auth", loginBody("alice"))
	if rec.Code != 200 {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	if ct, cc := rec.Header().Get("Content-Type"), rec.Header().Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
		t.Errorf("Content-Type %q, Cache-Control %q", ct, cc)
	}
	if m := decodeMap(t, rec); len(m) != 2 {
		t.Errorf("body has %d members, want access_token and refresh_token: %v", len(m), m)
	}
	tok := tokensOf(t, rec)
	if len(tok.RefreshToken) != 24 {
		t.Errorf("refresh token %q", tok.RefreshToken)
	}
	if ss := f.storedSessions(t, "alice"); len(ss) != 1 || ss[0].gen != 0 {
		t.Errorf("stored sessions %+v, want the one the login opened", ss)
	}
	if got := f.sessionToken(t, tok.AccessToken); got != tok.RefreshToken {
		t.Errorf("the login's session derives %q, want the issued refresh token", got)
	}
	f.clock.add(2 * time.Second) // past nbf
	c, err := f.a.Verify(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SessionID) != 22 || !base64URLOnly(c.SessionID) {
		t.Errorf("sid %q, want 22 base64url characters", c.SessionID)
	}
	now := time.Unix(1_700_000_000, 0)
	var tenant string
	switch {
	case c.UserID != "alice", !slices.Equal(c.Scopes, []string{"orders:read", "orders:write"}):
		t.Errorf("user %q scopes %q", c.UserID, c.Scopes)
	case !c.ExpiresAt.Equal(now.Add(30 * time.Minute)), !c.IssuedAt.Equal(now), !c.NotBefore.Equal(now.Add(time.Second)):
		t.Errorf("exp %v iat %v nbf %v", c.ExpiresAt, c.IssuedAt, c.NotBefore)
	case c.Issuer != "https://auth.example.com", !slices.Equal(c.Audience, []string{"orders-api"}):
		t.Errorf("iss %q aud %q", c.Issuer, c.Audience)
	case c.Get("tenant", &tenant) != nil || tenant != "acme":
		t.Errorf("extra claim tenant %q", tenant)
	}
}

func TestLoginWithoutRefreshTokens(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Refresh = nil })
	rec := f.do(t, "POST", "/auth", loginBody("bob"))
	if m := decodeMap(t, rec); rec.Code != 200 || len(m) != 1 || m["access_token"] == nil {
		t.Fatalf("login: %d %v", rec.Code, m)
	}
}

func TestLoginFailures(t *testing.T) {
	leak := errors.New("pq: password authentication failed for user app (secret-detail)")
	for _, tc := range []struct {
		name      string
		auth      func(*http.Request) (*User, error)
		body      string
		status    int
		exception string
		reason    string
	}{
		// The directory answers with *Error: its Status and Reason reach the client.
		{name: "wrong password", body: `{"username":"alice","password":"nope"}`,
			status: 401, exception: "AuthenticationFailed", reason: "wrong username or password"},
		{name: "unknown user", body: `{"username":"mallory","password":"x"}`,
			status: 401, exception: "AuthenticationFailed", reason: "wrong username or password"},
		{name: "malformed credentials", body: `{"username":`,
			status: 400, exception: "AuthenticationFailed", reason: "malformed credentials"},
		{name: "bare sentinel", auth: func(*http.Request) (*User, error) { return nil, ErrAuthenticationFailed },
			status: 401, exception: "AuthenticationFailed", reason: "Authentication failed."},
		// An error wrapping the sentinel, in any form, gets the fixed reason: its text
		// may carry a second error's.
		{name: "sentinel with a message",
			auth: func(*http.Request) (*User, error) {
				return nil, fmt.Errorf("%w: secret-detail", ErrAuthenticationFailed)
			},
			status: 401, exception: "AuthenticationFailed", reason: "Authentication failed."},
		{name: "sentinel wrapped at the end",
			auth: func(*http.Request) (*User, error) {
				return nil, fmt.Errorf("db lookup user=%q: %w", "alice", ErrAuthenticationFailed)
			},
			status: 401, exception: "AuthenticationFailed", reason: "Authentication failed."},
		{name: "sentinel joined with a hook error",
			auth:   func(*http.Request) (*User, error) { return nil, errors.Join(ErrAuthenticationFailed, leak) },
			status: 401, exception: "AuthenticationFailed", reason: "Authentication failed."},
		{name: "sentinel and a hook error in one Errorf",
			auth: func(*http.Request) (*User, error) {
				return nil, fmt.Errorf("%w: %w", ErrAuthenticationFailed, leak)
			},
			status: 401, exception: "AuthenticationFailed", reason: "Authentication failed."},
		{name: "sentinel with an empty message",
			auth: func(*http.Request) (*User, error) {
				return nil, fmt.Errorf("%w: ", ErrAuthenticationFailed)
			},
			status: 401, exception: "AuthenticationFailed", reason: "Authentication failed."},
		{name: "hook error", auth: func(*http.Request) (*User, error) { return nil, leak },
			status: 500, exception: "InternalServerError", reason: "Internal server error."},
		{name: "hook returns an *Error with status 200", auth: func(*http.Request) (*User, error) {
			return nil, &Error{Status: 200, Exception: "OK", Reason: "secret-detail"}
		}, status: 500, exception: "InternalServerError", reason: "Internal server error."},
		{name: "hook returns an *Error with status 503", auth: func(*http.Request) (*User, error) {
			return nil, &Error{Status: 503, Exception: "Unavailable", Reason: "secret-detail"}
		}, status: 500, exception: "InternalServerError", reason: "Internal server error."},
		{name: "hook returns a wrapped *Error with status 403", auth: func(*http.Request) (*User, error) {
			return nil, fmt.Errorf("policy: %w", &Error{Status: 403, Exception: "Forbidden", Reason: "Account locked."})
		}, status: 403, exception: "Forbidden", reason: "Account locked."},
		{name: "hook wraps ErrTokenExpired", auth: func(*http.Request) (*User, error) {
			return nil, fmt.Errorf("cache: %w", ErrTokenExpired)
		}, status: 500, exception: "InternalServerError", reason: "Internal server error."},
		{name: "nil user", auth: func(*http.Request) (*User, error) { return nil, nil },
			status: 500, exception: "InternalServerError", reason: "Internal server error."},
		{name: "empty user ID", auth: func(*http.Request) (*User, error) { return &User{Scopes: []string{"a"}}, nil },
			status: 500, exception: "InternalServerError", reason: "Internal server error."},
		{name: "extra claim overrides exp",
			auth:   func(*http.Request) (*User, error) { return &User{ID: "x", Claims: map[string]any{"exp": 1}}, nil },
			status: 500, exception: "InternalServerError", reason: "Internal server error."},
		{name: "extra claim overrides the user id",
			auth: func(*http.Request) (*User, error) {
				return &User{ID: "x", Claims: map[string]any{"user_id": "root"}}, nil
			},
			status: 500, exception: "InternalServerError", reason: "Internal server error."},
		{name: "extra claim overrides scopes",
			auth: func(*http.Request) (*User, error) {
				return &User{ID: "x", Claims: map[string]any{"scopes": []string{"admin"}}}, nil
			},
			status: 500, exception: "InternalServerError", reason: "Internal server error."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) {
				if tc.auth != nil {
					c.Endpoints.Authenticate = tc.auth
				}
			})
			rec := f.do(t, "POST", "/auth", tc.body)
			checkError(t, rec, tc.status, tc.exception, tc.reason)
			if tc.status == 401 && rec.Header().Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("WWW-Authenticate %q", rec.Header().Get("WWW-Authenticate"))
			}
			if strings.Contains(rec.Body.String(), "secret-detail") {
				t.Errorf("hook error leaked: %s", rec.Body)
			}
			if tc.status == 500 && f.log.String() == "" {
				t.Error("500 not logged")
			}
		})
	}
}

func TestLoginStoreFailsDoesNotLeak(t *testing.T) {
	for _, method := range []string{"load", "cas"} {
		t.Run(method, func(t *testing.T) {
			f := newFixture(t, nil)
			f.store.setFail(method, errors.New("redis: NOAUTH secret-detail"))
			rec := f.do(t, "POST", "/auth", loginBody("alice"))
			checkError(t, rec, 500, "InternalServerError", "Internal server error.")
			if strings.Contains(rec.Body.String(), "secret-detail") || !strings.Contains(f.log.String(), "secret-detail") {
				t.Errorf("body %s; log %s", rec.Body, f.log.String())
			}
		})
	}
}

// TestErrorContract runs every row of the error table in docs/http.md (the refresh rows
// are in refresh_test.go).
func TestErrorContract(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	valid := func(c *Claims) { c.UserID, c.ExpiresAt = "alice", now.Add(time.Minute) }
	for _, tc := range []struct {
		name      string
		mod       func(*Config)
		claims    func(*Claims) // sign these and send them as a Bearer token
		hdr       []string      // or send these headers
		target    string        // default GET /orders
		status    int
		exception string
		reason    string
		challenge string
		debug     string // the InsecureDebug reason, for rows that InsecureDebug turns into 400s
		forged    bool   // alter the signed token's signature
	}{
		{name: "no token", status: 401, exception: "MissingAuthorizationHeader",
			reason: "Authorization header not present.", challenge: "Bearer", debug: "token missing: no authorization header"},
		{name: "no cookie in strict cookie mode", mod: func(c *Config) { c.Cookies = &Cookies{} }, claims: valid,
			status: 401, exception: "MissingAuthorizationCookie",
			reason:    "Authorization cookie not present (the Authorization header is not read in cookie mode without HeaderFallback).",
			challenge: "Bearer", debug: "token missing: no access token cookie: an Authorization header was sent, but cookie mode reads the cookie"},
		{name: "no query argument in strict query mode", mod: func(c *Config) { c.InsecureQueryString = true }, claims: valid,
			status: 401, exception: "MissingAuthorizationQueryArg",
			reason: "Authorization query argument not present.", challenge: "Bearer", debug: "token missing: no access token query argument"},
		{name: "wrong prefix", hdr: []string{"Authorization", "Token abc.def.ghi"}, status: 401, exception: "InvalidAuthorizationHeader",
			reason: "Authorization header is invalid: expected \"Bearer <token>\".", challenge: `Bearer error="invalid_request"`,
			debug: "invalid authorization header: not the configured prefix, one space and a token"},
		{name: "two authorization headers", hdr: []string{"Authorization", "Bearer a.b.c", "Authorization", "Bearer a.b.c"},
			status: 401, exception: "InvalidAuthorizationHeader", reason: "Authorization header is invalid: expected \"Bearer <token>\".",
			challenge: `Bearer error="invalid_request"`, debug: "invalid authorization header: more than one authorization header"},
		{name: "two spaces after the prefix", hdr: []string{"Authorization", "Bearer  a.b.c"}, status: 401,
			exception: "InvalidAuthorizationHeader", reason: "Authorization header is invalid: expected \"Bearer <token>\".", challenge: `Bearer error="invalid_request"`,
			debug: "invalid authorization header: not the configured prefix, one space and a token"},
		{name: "prefix without token", hdr: []string{"Authorization", "Bearer "}, status: 401,
			exception: "InvalidAuthorizationHeader", reason: "Authorization header is invalid: expected \"Bearer <token>\".", challenge: `Bearer error="invalid_request"`,
			debug: "invalid authorization header: not the configured prefix, one space and a token"},
		{name: "empty header", hdr: []string{"Authorization", ""}, status: 401,
			exception: "InvalidAuthorizationHeader", reason: "Authorization header is invalid: expected \"Bearer <token>\".", challenge: `Bearer error="invalid_request"`,
			debug: "invalid authorization header: empty header"},
		{name: "expired by 1s beyond leeway", claims: func(c *Claims) {
			c.UserID, c.ExpiresAt = "alice", now.Add(-defaultLeeway-time.Second)
		}, status: 401, exception: "Unauthorized", reason: "Signature has expired.", challenge: `Bearer error="invalid_token"`},
		{name: "not yet valid", claims: func(c *Claims) { valid(c); c.NotBefore = now.Add(time.Hour) },
			status: 401, exception: "Unauthorized", reason: "The token is not yet valid (nbf).", challenge: `Bearer error="invalid_token"`},
		{name: "wrong issuer", mod: func(c *Config) { c.Issuer = "https://auth.example.com" },
			claims: func(c *Claims) { valid(c); c.Issuer = "https://evil.example.com" },
			status: 401, exception: "Unauthorized", reason: "Invalid issuer.", challenge: `Bearer error="invalid_token"`},
		{name: "wrong audience", mod: func(c *Config) { c.Audience = "orders-api" },
			claims: func(c *Claims) { valid(c); c.Audience = []string{"billing-api"} },
			status: 401, exception: "Unauthorized", reason: "Invalid audience.", challenge: `Bearer error="invalid_token"`},
		{name: "forged signature", claims: valid, forged: true, status: 401, exception: "Unauthorized",
			reason: "Auth required.", challenge: `Bearer error="invalid_token"`, debug: "token invalid: signature does not match"},
		{name: "alg none", hdr: bearer("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ1c2VyX2lkIjoiYWxpY2UifQ." + strings.Repeat("A", 43)),
			status: 401, exception: "Unauthorized", reason: "Auth required.", challenge: `Bearer error="invalid_token"`,
			debug: "token invalid: alg must be exactly HS256"},
		{name: "not a token", hdr: bearer("garbage"), status: 401, exception: "Unauthorized", reason: "Auth required.",
			challenge: `Bearer error="invalid_token"`, debug: "token invalid: token must have exactly three segments"},
		{name: "extra verification failed",
			mod: func(c *Config) {
				c.ExtraVerifications = []func(*Claims) error{func(*Claims) error { return errors.New("no") }}
			},
			claims: valid, status: 401, exception: "Unauthorized", reason: "Verifications were not met.", challenge: `Bearer error="invalid_token"`},
		{name: "scope missing", claims: func(c *Claims) { valid(c); c.Scopes = []string{"orders:read"} }, target: "POST /orders",
			status: 403, exception: "Unauthorized", reason: "Invalid scope.", challenge: `Bearer error="insufficient_scope"`},
		{name: "token without scopes", claims: valid, target: "POST /orders",
			status: 403, exception: "Unauthorized", reason: "Invalid scope.", challenge: `Bearer error="insufficient_scope"`},
		{name: "hook returned an unexpected error", mod: func(c *Config) {
			c.RetrieveUser = func(context.Context, *Claims) (*User, error) { return nil, errors.New("secret-detail") }
		}, claims: valid, target: "GET /auth/me", status: 500, exception: "InternalServerError", reason: "Internal server error."},
	} {
		for _, debug := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/debug=%v", tc.name, debug), func(t *testing.T) {
				f := newFixture(t, func(c *Config) {
					c.InsecureDebug = debug
					if tc.mod != nil {
						tc.mod(c)
					}
				})
				hdr := tc.hdr
				if tc.claims != nil {
					c := new(Claims)
					tc.claims(c)
					tok, err := f.a.Sign(c)
					if err != nil {
						t.Fatal(err)
					}
					if tc.forged {
						tok = tamper(t, tok)
					}
					hdr = bearer(tok)
				}
				target := "GET /orders"
				if tc.target != "" {
					target = tc.target
				}
				method, path, _ := strings.Cut(target, " ")
				rec := f.do(t, method, path, "", hdr...)
				status, reason := tc.status, tc.reason
				if debug && tc.debug != "" {
					status, reason = 400, tc.debug
				}
				checkError(t, rec, status, tc.exception, reason)
				if got := rec.Header().Get("WWW-Authenticate"); got != tc.challenge {
					t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
				}
				if strings.Contains(rec.Body.String(), "secret-detail") {
					t.Error("hook error leaked")
				}
			})
		}
	}
}

func TestCheckErrorsIs(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name string
		hdr  []string
		want error
	}{
		{"no token", nil, ErrTokenMissing},
		{"bad header", []string{"Authorization", "Basic YWxpY2U6cHc="}, ErrInvalidAuthorizationHeader},
		{"bad token", bearer("a.b.c"), ErrTokenInvalid},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		for i := 0; i+1 < len(tc.hdr); i += 2 {
			r.Header.Add(tc.hdr[i], tc.hdr[i+1])
		}
		if c, err := f.a.Check(r); c != nil || !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.name, c, err, tc.want)
		}
	}
	tok := f.login(t, "bob")
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if c, err := f.a.Check(r); err != nil || c.UserID != "bob" {
		t.Errorf("valid token: %v %v", c, err)
	}
}

func TestAuthorizationHeaderForms(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.login(t, "alice").AccessToken
	for _, tc := range []struct {
		name  string
		mod   func(*Config)
		value string
		ok    bool
	}{
		{"canonical", nil, "Bearer " + tok, true},
		{"lower-case scheme (RFC 7235 §2.1)", nil, "bearer " + tok, true},
		{"upper-case scheme", nil, "BEARER " + tok, true},
		{"another scheme of the same length", nil, "Beaver " + tok, false},
		{"the scheme cut short", nil, "Bear " + tok, false},
		{"Kelvin sign is not k", func(c *Config) { c.AuthorizationHeaderPrefix = "Token" }, "To\u212aen " + tok, false},
		{"tab instead of space", nil, "Bearer\t" + tok, false},
		{"trailing space", nil, "Bearer " + tok + " ", false},
		{"two tokens", nil, "Bearer " + tok + " " + tok, false},
		{"no scheme", nil, tok, false},
		{"leading space", nil, " Bearer " + tok, false},
		{"scheme glued to token", nil, "Bearer" + tok, false},
		{"custom prefix", func(c *Config) { c.AuthorizationHeaderPrefix = "JWT" }, "JWT " + tok, true},
		{"default prefix when custom is set", func(c *Config) { c.AuthorizationHeaderPrefix = "JWT" }, "Bearer " + tok, false},
		{"no prefix: whole value", func(c *Config) { c.AuthorizationHeaderNoPrefix = true }, tok, true},
		{"no prefix: a prefix is not stripped", func(c *Config) { c.AuthorizationHeaderNoPrefix = true }, "Bearer " + tok, false},
		{"custom header", func(c *Config) { c.AuthorizationHeader = "X-Token" }, "Bearer " + tok, true},
		{"custom header named in lower case", func(c *Config) { c.AuthorizationHeader = "x-token" }, "Bearer " + tok, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newFixture(t, tc.mod)
			header := g.a.cfg.AuthorizationHeader
			rec := g.do(t, "GET", "/orders", "", header, tc.value)
			if (rec.Code == 200) != tc.ok {
				t.Errorf("status %d, want ok=%v; body %s", rec.Code, tc.ok, rec.Body)
			}
		})
	}
}

func TestCookieMode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cookies Cookies
		want    http.Cookie // the access cookie's name, and the attributes of both cookies
	}{
		{"defaults", Cookies{}, http.Cookie{Name: "__Host-access_token", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}},
		{"all set", Cookies{Domain: "example.com", Path: "/app", SameSite: http.SameSiteStrictMode, MaxAge: 3600},
			http.Cookie{Name: "access_token", Path: "/app", Domain: "example.com", MaxAge: 3600, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode}},
		{"InsecureScriptAccess", Cookies{InsecureScriptAccess: true},
			http.Cookie{Name: "__Host-access_token", Path: "/", Secure: true, SameSite: http.SameSiteLaxMode}},
		{"InsecureAllowHTTP", Cookies{InsecureAllowHTTP: true},
			http.Cookie{Name: "access_token", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.Cookies = &tc.cookies })
			rec := f.do(t, "POST", "/auth", loginBody("alice"))
			if rec.Code != 200 {
				t.Fatalf("login: %d", rec.Code)
			}
			if body := strings.TrimSpace(rec.Body.String()); body != "{}" {
				t.Errorf("body %s, want {}: the tokens travel in cookies only", body)
			}
			cs := cookiesByName(rec)
			if len(cs) != 2 {
				t.Errorf("cookies %q, want the access and refresh tokens", rec.Header()["Set-Cookie"])
			}
			for _, name := range []string{tc.want.Name, "refresh_token"} {
				c := cs[name]
				if c == nil {
					t.Fatalf("no %s cookie", name)
				}
				w := tc.want
				if name == "refresh_token" {
					w.Path = "/auth/refresh" // sent only where it is used, whatever Cookies.Path says
				}
				if c.Value == "" || c.Path != w.Path || c.Domain != w.Domain || c.MaxAge != w.MaxAge ||
					c.Secure != w.Secure || c.HttpOnly != w.HttpOnly || c.SameSite != w.SameSite {
					t.Errorf("%s cookie %+v, want %+v", name, c, w)
				}
			}
			if c, err := f.a.Verify(cs[tc.want.Name].Value); err != nil || c.UserID != "alice" {
				t.Errorf("access cookie: %v %v", c, err)
			}
			if f.sessionToken(t, cs[tc.want.Name].Value) != cs["refresh_token"].Value {
				t.Error("the refresh cookie is not the current token of the access cookie's session")
			}
			if f.a.cookies.Path == "/app" {
				return // the routes are not under /app
			}
			if rec := f.do(t, "GET", "/orders", "", "Cookie", tc.want.Name+"="+cs[tc.want.Name].Value); rec.Code != 200 {
				t.Errorf("cookie refused: %d %s", rec.Code, rec.Body)
			}
		})
	}
}

func TestCookieStrictness(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Cookies = &Cookies{} })
	tok := f.login(t, "alice").AccessToken
	// Strict (default): the header is not looked at, and the reason says so.
	checkError(t, f.do(t, "GET", "/orders", "", bearer(tok)...), 401, "MissingAuthorizationCookie",
		"Authorization cookie not present (the Authorization header is not read in cookie mode without HeaderFallback).")
	checkError(t, f.do(t, "GET", "/orders", ""), 401, "MissingAuthorizationCookie", "Authorization cookie not present.")
	// Two cookies of the token's name are ambiguous.
	rec := f.do(t, "GET", "/orders", "", "Cookie", "__Host-access_token="+tok+"; __Host-access_token="+tok)
	checkError(t, rec, 401, "Unauthorized", "Auth required.")
	rec = f.do(t, "GET", "/orders", "", "Cookie", "__Host-access_token="+tok, "Cookie", "__Host-access_token="+tok)
	checkError(t, rec, 401, "Unauthorized", "Auth required.")

	g := newFixture(t, func(c *Config) { c.Cookies = &Cookies{}; c.HeaderFallback = true })
	tok = g.login(t, "alice").AccessToken
	if rec := g.do(t, "GET", "/orders", "", bearer(tok)...); rec.Code != 200 {
		t.Errorf("cookie mode with HeaderFallback did not fall back to the header: %d", rec.Code)
	}
	checkError(t, g.do(t, "GET", "/orders", ""), 401, "MissingAuthorizationHeader", "Authorization header not present.")
	// A present cookie wins over the header; a bad one is not rescued by a good header.
	rec = g.do(t, "GET", "/orders", "", append(bearer(tok), "Cookie", "__Host-access_token=bad")...)
	checkError(t, rec, 401, "Unauthorized", "Auth required.")
}

func TestCookieSplit(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Cookies = &Cookies{Split: true} })
	rec := f.do(t, "POST", "/auth", loginBody("alice"))
	tok := tokensOf(t, rec).AccessToken
	cs := cookiesByName(rec)
	hp, sig := cs["__Host-access_token"], cs["__Host-access_token_signature"]
	if hp == nil || sig == nil {
		t.Fatalf("cookies %v", rec.Header()["Set-Cookie"])
	}
	if hp.Value+"."+sig.Value != tok || hp.HttpOnly || !sig.HttpOnly || !hp.Secure || !sig.Secure || strings.Count(hp.Value, ".") != 1 {
		t.Errorf("split cookies %+v %+v for %s", hp, sig, tok)
	}
	if _, err := f.a.Verify(tok); err != nil {
		t.Errorf("split cookies do not join into a valid token: %v", err)
	}
	if rec := f.do(t, "GET", "/orders", "", "Cookie", cookieHeader(rec)); rec.Code != 200 {
		t.Errorf("split cookies refused: %d %s", rec.Code, rec.Body)
	}
	rec = f.do(t, "GET", "/orders", "", "Cookie", "__Host-access_token="+hp.Value)
	checkError(t, rec, 401, "Unauthorized", "Auth required.")
	rec = f.do(t, "GET", "/orders", "", "Cookie", "__Host-access_token_signature="+sig.Value)
	checkError(t, rec, 401, "Unauthorized", "Auth required.")
	checkError(t, f.do(t, "GET", "/orders", ""), 401, "MissingAuthorizationCookie", "Authorization cookie not present.")
	// Either half sent twice is ambiguous, even when both copies agree.
	for _, jar := range []string{
		"__Host-access_token=" + hp.Value + "; __Host-access_token=" + hp.Value + "; __Host-access_token_signature=" + sig.Value,
		"__Host-access_token=" + hp.Value + "; __Host-access_token_signature=" + sig.Value + "; __Host-access_token_signature=" + sig.Value,
	} {
		checkError(t, f.do(t, "GET", "/orders", "", "Cookie", jar), 401, "Unauthorized", "Auth required.")
		r := httptest.NewRequest("GET", "/orders", nil)
		r.Header.Set("Cookie", jar)
		if _, err := f.a.Check(r); err != errTwoCookies {
			t.Errorf("%s: %v, want %v", jar, err, errTwoCookies)
		}
	}
}

func TestQueryStrictness(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.InsecureQueryString = true })
	tok := f.login(t, "alice").AccessToken
	if rec := f.do(t, "GET", "/orders?access_token="+tok, ""); rec.Code != 200 {
		t.Errorf("query token refused: %d", rec.Code)
	}
	checkError(t, f.do(t, "GET", "/orders", "", bearer(tok)...), 401, "MissingAuthorizationQueryArg", "Authorization query argument not present.")
	checkError(t, f.do(t, "GET", "/orders?access_token="+tok+"&access_token="+tok, ""), 401, "Unauthorized", "Auth required.")
	checkError(t, f.do(t, "GET", "/orders?access_token=", ""), 401, "MissingAuthorizationQueryArg", "Authorization query argument not present.")

	g := newFixture(t, func(c *Config) { c.InsecureQueryString = true; c.HeaderFallback = true })
	tok = g.login(t, "alice").AccessToken
	if rec := g.do(t, "GET", "/orders", "", bearer(tok)...); rec.Code != 200 {
		t.Errorf("query mode with HeaderFallback did not fall back to the header: %d", rec.Code)
	}
}

func TestEndpointMethods(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		path  string
		allow string
		wrong []string
	}{
		{"/auth", "POST, OPTIONS", []string{"GET", "PUT", "DELETE", "PATCH", "HEAD"}},
		{"/auth/", "POST, OPTIONS", []string{"GET", "PUT"}},
		{"/auth/verify", "GET, HEAD, OPTIONS", []string{"POST", "PUT", "DELETE"}},
		{"/auth/me", "GET, HEAD, OPTIONS", []string{"POST", "PATCH"}},
		{"/auth/refresh", "POST, OPTIONS", []string{"GET", "PUT", "DELETE", "HEAD"}},
		{"/auth/logout", "POST, OPTIONS", []string{"GET", "DELETE"}},
		{"/auth/sessions", "GET, HEAD, OPTIONS", []string{"POST", "DELETE", "PUT"}},
		{"/auth/sessions/AAAAAAAAAAAAAAAAAAAAAA", "DELETE, OPTIONS", []string{"GET", "POST", "HEAD"}},
	} {
		rec := f.do(t, "OPTIONS", tc.path, "")
		if rec.Code != 204 || rec.Body.Len() != 0 || rec.Header().Get("Allow") != tc.allow {
			t.Errorf("OPTIONS %s: %d %q Allow %q", tc.path, rec.Code, rec.Body, rec.Header().Get("Allow"))
		}
		for _, m := range tc.wrong {
			rec := f.do(t, m, tc.path, "")
			if rec.Code != 405 || rec.Header().Get("Allow") != tc.allow {
				t.Errorf("%s %s: %d Allow %q", m, tc.path, rec.Code, rec.Header().Get("Allow"))
			}
			if m != "HEAD" {
				checkError(t, rec, 405, "MethodNotAllowed", "Method not allowed.")
			}
		}
	}
}

func TestBodyTooLarge(t *testing.T) {
	f := newFixture(t, nil)
	big := `{"username":"alice","password":"` + strings.Repeat("x", defaultMaxBodyBytes) + `"}`
	checkError(t, f.do(t, "POST", "/auth", big), 413, "RequestEntityTooLarge", "Request body too large.")

	g := newFixture(t, func(c *Config) { c.Endpoints.MaxBodyBytes = 64 })
	// The cap applies to what Authenticate reads.
	padded := `{"username":"alice","password":"alice-pw","pad":"` + strings.Repeat("x", 64) + `"}`
	checkError(t, g.do(t, "POST", "/auth", padded), 413, "RequestEntityTooLarge", "Request body too large.")
	if rec := g.do(t, "POST", "/auth", loginBody("alice")); rec.Code != 200 {
		t.Errorf("small body refused: %d", rec.Code)
	}
}

func TestVerifyEndpoint(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.login(t, "alice").AccessToken
	rec := f.do(t, "GET", "/auth/verify", "", bearer(tok)...)
	if m := decodeMap(t, rec); rec.Code != 200 || len(m) != 1 || m["valid"] != true {
		t.Errorf("verify: %d %v", rec.Code, m)
	}
	for name, hdr := range map[string][]string{"forged": bearer(tamper(t, tok)), "missing": nil} {
		rec := f.do(t, "GET", "/auth/verify", "", hdr...)
		m := decodeMap(t, rec)
		if rec.Code != 401 || m["valid"] != false || m["exception"] == nil || m["reasons"] == nil {
			t.Errorf("verify %s: %d %v", name, rec.Code, m)
		}
	}
}

func TestMeEndpoint(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.UserIDClaim = "uid" })
	tok := f.login(t, "alice").AccessToken
	rec := f.do(t, "GET", "/auth/me", "", bearer(tok)...)
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"me":{"uid":"alice"}}` {
		t.Errorf("me without profile: %d %s", rec.Code, rec.Body)
	}
	f.dir.update("alice", func(u *User) { u.Profile = map[string]string{"name": "Alice"} })
	rec = f.do(t, "GET", "/auth/me", "", bearer(tok)...)
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"me":{"name":"Alice"}}` {
		t.Errorf("me with profile: %d %s", rec.Code, rec.Body)
	}
	f.dir.update("alice", func(u *User) { u.Profile = func() {} })
	checkError(t, f.do(t, "GET", "/auth/me", "", bearer(tok)...), 500, "InternalServerError", "Internal server error.")

	checkError(t, f.do(t, "GET", "/auth/me", ""), 401, "MissingAuthorizationHeader", "Authorization header not present.")
	f.dir.remove("alice")
	checkError(t, f.do(t, "GET", "/auth/me", "", bearer(tok)...), 401, "Unauthorized", "User not found.")
	f.dir.failWith(fmt.Errorf("gone: %w", ErrUserNotFound))
	checkError(t, f.do(t, "GET", "/auth/me", "", bearer(tok)...), 401, "Unauthorized", "User not found.")

	f.dir.failWith(errors.New("database is down: secret-detail"))
	rec = f.do(t, "GET", "/auth/me", "", bearer(tok)...)
	checkError(t, rec, 500, "InternalServerError", "Internal server error.")
	if strings.Contains(rec.Body.String(), "secret-detail") {
		t.Errorf("hook error leaked: %s", rec.Body)
	}
}

func TestInjectUser(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.login(t, "bob").AccessToken
	rec := f.do(t, "GET", "/whoami", "", bearer(tok)...)
	if m := decodeMap(t, rec); rec.Code != 200 || m["user"] != "bob" || m["injected"] != true {
		t.Errorf("inject user: %d %v", rec.Code, m)
	}
	f.dir.remove("bob")
	checkError(t, f.do(t, "GET", "/whoami", "", bearer(tok)...), 401, "Unauthorized", "User not found.")
}

func TestLoginRedirect(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.LoginRedirectURL = "/login" })
	for _, tc := range []struct {
		accept string
		status int
	}{
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", 302},
		{"TEXT/HTML", 302},
		{"application/json", 401},
		{"*/*", 401},
		{"", 401},
	} {
		rec := f.do(t, "GET", "/orders", "", "Accept", tc.accept)
		if rec.Code != tc.status || tc.status == 302 && rec.Header().Get("Location") != "/login" {
			t.Errorf("Accept %q: %d Location %q", tc.accept, rec.Code, rec.Header().Get("Location"))
		}
	}
	// A valid token without the scope is a 403, not a trip to the login page.
	tok := f.login(t, "bob").AccessToken
	rec := f.do(t, "POST", "/orders", "", append(bearer(tok), "Accept", "text/html")...)
	checkError(t, rec, 403, "Unauthorized", "Invalid scope.")
}

func TestErrorHandlerOverride(t *testing.T) {
	var got *Error
	f := newFixture(t, func(c *Config) {
		c.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			if !errors.As(err, &got) {
				t.Errorf("ErrorHandler got %T", err)
			}
			http.Error(w, "custom "+got.Exception, got.Status)
		}
	})
	rec := f.do(t, "GET", "/orders", "", bearer("a.b.c")...)
	if rec.Code != 401 || rec.Body.String() != "custom Unauthorized\n" || !errors.Is(got, ErrTokenInvalid) {
		t.Errorf("override: %d %q %v", rec.Code, rec.Body, got)
	}
	rec = f.do(t, "DELETE", "/auth", "")
	if rec.Code != 405 || rec.Header().Get("Allow") == "" {
		t.Errorf("override on 405: %d", rec.Code)
	}
}

func TestMounting(t *testing.T) {
	f := newFixture(t, nil)
	login := func(t *testing.T, h http.Handler, path string) int {
		r := httptest.NewRequest("POST", path, strings.NewReader(loginBody("alice")))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Code
	}
	verify := func(t *testing.T, h http.Handler, path string) int {
		tok := f.login(t, "alice").AccessToken
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Code
	}
	sub := http.NewServeMux()
	sub.Handle("/auth", f.a.Handler())
	sub.Handle("/auth/", f.a.Handler())
	fullPath := http.NewServeMux() // a router that, like chi's Mount, keeps the full path
	fullPath.Handle("/api/", f.a.Handler())
	for _, tc := range []struct {
		name          string
		h             http.Handler
		login, verify string
	}{
		{"ServeMux /auth and /auth/", f.h, "/auth", "/auth/verify"},
		{"ServeMux, login with a slash", f.h, "/auth/", "/auth/verify"},
		{"sub-mux behind StripPrefix", http.StripPrefix("/api", sub), "/api/auth", "/api/auth/verify"},
		{"prefix stripped by the router", http.StripPrefix("/auth", f.a.Handler()), "/auth", "/auth/verify"},
		{"full path under a mount point", fullPath, "/api/auth", "/api/auth/verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code := login(t, tc.h, tc.login); code != 200 {
				t.Errorf("login at %s: %d", tc.login, code)
			}
			if code := verify(t, tc.h, tc.verify); code != 200 {
				t.Errorf("verify at %s: %d", tc.verify, code)
			}
		})
	}
	// DELETE /sessions/{id}, the one endpoint with a variable path, in every mount.
	endSession := func(t *testing.T, h http.Handler, prefix string) int {
		caller, other := f.login(t, "alice"), f.login(t, "alice")
		r := httptest.NewRequest("DELETE", prefix+"/sessions/"+sidOf(t, f.a, other.AccessToken), nil)
		r.Header.Set("Authorization", "Bearer "+caller.AccessToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code == 204 && f.sessionToken(t, other.AccessToken) != "" {
			t.Errorf("DELETE %s/sessions/{id}: 204 and the session lives on", prefix)
		}
		return rec.Code
	}
	for _, tc := range []struct {
		name, prefix string
		h            http.Handler
	}{
		{"ServeMux", "/auth", f.h},
		{"sub-mux behind StripPrefix", "/api/auth", http.StripPrefix("/api", sub)},
		{"prefix stripped by the router", "/auth", http.StripPrefix("/auth", f.a.Handler())},
		{"full path under a mount point", "/api/auth", fullPath},
	} {
		if code := endSession(t, tc.h, tc.prefix); code != 204 {
			t.Errorf("%s: DELETE %s/sessions/{id}: %d", tc.name, tc.prefix, code)
		}
	}
	for _, path := range []string{"/auth/verify/auth", "/auth/auth", "/auth/unknown", "/auth/verify/", "/auth/me/x", "/authx",
		"/auth/sessions/a/b", "/auth/verify/sessions/a", "/auth/x/sessions/a", "/authsessions/a", "/auth/sessionsx/a"} {
		if code := login(t, f.h, path); code != 404 {
			t.Errorf("POST %s: %d, want 404", path, code)
		}
	}
	g := newFixture(t, func(c *Config) { c.Endpoints.URLPrefix = "/v1/session" })
	mux := http.NewServeMux()
	mux.Handle("/v1/session", g.a.Handler())
	mux.Handle("/v1/session/", g.a.Handler())
	if code := login(t, mux, "/v1/session"); code != 200 {
		t.Errorf("custom prefix login: %d", code)
	}
	if code := login(t, mux, "/v1/session/auth"); code != 404 {
		t.Errorf("custom prefix, default name: %d", code)
	}
}

// TestHandlerWithoutEndpointsAnswers404: without Config.Endpoints the Auth is verify
// only: Handler answers 404 to every path and method, and the middleware still works.
func TestHandlerWithoutEndpointsAnswers404(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Endpoints = nil; c.Refresh = nil; c.RetrieveUser = nil })
	for _, path := range []string{"/auth", "/auth/", "/auth/verify", "/auth/me", "/auth/refresh", "/auth/logout", "/", "/verify", "/x"} {
		for _, m := range []string{"POST", "GET", "OPTIONS", "DELETE"} {
			rec := httptest.NewRecorder()
			f.a.Handler().ServeHTTP(rec, httptest.NewRequest(m, path, nil))
			checkError(t, rec, 404, "NotFound", "Not found.")
		}
	}
	tok, _ := f.a.Sign(&Claims{UserID: "alice", ExpiresAt: f.clock.now().Add(time.Minute)})
	if rec := f.do(t, "GET", "/orders", "", bearer(tok)...); rec.Code != 200 {
		t.Errorf("Protected without Endpoints: %d", rec.Code)
	}
	if m := decodeMap(t, f.do(t, "GET", "/whoami", "", bearer(tok)...)); m["user"] != "alice" || m["injected"] != true {
		t.Errorf("InjectUser without Endpoints: %v", m)
	}
}

// TestScopeTruthTable runs Sanic JWT's scope rules (see ScopesMatch) through Scoped and
// ScopedWith.
func TestScopeTruthTable(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name      string
		required  []string
		anyScope  bool
		anyAction bool
		user      []string
		pass      bool
	}{
		{"same namespace", []string{"user"}, false, false, []string{"user"}, true},
		{"namespace-only user scope covers every action", []string{"user:read:write"}, false, false, []string{"user"}, true},
		{"namespace required, user has an action", []string{"user"}, false, false, []string{"user:read"}, false},
		{"other action", []string{"user:read"}, false, false, []string{"user:write"}, false},
		{"one of two required actions", []string{"user:read:write"}, false, false, []string{"user:read"}, false},
		{"one of two required actions, any action", []string{"user:read:write"}, false, true, []string{"user:read"}, true},
		{"more actions than required", []string{"user:read"}, false, false, []string{"user:read:write"}, true},
		{"empty required namespace matches any", []string{":read"}, false, false, []string{"admin:read"}, true},
		{"empty required namespace, other action", []string{":read"}, false, false, []string{"admin:write"}, false},
		{"other namespace", []string{"user:read"}, false, false, []string{"admin:read"}, false},
		{"case matters", []string{"User"}, false, false, []string{"user"}, false},
		{"no wildcard in user scope", []string{"user:read"}, false, false, []string{"*"}, false},
		{"no wildcard in user action", []string{"user:read"}, false, false, []string{"user:*"}, false},
		{"all required scopes", []string{"user", "admin"}, false, false, []string{"user"}, false},
		{"all required scopes present", []string{"user", "admin"}, false, false, []string{"admin", "user"}, true},
		{"any required scope", []string{"user", "admin"}, true, false, []string{"user"}, true},
		{"any required scope, none present", []string{"user", "admin"}, true, false, []string{"billing"}, false},
		{"any user scope may match", []string{"user:read"}, false, false, []string{"billing", "user:read"}, true},
		{"token without scopes never passes", []string{"user"}, false, false, nil, false},
		{"token with empty scopes never passes", []string{":read"}, true, true, []string{}, false},
		{"route requiring nothing never passes", nil, false, false, []string{"user"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
			h := f.a.ScopedWith(ScopeRule{Scopes: tc.required, AnyScope: tc.anyScope, AnyAction: tc.anyAction}, ok)
			if !tc.anyScope && !tc.anyAction {
				h = f.a.Scoped(tc.required, ok)
			}
			// ScopedWith as middleware, the form a func(http.Handler) http.Handler chain takes.
			middleware := func(next http.Handler) http.Handler {
				return f.a.ScopedWith(ScopeRule{Scopes: tc.required, AnyScope: tc.anyScope, AnyAction: tc.anyAction}, next)
			}
			chained := middleware(ok)
			tok, err := f.a.Sign(&Claims{UserID: "u", Scopes: tc.user, ExpiresAt: f.clock.now().Add(time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range []http.Handler{h, chained} {
				r := httptest.NewRequest("GET", "/", nil)
				r.Header.Set("Authorization", "Bearer "+tok)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if want := map[bool]int{true: 200, false: 403}[tc.pass]; rec.Code != want {
					t.Errorf("status %d, want %d", rec.Code, want)
				}
			}
		})
	}
}

func TestScopedCopiesScopes(t *testing.T) {
	f := newFixture(t, nil)
	scopes := []string{"orders:write"}
	h := f.a.Scoped(scopes, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	scopes[0] = "orders:read" // a caller reusing its slice must not loosen the route
	tok := f.login(t, "bob").AccessToken
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != 403 {
		t.Errorf("status %d, want 403", rec.Code)
	}
}

func TestProtectedConcurrent(t *testing.T) {
	f := newFixture(t, nil)
	alice, bob := f.login(t, "alice").AccessToken, f.login(t, "bob").AccessToken
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				tok, want := alice, 200
				switch (g + i) % 3 {
				case 1:
					tok, want = bob, 403
				case 2:
					tok, want = tamper(t, alice), 401
				}
				if rec := f.do(t, "POST", "/orders", "", bearer(tok)...); rec.Code != want {
					t.Errorf("status %d, want %d", rec.Code, want)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

// TestHostileInputsNeverPanic sends hostile values in every header, cookie, query
// argument and body the package reads, in every token-source mode. No response may be
// a success or a 500: each is refused as the client's error.
func TestHostileInputsNeverPanic(t *testing.T) {
	hostile := []string{
		"", " ", ".", "..", "...", "a.b.c", "Bearer", "Bearer ", "Bearer  x", "bearer\x00x",
		"\x00", "\xff\xfe\xfd", "Bearer \xff", "\r\n", "Bearer a\r\nb", "=", "==", "%", "%zz", ";", ",",
		"eyJhbGciOiJub25lIn0.e30.", "eyJhbGciOiJIUzI1NiJ9.e30." + strings.Repeat("A", 43),
		strings.Repeat("a", 100_000), strings.Repeat(".", 10_000), "Bearer " + strings.Repeat("eyJ.", 3000),
		`{"`, `{}`, `[]`, `null`, `{"refresh_token":{}}`, `{"refresh_token":1e999}`, `{"refresh_token":"\ud800"}`,
		strings.Repeat("[", 50_000), `{"a":` + strings.Repeat(`{"a":`, 10_000), "\u202e\u0000\ufeff",
	}
	modes := map[string]func(*Config){
		"header":       nil,
		"no prefix":    func(c *Config) { c.AuthorizationHeaderNoPrefix = true },
		"cookie":       func(c *Config) { c.Cookies = &Cookies{} },
		"split cookie": func(c *Config) { c.Cookies = &Cookies{Split: true} },
		"query":        func(c *Config) { c.InsecureQueryString = true },
		"fallback, debug": func(c *Config) {
			c.Cookies, c.InsecureQueryString, c.InsecureDebug, c.HeaderFallback = &Cookies{}, true, true, true
		},
		"redirect page": func(c *Config) { c.LoginRedirectURL = "/login" },
	}
	for name, mod := range modes {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, mod)
			alice := f.login(t, "alice")
			for _, v := range hostile {
				reqs := []*http.Request{}
				for _, target := range []string{"/orders", "/auth/verify", "/auth/me", "/whoami"} {
					for _, hdr := range [][2]string{
						{"Authorization", v}, {"Authorization", "Bearer " + v}, {"Cookie", "__Host-access_token=" + v},
						{"Cookie", "__Host-access_token=" + v + "; __Host-access_token_signature=" + v}, {"Cookie", v}, {"Accept", v},
					} {
						r := httptest.NewRequest("GET", target, nil)
						r.Header.Add(hdr[0], hdr[1])
						reqs = append(reqs, r)
					}
					r := httptest.NewRequest("GET", target+"?access_token="+url.QueryEscape(v), nil)
					reqs = append(reqs, r)
					r = httptest.NewRequest("GET", target, nil)
					r.URL.RawQuery = v // not even escaped
					reqs = append(reqs, r)
				}
				for _, target := range []string{"/auth", "/auth/refresh", "/auth/logout"} {
					r := httptest.NewRequest("POST", target, strings.NewReader(v))
					r.Header.Set("Authorization", "Bearer "+v)
					reqs = append(reqs, r)
				}
				// A valid access token (in every place the modes look) with a hostile
				// refresh token body, cookie and query argument.
				r := httptest.NewRequest("POST", "/auth/refresh?refresh_token="+url.QueryEscape(v)+"&access_token="+alice.AccessToken, strings.NewReader(v))
				r.Header.Set("Authorization", "Bearer "+alice.AccessToken)
				r.Header.Set("Cookie", "__Host-access_token="+alice.AccessToken+"; refresh_token="+v)
				reqs = append(reqs, r)
				for _, r := range reqs {
					rec := httptest.NewRecorder()
					f.h.ServeHTTP(rec, r)
					if rec.Code < 300 || rec.Code >= 500 {
						t.Errorf("%s %s %.60q: status %d %s", r.Method, r.URL.Path, v, rec.Code, rec.Body)
					}
				}
			}
		})
	}
}

func TestIssueTokens(t *testing.T) {
	f := newFixture(t, nil)
	tok, err := f.a.IssueTokens(context.Background(), &User{ID: "carol", Scopes: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := f.a.Verify(tok.AccessToken); err != nil || c.UserID != "carol" {
		t.Errorf("access token: %v %v", c, err)
	}
	if f.sessionToken(t, tok.AccessToken) != tok.RefreshToken {
		t.Error("no session stored for the issued refresh token")
	}
	noRefresh := newFixture(t, func(c *Config) { c.Refresh = nil })
	for name, u := range map[string]*User{
		"nil user": nil, "empty ID": {}, "extra claim overrides iss": {ID: "x", Claims: map[string]any{"iss": "me"}},
	} {
		if _, err := f.a.IssueTokens(context.Background(), u); !errors.Is(err, ErrInvalidClaims) {
			t.Errorf("%s: %v, want ErrInvalidClaims", name, err)
		}
		if _, err := noRefresh.a.IssueTokens(context.Background(), u); !errors.Is(err, ErrInvalidClaims) {
			t.Errorf("%s, without Refresh: %v, want ErrInvalidClaims", name, err)
		}
	}
	if ss := f.storedSessions(t, "x"); len(ss) != 0 {
		t.Errorf("claims that cannot be signed opened %d sessions", len(ss))
	}
	for method, hook := range map[string]string{"load": "Store.Load", "cas": "Store.CompareAndSwap"} {
		f.store.setFail(method, errors.New("down"))
		if _, err := f.a.IssueTokens(context.Background(), &User{ID: "carol"}); err == nil || !strings.Contains(err.Error(), hook) {
			t.Errorf("%s failure: %v", method, err)
		}
		f.store.setFail(method, nil)
	}
}

// Authenticate's answers. A hook chooses its message only by returning an *Error with a
// 4xx Status; any other error's text stays in the log.

func TestAuthenticateError400AnswersItsReason(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Endpoints.Authenticate = func(*http.Request) (*User, error) {
			return nil, &Error{Status: 400, Reason: "Body must be a JSON object with a username."}
		}
	})
	rec := f.do(t, "POST", "/auth", `x`)
	checkError(t, rec, 400, "AuthenticationFailed", "Body must be a JSON object with a username.")
	if h := rec.Header().Get("WWW-Authenticate"); h != "" {
		t.Errorf("WWW-Authenticate %q on a 400", h)
	}
	if f.log.String() != "" {
		t.Errorf("a 4xx was logged: %s", f.log.String())
	}
}

func TestAuthenticateError401AnswersItsReasonWithBearerChallenge(t *testing.T) {
	for _, exception := range []string{"", "AccountLocked"} {
		f := newFixture(t, func(c *Config) {
			c.Endpoints.Authenticate = func(*http.Request) (*User, error) {
				return nil, &Error{Status: 401, Exception: exception, Reason: "Wrong password."}
			}
		})
		rec := f.do(t, "POST", "/auth", loginBody("alice"))
		want := exception
		if want == "" {
			want = "AuthenticationFailed"
		}
		checkError(t, rec, 401, want, "Wrong password.")
		if h := rec.Header().Get("WWW-Authenticate"); h != "Bearer" {
			t.Errorf("WWW-Authenticate %q, want Bearer", h)
		}
	}
}

func TestAuthenticateErrorOutside4xxIsA500WithoutItsText(t *testing.T) {
	for _, status := range []int{0, 200, 302, 399, 500, 503, 600} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			f := newFixture(t, func(c *Config) {
				c.Endpoints.Authenticate = func(*http.Request) (*User, error) {
					return nil, &Error{Status: status, Exception: "Custom", Reason: "secret-detail"}
				}
			})
			rec := f.do(t, "POST", "/auth", loginBody("alice"))
			checkError(t, rec, 500, "InternalServerError", "Internal server error.")
			if strings.Contains(rec.Body.String(), "secret-detail") || strings.Contains(rec.Body.String(), "Custom") {
				t.Errorf("the hook's *Error reached the client: %s", rec.Body)
			}
			if rec.Header().Get("WWW-Authenticate") != "" {
				t.Errorf("WWW-Authenticate on a 500")
			}
			if !strings.Contains(f.log.String(), "secret-detail") {
				t.Errorf("the 500 was not logged with its cause: %q", f.log.String())
			}
		})
	}
}

func TestAuthenticateWrappedSentinelGetsTheFixedReason(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Endpoints.Authenticate = func(*http.Request) (*User, error) {
			return nil, fmt.Errorf("%w: db says x", ErrAuthenticationFailed)
		}
	})
	rec := f.do(t, "POST", "/auth", loginBody("alice"))
	checkError(t, rec, 401, "AuthenticationFailed", "Authentication failed.")
	if strings.Contains(rec.Body.String(), "db says x") {
		t.Errorf("the hook's text reached the client: %s", rec.Body)
	}
	if h := rec.Header().Get("WWW-Authenticate"); h != "Bearer" {
		t.Errorf("WWW-Authenticate %q, want Bearer", h)
	}
}

// TestInjectUserWithoutRetrieveUserInjectsTheTokensUser: a verify-only Auth has no
// RetrieveUser, and InjectUser then injects the user the token describes, not a 500.
func TestInjectUserWithoutRetrieveUserInjectsTheTokensUser(t *testing.T) {
	a := testAuth(t, nil)
	var got *User
	h := a.InjectUser(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = UserFromContext(r.Context())
	}))
	tok, err := a.Sign(&Claims{UserID: "alice", Scopes: []string{"orders:read"}, ExpiresAt: testNow.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/whoami", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != 200 || got == nil || got.ID != "alice" || !slices.Equal(got.Scopes, []string{"orders:read"}) {
		t.Fatalf("status %d, user %+v", rec.Code, got)
	}
}

// TestDefaultRetrieveUserRefusesATokenWithoutUserID: without RetrieveUser, a valid token
// that names no user (one the application signed itself, without UserID) describes no
// user: InjectUser and /auth/me refuse it as the client's error, not as a 500 that
// blames a RetrieveUser hook the application never set.
func TestDefaultRetrieveUserRefusesATokenWithoutUserID(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RetrieveUser, c.Refresh = nil, nil })
	tok, err := f.a.Sign(&Claims{Scopes: []string{"orders:read"}, ExpiresAt: f.clock.now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if rec := f.do(t, "GET", "/orders", "", bearer(tok)...); rec.Code != 200 {
		t.Fatalf("Protected: %d (the token is valid)", rec.Code)
	}
	for _, path := range []string{"/whoami", "/auth/me"} {
		if rec := f.do(t, "GET", path, "", bearer(tok)...); rec.Code != 401 {
			t.Errorf("GET %s with a token without user id: %d %s, want 401", path, rec.Code, rec.Body)
		}
	}
}

func TestMeWithoutRetrieveUserRendersTheUserID(t *testing.T) {
	for claim, want := range map[string]string{"": `{"me":{"user_id":"alice"}}`, "uid": `{"me":{"uid":"alice"}}`} {
		f := newFixture(t, func(c *Config) { c.RetrieveUser, c.Refresh, c.UserIDClaim = nil, nil, claim })
		tok := f.login(t, "alice").AccessToken
		rec := f.do(t, "GET", "/auth/me", "", bearer(tok)...)
		if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != want {
			t.Errorf("UserIDClaim %q: %d %s, want %s", claim, rec.Code, rec.Body, want)
		}
	}
}

func TestWithoutRefreshRefreshAndLogoutAre404(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Refresh = nil })
	alice := f.login(t, "alice")
	if alice.RefreshToken != "" {
		t.Errorf("login issued a refresh token without Refresh: %q", alice.RefreshToken)
	}
	for _, path := range []string{"/auth/refresh", "/auth/logout", "/auth/sessions", "/auth/sessions/AAAAAAAAAAAAAAAAAAAAAA"} {
		for _, m := range []string{"POST", "GET", "DELETE", "OPTIONS"} {
			checkError(t, f.do(t, m, path, `{"refresh_token":"x"}`, bearer(alice.AccessToken)...), 404, "NotFound",
				"Not found: refresh tokens and sessions are off on this server.")
		}
	}
	if rec := f.do(t, "GET", "/auth/verify", "", bearer(alice.AccessToken)...); rec.Code != 200 {
		t.Errorf("verify without Refresh: %d", rec.Code)
	}
	if f.store.count("load")+f.store.count("cas") != 0 {
		t.Error("the store was used without Refresh")
	}
}

// TestErrorHandlerReceivesTheCauseOfA500: a custom ErrorHandler gets an *Error whose
// chain holds the failing hook's error, to log, while the client sees none of it.
func TestErrorHandlerReceivesTheCauseOfA500(t *testing.T) {
	cause := errors.New("redis: connection refused")
	var got error
	f := newFixture(t, func(c *Config) {
		c.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			got = err
			var e *Error
			errors.As(err, &e)
			http.Error(w, e.Reason, e.Status)
		}
	})
	f.store.setFail("cas", cause)
	rec := f.do(t, "POST", "/auth", loginBody("alice"))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "redis") {
		t.Errorf("response %d %q", rec.Code, rec.Body)
	}
	var e *Error
	if !errors.As(got, &e) || e.Status != 500 || !errors.Is(got, cause) {
		t.Fatalf("ErrorHandler got %v", got)
	}
	if msg := got.Error(); !strings.HasPrefix(msg, "500: ") || !strings.Contains(msg, "Store.CompareAndSwap") || !strings.Contains(msg, cause.Error()) {
		t.Errorf("Error() = %q, want the status, the hook and its error", msg)
	}
	if msg := (&Error{Status: 401, Reason: "Wrong password."}).Error(); msg != "jwtauth: 401 Wrong password." {
		t.Errorf("an *Error without a cause: %q", msg)
	}
}

// TestURLPrefixSlashServesTheBareNames: with URLPrefix "/" the endpoints are /verify,
// /me and so on, and any other path is a 404.
func TestURLPrefixSlashServesTheBareNames(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Endpoints.URLPrefix = "/" })
	h := f.a.Handler()
	serve := func(method, path, body string, hdr ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	rec := serve("POST", "/", loginBody("alice"))
	if rec.Code != 200 {
		t.Fatalf("login at /: %d %s", rec.Code, rec.Body)
	}
	tok := tokensOf(t, rec)
	if rec := serve("GET", "/verify", "", bearer(tok.AccessToken)...); rec.Code != 200 {
		t.Errorf("GET /verify: %d", rec.Code)
	}
	for _, path := range []string{"/auth", "/auth/verify", "/x/verify", "/verify/", "//verify"} {
		checkError(t, serve("GET", path, "", bearer(tok.AccessToken)...), 404, "NotFound", "Not found.")
	}
}

// TestProtectedContext: the context Protected passes on is the request's own plus the
// claims: values, cancellation and deadline of the request's context reach the handler
// and contexts derived from it, and the claims reach contexts derived from it.
func TestProtectedContext(t *testing.T) {
	type key struct{}
	f := newFixture(t, nil)
	tok := f.login(t, "alice").AccessToken
	var inner context.Context
	h := f.a.Protected(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		derived, cancel := context.WithCancel(context.WithValue(r.Context(), key{}, "derived"))
		defer cancel()
		c, ok := ClaimsFromContext(derived)
		if !ok || c.UserID != "alice" || r.Context().Value(key{}) != "outer" || derived.Value(key{}) != "derived" {
			t.Errorf("claims %v %v, values %v %v", c, ok, r.Context().Value(key{}), derived.Value(key{}))
		}
		inner = r.Context()
	}))
	deadline := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(context.WithValue(context.Background(), key{}, "outer"), deadline)
	r := httptest.NewRequest("GET", "/orders", nil).WithContext(ctx)
	r.Header.Set("Authorization", "Bearer "+tok)
	h.ServeHTTP(httptest.NewRecorder(), r)
	if inner == nil {
		t.Fatal("handler not called")
	}
	if d, ok := inner.Deadline(); !ok || !d.Equal(deadline) || inner.Err() != nil {
		t.Errorf("deadline %v %v, err %v", d, ok, inner.Err())
	}
	cancel()
	select {
	case <-inner.Done():
	case <-time.After(time.Second):
		t.Fatal("cancelling the request's context did not reach the handler's")
	}
	if !errors.Is(inner.Err(), context.Canceled) {
		t.Errorf("err %v", inner.Err())
	}
	if raceEnabled {
		return // sync.Pool drops items under the race detector
	}
	r = httptest.NewRequest("GET", "/orders", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	h = f.a.Protected(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r) // warm the pools
	if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(rec, r) }); n > 3 {
		t.Errorf("Protected allocates %v times for a valid token, want at most 3: the claims, the payload, the request", n)
	}
}
