package jwtauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testStore is the refresh-token Store of the HTTP tests: a MemStore (on the fixture's
// clock) that records every key, value and TTL it is given, counts its calls, and can be
// made to fail per method: "load", "cas", or "delete" (a CompareAndSwap whose new value
// is nil, the revocation). after, when set, runs once each call has been answered.
type testStore struct {
	mem MemStore

	mu    sync.Mutex
	keys  []string        // every key given to a method
	seen  [][]byte        // every non-nil old and new value given to CompareAndSwap
	ttls  []time.Duration // every TTL given to CompareAndSwap
	fail  map[string]error
	calls map[string]int
	after func(method string)
}

var _ Store = (*testStore)(nil)

func newTestStore(now func() time.Time) *testStore {
	s := &testStore{fail: map[string]error{}, calls: map[string]int{}}
	s.mem.now = now
	return s
}

// enter records a call and returns the error it is to fail with.
func (s *testStore) enter(method, key string, vals ...[]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[method]++
	s.keys = append(s.keys, key)
	for _, v := range vals {
		if v != nil {
			s.seen = append(s.seen, bytes.Clone(v))
		}
	}
	return s.fail[method]
}

func (s *testStore) done(method string) {
	s.mu.Lock()
	after := s.after
	s.mu.Unlock()
	if after != nil {
		after(method)
	}
}

func (s *testStore) Load(ctx context.Context, key string) ([]byte, error) {
	defer s.done("load")
	if err := s.enter("load", key); err != nil {
		return nil, err
	}
	return s.mem.Load(ctx, key)
}

func (s *testStore) CompareAndSwap(ctx context.Context, key string, old, new []byte, ttl time.Duration) (bool, error) {
	defer s.done("cas")
	s.mu.Lock()
	s.ttls = append(s.ttls, ttl)
	s.mu.Unlock()
	if err := s.enter("cas", key, old, new); err != nil {
		return false, err
	}
	if new == nil {
		s.mu.Lock()
		err := s.fail["delete"]
		s.calls["delete"]++
		s.mu.Unlock()
		if err != nil {
			return false, err
		}
	}
	return s.mem.CompareAndSwap(ctx, key, old, new, ttl)
}

// get returns the value stored for userID, nil for none.
func (s *testStore) get(userID string) []byte {
	v, err := s.mem.Load(context.Background(), userID)
	if err != nil {
		panic(err)
	}
	return v
}

// remove deletes userID's value, as a logout elsewhere would.
func (s *testStore) remove(userID string) {
	for v := s.get(userID); v != nil; v = s.get(userID) {
		s.mem.CompareAndSwap(context.Background(), userID, v, nil, 0)
	}
}

func (s *testStore) setFail(method string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[method] = err
}

func (s *testStore) setAfter(f func(method string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.after = f
}

func (s *testStore) count(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
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
	if want := f.clock.now().Add(defaultExpirationDelta).Unix(); c.ExpiresAt.Unix() != want {
		t.Errorf("exp %d, want %d", c.ExpiresAt.Unix(), want)
	}
	if d := f.store.get("alice"); !bytes.Equal(d, refreshTokenDigest(got.RefreshToken)) {
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
	if d := f.store.get("alice"); d != nil {
		t.Fatal("replay did not revoke the current refresh token")
	}
	// ... and the legitimate client's current token is dead too.
	rec = f.do(t, "POST", "/auth/refresh", refreshBody(second.RefreshToken), bearer(second.AccessToken)...)
	checkError(t, rec, 401, "AuthenticationFailed", "Authentication failed.")
}

// TestRefreshReplayRevokesAfterTheClientHangsUp: the revocation a replay triggers does
// not depend on the replayer waiting for the answer. The replayer hangs up as soon as
// the store has loaded the current token, and MemStore refuses a cancelled context.
func TestRefreshReplayRevokesAfterTheClientHangsUp(t *testing.T) {
	f := newFixture(t, nil)
	first := f.login(t, "alice")
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(first.RefreshToken), bearer(first.AccessToken)...)
	if rec.Code != 200 {
		t.Fatalf("refresh: %d", rec.Code)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.store.setAfter(func(method string) {
		if method == "load" {
			cancel() // the replayer disconnects while the store answers
		}
	})
	r := httptest.NewRequest("POST", "/auth/refresh", strings.NewReader(refreshBody(first.RefreshToken))).WithContext(ctx)
	r.Header.Set("Authorization", "Bearer "+first.AccessToken)
	rec = httptest.NewRecorder()
	f.h.ServeHTTP(rec, r)
	checkError(t, rec, 401, "AuthenticationFailed", "Authentication failed.")
	if ctx.Err() == nil {
		t.Fatal("the request's context was not cancelled")
	}
	if d := f.store.get("alice"); d != nil {
		t.Fatalf("the current refresh token survived the replay: %q", d)
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
			mod:  func(c *Config) { c.Refresh.Window = time.Hour },
			prepare: func(f *fixture) {
				f.clock.add(defaultExpirationDelta + defaultLeeway + time.Hour + time.Second)
			},
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				return "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)
			},
			status: 401, exception: "Unauthorized", reason: "Signature has expired.",
		},
		{
			name: "refresh disabled",
			mod:  func(c *Config) { c.Refresh = nil },
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
			prepare: func(f *fixture) { f.store.remove("alice") },
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
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.mod)
			alice := f.login(t, "alice")
			bob := f.login(t, "bob")
			if tc.prepare != nil {
				tc.prepare(f)
			}
			method, target, body, hdr := tc.req(f, alice, bob)
			rec := f.do(t, method, target, body, hdr...)
			checkError(t, rec, tc.status, tc.exception, tc.reason)
			d := f.store.get("alice")
			if tc.revoked && d != nil {
				t.Errorf("alice's refresh token survived")
			}
			if !tc.revoked && tc.prepare == nil && alice.RefreshToken != "" && !bytes.Equal(d, refreshTokenDigest(alice.RefreshToken)) {
				t.Errorf("alice's refresh token changed or vanished")
			}
		})
	}
}

func TestRefreshWithinWindow(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Refresh.Window = time.Hour })
	alice := f.login(t, "alice")
	f.clock.add(defaultExpirationDelta + defaultLeeway + time.Hour) // exactly at the edge
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...)
	if rec.Code != 200 {
		t.Fatalf("refresh at the window's edge: %d %s", rec.Code, rec.Body)
	}
}

// TestRefreshHookFailures: a failing store is a logged 500, never a 401 and never its
// text in the response.
func TestRefreshHookFailures(t *testing.T) {
	const secret = "dial tcp 10.0.0.7:6379: password hunter2 rejected"
	for _, tc := range []struct {
		name, method string
		presented    string // "" = alice's current token
	}{
		{"load fails", "load", ""},
		{"swap of the rotated token fails", "cas", ""},
		{"revoke after a mismatch fails", "delete", "AAAAAAAAAAAAAAAAAAAAAAAA"},
		{"load of the revoke after a mismatch fails", "load", "AAAAAAAAAAAAAAAAAAAAAAAA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			alice := f.login(t, "alice")
			f.store.setFail(tc.method, errors.New(secret))
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

// TestLoginOnAContendedStoreIs500: a store whose value changes under every swap (a
// storm of concurrent logins) makes a login a 500 after bounded retries, not a loop.
func TestLoginOnAContendedStoreIs500(t *testing.T) {
	f := newFixture(t, nil)
	n := 0
	f.store.setAfter(func(method string) {
		if method == "load" { // another login slips in between the load and the swap
			n++
			f.store.mem.CompareAndSwap(context.Background(), "alice", f.store.get("alice"), []byte(fmt.Sprint("other login ", n)), 0)
		}
	})
	rec := f.do(t, "POST", "/auth", loginBody("alice"))
	checkError(t, rec, 500, "InternalServerError", "Internal server error.")
	if n := f.store.count("cas"); n != maxSwaps {
		t.Errorf("%d swaps, want %d", n, maxSwaps)
	}
	if !strings.Contains(f.log.String(), errContended.Error()) {
		t.Errorf("log %q", f.log.String())
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

// TestRefreshWhenStoreHoldsNothingIs401: a store that holds nothing for the user (the
// value expired, or the store lost it) is a refused refresh token, and nothing is
// written or revoked.
func TestRefreshWhenStoreHoldsNothingIs401(t *testing.T) {
	f := newFixture(t, nil)
	alice := f.login(t, "alice")
	f.store.remove("alice")
	cas := f.store.count("cas")
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...)
	checkError(t, rec, 401, "AuthenticationFailed", "Authentication failed.")
	if n := f.store.count("cas"); n != cas {
		t.Errorf("%d compare-and-swaps for a user with nothing stored", n-cas)
	}
	if d := f.store.get("alice"); d != nil {
		t.Errorf("store holds %q", d)
	}
}

// TestRefreshConcurrent: 64 requests present one refresh token at once. Every change
// is a compare-and-swap from the presented token, so exactly one wins. Every loser
// presented a token that is no longer current, which RFC 9700 §4.14.2 treats as reuse,
// so the winner's new token is revoked too: a client racing itself is logged out, which
// is the documented price of rotation.
func TestRefreshConcurrent(t *testing.T) {
	f := newFixture(t, nil)
	alice := f.login(t, "alice")
	codes := f.refreshConcurrently(t, alice, 64)
	if codes[200] != 1 || codes[401] != 63 {
		t.Fatalf("status counts %v, want exactly one 200 and 63 401s", codes)
	}
	if d := f.store.get("alice"); d != nil {
		t.Errorf("store still holds %q after the losers' reuse was detected", d)
	}
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
	f := newFixture(t, func(c *Config) { c.Refresh.InsecureNoRotation = true })
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
	if d := f.store.get("alice"); !bytes.Equal(d, refreshTokenDigest(alice.RefreshToken)) {
		t.Errorf("store holds %q: a mismatch changed the token although rotation is off", d)
	}
}

func TestStoreNeverSeesRawToken(t *testing.T) {
	f := newFixture(t, nil)
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
	// A replay and a logout: the revocation paths.
	f.do(t, "POST", "/auth/refresh", refreshBody(issued[0]), bearer(tok.AccessToken)...)
	issued = append(issued, f.login(t, "alice").RefreshToken)
	f.do(t, "POST", "/auth/logout", "", bearer(tok.AccessToken)...)

	f.store.mu.Lock()
	seen := slices.Clone(f.store.seen)
	keys := slices.Clone(f.store.keys)
	f.store.mu.Unlock()
	if len(seen) < len(issued) {
		t.Fatalf("store saw %d values for %d issued tokens", len(seen), len(issued))
	}
	digests := map[string]bool{}
	for _, tok := range issued {
		digests[string(refreshTokenDigest(tok))] = true
	}
	for _, v := range seen {
		if len(v) != 43 || !base64URLOnly(string(v)) {
			t.Errorf("store was given %q, not a 43-character digest", v)
		}
		if !digests[string(v)] {
			t.Errorf("store was given %q, which is no issued token's digest", v)
		}
		for _, tok := range issued {
			if bytes.Contains(v, []byte(tok)) {
				t.Errorf("store was given the raw token %q", tok)
			}
		}
	}
	for _, k := range keys {
		if k != "alice" {
			t.Errorf("store was given the key %q, not the user id", k)
		}
	}
}

func TestRefreshTokenDigest(t *testing.T) {
	// SHA-256("abc"), FIPS 180-2 appendix B.1, in base64url.
	if got, want := string(refreshTokenDigest("abc")), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"; got != want {
		t.Errorf("digest %q, want %q", got, want)
	}
}

func TestNewRefreshTokenUnique(t *testing.T) {
	const n = 100_000
	seen := make(map[string]struct{}, n)
	for i := 0; i < n; i++ {
		tok, digest, err := newRefreshToken()
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != 24 || !base64URLOnly(tok) {
			t.Fatalf("token %q is not 24 base64url characters", tok)
		}
		if i < 100 && !bytes.Equal(digest, refreshTokenDigest(tok)) {
			t.Fatalf("digest %q is not the token's", digest)
		}
		if _, dup := seen[tok]; dup {
			t.Fatalf("duplicate token after %d draws", i)
		}
		seen[tok] = struct{}{}
	}
}

func TestRefreshCookieMode(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Cookies = &Cookies{} })
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
	if !bytes.Equal(f.store.get("alice"), refreshTokenDigest(cs["refresh_token"].Value)) {
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
	f := newFixture(t, func(c *Config) { c.InsecureQueryString = true })
	alice := f.login(t, "alice")
	target := "/auth/refresh?access_token=" + alice.AccessToken + "&refresh_token=" + url.QueryEscape(alice.RefreshToken)
	if rec := f.do(t, "POST", target, ""); rec.Code != 200 {
		t.Fatalf("refresh in query mode: %d %s", rec.Code, rec.Body)
	}
	rec := f.do(t, "POST", "/auth/refresh?access_token="+alice.AccessToken, refreshBody(alice.RefreshToken))
	checkError(t, rec, 400, "MissingRefreshToken", `Refresh token "refresh_token" not present as a query argument.`)
}

func TestRefreshHeaderFallbackFromCookieToBody(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Cookies = &Cookies{}; c.HeaderFallback = true })
	alice := f.login(t, "alice")
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...)
	if rec.Code != 200 {
		t.Fatalf("cookie mode with HeaderFallback, header and body: %d %s", rec.Code, rec.Body)
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
	if d := f.store.get("alice"); d != nil {
		t.Fatal("logout did not revoke")
	}
	rec = f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...)
	checkError(t, rec, 401, "AuthenticationFailed", "Authentication failed.")

	rec = f.do(t, "POST", "/auth/logout", "")
	checkError(t, rec, 401, "MissingAuthorizationHeader", "Authorization header not present.")
	rec = f.do(t, "POST", "/auth/logout", "", bearer(tamper(t, alice.AccessToken))...)
	checkError(t, rec, 401, "Unauthorized", "Auth required.")

	// A logout with nothing stored touches nothing and succeeds.
	cas := f.store.count("cas")
	if rec := f.do(t, "POST", "/auth/logout", "", bearer(alice.AccessToken)...); rec.Code != 204 || f.store.count("cas") != cas {
		t.Errorf("second logout: %d, %d swaps", rec.Code, f.store.count("cas")-cas)
	}

	f.login(t, "alice")
	for _, method := range []string{"load", "delete"} {
		f.store.setFail(method, errors.New("revoke failed: secret-detail"))
		rec = f.do(t, "POST", "/auth/logout", "", bearer(alice.AccessToken)...)
		checkError(t, rec, 500, "InternalServerError", "Internal server error.")
		if strings.Contains(rec.Body.String(), "secret-detail") {
			t.Errorf("%s: revoke error leaked", method)
		}
		if f.store.get("alice") == nil {
			t.Errorf("%s: a failed logout deleted the token", method)
		}
		f.store.setFail(method, nil)
	}
}

func TestLogoutClearsCookies(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Cookies = &Cookies{Split: true, Domain: "example.com"} })
	rec := f.do(t, "POST", "/auth", loginBody("alice"))
	rec = f.do(t, "POST", "/auth/logout", "", "Cookie", cookieHeader(rec))
	if rec.Code != 204 {
		t.Fatalf("logout: %d %s", rec.Code, rec.Body)
	}
	cs := cookiesByName(rec)
	for _, name := range []string{"access_token", "access_token_signature", "refresh_token"} {
		c := cs[name]
		if c == nil || c.MaxAge >= 0 || c.Value != "" || c.Path != "/" || c.Domain != "example.com" || !c.Secure {
			t.Errorf("cookie %s not cleared: %+v", name, c)
		}
	}
}

func TestBodyToken(t *testing.T) {
	for _, tc := range []struct {
		body string
		want string
		err  error // nil: success; errAny: some error
	}{
		{`{"refresh_token":"abc"}`, "abc", nil},
		{` {"a":{"b":[1,2,{"c":null}]},"refresh_token":"abc"} `, "abc", nil},
		{`{"refresh_\u0074oken":"abc"}`, "abc", nil},
		{``, "", errNoRefreshBody},
		{`{}`, "", errNoRefreshBody},
		{`{"refresh_token":null}`, "", errNoRefreshBody},
		{`{"refresh_token":""}`, "", errNoRefreshBody},
		{`{"Refresh_Token":"abc"}`, "", errNoRefreshBody},
		{`{"refresh_token":"a","refresh_token":"b"}`, "", errTwoRefresh},
		{`{"refresh_token":"a","refresh_token":null}`, "", errTwoRefresh},
		{`{"refresh_token":1}`, "", errBadBody},
		{`[]`, "", errBadBody},
		{`"abc"`, "", errBadBody},
		{`{"refresh_token":"abc"} x`, "", errBadBody},
		{`{"refresh_token":"abc"}{}`, "", errBadBody},
		{`{"refresh_token":"abc"`, "", errBadBody},
		{`{"refresh_token" "abc"}`, "", errBadBody},
		{`{"x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, "", errAny},
	} {
		got, err := bodyToken(strings.NewReader(tc.body), "refresh_token")
		switch {
		case tc.err == errAny && err == nil:
			t.Errorf("%.40q: no error", tc.body)
		case tc.err != errAny && err != tc.err:
			t.Errorf("%.40q: error %v, want %v", tc.body, err, tc.err)
		case got != tc.want:
			t.Errorf("%.40q: %q, want %q", tc.body, got, tc.want)
		}
	}
	if _, err := bodyToken(nil, "refresh_token"); err != errNoRefreshBody {
		t.Errorf("no body: %v", err)
	}
}

var errAny = errors.New("any error")

func TestRefreshBodyTooLarge(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Endpoints.MaxBodyBytes = 256 })
	alice := f.login(t, "alice")
	body := `{"pad":"` + strings.Repeat("x", 300) + `","refresh_token":"` + alice.RefreshToken + `"}`
	rec := f.do(t, "POST", "/auth/refresh", body, bearer(alice.AccessToken)...)
	checkError(t, rec, 413, "RequestEntityTooLarge", "Request body too large.")
}

var _ = http.StatusOK

// TestLogoutRacingRefreshesAlwaysLeavesNoToken: a logout sent while N refreshes with the
// same token are in flight cannot be undone by them. Every change to the store is a
// compare-and-swap, so a refresh that loaded the token before the logout deleted it
// fails its swap instead of writing a new token back. The store is the fixture's
// MemStore, with a pause of up to 50µs after each load to widen the window between a
// refresh's load and its swap, where the logout must land; many rounds.
func TestLogoutRacingRefreshesAlwaysLeavesNoToken(t *testing.T) {
	const rounds, refreshes = 200, 8
	f := newFixture(t, nil)
	f.store.setAfter(func(method string) {
		if method == "load" {
			time.Sleep(time.Duration(rand.IntN(50)) * time.Microsecond)
		}
	})
	store := &f.store.mem
	won := 0
	for round := 0; round < rounds; round++ {
		alice := f.login(t, "alice")
		var wg sync.WaitGroup
		start := make(chan struct{})
		codes := make([]int, refreshes)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				codes[i] = f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...).Code
			}()
		}
		var logout int
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			logout = f.do(t, "POST", "/auth/logout", "", bearer(alice.AccessToken)...).Code
		}()
		close(start)
		wg.Wait()
		if logout != 204 {
			t.Fatalf("round %d: logout %d", round, logout)
		}
		for _, c := range codes {
			switch c {
			case 200:
				won++
			case 401:
			default:
				t.Fatalf("round %d: refresh %d", round, c)
			}
		}
		if v, err := store.Load(context.Background(), "alice"); err != nil || v != nil {
			t.Fatalf("round %d: after the logout the store holds %q, %v; refreshes %v", round, v, err, codes)
		}
	}
	t.Logf("%d rounds: %d refreshes won their race against the logout, none survived it", rounds, won)
}

// TestRefreshIdleTimeoutIsPassedToTheStore: every write carries Refresh.IdleTimeout as
// its TTL, so a refresh token unused for longer is gone from the store and refused.
func TestRefreshIdleTimeoutIsPassedToTheStore(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Refresh.IdleTimeout = 2 * time.Hour })
	alice := f.login(t, "alice")
	f.clock.add(2*time.Hour - time.Second)
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...)
	if rec.Code != 200 {
		t.Fatalf("refresh within the idle timeout: %d %s", rec.Code, rec.Body)
	}
	next := tokensOf(t, rec)
	f.clock.add(2 * time.Hour) // unused for exactly the idle timeout
	rec = f.do(t, "POST", "/auth/refresh", refreshBody(next.RefreshToken), bearer(next.AccessToken)...)
	checkError(t, rec, 401, "AuthenticationFailed", "Authentication failed.")
	f.store.mu.Lock()
	ttls := slices.Clone(f.store.ttls)
	f.store.mu.Unlock()
	if len(ttls) == 0 {
		t.Fatal("no write")
	}
	for _, ttl := range ttls {
		if ttl != 2*time.Hour {
			t.Errorf("TTL %v given to the store, want the IdleTimeout", ttl)
		}
	}
}

func TestRefreshIdleTimeoutDefaultsTo30Days(t *testing.T) {
	f := newFixture(t, nil)
	alice := f.login(t, "alice")
	f.clock.add(30*24*time.Hour - time.Second)
	if rec := f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...); rec.Code != 200 {
		t.Fatalf("refresh after 30 days less a second: %d %s", rec.Code, rec.Body)
	}
	f.store.mu.Lock()
	defer f.store.mu.Unlock()
	for _, ttl := range f.store.ttls {
		if ttl != 30*24*time.Hour {
			t.Errorf("TTL %v given to the store, want 30 days", ttl)
		}
	}
}

// TestNoRotationRefreshRestartsIdleTimeout: without rotation a refresh writes the same
// value back, which restarts its IdleTimeout: a token in use does not expire.
func TestNoRotationRefreshRestartsIdleTimeout(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Refresh.InsecureNoRotation = true; c.Refresh.IdleTimeout = time.Hour })
	alice := f.login(t, "alice")
	refresh := func() *httptest.ResponseRecorder {
		return f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...)
	}
	for i := 0; i < 4; i++ { // 3h20m in all, never 1h idle
		f.clock.add(50 * time.Minute)
		if rec := refresh(); rec.Code != 200 {
			t.Fatalf("refresh %d, 50 minutes after the last: %d %s", i, rec.Code, rec.Body)
		}
	}
	if !bytes.Equal(f.store.get("alice"), refreshTokenDigest(alice.RefreshToken)) {
		t.Error("the stored token changed without rotation")
	}
	f.clock.add(time.Hour)
	checkError(t, refresh(), 401, "AuthenticationFailed", "Authentication failed.")
}

// TestRefreshUserWhoseClaimsCannotBeSignedKeepsTheToken: a RetrieveUser whose user
// cannot be signed (an extra claim overriding exp) is the application's bug, a 500,
// and the refresh token stays usable: the store is not touched before the signing.
func TestRefreshUserWhoseClaimsCannotBeSignedKeepsTheToken(t *testing.T) {
	f := newFixture(t, nil)
	alice := f.login(t, "alice")
	f.dir.update("alice", func(u *User) { u.Claims = map[string]any{"exp": 1} })
	cas := f.store.count("cas")
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...)
	checkError(t, rec, 500, "InternalServerError", "Internal server error.")
	if n := f.store.count("cas"); n != cas || !bytes.Equal(f.store.get("alice"), refreshTokenDigest(alice.RefreshToken)) {
		t.Fatalf("the failed refresh changed the store (%d swaps)", n-cas)
	}
	f.dir.update("alice", func(u *User) { u.Claims = nil })
	if rec := f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...); rec.Code != 200 {
		t.Errorf("refresh once the user is fixed: %d %s", rec.Code, rec.Body)
	}
}

// TestRefreshAndLogoutRefuseATokenWithoutUserID: the store is keyed by the access
// token's user id, so an access token without one cannot refresh or log out anyone.
func TestRefreshAndLogoutRefuseATokenWithoutUserID(t *testing.T) {
	f := newFixture(t, nil)
	alice := f.login(t, "alice")
	tok, err := f.a.Sign(&Claims{ExpiresAt: f.clock.now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	checkError(t, f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(tok)...), 401, "Unauthorized", "Auth required.")
	checkError(t, f.do(t, "POST", "/auth/logout", "", bearer(tok)...), 401, "Unauthorized", "Auth required.")
	if !bytes.Equal(f.store.get("alice"), refreshTokenDigest(alice.RefreshToken)) {
		t.Error("alice's refresh token changed")
	}
}
