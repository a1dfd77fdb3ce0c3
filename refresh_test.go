package jwtauth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
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
	if oc, _ := f.a.tok.verify(old.AccessToken, true, newClaims); c.SessionID != oc.SessionID {
		t.Errorf("new token's sid %q, want the session's %q", c.SessionID, oc.SessionID)
	}
	if cur := f.sessionToken(t, got.AccessToken); cur != got.RefreshToken {
		t.Errorf("the session's current token is %q, want the new one", cur)
	}
	if ss := f.storedSessions(t, "alice"); len(ss) != 1 || ss[0].gen != 1 {
		t.Errorf("stored sessions %+v, want one, rotated once", ss)
	}

	// The new tokens work: the access token on a route, the refresh token once more.
	if rec := f.do(t, "GET", "/orders", "", bearer(got.AccessToken)...); rec.Code != 200 {
		t.Errorf("new access token refused: %d", rec.Code)
	}
	if rec := f.do(t, "POST", "/auth/refresh", refreshBody(got.RefreshToken), bearer(got.AccessToken)...); rec.Code != 200 {
		t.Errorf("second refresh: %d %s", rec.Code, rec.Body)
	}
}

// TestRefreshReplayOfRotatedOutTokenEndsItsSession: RFC 9700 §4.14.2 reuse detection
// ends the family of the replayed token, which is its session: the current token of
// that session dies with it, and the user's other device stays logged in.
func TestRefreshReplayOfRotatedOutTokenEndsItsSession(t *testing.T) {
	f := newFixture(t, noReuseInterval)
	first := f.login(t, "alice")
	phone := f.login(t, "alice") // another device
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(first.RefreshToken), bearer(first.AccessToken)...)
	if rec.Code != 200 {
		t.Fatalf("refresh: %d", rec.Code)
	}
	second := tokensOf(t, rec)

	// The rotated-out token comes back (an attacker copied it).
	rec = f.do(t, "POST", "/auth/refresh", refreshBody(first.RefreshToken), bearer(first.AccessToken)...)
	checkError(t, rec, 401, "AuthenticationFailed", "Authentication failed.")
	if cur := f.sessionToken(t, second.AccessToken); cur != "" {
		t.Fatal("replay did not end the session")
	}
	if len(f.storedSessions(t, "alice")) != 1 || f.sessionToken(t, phone.AccessToken) != phone.RefreshToken {
		t.Fatal("replay on one device touched the other device's session")
	}
	// ... and the legitimate client's current token is dead too.
	rec = f.do(t, "POST", "/auth/refresh", refreshBody(second.RefreshToken), bearer(second.AccessToken)...)
	checkError(t, rec, 401, "AuthenticationFailed", "Authentication failed.")
	// The other device refreshes as before.
	if rec := f.do(t, "POST", "/auth/refresh", refreshBody(phone.RefreshToken), bearer(phone.AccessToken)...); rec.Code != 200 {
		t.Fatalf("the other device's refresh: %d %s", rec.Code, rec.Body)
	}
}

// TestReuseDetectionCannotBeOutrun (S3): a thief with a stolen pair refreshes 40 times,
// far past the generations match tries without a pair; when the victim comes back with
// the pair it holds, its access token names the generation its refresh token was issued
// at, the token is recognised as rotated out, and the session ends: the thief's current
// token with it, with a reuse_detected event 40 generations behind.
func TestReuseDetectionCannotBeOutrun(t *testing.T) {
	f, log := eventFixture(t, nil)
	victim := f.login(t, "alice")
	sid := claimsOf(t, f, victim).SessionID
	thief := victim
	for i := range 40 {
		rec := f.do(t, "POST", "/auth/refresh", refreshBody(thief.RefreshToken), bearer(thief.AccessToken)...)
		if rec.Code != 200 {
			t.Fatalf("thief's refresh %d: %d %s", i, rec.Code, rec.Body)
		}
		thief = tokensOf(t, rec)
	}
	log.take()
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(victim.RefreshToken), bearer(victim.AccessToken)...)
	checkError(t, rec, 401, "AuthenticationFailed", "Authentication failed.")
	log.wantEvents(t, "the victim's refresh", Event{Kind: EventReuseDetected, UserID: "alice", SessionID: sid, GenerationsBehind: 40})
	rec = f.do(t, "POST", "/auth/refresh", refreshBody(thief.RefreshToken), bearer(thief.AccessToken)...)
	checkError(t, rec, 401, "AuthenticationFailed", "Authentication failed.")
}

// countingKey is a macKey for secret that counts the MACs it computes in *n.
func countingKey(secret []byte, n *atomic.Int64) *macKey {
	return &macKey{pool: sync.Pool{New: func() any { return &macState{h: countingHash{hmac.New(sha256.New, secret), n}} }}}
}

type countingHash struct {
	hash.Hash
	n *atomic.Int64
}

func (h countingHash) Sum(b []byte) []byte { h.n.Add(1); return h.Hash.Sum(b) }

// TestGarbageRefreshCostsNoMoreThanAValidOne (S3): a refresh token that matches nothing
// costs no more MACs than a valid one does with the same access token, whichever
// generation that access token is of and however many keys are configured, so that
// recognising old tokens gives no one a lever to make the server work harder.
func TestGarbageRefreshCostsNoMoreThanAValidOne(t *testing.T) {
	old := []byte(strings.Repeat("p", 32))
	a, _, _ := sessionAuth(t, func(c *Config) { c.PreviousSecrets = [][]byte{old} })
	var n atomic.Int64
	a.tok.keys[0], a.tok.keys[1] = countingKey(testSecret, &n), countingKey(old, &n)
	tok, err := a.IssueTokens(context.Background(), &User{ID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	first := tok
	for range 2 * reuseWindow {
		if tok, err = a.refresh(requestWithTokens(tok)); err != nil {
			t.Fatal(err)
		}
	}
	cost := func(access, refresh string) (int64, *Tokens, error) {
		n.Store(0)
		next, err := a.refresh(requestWithTokens(&Tokens{AccessToken: access, RefreshToken: refresh}))
		return n.Load(), next, err
	}
	for _, access := range []string{first.AccessToken, tok.AccessToken} {
		garbage, _, err := cost(access, strings.Repeat("A", 24))
		if !errors.Is(err, errRefreshMismatch) {
			t.Fatalf("garbage: %v", err)
		}
		valid, next, err := cost(access, tok.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if garbage > valid || garbage < 2*reuseWindow {
			t.Errorf("a garbage refresh token cost %d MACs, a valid one %d", garbage, valid)
		}
		tok = next
	}
}

// TestRefreshReplayRevokesAfterTheClientHangsUp: the end of the session a replay
// triggers does not depend on the replayer waiting for the answer. The replayer hangs
// up as soon as the store has loaded the record, and MemStore refuses a cancelled
// context.
func TestRefreshReplayRevokesAfterTheClientHangsUp(t *testing.T) {
	f := newFixture(t, noReuseInterval)
	first := f.login(t, "alice")
	phone := f.login(t, "alice")
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
	if cur := f.sessionToken(t, first.AccessToken); cur != "" {
		t.Fatalf("the session's current refresh token %q survived the replay", cur)
	}
	if f.sessionToken(t, phone.AccessToken) != phone.RefreshToken {
		t.Error("the replay ended the other device's session")
	}
}

// A logout whose client hangs up while the store answers still ends the session: a
// request must not escape a revocation by disconnecting.
func TestLogoutEndsTheSessionAfterTheClientHangsUp(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.login(t, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.store.setAfter(func(method string) {
		if method == "load" {
			cancel()
		}
	})
	r := httptest.NewRequest("POST", "/auth/logout", nil).WithContext(ctx)
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	f.h.ServeHTTP(httptest.NewRecorder(), r)
	f.store.setAfter(nil)
	if ctx.Err() == nil {
		t.Fatal("the request's context was not cancelled")
	}
	if cur := f.sessionToken(t, tok.AccessToken); cur != "" {
		t.Fatalf("the session's refresh token %q survived the logout", cur)
	}
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(tok.RefreshToken), bearer(tok.AccessToken)...)
	checkError(t, rec, 401, "AuthenticationFailed", "Authentication failed.")
}

// The reuse interval's answer (the token just rotated out gets the session's current
// tokens) is decided on the record as it is at the swap: a logout that lands between
// the load and the swap wins, and the late refresh gets a 401, not fresh tokens.
func TestReuseIntervalAnswerLosesToALogout(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Refresh.ReuseInterval = 10 * time.Second })
	first := f.login(t, "alice")
	if rec := f.do(t, "POST", "/auth/refresh", refreshBody(first.RefreshToken), bearer(first.AccessToken)...); rec.Code != 200 {
		t.Fatalf("refresh: %d", rec.Code)
	}
	var once sync.Once
	f.store.setAfter(func(method string) {
		if method == "load" {
			once.Do(func() { f.store.remove("alice") }) // a logout elsewhere, after the load
		}
	})
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(first.RefreshToken), bearer(first.AccessToken)...)
	checkError(t, rec, 401, "AuthenticationFailed", "Authentication failed.")
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
		revoked   bool // alice's session is gone afterwards
	}{
		// A refresh token that matches nothing in the session is a plain 401: no
		// evidence of a breach, nothing ended.
		{
			name: "refresh token of another user",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				return "POST", "/auth/refresh", refreshBody(bob.RefreshToken), bearer(alice.AccessToken)
			},
			status: 401, exception: "AuthenticationFailed", reason: "Authentication failed.",
		},
		{
			name: "refresh token of another session of the user",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				other := f.login(t, "alice")
				return "POST", "/auth/refresh", refreshBody(other.RefreshToken), bearer(alice.AccessToken)
			},
			status: 401, exception: "AuthenticationFailed", reason: "Authentication failed.",
		},
		{
			name: "guessed refresh token",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				return "POST", "/auth/refresh", refreshBody("AAAAAAAAAAAAAAAAAAAAAAAA"), bearer(alice.AccessToken)
			},
			status: 401, exception: "AuthenticationFailed", reason: "Authentication failed.",
		},
		{
			name: "refresh token of another length",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				return "POST", "/auth/refresh", refreshBody(alice.RefreshToken + "A"), bearer(alice.AccessToken)
			},
			status: 401, exception: "AuthenticationFailed", reason: "Authentication failed.",
		},
		{
			name: "access token without sid (issued before sessions)",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				tok, _ := f.a.Sign(&Claims{UserID: "alice", ExpiresAt: f.clock.now().Add(time.Minute)})
				return "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(tok)
			},
			status: 401, exception: "AuthenticationFailed", reason: "Authentication failed.",
		},
		{
			name: "access token whose sid is no session",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				tok, _ := f.a.Sign(&Claims{UserID: "alice", SessionID: "AAAAAAAAAAAAAAAAAAAAAA", ExpiresAt: f.clock.now().Add(time.Minute)})
				return "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(tok)
			},
			status: 401, exception: "AuthenticationFailed", reason: "Authentication failed.",
		},
		{
			name: "access token of bob's session with alice's user id",
			req: func(f *fixture, alice, bob *Tokens) (string, string, string, []string) {
				c, _ := f.a.Verify(bob.AccessToken)
				tok, _ := f.a.Sign(&Claims{UserID: "alice", SessionID: c.SessionID, ExpiresAt: f.clock.now().Add(time.Minute)})
				return "POST", "/auth/refresh", refreshBody(bob.RefreshToken), bearer(tok)
			},
			status: 401, exception: "AuthenticationFailed", reason: "Authentication failed.",
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
			name:    "store has no session (logged out)",
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
			if alice.RefreshToken == "" {
				return // no sessions without Refresh
			}
			cur := f.sessionToken(t, alice.AccessToken)
			if tc.revoked && cur != "" {
				t.Errorf("alice's session survived")
			}
			if !tc.revoked && tc.prepare == nil && cur != alice.RefreshToken {
				t.Errorf("alice's session changed or vanished: current token %q", cur)
			}
			if f.sessionToken(t, bob.AccessToken) != bob.RefreshToken {
				t.Errorf("bob's session changed or vanished")
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
		replay       bool // present the session's rotated-out token instead of its current one
		phone        bool // alice has a second session, so ending one is a swap, not a delete
	}{
		{"load fails", "load", false, false},
		{"swap of the rotated token fails", "cas", false, false},
		{"load of a replay fails", "load", true, false},
		{"delete of the record after a replay fails", "delete", true, false},
		{"swap ending the session after a replay fails", "cas", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, noReuseInterval)
			alice := f.login(t, "alice")
			if tc.phone {
				f.login(t, "alice")
			}
			presented := alice.RefreshToken
			if tc.replay {
				rec := f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...)
				if rec.Code != 200 {
					t.Fatalf("refresh: %d %s", rec.Code, rec.Body)
				}
				alice = tokensOf(t, rec)
			}
			before := f.store.get("alice")
			f.store.setFail(tc.method, errors.New(secret))
			rec := f.do(t, "POST", "/auth/refresh", refreshBody(presented), bearer(alice.AccessToken)...)
			checkError(t, rec, 500, "InternalServerError", "Internal server error.")
			if !bytes.Equal(f.store.get("alice"), before) {
				t.Error("a failed store call changed the record")
			}
			if strings.Contains(rec.Body.String(), "hunter2") || strings.Contains(fmt.Sprint(rec.Header()), "hunter2") {
				t.Errorf("hook error leaked: %s", rec.Body)
			}
			if !strings.Contains(f.log.String(), "hunter2") {
				t.Errorf("hook error not logged: %q", f.log.String())
			}
		})
	}
}

// TestRefreshMismatchWritesNothing: a refresh token that matches nothing in its
// session is a plain 401 decided without a write, so even a store that cannot write
// answers it with a 401, and the session lives on.
func TestRefreshMismatchWritesNothing(t *testing.T) {
	f := newFixture(t, nil)
	alice := f.login(t, "alice")
	f.store.setFail("cas", errors.New("read-only replica"))
	cas := f.store.count("cas")
	rec := f.do(t, "POST", "/auth/refresh", refreshBody("AAAAAAAAAAAAAAAAAAAAAAAA"), bearer(alice.AccessToken)...)
	checkError(t, rec, 401, "AuthenticationFailed", "Authentication failed.")
	if n := f.store.count("cas"); n != cas {
		t.Errorf("%d compare-and-swaps for a token that matches nothing", n-cas)
	}
	f.store.setFail("cas", nil)
	if rec := f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...); rec.Code != 200 {
		t.Errorf("the session's own token after the mismatch: %d %s", rec.Code, rec.Body)
	}
}

// TestLoginOnAContendedStoreIs503: a record that changes under every swap (a storm of
// concurrent logins that never ends) makes a login a 503 with Retry-After once the
// retries have run for their time, never a 500 and never a loop.
func TestLoginOnAContendedStoreIs503(t *testing.T) {
	f := newFixture(t, nil)
	n := 0
	f.store.setAfter(func(method string) {
		if method == "load" { // another login slips in between the load and the swap
			n++
			other := session{gen: uint32(n)}
			other.id[0], other.id[1] = byte(n), byte(n>>8)
			other.created = f.clock.now().UnixMilli()
			other.used, other.rotated, other.authed = other.created, other.created, other.created
			f.store.mem.CompareAndSwap(context.Background(), "alice", f.store.get("alice"), sealRecord(f.a.tok.keys[0], "alice", []session{other}), 0)
		}
	})
	rec := f.do(t, "POST", "/auth", loginBody("alice"))
	checkError(t, rec, 503, "ServiceUnavailable", "Busy: try again shortly.")
	if got := rec.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
	if n := f.store.count("cas"); n < 2 {
		t.Errorf("%d swaps: the login gave up without retrying", n)
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

// TestRefreshRetrieveUserOfAnotherIDIs500: the record is keyed by the access token's
// user id, so a RetrieveUser that answers with another user (the application's bug)
// must not refresh into that user's record nor issue a token for them: a 500 that
// touches no session.
func TestRefreshRetrieveUserOfAnotherIDIs500(t *testing.T) {
	f := newFixture(t, nil)
	alice := f.login(t, "alice")
	bob := f.login(t, "bob")
	f.dir.update("alice", func(u *User) { u.ID = "bob" })
	cas := f.store.count("cas")
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...)
	checkError(t, rec, 500, "InternalServerError", "Internal server error.")
	if n := f.store.count("cas"); n != cas {
		t.Errorf("%d compare-and-swaps", n-cas)
	}
	if f.sessionToken(t, alice.AccessToken) != alice.RefreshToken || f.sessionToken(t, bob.AccessToken) != bob.RefreshToken {
		t.Error("a session changed")
	}
	if !strings.Contains(f.log.String(), errOtherUser.Error()) {
		t.Errorf("log %q", f.log.String())
	}
}

// TestRefreshWhenStoreHoldsNothingIs401: a store that holds no record for the user (it
// expired with the last session, or the store lost it) is a refused refresh token, and
// nothing is written or revoked.
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

// TestReuseIntervalIsTenSecondsByDefault: the token just rotated out, presented again
// (an app retrying a refresh whose answer was lost) up to 10 s after the rotation, gets
// the successor the first request got; at 10 s it is reuse and ends the session. With
// NoReuseInterval it is reuse at once.
func TestReuseIntervalIsTenSecondsByDefault(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mod   func(*Config)
		after time.Duration
		want  int
	}{
		{"default, 9.999 s after", nil, 10*time.Second - time.Millisecond, 200},
		{"default, 10 s after", nil, 10 * time.Second, 401},
		{"NoReuseInterval, at once", noReuseInterval, 0, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.mod)
			first := f.login(t, "alice")
			rec := f.do(t, "POST", "/auth/refresh", refreshBody(first.RefreshToken), bearer(first.AccessToken)...)
			lost := tokensOf(t, rec)
			f.clock.add(tc.after)
			rec = f.do(t, "POST", "/auth/refresh", refreshBody(first.RefreshToken), bearer(first.AccessToken)...)
			if rec.Code != tc.want {
				t.Fatalf("the retry: %d %s, want %d", rec.Code, rec.Body, tc.want)
			}
			if tc.want == 200 && tokensOf(t, rec).RefreshToken != lost.RefreshToken {
				t.Fatal("the retry got another refresh token than the lost answer")
			}
			if cur := f.sessionToken(t, first.AccessToken); (cur == lost.RefreshToken) != (tc.want == 200) {
				t.Fatalf("the session's current token is %q after the retry", cur)
			}
		})
	}
}

// TestRefreshConcurrent: 64 requests present one refresh token at once, with no reuse
// interval. Every change is a compare-and-swap of the record, so exactly one wins.
// Every loser presented a token that is no longer current, which RFC 9700 §4.14.2
// treats as reuse, so the session ends and the winner's new token dies too: a client
// racing itself is logged out on that device (Refresh.ReuseInterval is the remedy).
// The user's other session is untouched.
func TestRefreshConcurrent(t *testing.T) {
	f := newFixture(t, noReuseInterval)
	alice := f.login(t, "alice")
	phone := f.login(t, "alice")
	codes := f.refreshConcurrently(t, alice, 64)
	if codes[200] != 1 || codes[401] != 63 {
		t.Fatalf("status counts %v, want exactly one 200 and 63 401s", codes)
	}
	if cur := f.sessionToken(t, alice.AccessToken); cur != "" {
		t.Errorf("the session still has the token %q after the losers' reuse was detected", cur)
	}
	if ss := f.storedSessions(t, "alice"); len(ss) != 1 || f.sessionToken(t, phone.AccessToken) != phone.RefreshToken {
		t.Errorf("the other session changed: %+v", ss)
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
	if cur := f.sessionToken(t, alice.AccessToken); cur != alice.RefreshToken {
		t.Errorf("the session's token is %q: it changed although rotation is off", cur)
	}
	if ss := f.storedSessions(t, "alice"); len(ss) != 1 || ss[0].gen != 0 {
		t.Errorf("stored sessions %+v, want one never rotated", ss)
	}
}

// TestStoreNeverSeesRawToken: S9, nothing at rest a client can present. Through logins
// on several devices, rotations, a reuse-interval answer, a replay, the logout scopes
// and an admin revocation, no value and no key the store is given contains any issued
// refresh token, its 18 bytes decoded, or its SHA-256 in binary, hex or any base64.
// Every value is a record the package opens under a user id, and every key is a user id.
func TestStoreNeverSeesRawToken(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Refresh.ReuseInterval = 10 * time.Second })
	var issued []string
	keep := func(tok *Tokens) *Tokens {
		t.Helper()
		if len(tok.RefreshToken) != 24 {
			t.Fatalf("refresh token %q", tok.RefreshToken)
		}
		issued = append(issued, tok.RefreshToken)
		return tok
	}
	refresh := func(tok *Tokens, want int) *Tokens {
		t.Helper()
		rec := f.do(t, "POST", "/auth/refresh", refreshBody(tok.RefreshToken), bearer(tok.AccessToken)...)
		if rec.Code != want {
			t.Fatalf("refresh: %d %s, want %d", rec.Code, rec.Body, want)
		}
		if want != 200 {
			return nil
		}
		return keep(tokensOf(t, rec))
	}
	laptop := keep(f.login(t, "alice"))
	phone := keep(f.login(t, "alice"))
	keep(f.login(t, "bob"))
	first := laptop
	for i := 0; i < 3; i++ {
		laptop = refresh(laptop, 200)
	}
	prev := laptop
	refresh(laptop, 200)
	refresh(prev, 200)            // within the reuse interval: the same successor
	f.clock.add(11 * time.Second) // past it
	refresh(first, 401)           // a replay: the laptop's session ends
	refresh(phone, 200)
	tablet := keep(f.login(t, "alice"))
	if rec := f.do(t, "POST", "/auth/logout?scope=others", "", bearer(tablet.AccessToken)...); rec.Code != 204 {
		t.Fatalf("logout of the others: %d", rec.Code)
	}
	keep(f.login(t, "alice"))
	if rec := f.do(t, "POST", "/auth/logout", "", bearer(tablet.AccessToken)...); rec.Code != 204 {
		t.Fatalf("logout: %d", rec.Code)
	}
	carol, err := f.a.IssueTokens(context.Background(), &User{ID: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	keep(carol)
	if err := f.a.RevokeSessions(context.Background(), "bob"); err != nil {
		t.Fatal(err)
	}

	f.store.mu.Lock()
	seen := slices.Clone(f.store.seen)
	keys := slices.Clone(f.store.keys)
	f.store.mu.Unlock()
	if len(seen) < len(issued) {
		t.Fatalf("store saw %d values for %d issued tokens", len(seen), len(issued))
	}
	// Every form of each token a store could hold.
	var forms [][]byte
	for _, tok := range issued {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(raw) != refreshTokenBytes {
			t.Fatalf("token %q: %v", tok, err)
		}
		sum := sha256.Sum256([]byte(tok))
		forms = append(forms, []byte(tok), raw, sum[:])
		for _, enc := range []string{
			hex.EncodeToString(sum[:]), strings.ToUpper(hex.EncodeToString(sum[:])),
			base64.StdEncoding.EncodeToString(sum[:]), base64.RawStdEncoding.EncodeToString(sum[:]),
			base64.URLEncoding.EncodeToString(sum[:]), base64.RawURLEncoding.EncodeToString(sum[:]),
		} {
			forms = append(forms, []byte(enc))
		}
	}
	users := []string{"alice", "bob", "carol"}
	for _, v := range seen {
		opened := false
		for _, u := range users {
			if _, err := openRecord(f.a.tok.keys, u, v); err == nil {
				opened = true
			}
		}
		if !opened {
			t.Errorf("store was given %q, which is no user's record", v)
		}
		for i, form := range forms {
			if bytes.Contains(v, form) {
				t.Errorf("store was given a value holding the token %q (form %d)", issued[i/9], i%9)
			}
		}
	}
	for _, k := range keys {
		if !slices.Contains(users, k) {
			t.Errorf("store was given the key %q, not a user id", k)
		}
		for i, form := range forms {
			if strings.Contains(k, string(form)) {
				t.Errorf("store was given a key holding the token %q", issued[i/9])
			}
		}
	}
}

// TestRefreshTokenDerivation: a session's refresh token of generation g is
// base64url(HMAC-SHA256(Secret, "jwtauth refresh\x00" || sid || key || g)[:18]), 24
// characters. The fixed vector pins the derivation: a change to it would kill every live
// session at the upgrade. Generations, keys, ids and secrets each change the token.
func TestRefreshTokenDerivation(t *testing.T) {
	a := testAuth(t, func(c *Config) { c.PreviousSecrets = [][]byte{httpSecret} })
	var s session
	for i := range s.id {
		s.id[i] = byte(i)
	}
	for i := range s.key {
		s.key[i] = byte(0x80 + i)
	}
	want := func(secret []byte, s *session, gen uint32) string {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("jwtauth refresh\x00"))
		m.Write(s.id[:])
		m.Write(s.key[:])
		m.Write([]byte{byte(gen >> 24), byte(gen >> 16), byte(gen >> 8), byte(gen)})
		return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:refreshTokenBytes])
	}
	seen := map[string]bool{}
	for _, gen := range []uint32{0, 1, 2, 255, 256, 1 << 24, math.MaxUint32} {
		for ki, secret := range [][]byte{testSecret, httpSecret} {
			tok := s.token(a.tok.keys[ki], gen)
			if got := string(tok[:]); got != want(secret, &s, gen) {
				t.Errorf("generation %d, key %d: %q, want %q", gen, ki, got, want(secret, &s, gen))
			}
			if seen[string(tok[:])] {
				t.Errorf("generation %d, key %d: token %q repeats", gen, ki, tok)
			}
			seen[string(tok[:])] = true
		}
	}
	s.gen = 3
	if got := s.current(a.tok.keys[0]); got != want(testSecret, &s, 3) {
		t.Errorf("tokenString = %q, want generation 3's", got)
	}
	if got, fixed := s.current(a.tok.keys[0]), "It86iCZTdnFrZhgOMGfhhEdk"; got != fixed {
		t.Errorf("tokenString of the fixed session = %q, want %q", got, fixed)
	}
	other := s
	other.key[31] ^= 1
	if other.current(a.tok.keys[0]) == s.current(a.tok.keys[0]) {
		t.Error("another key derives the same token")
	}
	other = s
	other.id[15] ^= 1
	if other.current(a.tok.keys[0]) == s.current(a.tok.keys[0]) {
		t.Error("another session id derives the same token")
	}
}

// TestNewSessionUnique: session ids and keys come from crypto/rand; 100,000 sessions
// have distinct ids, keys and first refresh tokens, each token 24 base64url characters
// and each sid 22 that parseSID reads back.
func TestNewSessionUnique(t *testing.T) {
	const n = 100_000
	a, _, _ := sessionAuth(t, nil)
	ids := make(map[[16]byte]struct{}, n)
	keys := make(map[[32]byte]struct{}, n)
	toks := make(map[string]struct{}, n)
	for i := 0; i < n; i++ {
		s, err := a.sess.newSession()
		if err != nil {
			t.Fatal(err)
		}
		tok := s.current(a.tok.keys[0])
		if len(tok) != 24 || !base64URLOnly(tok) {
			t.Fatalf("token %q is not 24 base64url characters", tok)
		}
		if i < 100 {
			if id, ok := parseSessionID(s.id.String()); !ok || id != s.id || len(s.id.String()) != 22 {
				t.Fatalf("sid %q does not read back", s.id.String())
			}
		}
		if _, dup := ids[s.id]; dup {
			t.Fatalf("duplicate session id after %d draws", i)
		}
		if _, dup := keys[s.key]; dup {
			t.Fatalf("duplicate session key after %d draws", i)
		}
		if _, dup := toks[tok]; dup {
			t.Fatalf("duplicate token after %d draws", i)
		}
		ids[s.id], keys[s.key], toks[tok] = struct{}{}, struct{}{}, struct{}{}
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
	if cs["__Host-access_token"] == nil || cs["refresh_token"] == nil {
		t.Fatalf("refresh did not set both cookies: %v", rec.Header()["Set-Cookie"])
	}
	if f.sessionToken(t, cs["__Host-access_token"].Value) != cs["refresh_token"].Value {
		t.Error("the refresh cookie is not the session's current token")
	}
	// The refresh token cookie is required in strict cookie mode, even with a body.
	rec = f.do(t, "POST", "/auth/refresh", refreshBody("x"), "Cookie", "__Host-access_token="+cs["__Host-access_token"].Value)
	checkError(t, rec, 400, "MissingRefreshToken", `Refresh token "refresh_token" not present as a cookie.`)
	// Two refresh cookies are ambiguous.
	rec = f.do(t, "POST", "/auth/refresh", "", "Cookie", cookieHeader(rec)+"; refresh_token=a; refresh_token=b; __Host-access_token="+cs["__Host-access_token"].Value)
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

// TestLogout: a logout ends the session of its access token, even an expired one, and
// only that one: the user's other device stays logged in.
func TestLogout(t *testing.T) {
	f := newFixture(t, nil)
	alice := f.login(t, "alice")
	f.clock.add(10 * time.Hour) // an expired access token still logs out
	phone := f.login(t, "alice")
	rec := f.do(t, "POST", "/auth/logout", "", bearer(alice.AccessToken)...)
	if rec.Code != 204 || rec.Body.Len() != 0 {
		t.Fatalf("logout: %d %q", rec.Code, rec.Body)
	}
	if f.sessionToken(t, alice.AccessToken) != "" {
		t.Fatal("logout did not end the session")
	}
	if ss := f.storedSessions(t, "alice"); len(ss) != 1 || f.sessionToken(t, phone.AccessToken) != phone.RefreshToken {
		t.Fatalf("logout touched the other device's session: %+v", ss)
	}
	rec = f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...)
	checkError(t, rec, 401, "AuthenticationFailed", "Authentication failed.")
	if rec := f.do(t, "POST", "/auth/refresh", refreshBody(phone.RefreshToken), bearer(phone.AccessToken)...); rec.Code != 200 {
		t.Fatalf("the other device's refresh after the logout: %d %s", rec.Code, rec.Body)
	}

	rec = f.do(t, "POST", "/auth/logout", "")
	checkError(t, rec, 401, "MissingAuthorizationHeader", "Authorization header not present.")
	rec = f.do(t, "POST", "/auth/logout", "", bearer(tamper(t, alice.AccessToken))...)
	checkError(t, rec, 401, "Unauthorized", "Auth required.")

	// A logout of a session that has already ended touches nothing and succeeds.
	cas := f.store.count("cas")
	if rec := f.do(t, "POST", "/auth/logout", "", bearer(alice.AccessToken)...); rec.Code != 204 || f.store.count("cas") != cas {
		t.Errorf("second logout: %d, %d swaps", rec.Code, f.store.count("cas")-cas)
	}

	// A failing store is a 500 that ends nothing: "cas" while the phone's session
	// remains, "delete" when the record would go with the last session.
	for _, tc := range []struct {
		method string
		phone  bool
	}{{"load", false}, {"load", true}, {"cas", true}, {"delete", false}} {
		f.store.remove("alice")
		tablet := f.login(t, "alice")
		if tc.phone {
			f.login(t, "alice")
		}
		before := f.store.get("alice")
		f.store.setFail(tc.method, errors.New("revoke failed: secret-detail"))
		rec = f.do(t, "POST", "/auth/logout", "", bearer(tablet.AccessToken)...)
		checkError(t, rec, 500, "InternalServerError", "Internal server error.")
		if strings.Contains(rec.Body.String(), "secret-detail") {
			t.Errorf("%s: revoke error leaked", tc.method)
		}
		if !bytes.Equal(f.store.get("alice"), before) || f.sessionToken(t, tablet.AccessToken) != tablet.RefreshToken {
			t.Errorf("%s: a failed logout changed the sessions", tc.method)
		}
		f.store.setFail(tc.method, nil)
	}
}

// TestLogoutClearsCookies: a logout that ends the browser's own session (no scope, or
// scope=all) clears its cookies; scope=others leaves the browser logged in, and its
// cookies alone.
func TestLogoutClearsCookies(t *testing.T) {
	for _, tc := range []struct {
		query string
		clear bool
	}{{"", true}, {"?scope=all", true}, {"?scope=others", false}} {
		f := newFixture(t, func(c *Config) { c.Cookies = &Cookies{Split: true, Domain: "example.com"} })
		jar := cookieHeader(f.do(t, "POST", "/auth", loginBody("alice")))
		rec := f.do(t, "POST", "/auth/logout"+tc.query, "", "Cookie", jar)
		if rec.Code != 204 {
			t.Fatalf("logout%s: %d %s", tc.query, rec.Code, rec.Body)
		}
		cs := cookiesByName(rec)
		if !tc.clear {
			if len(cs) != 0 {
				t.Errorf("logout%s set cookies %v", tc.query, rec.Header()["Set-Cookie"])
			}
			continue
		}
		for _, name := range []string{"access_token", "access_token_signature", "refresh_token"} { // a Domain: no __Host- prefix
			c := cs[name]
			path := "/"
			if name == "refresh_token" {
				path = "/auth/refresh"
			}
			if c == nil || c.MaxAge >= 0 || c.Value != "" || c.Path != path || c.Domain != "example.com" || !c.Secure {
				t.Errorf("logout%s: cookie %s not cleared: %+v", tc.query, name, c)
			}
		}
	}
}

// TestLogoutScopeMustBeOthersOrAll: a scope other than empty, others or all, a repeated
// scope, or a query that does not parse is a 400 that ends nothing, so that a typo never
// logs out more, or less, than was asked. An empty scope is the plain logout.
func TestLogoutScopeMustBeOthersOrAll(t *testing.T) {
	f := newFixture(t, nil)
	alice := f.login(t, "alice")
	phone := f.login(t, "alice")
	for _, q := range []string{"?scope=ALL", "?scope=mine", "?scope=all&scope=all", "?scope=others&scope=all", "?scope=%zz", "?scope=all;x"} {
		rec := f.do(t, "POST", "/auth/logout"+q, "", bearer(alice.AccessToken)...)
		checkError(t, rec, 400, "InvalidRequest", "The logout scope must be others or all.")
	}
	if f.sessionToken(t, alice.AccessToken) != alice.RefreshToken || f.sessionToken(t, phone.AccessToken) != phone.RefreshToken {
		t.Error("a refused logout ended a session")
	}
	if rec := f.do(t, "POST", "/auth/logout?scope=", "", bearer(alice.AccessToken)...); rec.Code != 204 {
		t.Fatalf("logout with an empty scope: %d %s", rec.Code, rec.Body)
	}
	if f.sessionToken(t, alice.AccessToken) != "" || f.sessionToken(t, phone.AccessToken) != phone.RefreshToken {
		t.Error("an empty scope did not end exactly the token's own session")
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
	// A body cut short by a failing read is not the JSON it began as: what was read
	// before the error must not be taken for the token.
	cut := io.MultiReader(strings.NewReader(`{"refresh_token":"abc"}`), iotest.ErrReader(io.ErrUnexpectedEOF))
	if tok, err := bodyToken(cut, "refresh_token"); err != errBadBody {
		t.Errorf("body whose read fails after a whole JSON object: %q, %v; want errBadBody", tok, err)
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
// compare-and-swap of the user's record, so a refresh that loaded the record before the
// logout ended the session fails its swap instead of writing the session back. The
// store is the fixture's MemStore, with a pause of up to 50µs after each load to widen
// the window between a refresh's load and its swap, where the logout must land; many
// rounds. The user's other session, on another device, survives every round, and no
// refresh token a refresh returned works after the logout.
func TestLogoutRacingRefreshesAlwaysLeavesNoToken(t *testing.T) {
	const rounds, refreshes = 200, 8
	f := newFixture(t, nil)
	phone := f.login(t, "alice")
	phoneSID := sidOf(t, f.a, phone.AccessToken)
	f.store.setAfter(func(method string) {
		if method == "load" {
			time.Sleep(time.Duration(rand.IntN(50)) * time.Microsecond)
		}
	})
	won := 0
	for round := 0; round < rounds; round++ {
		alice := f.login(t, "alice")
		var wg sync.WaitGroup
		start := make(chan struct{})
		codes := make([]int, refreshes)
		got := make([]*Tokens, refreshes)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				rec := f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...)
				codes[i] = rec.Code
				if rec.Code == 200 {
					got[i] = tokensOf(t, rec)
				}
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
		if ss := f.storedSessions(t, "alice"); len(ss) != 1 || ss[0].id.String() != phoneSID {
			t.Fatalf("round %d: after the logout the store holds %d sessions, want the phone's alone; refreshes %v", round, len(ss), codes)
		}
		for _, tok := range got {
			if tok == nil {
				continue
			}
			if rec := f.do(t, "POST", "/auth/refresh", refreshBody(tok.RefreshToken), bearer(tok.AccessToken)...); rec.Code != 401 {
				t.Fatalf("round %d: a refresh token issued before the logout answered %d after it", round, rec.Code)
			}
		}
	}
	if f.sessionToken(t, phone.AccessToken) != phone.RefreshToken {
		t.Error("the other device's session changed")
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
	if f.sessionToken(t, alice.AccessToken) != alice.RefreshToken {
		t.Error("the session's token changed without rotation")
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
	cas, before := f.store.count("cas"), f.store.get("alice")
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(alice.RefreshToken), bearer(alice.AccessToken)...)
	checkError(t, rec, 500, "InternalServerError", "Internal server error.")
	if n := f.store.count("cas"); n != cas || !bytes.Equal(f.store.get("alice"), before) {
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
	if f.sessionToken(t, alice.AccessToken) != alice.RefreshToken {
		t.Error("alice's session changed")
	}
}

// lostSwaps is a Store that counts the compare-and-swaps that lose, and slows every
// load down so that requests that do not take turns would overlap.
type lostSwaps struct {
	MemStore
	lost atomic.Int64
}

func (s *lostSwaps) Load(ctx context.Context, key string) ([]byte, error) {
	time.Sleep(time.Millisecond)
	return s.MemStore.Load(ctx, key)
}

func (s *lostSwaps) CompareAndSwap(ctx context.Context, key string, old, new []byte, ttl time.Duration) (bool, error) {
	ok, err := s.MemStore.CompareAndSwap(ctx, key, old, new, ttl)
	if !ok {
		s.lost.Add(1)
	}
	return ok, err
}

// TestLoginsOfOneUserTakeTurns (S13): within one process, concurrent changes of one
// user's record wait for each other instead of racing: 32 logins at once all succeed
// and not one compare-and-swap is lost, so a storm costs one load and one swap per
// login, not a retry loop that runs into the time bound.
func TestLoginsOfOneUserTakeTurns(t *testing.T) {
	st := &lostSwaps{}
	a, _, _ := sessionAuth(t, func(c *Config) { c.Refresh.Store, c.Refresh.MaxSessions = st, 255 })
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = a.IssueTokens(context.Background(), &User{ID: "fleet"})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := st.lost.Load(); n != 0 {
		t.Errorf("%d compare-and-swaps lost among logins of one process", n)
	}
	if ss, _ := a.Sessions(context.Background(), "fleet"); len(ss) != 32 {
		t.Errorf("%d sessions, want 32", len(ss))
	}
}

// TestLoginWithoutRandomnessOpensNoSession: when crypto/rand fails (it can before Go
// 1.24), a login is a 500 that opens no session, never a session of a predictable id
// or key.
func TestLoginWithoutRandomnessOpensNoSession(t *testing.T) {
	a, st, _ := sessionAuth(t, nil)
	a.sess.random = iotest.ErrReader(errors.New("no entropy"))
	tok, err := a.IssueTokens(context.Background(), &User{ID: "alice"})
	if tok != nil || a.httpError(err).Status != 500 || !strings.Contains(err.Error(), "crypto/rand") {
		t.Fatalf("IssueTokens = %v, %v; want a 500 naming crypto/rand", tok, err)
	}
	if v, _ := st.Load(context.Background(), "alice"); v != nil {
		t.Fatal("a session was stored")
	}
}

// TestSessionMethodsNeedRefresh: the admin methods on an Auth without Config.Refresh
// say so, rather than report no sessions (which would read as "nothing to revoke").
func TestSessionMethodsNeedRefresh(t *testing.T) {
	a := testAuth(t, nil)
	ctx := context.Background()
	if _, err := a.Sessions(ctx, "alice"); err != errNoRefresh {
		t.Errorf("Sessions: %v", err)
	}
	if _, err := a.RevokeSession(ctx, "alice", "AAAAAAAAAAAAAAAAAAAAAA"); err != errNoRefresh {
		t.Errorf("RevokeSession: %v", err)
	}
	if err := a.RevokeSessions(ctx, "alice"); err != errNoRefresh {
		t.Errorf("RevokeSessions: %v", err)
	}
	if err := a.EndOtherSessions(ctx, "alice", "AAAAAAAAAAAAAAAAAAAAAA"); err != errNoRefresh {
		t.Errorf("EndOtherSessions: %v", err)
	}
}
