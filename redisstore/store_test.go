package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtauth/jwtauth"
	"github.com/jwtauth/jwtauth/redisstore"
	"github.com/redis/go-redis/v9"
)

// The Store's methods must fit jwtauth's hook types.
var (
	_ jwtauth.StoreRefreshTokenFunc    = (*redisstore.Store)(nil).StoreRefreshToken
	_ jwtauth.RetrieveRefreshTokenFunc = (*redisstore.Store)(nil).RetrieveRefreshToken
	_ jwtauth.RevokeRefreshTokenFunc   = (*redisstore.Store)(nil).RevokeRefreshToken
	_ jwtauth.SwapRefreshTokenFunc     = (*redisstore.Store)(nil).SwapRefreshToken
)

// newStore returns a Store on the shared server under a prefix of t's own, with the
// client and prefix for raw checks.
func newStore(t testing.TB, ttl time.Duration) (*redisstore.Store, *redis.Client, string) {
	t.Helper()
	c := sharedClient(t)
	prefix := testPrefix(t, c)
	return redisstore.New(c, redisstore.Options{Prefix: prefix, TTL: ttl}), c, prefix
}

// wantStored fails t unless userID's stored digest is want.
func wantStored(t testing.TB, s *redisstore.Store, userID, want string) {
	t.Helper()
	got, err := s.RetrieveRefreshToken(context.Background(), userID)
	if err != nil {
		t.Fatalf("RetrieveRefreshToken(%q): %v, want %q", userID, err, want)
	}
	if got != want {
		t.Fatalf("RetrieveRefreshToken(%q) = %q, want %q", userID, got, want)
	}
}

// wantNotFound fails t unless err wraps jwtauth.ErrRefreshTokenNotFound.
func wantNotFound(t testing.TB, what string, err error) {
	t.Helper()
	if !errors.Is(err, jwtauth.ErrRefreshTokenNotFound) {
		t.Fatalf("%s: %v, want an error wrapping jwtauth.ErrRefreshTokenNotFound", what, err)
	}
}

// wantRedisError fails t unless err is a Redis failure: non-nil, prefixed, and not
// ErrRefreshTokenNotFound (which the endpoints would answer with 401, not 500).
func wantRedisError(t testing.TB, what string, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("%s: nil error, want a Redis error", what)
	case errors.Is(err, jwtauth.ErrRefreshTokenNotFound):
		t.Fatalf("%s: %v: a Redis failure must not look like a missing token (401 instead of 500)", what, err)
	case !strings.HasPrefix(err.Error(), "redisstore: "):
		t.Fatalf("%s: %q, want the prefix %q", what, err, "redisstore: ")
	}
}

// pttl returns the key's remaining TTL in milliseconds: -1 for none, -2 for no key.
func pttl(t testing.TB, c *redis.Client, key string) int64 {
	t.Helper()
	ms, err := c.Do(context.Background(), "PTTL", key).Int64()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestStoreThenRetrieve(t *testing.T) {
	s, _, _ := newStore(t, 0)
	d := digest(newToken(t))
	if err := s.StoreRefreshToken(context.Background(), "alice", d); err != nil {
		t.Fatal(err)
	}
	wantStored(t, s, "alice", d)
}

func TestStoreReplacesPreviousToken(t *testing.T) {
	// One token per user, as in Sanic JWT: a new login replaces the previous token.
	s, _, _ := newStore(t, 0)
	ctx := context.Background()
	first, second := digest(newToken(t)), digest(newToken(t))
	if err := s.StoreRefreshToken(ctx, "alice", first); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreRefreshToken(ctx, "alice", second); err != nil {
		t.Fatal(err)
	}
	wantStored(t, s, "alice", second)
}

func TestRetrieveNeverStored(t *testing.T) {
	s, _, _ := newStore(t, 0)
	_, err := s.RetrieveRefreshToken(context.Background(), "nobody")
	wantNotFound(t, "RetrieveRefreshToken of a user without a token", err)
}

func TestTokenOfAnotherUser(t *testing.T) {
	// Keys are per user: alice's token is not bob's, and a swap for bob with alice's
	// digest fails.
	s, _, _ := newStore(t, 0)
	ctx := context.Background()
	alice := digest(newToken(t))
	if err := s.StoreRefreshToken(ctx, "alice", alice); err != nil {
		t.Fatal(err)
	}
	_, err := s.RetrieveRefreshToken(ctx, "bob")
	wantNotFound(t, "RetrieveRefreshToken(bob)", err)
	err = s.SwapRefreshToken(ctx, "bob", alice, digest(newToken(t)))
	wantNotFound(t, "SwapRefreshToken(bob, alice's digest)", err)
	wantStored(t, s, "alice", alice)
}

func TestRevoke(t *testing.T) {
	s, c, prefix := newStore(t, 0)
	ctx := context.Background()
	d := digest(newToken(t))
	if err := s.StoreRefreshToken(ctx, "alice", d); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeRefreshToken(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	_, err := s.RetrieveRefreshToken(ctx, "alice")
	wantNotFound(t, "RetrieveRefreshToken after revoke", err)
	err = s.SwapRefreshToken(ctx, "alice", d, digest(newToken(t)))
	wantNotFound(t, "SwapRefreshToken after revoke", err)
	if n := c.Exists(ctx, prefix+"alice").Val(); n != 0 {
		t.Fatalf("key still exists after revoke")
	}
}

func TestRevokeMissingIsNotAnError(t *testing.T) {
	s, _, _ := newStore(t, 0)
	if err := s.RevokeRefreshToken(context.Background(), "nobody"); err != nil {
		t.Fatalf("RevokeRefreshToken of a missing token: %v, want nil", err)
	}
}

func TestSwap(t *testing.T) {
	s, _, _ := newStore(t, 0)
	ctx := context.Background()
	old, next := digest(newToken(t)), digest(newToken(t))
	if err := s.StoreRefreshToken(ctx, "alice", old); err != nil {
		t.Fatal(err)
	}
	if err := s.SwapRefreshToken(ctx, "alice", old, next); err != nil {
		t.Fatalf("SwapRefreshToken with the stored digest: %v", err)
	}
	wantStored(t, s, "alice", next)
}

func TestSwapStaleToken(t *testing.T) {
	// A rotated-out (replayed) token: the swap fails and the stored token is unchanged.
	s, _, _ := newStore(t, 0)
	ctx := context.Background()
	old, current := digest(newToken(t)), digest(newToken(t))
	if err := s.StoreRefreshToken(ctx, "alice", old); err != nil {
		t.Fatal(err)
	}
	if err := s.SwapRefreshToken(ctx, "alice", old, current); err != nil {
		t.Fatal(err)
	}
	err := s.SwapRefreshToken(ctx, "alice", old, digest(newToken(t)))
	wantNotFound(t, "SwapRefreshToken with the rotated-out digest", err)
	wantStored(t, s, "alice", current)
}

func TestSwapWrongToken(t *testing.T) {
	s, _, _ := newStore(t, 0)
	ctx := context.Background()
	d := digest(newToken(t))
	if err := s.StoreRefreshToken(ctx, "alice", d); err != nil {
		t.Fatal(err)
	}
	for name, presented := range map[string]string{
		"never issued":      digest(newToken(t)),
		"empty":             "",
		"raw token":         newToken(t),
		"digest prefix":     d[:42],
		"digest plus a bit": d + "A",
	} {
		err := s.SwapRefreshToken(ctx, "alice", presented, digest(newToken(t)))
		wantNotFound(t, "SwapRefreshToken with "+name, err)
	}
	wantStored(t, s, "alice", d)
}

func TestSwapNeverStored(t *testing.T) {
	s, c, prefix := newStore(t, 0)
	ctx := context.Background()
	err := s.SwapRefreshToken(ctx, "nobody", digest(newToken(t)), digest(newToken(t)))
	wantNotFound(t, "SwapRefreshToken of a user without a token", err)
	if n := c.Exists(ctx, prefix+"nobody").Val(); n != 0 {
		t.Fatalf("a failed swap created the key")
	}
}

func TestConcurrentSwapOneWinner(t *testing.T) {
	// 32 refreshes racing with the same token: exactly one rotation happens.
	s, _, _ := newStore(t, 0)
	ctx := context.Background()
	old := digest(newToken(t))
	if err := s.StoreRefreshToken(ctx, "alice", old); err != nil {
		t.Fatal(err)
	}
	const n = 32
	nexts := make([]string, n)
	errs := make([]error, n)
	for i := range nexts {
		nexts[i] = digest(newToken(t))
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = s.SwapRefreshToken(ctx, "alice", old, nexts[i])
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("swaps %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		default:
			wantNotFound(t, "losing SwapRefreshToken", err)
		}
	}
	if winner < 0 {
		t.Fatal("no swap succeeded")
	}
	wantStored(t, s, "alice", nexts[winner])
}

func TestKeysAreSHA256Digests(t *testing.T) {
	// The key is the prefix plus the user id; the value is exactly what the hook was
	// given: jwtauth's 43-character digest, never the raw token.
	s, c, prefix := newStore(t, 0)
	ctx := context.Background()
	tok := newToken(t)
	if err := s.StoreRefreshToken(ctx, "user:42", digest(tok)); err != nil {
		t.Fatal(err)
	}
	raw, err := c.Get(ctx, prefix+"user:42").Result()
	if err != nil {
		t.Fatalf("raw GET %s: %v", prefix+"user:42", err)
	}
	if raw != digest(tok) || len(raw) != 43 || raw == tok {
		t.Fatalf("raw value %q, want the 43-character digest %q of %q", raw, digest(tok), tok)
	}
	next := newToken(t)
	if err := s.SwapRefreshToken(ctx, "user:42", digest(tok), digest(next)); err != nil {
		t.Fatal(err)
	}
	if raw = c.Get(ctx, prefix+"user:42").Val(); raw != digest(next) {
		t.Fatalf("raw value after swap %q, want %q", raw, digest(next))
	}
}

func TestDefaults(t *testing.T) {
	// Options{}: keys under DefaultPrefix, 30-day TTL.
	c := sharedClient(t)
	ctx := context.Background()
	user := "defaults-" + newToken(t) // the prefix is shared; the user id is ours
	key := redisstore.DefaultPrefix + user
	t.Cleanup(func() { c.Del(context.Background(), key) })
	s := redisstore.New(c, redisstore.Options{})
	if err := s.StoreRefreshToken(ctx, user, digest(user)); err != nil {
		t.Fatal(err)
	}
	if got := c.Get(ctx, "jwtauth:refresh:"+user).Val(); got != digest(user) {
		t.Fatalf("GET jwtauth:refresh:%s = %q, want %q", user, got, digest(user))
	}
	ms := pttl(t, c, key)
	if want := redisstore.DefaultTTL.Milliseconds(); ms <= want-60_000 || ms > want {
		t.Fatalf("PTTL = %d ms, want about %d (30 days)", ms, want)
	}
}

func TestTTLExpiry(t *testing.T) {
	s, c, prefix := newStore(t, 50*time.Millisecond)
	ctx := context.Background()
	d := digest(newToken(t))
	if err := s.StoreRefreshToken(ctx, "alice", d); err != nil {
		t.Fatal(err)
	}
	if ms := pttl(t, c, prefix+"alice"); ms > 50 {
		t.Fatalf("PTTL = %d ms, want at most 50", ms)
	}
	waitNotFound(t, s, "alice", 5*time.Second)
	err := s.SwapRefreshToken(ctx, "alice", d, digest(newToken(t)))
	wantNotFound(t, "SwapRefreshToken of an expired token", err)
}

func TestTTLExpiryAfterSwap(t *testing.T) {
	// A swap sets the TTL again: the rotated token expires like a stored one.
	s, _, _ := newStore(t, 50*time.Millisecond)
	ctx := context.Background()
	old, next := digest(newToken(t)), digest(newToken(t))
	if err := s.StoreRefreshToken(ctx, "alice", old); err != nil {
		t.Fatal(err)
	}
	if err := s.SwapRefreshToken(ctx, "alice", old, next); err != nil {
		// 50 ms can pass on a loaded machine; that is expiry working, not a failure.
		wantNotFound(t, "SwapRefreshToken", err)
		t.Skip("token expired before the swap")
	}
	waitNotFound(t, s, "alice", 5*time.Second)
}

// waitNotFound polls until userID's token is gone, for at most limit.
func waitNotFound(t testing.TB, s *redisstore.Store, userID string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		_, err := s.RetrieveRefreshToken(context.Background(), userID)
		if errors.Is(err, jwtauth.ErrRefreshTokenNotFound) {
			return
		}
		if err != nil {
			t.Fatalf("RetrieveRefreshToken while waiting for expiry: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("token of %q still there after %v", userID, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSwapRestartsTTL(t *testing.T) {
	s, c, prefix := newStore(t, time.Hour)
	ctx := context.Background()
	key := prefix + "alice"
	old, next := digest(newToken(t)), digest(newToken(t))
	if err := s.StoreRefreshToken(ctx, "alice", old); err != nil {
		t.Fatal(err)
	}
	if err := c.PExpire(ctx, key, 10*time.Second).Err(); err != nil { // as if 59m50s passed
		t.Fatal(err)
	}
	if err := s.SwapRefreshToken(ctx, "alice", old, next); err != nil {
		t.Fatal(err)
	}
	if ms := pttl(t, c, key); ms <= time.Hour.Milliseconds()-60_000 {
		t.Fatalf("PTTL after swap = %d ms, want about an hour", ms)
	}
}

func TestNoExpiry(t *testing.T) {
	s, c, prefix := newStore(t, redisstore.NoExpiry)
	ctx := context.Background()
	key := prefix + "alice"
	old, next := digest(newToken(t)), digest(newToken(t))
	// A key left with a TTL (say by a Store configured with one) loses it on store.
	c.Set(ctx, key, "leftover", time.Minute)
	if err := s.StoreRefreshToken(ctx, "alice", old); err != nil {
		t.Fatal(err)
	}
	if ms := pttl(t, c, key); ms != -1 {
		t.Fatalf("PTTL after store = %d, want -1 (no expiry)", ms)
	}
	c.PExpire(ctx, key, time.Minute)
	if err := s.SwapRefreshToken(ctx, "alice", old, next); err != nil {
		t.Fatal(err)
	}
	if ms := pttl(t, c, key); ms != -1 {
		t.Fatalf("PTTL after swap = %d, want -1 (no expiry)", ms)
	}
}

func TestSubMillisecondTTL(t *testing.T) {
	// Redis counts TTLs in whole milliseconds and rejects PX 0; the Store rounds up.
	s, _, _ := newStore(t, 300*time.Microsecond)
	ctx := context.Background()
	d := digest(newToken(t))
	if err := s.StoreRefreshToken(ctx, "alice", d); err != nil {
		t.Fatalf("StoreRefreshToken with a 300µs TTL: %v", err)
	}
	err := s.SwapRefreshToken(ctx, "alice", d, digest(newToken(t)))
	if err != nil && !errors.Is(err, jwtauth.ErrRefreshTokenNotFound) {
		t.Fatalf("SwapRefreshToken with a 300µs TTL: %v", err) // expired is fine
	}
	waitNotFound(t, s, "alice", 5*time.Second)
}

func TestWrongTypeKeyIsAnError(t *testing.T) {
	// Someone else's list under our key: a Redis error (500), not "no token" (401).
	s, c, prefix := newStore(t, 0)
	ctx := context.Background()
	if err := c.RPush(ctx, prefix+"alice", "x").Err(); err != nil {
		t.Fatal(err)
	}
	_, err := s.RetrieveRefreshToken(ctx, "alice")
	wantRedisError(t, "RetrieveRefreshToken of a list", err)
	err = s.SwapRefreshToken(ctx, "alice", digest(newToken(t)), digest(newToken(t)))
	wantRedisError(t, "SwapRefreshToken of a list", err)
	// SET replaces a key of any type; DEL deletes one.
	d := digest(newToken(t))
	if err := s.StoreRefreshToken(ctx, "alice", d); err != nil {
		t.Fatal(err)
	}
	wantStored(t, s, "alice", d)
}

func TestCanceledContext(t *testing.T) {
	s, _, _ := newStore(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := digest(newToken(t))
	for name, err := range map[string]error{
		"StoreRefreshToken": s.StoreRefreshToken(ctx, "alice", d),
		"RetrieveRefreshToken": func() error {
			_, err := s.RetrieveRefreshToken(ctx, "alice")
			return err
		}(),
		"RevokeRefreshToken": s.RevokeRefreshToken(ctx, "alice"),
		"SwapRefreshToken":   s.SwapRefreshToken(ctx, "alice", d, d),
	} {
		wantRedisError(t, name+" with a canceled context", err)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v, want it to wrap context.Canceled", name, err)
		}
	}
}

func TestNewNilClientPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New(nil) did not panic")
		}
	}()
	redisstore.New(nil, redisstore.Options{})
}
