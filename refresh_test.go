package jwtauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeStore is a refresh-token store for tests: a map and a mutex implementing the four
// hooks. It records every value it is given, and a hook can be made to fail.
type fakeStore struct {
	mu     sync.Mutex
	tokens map[string]string // user ID -> digest
	seen   []string          // every digest passed to a hook
	fail   map[string]error  // hook name -> error to return
	calls  map[string]int
}

func newFakeStore() *fakeStore {
	return &fakeStore{tokens: map[string]string{}, fail: map[string]error{}, calls: map[string]int{}}
}

func (s *fakeStore) enter(hook string, digests ...string) error {
	s.calls[hook]++
	s.seen = append(s.seen, digests...)
	return s.fail[hook]
}

func (s *fakeStore) StoreRefreshToken(_ context.Context, userID, digest string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter("store", digest); err != nil {
		return err
	}
	s.tokens[userID] = digest
	return nil
}

func (s *fakeStore) RetrieveRefreshToken(_ context.Context, userID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter("retrieve"); err != nil {
		return "", err
	}
	d, ok := s.tokens[userID]
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrRefreshTokenNotFound, userID)
	}
	return d, nil
}

func (s *fakeStore) RevokeRefreshToken(_ context.Context, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter("revoke"); err != nil {
		return err
	}
	delete(s.tokens, userID)
	return nil
}

func (s *fakeStore) SwapRefreshToken(_ context.Context, userID, presented, next string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.enter("swap", presented, next); err != nil {
		return err
	}
	if d, ok := s.tokens[userID]; !ok || d != presented {
		return ErrRefreshTokenNotFound
	}
	s.tokens[userID] = next
	return nil
}

func (s *fakeStore) get(userID string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.tokens[userID]
	return d, ok
}

func (s *fakeStore) setFail(hook string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[hook] = err
}

// refreshBody is the JSON body of a header-mode refresh.
func refreshBody(tok string) string { return `{"refresh_token":"` + tok + `"}` }

func TestRefreshFlowHoursAfterExpiry(t *testing.T) {
	f := newFixture(t, nil)
	old := f.login(t, "alice")

	// Five hours later the access token is long expired, and the directory has
	// changed alice's scopes and claims since she logged in.
	f.clock.add(5 * time.Hour)
	f.dir.update("alice", func(u *User) {
		u.Scopes = []string{"orders:read"}
		u.Claims = map[string]any{"tier": "gold"}
	})
	if rec := f.do(t, "GET", "/orders", "", bearer(old.AccessToken)...); rec.Code != 401 {
		t.Fatalf("expired access token accepted by Protected: %d", rec.Code)
	}

	rec := f.do(t, "POST", "/auth/refresh", refreshBody(old.RefreshToken), bearer(old.AccessToken)...)
	if rec.Code != 200 {
		t.Fatalf("refresh: %d %s", rec.Code, rec.Body)
	}
	got := tokensOf(t, rec)
	if got.RefreshToken == "" || got.RefreshToken == old.RefreshToken {
		t.Fatalf("refresh token not rotated: %q", got.RefreshToken)
	}
	c, err := f.a.Verify(got.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	var tier string
	if err := c.Get("tier", &tier); err != nil || tier != "gold" {
		t.Errorf("new token lacks the fresh claim: %q %v", tier, err)
	}
	if strings.Join(c.Scopes, " ") != "orders:read" {
		t.Errorf("new token scopes %q, want the fresh ones", c.Scopes)
	}
	if want := f.clock.now().Add(DefaultExpirationDelta).Unix(); c.ExpiresAt.Unix() != want {
		t.Errorf("exp %d, want %d", c.ExpiresAt.Unix(), want)
	}
	if d, _ := f.store.get("alice"); d != RefreshTokenDigest(got.RefreshToken) {
		t.Errorf("store holds %q, want the new token's digest", d)
	}

	// The new tokens work: the access token on a route, the refresh token once more.
	if rec := f.do(t, "GET", "/orders", "", bearer(got.AccessToken)...); rec.Code != 200 {
		t.Errorf("new access token refused: %d", rec.Code)
	}
	if rec := f.do(t, "POST", "/auth/refresh", refreshBody(got.RefreshToken), bearer(got.AccessToken)...); rec.Code != 200 {
		t.Errorf("second refresh: %d %s", rec.Code, rec.Body)
	}
}

func TestRefreshReplayOfRotatedOutTokenRevokes(t *testing.T) {
	f := newFixture(t, nil)
	first := f.login(t, "alice")
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(first.RefreshToken), bearer(first.AccessToken)...)
	if rec.Code != 200 {
		t.Fatalf("refresh: %d", rec.Code)
	}
	second := tokensOf(t, rec)

	// RFC 9700 §4.14.2: the rotated-out token comes back (an attacker copied it).
	rec = f.do(t, "POST", "/auth/refresh", refreshBody(first.RefreshToken), bearer(first.AccessToken)...)
	checkError(t, rec, 401, "AuthenticationFailed", "Authentication failed.")
	if _, ok := f.store.get("alice"); ok {
		t.Fatal("replay did not revoke the current refresh token")
	}
	// ... and the legitimate client's current token is dead too.
	rec = f.do(t, "POST", "/auth/refresh", refreshBody(second.RefreshToken), bearer(second.AccessToken)...)
	checkError(t, rec, 401, "AuthenticationFailed", "Authentication failed.")
}

// TestRefreshReplayRevokesAfterTheClientHangsUp: the revocation a replay triggers does
// not depend on the replayer waiting for the answer.
func TestRefreshReplayRevokesAfterTheClientHangsUp(t *testing.T) {
	store := NewMemStore() // its hooks refuse a cancelled context
	var hangUp context.CancelFunc
	f := newFixture(t, func(c *Config) {
		c.StoreRefreshToken = store.StoreRefreshToken
		c.RetrieveRefreshToken = store.RetrieveRefreshToken
		c.RevokeRefreshToken = store.RevokeRefreshToken
		c.SwapRefreshToken = func(ctx context.Context, userID, presented, next string) error {
			err := store.SwapRefreshToken(ctx, userID, presented, next)
			if err != nil && hangUp != nil {
				hangUp() // the replayer disconnects while the store answers
			}
			return err
		}
	})
	first := f.login(t, "alice")
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(first.RefreshToken), bearer(first.AccessToken)...)
	if rec.Code != 200 {
		t.Fatalf("refresh: %d", rec.Code)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hangUp = cancel
	r := httptest.NewRequest("POST", "/auth/refresh", strings.NewReader(refreshBody(first.RefreshToken))).WithContext(ctx)
	r.Header.Set("Authorization", "Bearer "+first.AccessToken)
	rec = httptest.NewRecorder()
	f.h.ServeHTTP(rec, r)
	checkError(t, rec, 401, "AuthenticationFailed", "Authentication failed.")
	if _, err := store.RetrieveRefreshToken(context.Background(), "alice"); !errors.Is(err, ErrRefreshTokenNotFound) {
		t.Fatalf("the current refresh token survived the replay: %v", err)
	}
}

func TestRefreshFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mod       func(*Config)
		prepare   func(f *fixture)
		req       func(f *fixture, alice, bob *Tokens) (method, target, body string, hdr []string)
		status    int
		exception string
		reason    string
		revoked   bool // alice's stored token is gone afterwards
	}{
		{
			name: "refresh token of another user",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				return "POST", "/auth/refresh", refreshBody(bob.RefreshToken), bearer(alice.AccessToken)
			},
			status: 401, exception: "AuthenticationFailed", reason: "Authentication failed.", revoked: true,
		},
		{
			name: "guessed refresh token",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				return "POST", "/auth/refresh", refreshBody("AAAAAAAAAAAAAAAAAAAAAAAA"), bearer(alice.AccessToken)
			},
			status: 401, exception: "AuthenticationFailed", reason: "Authentication failed.", revoked: true,
		},
		{
			name: "missing refresh token",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				return "POST", "/auth/refresh", `{}`, bearer(alice.AccessToken)
			},
			status: 400, exception: "MissingRefreshToken", reason: `Refresh token "refresh_token" not present in the JSON body.`,
		},
		{
			name: "empty body",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				return "POST", "/auth/refresh", ``, bearer(alice.AccessToken)
			},
			status: 400, exception: "MissingRefreshToken", reason: `Refresh token "refresh_token" not present in the JSON body.`,
		},
		{
			name: "null refresh token",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				return "POST", "/auth/refresh", `{"refresh_token":null}`, bearer(alice.AccessToken)
			},
			status: 400, exception: "MissingRefreshToken",
		},
		{
			name: "non-JSON body",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				return "POST", "/auth/refresh", `refresh_token=` + alice.RefreshToken, bearer(alice.AccessToken)
			},
			status: 400, exception: "InvalidRequestBody",
		},
		{
			name: "JSON array body",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				return "POST", "/auth/refresh", `["` + alice.RefreshToken + `"]`, bearer(alice.AccessToken)
			},
			status: 400, exception: "InvalidRequestBody",
		},
		{
			name: "refresh token not a string",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				return "POST", "/auth/refresh", `{"refresh_token":["` + alice.RefreshToken + `"]}`, bearer(alice.AccessToken)
			},
			status: 400, exception: "InvalidRequestBody",
		},
		{
			name: "trailing data after the body",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				return "POST", "/auth/refresh", refreshBody(alice.RefreshToken) + `{}`, bearer(alice.AccessToken)
			},
			status: 400, exception: "InvalidRequestBody",
		},
		{
			name: "refresh token sent twice in the body",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				body := `{"refresh_token":"` + bob.RefreshToken + `","refresh_token":"` + alice.RefreshToken + `"}`
				return "POST", "/auth/refresh", body, bearer(alice.AccessToken)
			},
			status: 400, exception: "InvalidRefreshToken",
		},
		{
			name: "no access token",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				return "POST", "/auth/refresh", refreshBody(alice.RefreshToken), nil
			},
			status: 401, exception: "MissingAuthorizationHeader", reason: "Authorization header not present.",
		},
		{
			name: "forged access token",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				return "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(tamper(t, alice.AccessToken))
			},
			status: 401, exception: "Unauthorized", reason: "Auth required.",
		},
		{
			name: "access token signed with another secret",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				other := otherAuth(t)
				tok, _ := other.Sign(&Claims{UserID: "alice", ExpiresAt: f.clock.now().Add(time.Minute)})
				return "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(tok)
			},
			status: 401, exception: "Unauthorized", reason: "Auth required.",
		},
		{
			name: "past the refresh window by 1s",
			mod:  func(c *Config) { c.RefreshWindow = time.Hour },
			prepare: func(f *fixture) {
				f.clock.add(DefaultExpirationDelta + DefaultLeeway + time.Hour + time.Second)
			},
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				return "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)
			},
			status: 401, exception: "Unauthorized", reason: "Signature has expired.",
		},
		{
			name: "refresh disabled",
			mod:  func(c *Config) { c.RefreshTokenEnabled = false },
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				return "POST", "/auth/refresh", `{"refresh_token":"x"}`, bearer(alice.AccessToken)
			},
			status: 404, exception: "NotFound",
		},
		{
			name: "GET",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				return "GET", "/auth/refresh", "", bearer(alice.AccessToken)
			},
			status: 405, exception: "MethodNotAllowed",
		},
		{
			name:    "store has no token (logged out)",
			prepare: func(f *fixture) { f.store.RevokeRefreshToken(context.Background(), "alice") },
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				return "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)
			},
			status: 401, exception: "AuthenticationFailed", revoked: true,
		},
		{
			name:    "user deleted since login",
			prepare: func(f *fixture) { f.dir.remove("alice") },
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				return "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)
			},
			status: 401, exception: "Unauthorized", reason: "User not found.",
		},
	} {
		for _, swap := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/swap=%v", tc.name, swap), func(t *testing.T) {
				f := newFixture(t, func(c *Config) {
					if !swap {
						c.SwapRefreshToken = nil
					}
					if tc.mod != nil {
						tc.mod(c)
					}
				})
				alice := f.login(t, "alice")
				bob := f.login(t, "bob")
				if tc.prepare != nil {
					tc.prepare(f)
				}
				method, target, body, hdr := tc.req(f, alice, bob)
				rec := f.do(t, method, target, body, hdr...)
				checkError(t, rec, tc.status, tc.exception, tc.reason)
				d, ok := f.store.get("alice")
				if tc.revoked && ok {
					t.Errorf("alice's refresh token survived")
				}
				if !tc.revoked && tc.prepare == nil && alice.RefreshToken != "" && d != RefreshTokenDigest(alice.RefreshToken) {
					t.Errorf("alice's refresh token changed or vanished")
				}
			})
		}
	}
}

func TestRefreshWithinWindow(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RefreshWindow = time.Hour })
	alice := f.login(t, "alice")
	f.clock.add(DefaultExpirationDelta + DefaultLeeway + time.Hour) // exactly at the edge
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...)
	if rec.Code != 200 {
		t.Fatalf("refresh at the window's edge: %d %s", rec.Code, rec.Body)
	}
}

func TestRefreshHookFailures(t *testing.T) {
	const secret = "dial tcp 10.0.0.7:6379: password hunter2 rejected"
	for _, tc := range []struct {
		name, hook string
		swap       bool
		presented  string // "" = alice's current token
	}{
		{"retrieve fails", "retrieve", false, ""},
		{"store of the rotated token fails", "store", false, ""},
		{"swap fails", "swap", true, ""},
		{"revoke after a mismatch fails", "revoke", true, "AAAAAAAAAAAAAAAAAAAAAAAA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) {
				if !tc.swap {
					c.SwapRefreshToken = nil
				}
			})
			alice := f.login(t, "alice")
			f.store.setFail(tc.hook, errors.New(secret))
			presented := alice.RefreshToken
			if tc.presented != "" {
				presented = tc.presented
			}
			rec := f.do(t, "POST", "/auth/refresh", refreshBody(presented), bearer(alice.AccessToken)...)
			checkError(t, rec, 500, "InternalServerError", "Internal server error.")
			if strings.Contains(rec.Body.String(), "hunter2") || strings.Contains(fmt.Sprint(rec.Header()), "hunter2") {
				t.Errorf("hook error leaked: %s", rec.Body)
			}
			if !strings.Contains(f.log.String(), "hunter2") {
				t.Errorf("hook error not logged: %q", f.log.String())
			}
		})
	}
}

func TestRefreshRetrieveUserFails(t *testing.T) {
	f := newFixture(t, nil)
	alice := f.login(t, "alice")
	f.dir.failWith(errors.New("database is down: secret-dsn"))
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...)
	checkError(t, rec, 500, "InternalServerError", "Internal server error.")
	if strings.Contains(rec.Body.String(), "secret-dsn") {
		t.Errorf("hook error leaked: %s", rec.Body)
	}
}

func TestRefreshHookSaysNotFound(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.SwapRefreshToken = nil })
	alice := f.login(t, "alice")
	f.store.setFail("retrieve", fmt.Errorf("redis: key missing: %w", ErrRefreshTokenNotFound))
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...)
	checkError(t, rec, 401, "AuthenticationFailed", "Authentication failed.")
}

// TestRefreshConcurrentWithSwap: 64 requests present one refresh token at once. With
// SwapRefreshToken exactly one wins. Every loser presented a token that is no longer
// current, which RFC 9700 §4.14.2 treats as reuse, so the winner's new token is revoked
// too: a client racing itself is logged out, which is the documented price of rotation.
func TestRefreshConcurrentWithSwap(t *testing.T) {
	f := newFixture(t, nil)
	alice := f.login(t, "alice")
	codes := f.refreshConcurrently(t, alice, 64)
	if codes[200] != 1 || codes[401] != 63 {
		t.Fatalf("status counts %v, want exactly one 200 and 63 401s", codes)
	}
	if d, ok := f.store.get("alice"); ok {
		t.Errorf("store still holds %q after the losers' reuse was detected", d)
	}
}

// TestRefreshConcurrentWithoutSwap documents the race SPEC §6 step 6 describes: without
// SwapRefreshToken, retrieve-compare-store is not atomic, so more than one concurrent
// refresh may succeed. What holds: at least one succeeds, the store then holds nothing
// (a loser revoked) or the digest of exactly one of the issued tokens, and so every
// other issued token is dead.
func TestRefreshConcurrentWithoutSwap(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.SwapRefreshToken = nil })
	alice := f.login(t, "alice")
	var mu sync.Mutex
	var issued []string
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...)
			if rec.Code == 200 {
				tok := tokensOf(t, rec)
				mu.Lock()
				issued = append(issued, tok.RefreshToken)
				mu.Unlock()
			} else if rec.Code != 401 {
				t.Errorf("status %d", rec.Code)
			}
		}()
	}
	wg.Wait()
	if len(issued) == 0 {
		t.Fatal("no refresh succeeded")
	}
	d, ok := f.store.get("alice")
	live := 0
	for _, tok := range issued {
		if ok && RefreshTokenDigest(tok) == d {
			live++
		}
	}
	if ok && live != 1 {
		t.Fatalf("store holds a digest matching %d issued tokens, want 1", live)
	}
	t.Logf("%d of 64 succeeded; store holds a token: %v", len(issued), ok)
}

func (f *fixture) refreshConcurrently(t *testing.T, tok *Tokens, n int) map[int]int {
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := f.do(t, "POST", "/auth/refresh", refreshBody(tok.RefreshToken), bearer(tok.AccessToken)...)
			mu.Lock()
			codes[rec.Code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return codes
}

func TestRefreshWithoutRotation(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RotateRefreshTokens = new(bool) })
	alice := f.login(t, "alice")
	for i := 0; i < 2; i++ {
		rec := f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...)
		if rec.Code != 200 {
			t.Fatalf("refresh %d: %d %s", i, rec.Code, rec.Body)
		}
		if got := decodeMap(t, rec); got["refresh_token"] != nil || got["access_token"] == nil {
			t.Fatalf("body %v, want an access token only", got)
		}
	}
	// A wrong token is refused but, without rotation, is no evidence of theft.
	rec := f.do(t, "POST", "/auth/refresh", refreshBody("AAAAAAAAAAAAAAAAAAAAAAAA"), bearer(alice.AccessToken)...)
	checkError(t, rec, 401, "AuthenticationFailed", "Authentication failed.")
	if _, ok := f.store.get("alice"); !ok {
		t.Error("mismatch revoked the token although rotation is off")
	}
}

func TestStoreNeverSeesRawToken(t *testing.T) {
	for _, swap := range []bool{true, false} {
		f := newFixture(t, func(c *Config) {
			if !swap {
				c.SwapRefreshToken = nil
			}
		})
		var issued []string
		tok := f.login(t, "alice")
		issued = append(issued, tok.RefreshToken)
		for i := 0; i < 3; i++ {
			rec := f.do(t, "POST", "/auth/refresh", refreshBody(tok.RefreshToken), bearer(tok.AccessToken)...)
			if rec.Code != 200 {
				t.Fatalf("refresh: %d", rec.Code)
			}
			tok = tokensOf(t, rec)
			issued = append(issued, tok.RefreshToken)
		}
		f.store.mu.Lock()
		seen := append([]string(nil), f.store.seen...)
		f.store.mu.Unlock()
		if len(seen) == 0 {
			t.Fatal("store saw nothing")
		}
		digests := map[string]bool{}
		for _, tok := range issued {
			digests[RefreshTokenDigest(tok)] = true
		}
		for _, s := range seen {
			if len(s) != 43 || !base64URLOnly(s) {
				t.Errorf("store was given %q, not a 43-character digest", s)
			}
			if !digests[s] {
				t.Errorf("store was given %q, which is no issued token's digest", s)
			}
			for _, tok := range issued {
				if strings.Contains(s, tok) {
					t.Errorf("store was given the raw token %q", tok)
				}
			}
		}
	}
}

func TestRefreshTokenDigest(t *testing.T) {
	// SHA-256("abc"), FIPS 180-2 appendix B.1, in base64url.
	if got, want := RefreshTokenDigest("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"; got != want {
		t.Errorf("digest %q, want %q", got, want)
	}
}

func TestGenerateRefreshTokenUnique(t *testing.T) {
	const n = 100_000
	seen := make(map[string]struct{}, n)
	for i := 0; i < n; i++ {
		tok, err := generateRefreshToken()
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != 24 || !base64URLOnly(tok) {
			t.Fatalf("token %q is not 24 base64url characters", tok)
		}
		if _, dup := seen[tok]; dup {
			t.Fatalf("duplicate token after %d draws", i)
		}
		seen[tok] = struct{}{}
	}
}

func TestGenerateRefreshTokenHookFails(t *testing.T) {
	for name, gen := range map[string]func() (string, error){
		"error":       func() (string, error) { return "", errors.New("entropy source gone: secret-detail") },
		"empty token": func() (string, error) { return "", nil },
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.GenerateRefreshToken = gen })
			rec := f.do(t, "POST", "/auth", loginBody("alice"))
			checkError(t, rec, 500, "InternalServerError", "Internal server error.")
			if strings.Contains(rec.Body.String(), "secret-detail") {
				t.Error("generator error leaked")
			}
		})
	}
}

func TestRefreshCookieMode(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.CookieSet = true })
	rec := f.do(t, "POST", "/auth", loginBody("alice"))
	if rec.Code != 200 {
		t.Fatalf("login: %d", rec.Code)
	}
	jar := cookieHeader(rec)
	f.clock.add(time.Hour)
	rec = f.do(t, "POST", "/auth/refresh", "", "Cookie", jar)
	if rec.Code != 200 {
		t.Fatalf("refresh with cookies: %d %s", rec.Code, rec.Body)
	}
	cs := cookiesByName(rec)
	if cs["access_token"] == nil || cs["refresh_token"] == nil {
		t.Fatalf("refresh did not set both cookies: %v", rec.Header()["Set-Cookie"])
	}
	if d, _ := f.store.get("alice"); d != RefreshTokenDigest(cs["refresh_token"].Value) {
		t.Error("the refresh cookie is not the stored token")
	}
	// The refresh token cookie is required in strict cookie mode, even with a body.
	rec = f.do(t, "POST", "/auth/refresh", refreshBody("x"), "Cookie", "access_token="+cs["access_token"].Value)
	checkError(t, rec, 400, "MissingRefreshToken", `Refresh token "refresh_token" not present as a cookie.`)
	// Two refresh cookies are ambiguous.
	rec = f.do(t, "POST", "/auth/refresh", "", "Cookie", cookieHeader(rec)+"; refresh_token=a; refresh_token=b; access_token="+cs["access_token"].Value)
	checkError(t, rec, 400, "InvalidRefreshToken", "")
}

func TestRefreshQueryMode(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.QueryStringSet = true })
	alice := f.login(t, "alice")
	target := "/auth/refresh?access_token=" + alice.AccessToken + "&refresh_token=" + url.QueryEscape(alice.RefreshToken)
	if rec := f.do(t, "POST", target, ""); rec.Code != 200 {
		t.Fatalf("refresh in query mode: %d %s", rec.Code, rec.Body)
	}
	rec := f.do(t, "POST", "/auth/refresh?access_token="+alice.AccessToken, refreshBody(alice.RefreshToken))
	checkError(t, rec, 400, "MissingRefreshToken", `Refresh token "refresh_token" not present as a query argument.`)
}

func TestRefreshNonStrictCookieFallsBackToBody(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.CookieSet = true; c.CookieStrict = new(bool) })
	alice := f.login(t, "alice")
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...)
	if rec.Code != 200 {
		t.Fatalf("non-strict cookie mode, header and body: %d %s", rec.Code, rec.Body)
	}
}

func TestLogout(t *testing.T) {
	f := newFixture(t, nil)
	alice := f.login(t, "alice")
	f.clock.add(10 * time.Hour) // an expired access token still logs out
	rec := f.do(t, "POST", "/auth/logout", "", bearer(alice.AccessToken)...)
	if rec.Code != 204 || rec.Body.Len() != 0 {
		t.Fatalf("logout: %d %q", rec.Code, rec.Body)
	}
	if _, ok := f.store.get("alice"); ok {
		t.Fatal("logout did not revoke")
	}
	rec = f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...)
	checkError(t, rec, 401, "AuthenticationFailed", "Authentication failed.")

	rec = f.do(t, "POST", "/auth/logout", "")
	checkError(t, rec, 401, "MissingAuthorizationHeader", "Authorization header not present.")
	rec = f.do(t, "POST", "/auth/logout", "", bearer(tamper(t, alice.AccessToken))...)
	checkError(t, rec, 401, "Unauthorized", "Auth required.")

	f.store.setFail("revoke", errors.New("revoke failed: secret-detail"))
	rec = f.do(t, "POST", "/auth/logout", "", bearer(alice.AccessToken)...)
	checkError(t, rec, 500, "InternalServerError", "Internal server error.")
	if strings.Contains(rec.Body.String(), "secret-detail") {
		t.Error("revoke error leaked")
	}
}

func TestLogoutWithoutRevokeHookIs404(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RevokeRefreshToken = nil })
	alice := f.login(t, "alice")
	rec := f.do(t, "POST", "/auth/logout", "", bearer(alice.AccessToken)...)
	checkError(t, rec, 404, "NotFound", "Not found.")
}

func TestLogoutClearsCookies(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.CookieSet = true; c.CookieSplit = true; c.CookieDomain = "example.com" })
	rec := f.do(t, "POST", "/auth", loginBody("alice"))
	rec = f.do(t, "POST", "/auth/logout", "", "Cookie", cookieHeader(rec))
	if rec.Code != 204 {
		t.Fatalf("logout: %d %s", rec.Code, rec.Body)
	}
	cs := cookiesByName(rec)
	for _, name := range []string{"access_token", "access_token_signature", "refresh_token"} {
		c := cs[name]
		if c == nil || c.MaxAge >= 0 || c.Value != "" || c.Path != "/" || c.Domain != "example.com" {
			t.Errorf("cookie %s not cleared: %+v", name, c)
		}
	}
}

func TestJSONStringMember(t *testing.T) {
	for _, tc := range []struct {
		body string
		want string
		err  error // nil: success; errNoMember etc.; errAny: some other error
	}{
		{`{"refresh_token":"abc"}`, "abc", nil},
		{` {"a":{"b":[1,2,{"c":null}]},"refresh_token":"abc"} `, "abc", nil},
		{`{"refresh_\u0074oken":"abc"}`, "abc", nil},
		{``, "", errNoMember},
		{`{}`, "", errNoMember},
		{`{"refresh_token":null}`, "", nil},
		{`{"Refresh_Token":"abc"}`, "", errNoMember},
		{`{"refresh_token":"a","refresh_token":"b"}`, "", errDuplicateMember},
		{`{"refresh_token":1}`, "", errNotString},
		{`[]`, "", errNotObject},
		{`"abc"`, "", errNotObject},
		{`{"refresh_token":"abc"} x`, "", errNotObject},
		{`{"refresh_token":"abc"}{}`, "", errNotObject},
		{`{"refresh_token":"abc"`, "", errAny},
		{`{"refresh_token" "abc"}`, "", errAny},
		{`{"x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, "", errAny},
	} {
		got, err := jsonStringMember(strings.NewReader(tc.body), "refresh_token")
		switch {
		case tc.err == errAny && err == nil:
			t.Errorf("%.40q: no error", tc.body)
		case tc.err != errAny && err != tc.err:
			t.Errorf("%.40q: error %v, want %v", tc.body, err, tc.err)
		case got != tc.want:
			t.Errorf("%.40q: %q, want %q", tc.body, got, tc.want)
		}
	}
}

var errAny = errors.New("any error")

func TestRefreshBodyTooLarge(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxBodyBytes = 256 })
	alice := f.login(t, "alice")
	body := `{"pad":"` + strings.Repeat("x", 300) + `","refresh_token":"` + alice.RefreshToken + `"}`
	rec := f.do(t, "POST", "/auth/refresh", body, bearer(alice.AccessToken)...)
	checkError(t, rec, 413, "RequestEntityTooLarge", "Request body too large.")
}

var _ = http.StatusOK
