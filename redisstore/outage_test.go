package redisstore_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/jwtauth/jwtauth/redisstore"
)

// These tests stop, freeze and restart a redis-server of their own (startRedisServer);
// the shared one is never touched.

// outageBudget is how long a call may take while Redis is down: the fast client's
// timeouts are 200 ms without retries; the rest is slack for the race detector on a
// busy machine. With go-redis's defaults (5 s, 3 retries) a hung server would hold a
// call for 20 s.
const outageBudget = time.Second

// storeOps runs each kind of call once against key, whose value is current, and
// reports every error and how long each call took. Load's (nil, nil) and a swap's
// (false, nil) count as no error: wantPromptErrors fails on them.
func storeOps(s *redisstore.Store, key string, current []byte) map[string]struct {
	err     error
	elapsed time.Duration
} {
	ctx := context.Background()
	out := map[string]struct {
		err     error
		elapsed time.Duration
	}{}
	run := func(name string, f func() error) {
		start := time.Now()
		err := f()
		out[name] = struct {
			err     error
			elapsed time.Duration
		}{err, time.Since(start)}
	}
	cas := func(old, new []byte) func() error {
		return func() error { _, err := s.CompareAndSwap(ctx, key, old, new, time.Hour); return err }
	}
	run("Load", func() error { _, err := s.Load(ctx, key); return err })
	run("CompareAndSwap (insert)", cas(nil, current))
	run("CompareAndSwap (swap)", cas(current, current))
	run("CompareAndSwap (delete)", cas(current, nil))
	return out
}

// wantPromptErrors fails t unless every call fails promptly with a Redis error.
func wantPromptErrors(t *testing.T, s *redisstore.Store, key string) {
	t.Helper()
	for name, r := range storeOps(s, key, newDigest(t)) {
		wantRedisError(t, name+" while Redis is down", r.err)
		if r.elapsed > outageBudget {
			t.Errorf("%s took %v while Redis is down, want at most %v", name, r.elapsed, outageBudget)
		}
	}
}

// waitUp polls until the store answers again (a Load without error), for at most
// 10 s: the first commands after a restart may still meet a connection the pool has
// not yet found dead.
func waitUp(t *testing.T, s *redisstore.Store, key string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.Load(context.Background(), key)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("store still failing 10s after Redis came back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedisDown(t *testing.T) {
	srv := startRedisServer(t, "--appendonly", "yes", "--appendfsync", "always")
	// fast is under test; s, on a lenient client, sets up and checks state.
	fast := redisstore.New(newClient(t, srv.Addr(), fastTimeout), redisstore.Options{})
	s := redisstore.New(newClient(t, srv.Addr(), lenientTimeout), redisstore.Options{})
	d0 := newDigest(t)
	wantCAS(t, s, "alice", nil, d0, time.Hour, true)
	waitUp(t, fast, "alice") // fast has a pooled connection to lose

	srv.Kill()
	// Twice: first on the pooled connection Redis just dropped, then on new dials.
	wantPromptErrors(t, fast, "alice")
	wantPromptErrors(t, fast, "alice")

	srv.Restart()
	waitUp(t, fast, "alice")      // the same client recovers by itself
	wantStored(t, s, "alice", d0) // kept in the append-only file across the crash
	d1 := newDigest(t)
	wantCAS(t, fast, "alice", d0, d1, time.Hour, true)
	wantStored(t, s, "alice", d1)
	wantCAS(t, fast, "alice", d1, nil, 0, true)
	wantStored(t, s, "alice", nil)
}

func TestRedisHung(t *testing.T) {
	// A server that accepts connections but never answers (SIGSTOP): each call ends
	// at the client's ReadTimeout instead of hanging.
	srv := startRedisServer(t)
	fast := redisstore.New(newClient(t, srv.Addr(), fastTimeout), redisstore.Options{})
	s := redisstore.New(newClient(t, srv.Addr(), lenientTimeout), redisstore.Options{})
	ctx := context.Background()
	d0, d1 := newDigest(t), newDigest(t)
	wantCAS(t, s, "alice", nil, d0, time.Hour, true)

	srv.Freeze()
	start := time.Now()
	v, err := fast.Load(ctx, "alice")
	wantRedisError(t, "Load while Redis hangs", err)
	if v != nil {
		t.Errorf("Load while Redis hangs returned %q with its error", v)
	}
	ok, err := fast.CompareAndSwap(ctx, "alice", d0, d1, time.Hour)
	wantRedisError(t, "CompareAndSwap while Redis hangs", err)
	if ok {
		t.Error("CompareAndSwap while Redis hangs reported a swap")
	}
	if el := time.Since(start); el > 2*outageBudget {
		t.Errorf("two calls took %v while Redis hangs, want at most %v", el, 2*outageBudget)
	}

	srv.Thaw()
	waitUp(t, fast, "alice")
	// The timed-out swap was sent; Redis may have run it after waking up. Either
	// outcome is consistent, and the package doc warns about it.
	got, err := s.Load(ctx, "alice")
	if err != nil || !bytes.Equal(got, d0) && !bytes.Equal(got, d1) {
		t.Fatalf("after the hang: %q, %v; want %q (swap not applied) or %q (applied)", got, err, d0, d1)
	}
	d2 := newDigest(t)
	wantCAS(t, fast, "alice", got, d2, time.Hour, true)
	wantStored(t, s, "alice", d2)
}

func TestAppendOnlyFileSurvivesCrash(t *testing.T) {
	// appendonly with appendfsync always: every acknowledged write is on disk, so a
	// crash (SIGKILL, no shutdown save) loses no token, rotation or revocation.
	srv := startRedisServer(t, "--appendonly", "yes", "--appendfsync", "always")
	c := newClient(t, srv.Addr(), lenientTimeout)
	s := redisstore.New(c, redisstore.Options{})
	a0, a1, b0, c0 := newDigest(t), newDigest(t), newDigest(t), newDigest(t)
	for user, d := range map[string][]byte{"alice": a0, "bob": b0, "carol": c0} {
		wantCAS(t, s, user, nil, d, time.Hour, true)
	}
	wantCAS(t, s, "alice", a0, a1, time.Hour, true)
	wantCAS(t, s, "carol", c0, nil, 0, true)

	srv.Kill()
	srv.Restart()
	waitUp(t, s, "alice")
	if len(srv.appendOnlyFiles()) == 0 {
		t.Fatalf("no append-only file in %s", srv.dir)
	}
	wantStored(t, s, "alice", a1)  // the rotation survived
	wantStored(t, s, "bob", b0)    // so did the login
	wantStored(t, s, "carol", nil) // and the revocation
	wantCAS(t, s, "alice", a0, newDigest(t), time.Hour, false)
	if ms := pttl(t, c, redisstore.DefaultPrefix+"bob"); ms <= 0 || ms > time.Hour.Milliseconds() {
		t.Fatalf("PTTL of bob's key after restart = %d ms, want its TTL kept", ms)
	}
	b1 := newDigest(t)
	wantCAS(t, s, "bob", b0, b1, time.Hour, true)
	wantStored(t, s, "bob", b1)
}
