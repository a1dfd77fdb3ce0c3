package jwtauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// MemStore's method values fit the Config hooks.
var (
	_ StoreRefreshTokenFunc    = (*MemStore)(nil).StoreRefreshToken
	_ RetrieveRefreshTokenFunc = (*MemStore)(nil).RetrieveRefreshToken
	_ RevokeRefreshTokenFunc   = (*MemStore)(nil).RevokeRefreshToken
	_ SwapRefreshTokenFunc     = (*MemStore)(nil).SwapRefreshToken
)

// memDigest is what the package hands the hooks for the refresh token tok: its SHA-256
// digest in base64url.
func memDigest(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// newMemClock is the fake clock of the HTTP tests (clock, in endpoints_test.go), set
// to a fixed start.
func newMemClock() *clock { return &clock{t: time.Unix(1_700_000_000, 0)} }

func memPut(t testing.TB, s *MemStore, user, digest string) {
	t.Helper()
	if err := s.StoreRefreshToken(context.Background(), user, digest); err != nil {
		t.Fatalf("StoreRefreshToken(%q): %v", user, err)
	}
}

// memWant fails unless user's stored digest is want.
func memWant(t testing.TB, s *MemStore, user, want string) {
	t.Helper()
	got, err := s.RetrieveRefreshToken(context.Background(), user)
	if err != nil || got != want {
		t.Fatalf("RetrieveRefreshToken(%q) = %q, %v; want %q, nil", user, got, err, want)
	}
}

// memWantNotFound fails unless user has no live token.
func memWantNotFound(t testing.TB, s *MemStore, user string) {
	t.Helper()
	got, err := s.RetrieveRefreshToken(context.Background(), user)
	if !errors.Is(err, ErrRefreshTokenNotFound) || got != "" {
		t.Fatalf("RetrieveRefreshToken(%q) = %q, %v; want ErrRefreshTokenNotFound", user, got, err)
	}
}

func TestMemStoreMethodsWorkAsHooks(t *testing.T) {
	s := NewMemStore()
	defer s.Close()
	var (
		store    StoreRefreshTokenFunc    = s.StoreRefreshToken
		retrieve RetrieveRefreshTokenFunc = s.RetrieveRefreshToken
		swap     SwapRefreshTokenFunc     = s.SwapRefreshToken
		revoke   RevokeRefreshTokenFunc   = s.RevokeRefreshToken
	)
	ctx := context.Background()
	a, b := memDigest("a"), memDigest("b")
	if err := store(ctx, "alice", a); err != nil {
		t.Fatal(err)
	}
	if err := swap(ctx, "alice", a, b); err != nil {
		t.Fatal(err)
	}
	if got, err := retrieve(ctx, "alice"); err != nil || got != b {
		t.Fatalf("retrieve = %q, %v; want %q", got, err, b)
	}
	if err := revoke(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := retrieve(ctx, "alice"); !errors.Is(err, ErrRefreshTokenNotFound) {
		t.Fatalf("retrieve after revoke: %v; want ErrRefreshTokenNotFound", err)
	}
}

func TestMemStoreRetrieveReturnsStoredDigest(t *testing.T) {
	s := NewMemStore()
	memPut(t, s, "alice", memDigest("a"))
	memPut(t, s, "bob", memDigest("b"))
	memWant(t, s, "alice", memDigest("a"))
	memWant(t, s, "bob", memDigest("b"))
	if n := s.Len(); n != 2 {
		t.Errorf("Len = %d; want 2", n)
	}
}

func TestMemStoreSecondStoreReplacesFirst(t *testing.T) {
	s := NewMemStore()
	memPut(t, s, "alice", memDigest("first login"))
	memPut(t, s, "alice", memDigest("second login"))
	memWant(t, s, "alice", memDigest("second login"))
	if n := s.Len(); n != 1 {
		t.Errorf("Len = %d; want 1 (one token per user)", n)
	}
}

func TestMemStoreRevokeForgetsToken(t *testing.T) {
	s := NewMemStore()
	memPut(t, s, "alice", memDigest("a"))
	memPut(t, s, "bob", memDigest("b"))
	if err := s.RevokeRefreshToken(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	memWantNotFound(t, s, "alice")
	memWant(t, s, "bob", memDigest("b"))
}

func TestMemStoreRevokeMissingIsNotAnError(t *testing.T) {
	s := NewMemStore()
	if err := s.RevokeRefreshToken(context.Background(), "nobody"); err != nil {
		t.Fatalf("RevokeRefreshToken(missing) = %v; want nil", err)
	}
}

func TestMemStoreRetrieveMissingIsNotFound(t *testing.T) {
	s := NewMemStore()
	memWantNotFound(t, s, "nobody")
	memPut(t, s, "alice", memDigest("a"))
	memWantNotFound(t, s, "Alice") // user ids are compared exactly
}

func TestMemStoreSwapReplacesPresentedToken(t *testing.T) {
	s := NewMemStore()
	ctx := context.Background()
	old, next := memDigest("old"), memDigest("next")
	memPut(t, s, "alice", old)
	if err := s.SwapRefreshToken(ctx, "alice", old, next); err != nil {
		t.Fatalf("SwapRefreshToken = %v; want nil", err)
	}
	memWant(t, s, "alice", next)
	// The rotated-out token cannot be swapped again (replay).
	err := s.SwapRefreshToken(ctx, "alice", old, memDigest("third"))
	if !errors.Is(err, ErrRefreshTokenNotFound) {
		t.Fatalf("replayed swap = %v; want ErrRefreshTokenNotFound", err)
	}
	memWant(t, s, "alice", next)
}

func TestMemStoreSwapStaleTokenFailsAndKeepsStored(t *testing.T) {
	s := NewMemStore()
	current := memDigest("current")
	memPut(t, s, "alice", current)
	for name, presented := range map[string]string{
		"stale digest":            memDigest("stale"),
		"digest of another user":  memDigest("bob's"),
		"empty":                   "",
		"not a digest":            "current",
		"digest off by last char": current[:42] + "B",
		"digest with padding":     current + "=",
	} {
		err := s.SwapRefreshToken(context.Background(), "alice", presented, memDigest("attacker"))
		if !errors.Is(err, ErrRefreshTokenNotFound) {
			t.Errorf("%s: SwapRefreshToken = %v; want ErrRefreshTokenNotFound", name, err)
		}
		memWant(t, s, "alice", current)
	}
}

func TestMemStoreSwapMissingFails(t *testing.T) {
	s := NewMemStore()
	err := s.SwapRefreshToken(context.Background(), "nobody", memDigest("a"), memDigest("b"))
	if !errors.Is(err, ErrRefreshTokenNotFound) {
		t.Fatalf("SwapRefreshToken(missing) = %v; want ErrRefreshTokenNotFound", err)
	}
	if n := s.Len(); n != 0 {
		t.Errorf("Len = %d after a failed swap; want 0", n)
	}
}

// The hooks are documented to carry base64url SHA-256 digests, but a direct caller may
// store any string; it must come back unchanged, including near misses of a digest that
// a careless decoder would normalise.
func TestMemStoreKeepsAnyStringExactly(t *testing.T) {
	d := memDigest("x")
	values := []string{
		"", "tok", d, d + "=", d[:42], d + "A", "\n" + d[1:], d[:21] + "\n" + d[22:],
		d[:42] + "B", // same bytes as d[:42]+"A" to a lenient decoder: nonzero trailing bits
		"+" + d[1:],  // standard, not URL, alphabet
		"héllo", string([]byte{0xff, 0}),
	}
	ctx := context.Background()
	s := NewMemStore()
	for i, v := range values {
		user := "user" + strconv.Itoa(i)
		memPut(t, s, user, v)
		memWant(t, s, user, v)
		// Swap in both directions between a digest and the odd value.
		if err := s.SwapRefreshToken(ctx, user, v, d); err != nil {
			t.Fatalf("swap %q -> digest: %v", v, err)
		}
		memWant(t, s, user, d)
		if err := s.SwapRefreshToken(ctx, user, d, v); err != nil {
			t.Fatalf("swap digest -> %q: %v", v, err)
		}
		memWant(t, s, user, v)
	}
	if n := s.Len(); n != len(values) {
		t.Errorf("Len = %d; want %d (one entry per user whatever the digest's form)", n, len(values))
	}
	for i := range values {
		if err := s.RevokeRefreshToken(ctx, "user"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Len(); n != 0 {
		t.Errorf("Len = %d after revoking all; want 0", n)
	}
}

func TestMemStoreTokenExpiresAfterTTL(t *testing.T) {
	clock := newMemClock()
	s := NewMemStore(MemStoreTTL(time.Hour), MemStoreClock(clock.now))
	d := memDigest("a")
	memPut(t, s, "alice", d)
	clock.add(time.Hour - time.Nanosecond)
	memWant(t, s, "alice", d)
	clock.add(time.Nanosecond)
	memWantNotFound(t, s, "alice")
	if n := s.Len(); n != 0 {
		t.Errorf("Len = %d; want 0: a lookup drops the expired entry", n)
	}
}

func TestMemStoreDefaultTTLIs30Days(t *testing.T) {
	clock := newMemClock()
	s := NewMemStore(MemStoreClock(clock.now))
	memPut(t, s, "alice", memDigest("a"))
	clock.add(30*24*time.Hour - time.Second)
	memWant(t, s, "alice", memDigest("a"))
	clock.add(time.Second)
	memWantNotFound(t, s, "alice")
}

func TestMemStoreZeroTTLNeverExpires(t *testing.T) {
	clock := newMemClock()
	s := NewMemStore(MemStoreTTL(0), MemStoreClock(clock.now))
	memPut(t, s, "alice", memDigest("a"))
	clock.add(100 * 365 * 24 * time.Hour)
	s.Sweep()
	memWant(t, s, "alice", memDigest("a"))
	if err := s.SwapRefreshToken(context.Background(), "alice", memDigest("a"), memDigest("b")); err != nil {
		t.Fatal(err)
	}
}

func TestMemStoreHugeTTLDoesNotOverflow(t *testing.T) {
	s := NewMemStore(MemStoreTTL(math.MaxInt64))
	memPut(t, s, "alice", memDigest("a"))
	memWant(t, s, "alice", memDigest("a"))
}

func TestMemStoreExpiredTokenCannotBeSwapped(t *testing.T) {
	clock := newMemClock()
	s := NewMemStore(MemStoreTTL(time.Hour), MemStoreClock(clock.now))
	memPut(t, s, "alice", memDigest("a"))
	clock.add(time.Hour)
	err := s.SwapRefreshToken(context.Background(), "alice", memDigest("a"), memDigest("b"))
	if !errors.Is(err, ErrRefreshTokenNotFound) {
		t.Fatalf("SwapRefreshToken(expired) = %v; want ErrRefreshTokenNotFound", err)
	}
	memWantNotFound(t, s, "alice")
}

func TestMemStoreSwapRestartsTTL(t *testing.T) {
	clock := newMemClock()
	s := NewMemStore(MemStoreTTL(time.Hour), MemStoreClock(clock.now))
	memPut(t, s, "alice", memDigest("a"))
	clock.add(50 * time.Minute)
	if err := s.SwapRefreshToken(context.Background(), "alice", memDigest("a"), memDigest("b")); err != nil {
		t.Fatal(err)
	}
	clock.add(50 * time.Minute) // 100 minutes after the store, 50 after the swap
	memWant(t, s, "alice", memDigest("b"))
}

func TestMemStoreDoneContextChangesNothing(t *testing.T) {
	s := NewMemStore()
	memPut(t, s, "alice", memDigest("a"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.StoreRefreshToken(ctx, "alice", memDigest("b")); !errors.Is(err, context.Canceled) {
		t.Errorf("Store = %v; want context.Canceled", err)
	}
	if err := s.SwapRefreshToken(ctx, "alice", memDigest("a"), memDigest("c")); !errors.Is(err, context.Canceled) {
		t.Errorf("Swap = %v; want context.Canceled", err)
	}
	if err := s.RevokeRefreshToken(ctx, "alice"); !errors.Is(err, context.Canceled) {
		t.Errorf("Revoke = %v; want context.Canceled", err)
	}
	if _, err := s.RetrieveRefreshToken(ctx, "alice"); !errors.Is(err, context.Canceled) {
		t.Errorf("Retrieve = %v; want context.Canceled", err)
	}
	memWant(t, s, "alice", memDigest("a"))
}

func TestMemStoreNegativeOptionsPanic(t *testing.T) {
	for name, opt := range map[string]func(){
		"negative TTL":            func() { MemStoreTTL(-time.Second) },
		"negative sweep interval": func() { MemStoreSweepInterval(-time.Second) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			opt()
		}()
	}
}

// memHeap returns the live heap after a full collection.
func memHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestMemStoreSweepReturnsMemory(t *testing.T) {
	const users = 100_000
	clock := newMemClock()
	start := memHeap()
	s := NewMemStore(MemStoreTTL(time.Minute), MemStoreClock(clock.now))
	for i := range users {
		memPut(t, s, "user"+strconv.Itoa(i), memDigest(strconv.Itoa(i)))
	}
	full := memHeap()
	clock.add(time.Minute)
	s.Sweep()
	if n := s.Len(); n != 0 {
		t.Fatalf("Len = %d after Sweep; want 0", n)
	}
	end := memHeap()
	runtime.KeepAlive(s)
	t.Logf("heap: start %d KiB, %d users %d KiB, after sweep %d KiB", start>>10, users, full>>10, end>>10)
	if end > start+2<<20 {
		t.Errorf("heap after sweep is %d KiB above the start; want < 2 MiB", (end-start)>>10)
	}
}

// Under churn (new users keep logging in while old tokens expire) the amortised sweep
// inside writes keeps the store within about twice the live tokens, with no goroutine
// and no call to Sweep.
func TestMemStoreWritesSweepExpiredTokens(t *testing.T) {
	const batch = 2_000 // live tokens at any time
	clock := newMemClock()
	s := NewMemStore(MemStoreTTL(time.Minute), MemStoreClock(clock.now))
	most := 0
	for round := range 12 {
		for i := range batch {
			memPut(t, s, fmt.Sprintf("r%d-u%d", round, i), memDigest(strconv.Itoa(i)))
			most = max(most, s.Len())
		}
		clock.add(time.Minute) // this round's users expire
	}
	if most > 2*batch {
		t.Errorf("store held up to %d entries for %d live tokens; want at most %d", most, batch, 2*batch)
	}
	t.Logf("%d stores, at most %d entries held", 12*batch, most)
}

func TestMemStoreCloseLeavesNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	s := NewMemStore(MemStoreSweepInterval(time.Millisecond))
	if runtime.NumGoroutine() <= before {
		t.Fatal("MemStoreSweepInterval started no goroutine")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v; want nil", err)
	}
	// Close waits for the sweeper, but the runtime may count it for a moment longer.
	for deadline := time.Now().Add(time.Second); runtime.NumGoroutine() > before; {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before, %d after Close", before, runtime.NumGoroutine())
		}
		time.Sleep(time.Millisecond)
	}
	// The store stays usable after Close.
	memPut(t, s, "alice", memDigest("a"))
	memWant(t, s, "alice", memDigest("a"))
}

func TestMemStoreCloseWithoutSweeper(t *testing.T) {
	before := runtime.NumGoroutine()
	s := NewMemStore()
	if n := runtime.NumGoroutine(); n != before {
		t.Errorf("NewMemStore() started %d goroutines; want none", n-before)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMemStoreSweeperDropsExpiredTokens(t *testing.T) {
	clock := newMemClock()
	s := NewMemStore(MemStoreTTL(time.Minute), MemStoreClock(clock.now), MemStoreSweepInterval(time.Millisecond))
	defer s.Close()
	for i := range 100 {
		memPut(t, s, "user"+strconv.Itoa(i), memDigest(strconv.Itoa(i)))
	}
	clock.add(time.Minute)
	for deadline := time.Now().Add(5 * time.Second); s.Len() != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("Len = %d five seconds after expiry; the sweeper did not run", s.Len())
		}
		time.Sleep(time.Millisecond)
	}
}

// The refresh race of SPEC §6: many requests present the same refresh token at once;
// exactly one may rotate it.
func TestMemStoreConcurrentSwapsExactlyOneWins(t *testing.T) {
	const n = 64
	s := NewMemStore()
	presented := memDigest("shared")
	memPut(t, s, "alice", presented)
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = s.SwapRefreshToken(context.Background(), "alice", presented, memDigest(strconv.Itoa(i)))
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("swaps %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, ErrRefreshTokenNotFound):
			t.Errorf("swap %d: %v; want nil or ErrRefreshTokenNotFound", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no swap succeeded")
	}
	memWant(t, s, "alice", memDigest(strconv.Itoa(winner)))
}

func TestMemStoreConcurrentUseIsSafe(t *testing.T) {
	const (
		workers = 16
		ops     = 400
		users   = 8
	)
	clock := newMemClock()
	s := NewMemStore(MemStoreTTL(time.Minute), MemStoreClock(clock.now), MemStoreSweepInterval(time.Millisecond))
	defer s.Close()
	digests := make(map[string]bool)
	for i := range 4 {
		digests[memDigest(strconv.Itoa(i))] = true
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for i := range ops {
				user := "user" + strconv.Itoa((w+i)%users)
				d, next := memDigest(strconv.Itoa(i%4)), memDigest(strconv.Itoa((i+1)%4))
				var err error
				switch i % 5 {
				case 0:
					err = s.StoreRefreshToken(ctx, user, d)
				case 1:
					var got string
					got, err = s.RetrieveRefreshToken(ctx, user)
					if err == nil && !digests[got] {
						t.Errorf("retrieved %q, which no one stored", got)
					}
				case 2:
					err = s.SwapRefreshToken(ctx, user, d, next)
				case 3:
					err = s.RevokeRefreshToken(ctx, user)
				case 4:
					if w == 0 {
						clock.add(time.Second)
					}
					s.Sweep()
					_ = s.Len()
				}
				if err != nil && !errors.Is(err, ErrRefreshTokenNotFound) {
					t.Errorf("unexpected error: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if n := s.Len(); n > users {
		t.Errorf("Len = %d; want at most one entry per user (%d)", n, users)
	}
}

// Whatever string is stored comes back byte for byte, and swaps away.
func FuzzMemStoreRoundTrip(f *testing.F) {
	d := memDigest("x")
	for _, seed := range []string{"", "tok", d, d[:42] + "B", d + "=", "\r" + d[1:]} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, digest string) {
		s := NewMemStore()
		memPut(t, s, "u", digest)
		memWant(t, s, "u", digest)
		if digest != d {
			err := s.SwapRefreshToken(context.Background(), "u", d, "other")
			if !errors.Is(err, ErrRefreshTokenNotFound) {
				t.Fatalf("swap presenting a different digest = %v", err)
			}
		}
		if err := s.SwapRefreshToken(context.Background(), "u", digest, d); err != nil {
			t.Fatalf("swap presenting the stored value: %v", err)
		}
		memWant(t, s, "u", d)
	})
}

func ExampleMemStore() {
	store := NewMemStore() // tokens live 30 days; no goroutine
	defer store.Close()
	ctx := context.Background()
	// The hooks receive the SHA-256 digest of a refresh token, never the token.
	digest := func(token string) string {
		sum := sha256.Sum256([]byte(token))
		return base64.RawURLEncoding.EncodeToString(sum[:])
	}

	// Login stores the digest of a new refresh token...
	_ = store.StoreRefreshToken(ctx, "alice", digest("first"))
	// ...and a refresh swaps the presented one for the next, atomically.
	err := store.SwapRefreshToken(ctx, "alice", digest("first"), digest("second"))
	fmt.Println(err)
	// Replaying the rotated-out token fails.
	err = store.SwapRefreshToken(ctx, "alice", digest("first"), digest("third"))
	fmt.Println(errors.Is(err, ErrRefreshTokenNotFound))
	// Output:
	// <nil>
	// true
}
