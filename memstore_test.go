package jwtauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

var _ Store = (*MemStore)(nil)

// memVal is a test value named by name. MemStore holds whatever bytes it is given;
// these are 24 bytes, about the size of a small opaque value.
func memVal(name string) []byte { return []byte(fmt.Sprintf("value-%018s", name)) }

// newMemClock is the fake clock of the HTTP tests (clock, in endpoints_test.go), set
// to a fixed start.
func newMemClock() *clock { return &clock{t: time.Unix(1_700_000_000, 0)} }

// newClockedMemStore returns an empty MemStore on clock.
func newClockedMemStore(clock *clock) *MemStore {
	s := new(MemStore)
	s.now = clock.now
	return s
}

// memSwap fails unless CompareAndSwap(key, old, new, ttl) answers want and no error.
func memSwap(t testing.TB, s *MemStore, key string, old, new []byte, ttl time.Duration, want bool) {
	t.Helper()
	ok, err := s.CompareAndSwap(context.Background(), key, old, new, ttl)
	if err != nil || ok != want {
		t.Fatalf("CompareAndSwap(%q, %q, %q, %v) = %v, %v; want %v, nil", key, old, new, ttl, ok, err, want)
	}
}

// memWant fails unless key's value is want (nil: no live value).
func memWant(t testing.TB, s *MemStore, key string, want []byte) {
	t.Helper()
	got, err := s.Load(context.Background(), key)
	if err != nil || !bytes.Equal(got, want) || (got == nil) != (want == nil) {
		t.Fatalf("Load(%q) = %q, %v; want %q, nil", key, got, err, want)
	}
}

func TestMemStoreZeroValueIsReady(t *testing.T) {
	var s MemStore
	memWant(t, &s, "alice", nil)
	memSwap(t, &s, "alice", nil, memVal("a"), 0, true)
	memWant(t, &s, "alice", memVal("a"))
	if n := s.len(); n != 1 {
		t.Errorf("len = %d; want 1", n)
	}
}

func TestMemStoreLoadReturnsStoredValue(t *testing.T) {
	s := new(MemStore)
	memSwap(t, s, "alice", nil, memVal("a"), time.Hour, true)
	memSwap(t, s, "bob", nil, memVal("b"), 0, true)
	memWant(t, s, "alice", memVal("a"))
	memWant(t, s, "bob", memVal("b"))
	memWant(t, s, "Alice", nil) // keys are compared exactly
	if n := s.len(); n != 2 {
		t.Errorf("len = %d; want 2", n)
	}
}

func TestMemStoreCompareAndSwapReplacesCurrentValue(t *testing.T) {
	s := new(MemStore)
	old, next := memVal("old"), memVal("next")
	memSwap(t, s, "alice", nil, old, 0, true)
	memSwap(t, s, "alice", old, next, 0, true)
	memWant(t, s, "alice", next)
	// The rotated-out value cannot be swapped again (a replay).
	memSwap(t, s, "alice", old, memVal("third"), 0, false)
	memWant(t, s, "alice", next)
	if n := s.len(); n != 1 {
		t.Errorf("len = %d; want 1 (one value per key)", n)
	}
}

func TestMemStoreCompareAndSwapStaleValueFailsAndKeepsStored(t *testing.T) {
	s := new(MemStore)
	current := memVal("current")
	memSwap(t, s, "alice", nil, current, 0, true)
	for _, old := range [][]byte{
		memVal("stale"),          // a rotated-out value
		{},                       // empty
		current[:len(current)-1], // a prefix
		[]byte("current"),        // the name alone
		append(bytes.Clone(current[:len(current)-1]), current[len(current)-1]^1), // off by the last bit
		append(bytes.Clone(current), 0),                                          // one byte more
	} {
		memSwap(t, s, "alice", old, memVal("attacker"), 0, false)
		memSwap(t, s, "alice", old, nil, 0, false) // nor delete it
		memWant(t, s, "alice", current)
	}
}

func TestMemStoreNilOldMeansOnlyIfAbsent(t *testing.T) {
	s := new(MemStore)
	memSwap(t, s, "alice", nil, memVal("a"), 0, true)
	memSwap(t, s, "alice", nil, memVal("b"), 0, false)
	memWant(t, s, "alice", memVal("a"))
}

func TestMemStoreNilNewDeletes(t *testing.T) {
	s := new(MemStore)
	memSwap(t, s, "alice", nil, memVal("a"), 0, true)
	memSwap(t, s, "bob", nil, memVal("b"), 0, true)
	memSwap(t, s, "alice", nil, nil, 0, false) // "only if absent" does not delete a value
	memSwap(t, s, "alice", memVal("a"), nil, 0, true)
	memWant(t, s, "alice", nil)
	memWant(t, s, "bob", memVal("b"))
	if n := s.len(); n != 1 {
		t.Errorf("len = %d after a delete; want 1", n)
	}
	memSwap(t, s, "alice", memVal("a"), nil, 0, false) // already gone
}

func TestMemStoreMissingKey(t *testing.T) {
	s := new(MemStore)
	memWant(t, s, "nobody", nil)
	memSwap(t, s, "nobody", memVal("a"), memVal("b"), 0, false)
	memSwap(t, s, "nobody", memVal("a"), nil, 0, false)
	if n := s.len(); n != 0 {
		t.Errorf("len = %d after failed swaps; want 0", n)
	}
}

// The package stores binary session records, and a direct caller may store any bytes;
// they must come back unchanged, including near misses of another value, text a careless
// store would normalise, and the empty value (which is not "absent").
func TestMemStoreKeepsAnyValueExactly(t *testing.T) {
	d := memVal("x")
	n := len(d)
	values := [][]byte{
		{}, []byte("tok"), d, append(bytes.Clone(d), '='), d[:n-1], append(bytes.Clone(d), 'A'),
		append([]byte("\n"), d[1:]...),
		append(bytes.Clone(d[:n-1]), 'B'), // d with its last byte changed
		append([]byte("+"), d[1:]...),     // d with its first byte changed
		append(bytes.Clone(d), 0),         // a trailing NUL a C string would drop
		[]byte("héllo"), []byte("he\u0301llo"), {0xff, 0}, {0, 0, 0},
	}
	s := new(MemStore)
	for i, v := range values {
		key := "user" + strconv.Itoa(i)
		memSwap(t, s, key, nil, v, 0, true)
		memWant(t, s, key, v)
		// Swap in both directions between d and the odd value.
		memSwap(t, s, key, v, d, 0, true)
		memWant(t, s, key, d)
		memSwap(t, s, key, d, v, 0, true)
		memWant(t, s, key, v)
	}
	if n := s.len(); n != len(values) {
		t.Errorf("len = %d; want %d (one entry per key whatever the value)", n, len(values))
	}
	for i, v := range values {
		memSwap(t, s, "user"+strconv.Itoa(i), v, nil, 0, true)
	}
	if n := s.len(); n != 0 {
		t.Errorf("len = %d after deleting all; want 0", n)
	}
}

// TestMemStoreClonesValues: the store keeps its own copy of a value, and hands out
// copies: neither the caller's slice nor a loaded one aliases what it holds.
func TestMemStoreClonesValues(t *testing.T) {
	s := new(MemStore)
	v := []byte("value")
	memSwap(t, s, "alice", nil, v, 0, true)
	v[0] = 'X'
	memWant(t, s, "alice", []byte("value"))
	got, _ := s.Load(context.Background(), "alice")
	got[0] = 'Y'
	memWant(t, s, "alice", []byte("value"))
}

// TestMemStoreClonesKeys: a key that is a substring of a larger string (a token
// payload, a request body) is copied, so that the entry does not keep the larger string
// alive.
func TestMemStoreClonesKeys(t *testing.T) {
	big := strings.Repeat("x", 1<<20) + "alice"
	key := big[len(big)-5:]
	s := new(MemStore)
	memSwap(t, s, key, nil, []byte("v"), 0, true)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.m {
		if unsafe.StringData(k) == unsafe.StringData(key) {
			t.Error("the map holds the caller's key string, not a copy")
		}
	}
}

func TestMemStoreValueExpiresAfterTTL(t *testing.T) {
	clock := newMemClock()
	s := newClockedMemStore(clock)
	d := memVal("a")
	memSwap(t, s, "alice", nil, d, time.Hour, true)
	clock.add(time.Hour - time.Nanosecond)
	memWant(t, s, "alice", d)
	clock.add(time.Nanosecond)
	memWant(t, s, "alice", nil)
	if n := s.len(); n != 0 {
		t.Errorf("len = %d; want 0: a load drops the expired entry", n)
	}
}

func TestMemStoreZeroTTLNeverExpires(t *testing.T) {
	clock := newMemClock()
	s := newClockedMemStore(clock)
	memSwap(t, s, "alice", nil, memVal("a"), 0, true)
	clock.add(100 * 365 * 24 * time.Hour)
	memWant(t, s, "alice", memVal("a"))
	memSwap(t, s, "alice", memVal("a"), memVal("b"), 0, true)
}

func TestMemStoreHugeTTLDoesNotOverflow(t *testing.T) {
	clock := newMemClock()
	s := newClockedMemStore(clock)
	memSwap(t, s, "alice", nil, memVal("a"), math.MaxInt64, true)
	memWant(t, s, "alice", memVal("a"))
	clock.add(100 * 365 * 24 * time.Hour)
	memWant(t, s, "alice", memVal("a"))
}

// TestMemStoreExpiredValueCountsAsAbsent: an expired value can no longer be swapped
// away nor deleted by a caller that presents it, and "only if absent" succeeds over it.
func TestMemStoreExpiredValueCountsAsAbsent(t *testing.T) {
	clock := newMemClock()
	s := newClockedMemStore(clock)
	memSwap(t, s, "alice", nil, memVal("a"), time.Hour, true)
	memSwap(t, s, "bob", nil, memVal("b"), time.Hour, true)
	clock.add(time.Hour)
	memSwap(t, s, "alice", memVal("a"), memVal("c"), time.Hour, false)
	memSwap(t, s, "alice", memVal("a"), nil, 0, false)
	memWant(t, s, "alice", nil)
	memSwap(t, s, "bob", nil, memVal("d"), time.Hour, true)
	memWant(t, s, "bob", memVal("d"))
}

// TestMemStoreEachSwapSetsItsTTL: the TTL belongs to the write, not to the store.
func TestMemStoreEachSwapSetsItsTTL(t *testing.T) {
	clock := newMemClock()
	s := newClockedMemStore(clock)
	memSwap(t, s, "alice", nil, memVal("a"), time.Hour, true)
	clock.add(50 * time.Minute)
	memSwap(t, s, "alice", memVal("a"), memVal("b"), time.Hour, true)
	clock.add(50 * time.Minute) // 100 minutes after the insert, 50 after the swap
	memWant(t, s, "alice", memVal("b"))
	memSwap(t, s, "alice", memVal("b"), memVal("c"), time.Minute, true) // shorter
	clock.add(time.Minute)
	memWant(t, s, "alice", nil)
	memSwap(t, s, "alice", nil, memVal("d"), time.Minute, true)
	memSwap(t, s, "alice", memVal("d"), memVal("d"), 0, true) // same value, no expiry
	clock.add(24 * time.Hour)
	memWant(t, s, "alice", memVal("d"))
}

func TestMemStoreDoneContextChangesNothing(t *testing.T) {
	s := new(MemStore)
	memSwap(t, s, "alice", nil, memVal("a"), 0, true)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	for _, ctx := range []context.Context{cancelled, expired} {
		want := ctx.Err()
		if ok, err := s.CompareAndSwap(ctx, "alice", memVal("a"), memVal("c"), 0); ok || !errors.Is(err, want) {
			t.Errorf("CompareAndSwap = %v, %v; want false, %v", ok, err, want)
		}
		if ok, err := s.CompareAndSwap(ctx, "alice", memVal("a"), nil, 0); ok || !errors.Is(err, want) {
			t.Errorf("CompareAndSwap (delete) = %v, %v; want false, %v", ok, err, want)
		}
		if ok, err := s.CompareAndSwap(ctx, "bob", nil, memVal("b"), 0); ok || !errors.Is(err, want) {
			t.Errorf("CompareAndSwap (insert) = %v, %v; want false, %v", ok, err, want)
		}
		if v, err := s.Load(ctx, "alice"); v != nil || !errors.Is(err, want) {
			t.Errorf("Load = %q, %v; want nil, %v", v, err, want)
		}
	}
	memWant(t, s, "alice", memVal("a"))
	memWant(t, s, "bob", nil)
}

func TestMemStoreNegativeTTLIsAnError(t *testing.T) {
	s := new(MemStore)
	ok, err := s.CompareAndSwap(context.Background(), "alice", nil, memVal("a"), -time.Nanosecond)
	if ok || err == nil || !strings.Contains(err.Error(), "negative TTL") {
		t.Fatalf("CompareAndSwap with a negative TTL = %v, %v; want false and an error", ok, err)
	}
	memWant(t, s, "alice", nil)
	memSwap(t, s, "alice", nil, memVal("a"), 0, true)
	if ok, err := s.CompareAndSwap(context.Background(), "alice", memVal("a"), nil, -time.Hour); ok || err == nil {
		t.Fatalf("delete with a negative TTL = %v, %v; want false and an error", ok, err)
	}
	memWant(t, s, "alice", memVal("a"))
}

// memHeap returns the live heap after a full collection.
func memHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestMemStoreSweepShrinksTheMap: once most entries have expired, the sweep a write
// runs drops them and copies what is left into a new map (Go maps never shrink), so the
// heap goes back down with no background goroutine and no explicit call.
func TestMemStoreSweepShrinksTheMap(t *testing.T) {
	const users = 130_000 // just under a sweep: sweeps run at 1023, 2045, ..., 130817 entries
	clock := newMemClock()
	start := memHeap()
	s := newClockedMemStore(clock)
	for i := range users {
		memSwap(t, s, "user"+strconv.Itoa(i), nil, memVal(strconv.Itoa(i)), time.Minute, true)
	}
	full := memHeap()
	clock.add(time.Minute)
	fresh := 0
	for swept := false; !swept; {
		n := s.len()
		memSwap(t, s, "fresh"+strconv.Itoa(fresh), nil, []byte("v"), 0, true)
		fresh++
		swept = s.len() < n
		if fresh > users {
			t.Fatalf("%d writes and no sweep", fresh)
		}
	}
	if n := s.len(); n != fresh {
		t.Fatalf("len = %d after the sweep; want the %d live entries", n, fresh)
	}
	s.mu.Lock()
	peak, sweepAt := s.peak, s.sweepAt
	s.mu.Unlock()
	if peak != fresh || sweepAt != 2*(fresh-1) {
		t.Errorf("peak %d, sweepAt %d after the sweep; want %d and %d", peak, sweepAt, fresh, 2*(fresh-1))
	}
	end := memHeap()
	runtime.KeepAlive(s)
	t.Logf("heap: start %d KiB, %d entries %d KiB, after %d writes and the sweep %d KiB",
		start>>10, users, full>>10, fresh, end>>10)
	if end > start+2<<20 {
		t.Errorf("heap after the sweep is %d KiB above the start; want < 2 MiB", (end-start)>>10)
	}
}

// Under churn (new users keep logging in while old values expire) the amortised sweep
// inside writes keeps the store within about twice the live values.
func TestMemStoreWritesSweepExpiredValues(t *testing.T) {
	const batch = 2_000 // live values at any time
	clock := newMemClock()
	s := newClockedMemStore(clock)
	most := 0
	for round := range 12 {
		for i := range batch {
			memSwap(t, s, fmt.Sprintf("r%d-u%d", round, i), nil, memVal(strconv.Itoa(i)), time.Minute, true)
			most = max(most, s.len())
		}
		clock.add(time.Minute) // this round's users expire
	}
	if most > 2*batch {
		t.Errorf("store held up to %d entries for %d live values; want at most %d", most, batch, 2*batch)
	}
	t.Logf("%d writes, at most %d entries held", 12*batch, most)
}

// TestMemStoreSmallStoreIsNotSwept: below memMinSweepAt entries no write sweeps, so a
// small store does not pay for a sweep on every other write; expired entries wait for
// their next load.
func TestMemStoreSmallStoreIsNotSwept(t *testing.T) {
	clock := newMemClock()
	s := newClockedMemStore(clock)
	for i := range memMinSweepAt - 2 {
		memSwap(t, s, "u"+strconv.Itoa(i), nil, []byte("v"), time.Minute, true)
	}
	clock.add(time.Minute)
	memSwap(t, s, "last", nil, []byte("v"), 0, true)
	if n := s.len(); n != memMinSweepAt-1 {
		t.Errorf("len = %d; want %d (no sweep yet)", n, memMinSweepAt-1)
	}
	memSwap(t, s, "one more", nil, []byte("v"), 0, true) // brings it to memMinSweepAt
	if n := s.len(); n != 2 {
		t.Errorf("len = %d after the first sweep; want 2 (last and one more)", n)
	}
}

// The refresh race: many requests present the same value at once; exactly one swaps it.
func TestMemStoreConcurrentSwapsExactlyOneWins(t *testing.T) {
	const n = 64
	s := new(MemStore)
	presented := memVal("shared")
	memSwap(t, s, "alice", nil, presented, time.Hour, true)
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		oks   = make([]bool, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ok, err := s.CompareAndSwap(context.Background(), "alice", presented, memVal(strconv.Itoa(i)), time.Hour)
			if err != nil {
				t.Errorf("swap %d: %v", i, err)
			}
			oks[i] = ok
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, ok := range oks {
		switch {
		case ok && winner >= 0:
			t.Errorf("swaps %d and %d both succeeded", winner, i)
		case ok:
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no swap succeeded")
	}
	memWant(t, s, "alice", memVal(strconv.Itoa(winner)))
}

func TestMemStoreConcurrentUseIsSafe(t *testing.T) {
	const (
		workers = 16
		ops     = 400
		users   = 8
	)
	clock := newMemClock()
	s := newClockedMemStore(clock)
	values := make(map[string]bool)
	for i := range 4 {
		values[string(memVal(strconv.Itoa(i)))] = true
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for i := range ops {
				user := "user" + strconv.Itoa((w+i)%users)
				d, next := memVal(strconv.Itoa(i%4)), memVal(strconv.Itoa((i+1)%4))
				var err error
				switch i % 5 {
				case 0:
					_, err = s.CompareAndSwap(ctx, user, nil, d, time.Minute)
				case 1:
					var got []byte
					got, err = s.Load(ctx, user)
					if got != nil && !values[string(got)] {
						t.Errorf("loaded %q, which no one stored", got)
					}
				case 2:
					_, err = s.CompareAndSwap(ctx, user, d, next, time.Minute)
				case 3:
					_, err = s.CompareAndSwap(ctx, user, d, nil, 0)
				case 4:
					if w == 0 {
						clock.add(time.Second)
					}
					_ = s.len()
				}
				if err != nil {
					t.Errorf("unexpected error: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if n := s.len(); n > users {
		t.Errorf("len = %d; want at most one entry per key (%d)", n, users)
	}
}

// Whatever value is stored comes back byte for byte, and swaps away only when presented
// exactly.
func FuzzMemStoreRoundTrip(f *testing.F) {
	d := string(memVal("x"))
	for _, seed := range []string{"", "tok", d, d[:len(d)-1] + "B", d + "=", "\r" + d[1:], "\x00", "\xff\xfe"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		s := new(MemStore)
		v := []byte(value)
		memSwap(t, s, "u", nil, v, time.Hour, true)
		memWant(t, s, "u", v)
		if value != d {
			memSwap(t, s, "u", []byte(d), []byte("other"), 0, false)
		}
		memSwap(t, s, "u", v, []byte(d), 0, true)
		memWant(t, s, "u", []byte(d))
	})
}

func ExampleMemStore() {
	var store MemStore // the zero value is ready; nothing runs in the background
	ctx := context.Background()

	// A login stores a value only if the key holds none...
	ok, _ := store.CompareAndSwap(ctx, "alice", nil, []byte("first"), 30*24*time.Hour)
	fmt.Println(ok)
	// ...a refresh swaps the presented value for the next, atomically...
	ok, _ = store.CompareAndSwap(ctx, "alice", []byte("first"), []byte("second"), 30*24*time.Hour)
	fmt.Println(ok)
	// ...and presenting the rotated-out value again swaps nothing.
	ok, _ = store.CompareAndSwap(ctx, "alice", []byte("first"), []byte("third"), 30*24*time.Hour)
	fmt.Println(ok)
	v, _ := store.Load(ctx, "alice")
	fmt.Printf("%s\n", v)
	// Output:
	// true
	// true
	// false
	// second
}

// len reports how many entries the store holds, expired ones not yet dropped included.
func (s *MemStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
