package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jwtauth/jwtauth"
	"github.com/jwtauth/jwtauth/redisstore"
)

// These tests stop, freeze and restart a redis-server of their own (startRedisServer);
// the shared one is never touched.

// outageBudget is how long a call may take while Redis is down: the fast client's
// timeouts are 200 ms without retries; the rest is slack for the race detector on a
// busy machine. With go-redis's defaults (5 s, 3 retries) a hung server would hold a
// call for 20 s.
const outageBudget = time.Second

// storeOps runs each hook once against userID and reports every error and how long
// each call took.
func storeOps(s *redisstore.Store, userID, current string) map[string]struct {
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
	run("StoreRefreshToken", func() error { return s.StoreRefreshToken(ctx, userID, current) })
	run("RetrieveRefreshToken", func() error { _, err := s.RetrieveRefreshToken(ctx, userID); return err })
	run("SwapRefreshToken", func() error { return s.SwapRefreshToken(ctx, userID, current, current) })
	run("RevokeRefreshToken", func() error { return s.RevokeRefreshToken(ctx, userID) })
	return out
}

// wantPromptErrors fails t unless every hook fails promptly with a Redis error.
func wantPromptErrors(t *testing.T, s *redisstore.Store, userID string) {
	t.Helper()
	for name, r := range storeOps(s, userID, digest(newToken(t))) {
		wantRedisError(t, name+" while Redis is down", r.err)
		if r.elapsed > outageBudget {
			t.Errorf("%s took %v while Redis is down, want at most %v", name, r.elapsed, outageBudget)
		}
	}
}

// waitUp polls until the store answers again (a retrieve that is not a Redis error),
// for at most 10 s: the first commands after a restart may still meet a connection
// the pool has not yet found dead.
func waitUp(t *testing.T, s *redisstore.Store, userID string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.RetrieveRefreshToken(context.Background(), userID)
		if err == nil || errors.Is(err, jwtauth.ErrRefreshTokenNotFound) {
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
	ctx := context.Background()
	d0 := digest(newToken(t))
	if err := s.StoreRefreshToken(ctx, "alice", d0); err != nil {
		t.Fatal(err)
	}
	waitUp(t, fast, "alice") // fast has a pooled connection to lose

	srv.Kill()
	// Twice: first on the pooled connection Redis just dropped, then on new dials.
	wantPromptErrors(t, fast, "alice")
	wantPromptErrors(t, fast, "alice")

	srv.Restart()
	waitUp(t, fast, "alice")      // the same client recovers by itself
	wantStored(t, s, "alice", d0) // kept in the append-only file across the crash
	d1 := digest(newToken(t))
	if err := s.SwapRefreshToken(ctx, "alice", d0, d1); err != nil {
		t.Fatalf("SwapRefreshToken after Redis came back: %v", err)
	}
	wantStored(t, s, "alice", d1)
	if err := s.RevokeRefreshToken(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	_, err := s.RetrieveRefreshToken(ctx, "alice")
	wantNotFound(t, "RetrieveRefreshToken after revoke", err)
}

func TestRedisHung(t *testing.T) {
	// A server that accepts connections but never answers (SIGSTOP): each call ends
	// at the client's ReadTimeout instead of hanging.
	srv := startRedisServer(t)
	fast := redisstore.New(newClient(t, srv.Addr(), fastTimeout), redisstore.Options{})
	s := redisstore.New(newClient(t, srv.Addr(), lenientTimeout), redisstore.Options{})
	ctx := context.Background()
	d0, d1 := digest(newToken(t)), digest(newToken(t))
	if err := s.StoreRefreshToken(ctx, "alice", d0); err != nil {
		t.Fatal(err)
	}

	srv.Freeze()
	start := time.Now()
	_, err := fast.RetrieveRefreshToken(ctx, "alice")
	wantRedisError(t, "RetrieveRefreshToken while Redis hangs", err)
	err = fast.SwapRefreshToken(ctx, "alice", d0, d1)
	wantRedisError(t, "SwapRefreshToken while Redis hangs", err)
	if el := time.Since(start); el > 2*outageBudget {
		t.Errorf("two calls took %v while Redis hangs, want at most %v", el, 2*outageBudget)
	}

	srv.Thaw()
	waitUp(t, fast, "alice")
	// The timed-out swap was sent; Redis may have run it after waking up. Either
	// outcome is consistent, and the package doc warns about it.
	got, err := s.RetrieveRefreshToken(ctx, "alice")
	if err != nil || (got != d0 && got != d1) {
		t.Fatalf("after the hang: %q, %v; want %q (swap not applied) or %q (applied)", got, err, d0, d1)
	}
	d2 := digest(newToken(t))
	if err := s.SwapRefreshToken(ctx, "alice", got, d2); err != nil {
		t.Fatalf("SwapRefreshToken after the hang: %v", err)
	}
	wantStored(t, s, "alice", d2)
}

func TestAppendOnlyFileSurvivesCrash(t *testing.T) {
	// appendonly with appendfsync always: every acknowledged write is on disk, so a
	// crash (SIGKILL, no shutdown save) loses no token, rotation or revocation.
	srv := startRedisServer(t, "--appendonly", "yes", "--appendfsync", "always")
	c := newClient(t, srv.Addr(), lenientTimeout)
	s := redisstore.New(c, redisstore.Options{TTL: time.Hour})
	ctx := context.Background()
	a0, a1, b0, c0 := digest(newToken(t)), digest(newToken(t)), digest(newToken(t)), digest(newToken(t))
	for user, d := range map[string]string{"alice": a0, "bob": b0, "carol": c0} {
		if err := s.StoreRefreshToken(ctx, user, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SwapRefreshToken(ctx, "alice", a0, a1); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeRefreshToken(ctx, "carol"); err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	srv.Restart()
	waitUp(t, s, "alice")
	if len(srv.appendOnlyFiles()) == 0 {
		t.Fatalf("no append-only file in %s", srv.dir)
	}
	wantStored(t, s, "alice", a1) // the rotation survived
	wantStored(t, s, "bob", b0)
	_, err := s.RetrieveRefreshToken(ctx, "carol")
	wantNotFound(t, "RetrieveRefreshToken of a revoked token after restart", err) // so did the revocation
	err = s.SwapRefreshToken(ctx, "alice", a0, digest(newToken(t)))
	wantNotFound(t, "SwapRefreshToken with the rotated-out digest after restart", err)
	if ms := pttl(t, c, redisstore.DefaultPrefix+"bob"); ms <= 0 || ms > time.Hour.Milliseconds() {
		t.Fatalf("PTTL of bob's key after restart = %d ms, want its TTL kept", ms)
	}
	b1 := digest(newToken(t))
	if err := s.SwapRefreshToken(ctx, "bob", b0, b1); err != nil {
		t.Fatalf("SwapRefreshToken after restart: %v", err)
	}
	wantStored(t, s, "bob", b1)
}
