package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtauth/jwtauth"
	"github.com/jwtauth/jwtauth/redisstore"
	"github.com/jwtauth/jwtauth/storetest"
	"github.com/redis/go-redis/v9"
)

// newStore returns a Store on the shared server under a prefix of t's own, with the
// client and prefix for raw checks.
func newStore(t testing.TB) (*redisstore.Store, *redis.Client, string) {
	t.Helper()
	c := sharedClient(t)
	prefix := testPrefix(t, c)
	return redisstore.New(c, redisstore.Options{Prefix: prefix}), c, prefix
}

// newDigest returns a value shaped like the ones jwtauth stores: the digest of a fresh
// token.
func newDigest(t testing.TB) []byte {
	t.Helper()
	return []byte(digest(newToken(t)))
}

// wantStored fails t unless key holds want (nil: nothing).
func wantStored(t testing.TB, s *redisstore.Store, key string, want []byte) {
	t.Helper()
	got, err := s.Load(context.Background(), key)
	if err != nil {
		t.Fatalf("Load(%q): %v, want %q", key, err, want)
	}
	if (got == nil) != (want == nil) || !bytes.Equal(got, want) {
		t.Fatalf("Load(%q) = %q, want %q", key, got, want)
	}
}

// wantCAS fails t unless CompareAndSwap(key, old, new, ttl) reports want without error.
func wantCAS(t testing.TB, s *redisstore.Store, key string, old, new []byte, ttl time.Duration, want bool) {
	t.Helper()
	ok, err := s.CompareAndSwap(context.Background(), key, old, new, ttl)
	if err != nil || ok != want {
		t.Fatalf("CompareAndSwap(%q, %q, %q, %v) = %v, %v; want %v, nil", key, old, new, ttl, ok, err, want)
	}
}

// wantRedisError fails t unless err is a Redis failure, non-nil and prefixed. Load's
// (nil, nil) would read as "no token" and CompareAndSwap's (false, nil) as a wrong one;
// an error makes jwtauth answer 500 and revoke nothing.
func wantRedisError(t testing.TB, what string, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("%s: nil error, want a Redis error", what)
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

func TestConformance(t *testing.T) {
	// Every store of the suite shares one prefix; the suite draws keys of its own
	// below it, and testPrefix deletes whatever is left.
	c := sharedClient(t)
	prefix := testPrefix(t, c)
	storetest.Run(t, func() jwtauth.Store { return redisstore.New(c, redisstore.Options{Prefix: prefix}) })
}

// TestSessions: jwtauth's sessions, S1 to S10, end to end on a real Redis, with 200
// rounds of each race (concurrent refreshes with reuse interval 0 and 10 s, logout
// against refresh, login against refresh).
func TestSessions(t *testing.T) {
	c := sharedClient(t)
	prefix := testPrefix(t, c)
	storetest.RunSessions(t, func() jwtauth.Store { return redisstore.New(c, redisstore.Options{Prefix: prefix}) }, 200)
}

func TestKeyIsPrefixPlusUserID(t *testing.T) {
	// The value is a plain Redis string under Prefix+userID, exactly the bytes given.
	s, c, prefix := newStore(t)
	ctx := context.Background()
	v := []byte("\x00digest\r\n\xff")
	wantCAS(t, s, "user:42", nil, v, 0, true)
	raw, err := c.Get(ctx, prefix+"user:42").Result()
	if err != nil || raw != string(v) {
		t.Fatalf("GET %s = %q, %v; want %q", prefix+"user:42", raw, err, v)
	}
	if keys := c.Keys(ctx, prefix+"*").Val(); len(keys) != 1 {
		t.Fatalf("keys under the prefix: %q, want only %q", keys, prefix+"user:42")
	}
}

func TestDefaultPrefix(t *testing.T) {
	c := sharedClient(t)
	ctx := context.Background()
	user := "defaults-" + newToken(t) // the prefix is shared; the user id is ours
	key := "jwtauth:refresh:" + user
	t.Cleanup(func() { c.Del(context.Background(), key) })
	if redisstore.DefaultPrefix != "jwtauth:refresh:" {
		t.Fatalf("DefaultPrefix = %q", redisstore.DefaultPrefix)
	}
	s := redisstore.New(c, redisstore.Options{})
	d := newDigest(t)
	wantCAS(t, s, user, nil, d, 0, true)
	if got := c.Get(ctx, key).Val(); got != string(d) {
		t.Fatalf("GET %s = %q, want %q", key, got, d)
	}
}

func TestTTLInMilliseconds(t *testing.T) {
	// Redis counts TTLs in milliseconds: the store sends ttl rounded up, since PX 0
	// would be an error and a value must not expire earlier than asked, and Redis keeps
	// what it was sent.
	s, c, prefix := newStore(t)
	sent := &lastArgs{}
	c.AddHook(sent)
	for _, tc := range []struct {
		name string
		ttl  time.Duration
		px   string // the TTL argument sent
		a, b int64  // PTTL bounds right after the call
	}{
		{"an hour", time.Hour, "3600000", time.Hour.Milliseconds() - 60_000, time.Hour.Milliseconds()},
		{"none", 0, "0", -1, -1},
		{"10 s and 1 ns", 10*time.Second + time.Nanosecond, "10001", 10_001 - 60_000, 10_001},
		{"300 µs", 300 * time.Microsecond, "1", -2, 1},
	} {
		key := "alice " + tc.name
		wantCAS(t, s, key, nil, newDigest(t), tc.ttl, true)
		if args := sent.get(); len(args) < 2 || fmt.Sprint(args[len(args)-2]) != tc.px { // ARGV[5] of 6
			t.Errorf("%s: the script was sent %q, want the TTL argument %s", tc.name, args, tc.px)
		}
		if ms := pttl(t, c, prefix+key); ms < tc.a || ms > tc.b {
			t.Errorf("%s: PTTL = %d ms, want %d to %d", tc.name, ms, tc.a, tc.b)
		}
	}
}

// lastArgs is a client hook that keeps the arguments of the last script call sent
// (EVALSHA or EVAL; the client sends commands of its own on new connections).
type lastArgs struct {
	mu   sync.Mutex
	args []any
}

func (h *lastArgs) get() []any { h.mu.Lock(); defer h.mu.Unlock(); return h.args }

func (h *lastArgs) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *lastArgs) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			h.mu.Lock()
			h.args = cmd.Args()
			h.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}

func (h *lastArgs) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func TestCASSetsTTLAgain(t *testing.T) {
	// Every swap sets the TTL it is given, replacing what the key had; ttl 0 removes it.
	s, c, prefix := newStore(t)
	ctx := context.Background()
	key := prefix + "alice"
	d0, d1, d2 := newDigest(t), newDigest(t), newDigest(t)
	wantCAS(t, s, "alice", nil, d0, time.Hour, true)
	if err := c.PExpire(ctx, key, 10*time.Second).Err(); err != nil { // as if 59m50s passed
		t.Fatal(err)
	}
	wantCAS(t, s, "alice", d0, d1, time.Hour, true)
	if ms := pttl(t, c, key); ms <= time.Hour.Milliseconds()-60_000 {
		t.Fatalf("PTTL after a swap with an hour = %d ms, want about an hour", ms)
	}
	wantCAS(t, s, "alice", d1, d2, 0, true)
	if ms := pttl(t, c, key); ms != -1 {
		t.Fatalf("PTTL after a swap with no TTL = %d, want -1 (none)", ms)
	}
}

func TestFailedCASChangesNothing(t *testing.T) {
	// A failed compare writes nothing: no key created, no value or TTL touched.
	s, c, prefix := newStore(t)
	ctx := context.Background()
	d, other := newDigest(t), newDigest(t)
	wantCAS(t, s, "nobody", d, other, time.Hour, false)
	wantCAS(t, s, "nobody", d, nil, 0, false)
	if n := c.Exists(ctx, prefix+"nobody").Val(); n != 0 {
		t.Fatal("a failed swap created the key")
	}
	wantCAS(t, s, "alice", nil, d, 10*time.Second, true)
	wantCAS(t, s, "alice", other, other, time.Hour, false)
	wantCAS(t, s, "alice", nil, other, 0, false)
	wantCAS(t, s, "alice", other, nil, 0, false)
	wantStored(t, s, "alice", d)
	if ms := pttl(t, c, prefix+"alice"); ms <= 0 || ms > 10_000 {
		t.Fatalf("PTTL after failed swaps = %d ms, want the 10 s set by the store", ms)
	}
}

func TestNegativeTTLIsAnError(t *testing.T) {
	// The Store contract has no negative TTL; refusing one beats storing a value that
	// never expires or is already gone.
	s, c, prefix := newStore(t)
	ok, err := s.CompareAndSwap(context.Background(), "alice", nil, newDigest(t), -time.Millisecond)
	wantRedisError(t, "CompareAndSwap with a negative TTL", err)
	if ok {
		t.Fatal("CompareAndSwap with a negative TTL reported a swap")
	}
	if n := c.Exists(context.Background(), prefix+"alice").Val(); n != 0 {
		t.Fatal("CompareAndSwap with a negative TTL wrote the key")
	}
}

// TestKeyOfAnotherType: someone else's list under a user's key. Load returns a value
// that no jwtauth record equals (so jwtauth counts no live session, S12) and never "no
// value" (an insert would then fail forever); a compare-and-swap from that exact value
// replaces or deletes the list, and one from anything else leaves it alone.
func TestKeyOfAnotherType(t *testing.T) {
	s, c, prefix := newStore(t)
	ctx := context.Background()
	list := func() {
		t.Helper()
		c.Del(ctx, prefix+"alice")
		if err := c.RPush(ctx, prefix+"alice", "x").Err(); err != nil {
			t.Fatal(err)
		}
	}
	list()
	v, err := s.Load(ctx, "alice")
	if err != nil || len(v) == 0 || v[0] == 1 {
		t.Fatalf("Load of a list = %q, %v; want a value no record equals", v, err)
	}
	for name, old := range map[string][]byte{"insert": nil, "swap": newDigest(t)} {
		for _, next := range [][]byte{newDigest(t), nil} {
			if name == "insert" && next == nil {
				continue // a delete from nothing: the Store contract never asks for it
			}
			wantCAS(t, s, "alice", old, next, time.Hour, false)
		}
	}
	if typ, n := c.Type(ctx, prefix+"alice").Val(), c.LLen(ctx, prefix+"alice").Val(); typ != "list" || n != 1 {
		t.Fatalf("the key is now a %q of length %d, want the list untouched", typ, n)
	}
	d := newDigest(t)
	wantCAS(t, s, "alice", v, d, time.Hour, true)
	wantStored(t, s, "alice", d)
	list()
	wantCAS(t, s, "alice", v, nil, 0, true)
	wantStored(t, s, "alice", nil)
}

func TestCanceledContext(t *testing.T) {
	s, _, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := newDigest(t)
	_, loadErr := s.Load(ctx, "alice")
	_, casErr := s.CompareAndSwap(ctx, "alice", nil, d, 0)
	for name, err := range map[string]error{"Load": loadErr, "CompareAndSwap": casErr} {
		wantRedisError(t, name+" with a canceled context", err)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v, want it to wrap context.Canceled", name, err)
		}
	}
	wantStored(t, s, "alice", nil)
}

func TestScriptCacheFlushed(t *testing.T) {
	// After SCRIPT FLUSH (or a restart) EVALSHA answers NOSCRIPT; the store falls back
	// to EVAL and the swap still happens exactly once. A server of its own, since the
	// flush is server-wide.
	srv := startRedisServer(t)
	c := newClient(t, srv.Addr(), lenientTimeout)
	s := redisstore.New(c, redisstore.Options{})
	ctx := context.Background()
	d0, d1 := newDigest(t), newDigest(t)
	wantCAS(t, s, "alice", nil, d0, 0, true)
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	wantCAS(t, s, "alice", d0, d1, 0, true)
	wantCAS(t, s, "alice", d0, d1, 0, false)
	wantStored(t, s, "alice", d1)
}

func TestNewNilClientPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New(nil) did not panic")
		}
	}()
	redisstore.New(nil, redisstore.Options{})
}
