package jwtauth

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// memBenchUsers is the number of distinct keys the per-operation benchmarks cycle
// through: enough that the map does not sit in L1 cache.
const memBenchUsers = 1 << 16

// memBenchTTL is the TTL the benchmarks write with: the refresh default, so that every
// entry carries an expiry, as in the package's use.
const memBenchTTL = defaultIdleTimeout

// memBenchValue is a value of the size the package stores for a user with one
// session (a record of one session and its MAC), named by name.
func memBenchValue(name string) []byte {
	v := make([]byte, 2+sessionSize+recordMACSize)
	copy(v, name)
	return v
}

// memBenchData returns user ids of 10 characters, as a typical numeric or short id,
// and one value per user.
func memBenchData(n int) (users []string, values [][]byte) {
	users = make([]string, n)
	values = make([][]byte, n)
	for i := range users {
		users[i] = fmt.Sprintf("user%06d", i)
		values[i] = memBenchValue(users[i])
	}
	return users, values
}

func BenchmarkMemStore(b *testing.B) {
	ctx := context.Background()
	users, values := memBenchData(memBenchUsers)
	full := func() *MemStore {
		s := new(MemStore)
		for i, u := range users {
			memSwap(b, s, u, nil, values[i], memBenchTTL, true)
		}
		return s
	}

	b.Run("Load", func(b *testing.B) {
		s := full()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if v, err := s.Load(ctx, users[i%memBenchUsers]); err != nil || v == nil {
				b.Fatal(v, err)
			}
		}
	})

	b.Run("LoadMissing", func(b *testing.B) {
		s := new(MemStore)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if v, err := s.Load(ctx, users[i%memBenchUsers]); err != nil || v != nil {
				b.Fatal("found a value never stored")
			}
		}
	})

	b.Run("CompareAndSwap", func(b *testing.B) {
		// Each user's value alternates between two, the one stored and the
		// next, so every swap succeeds: a refresh's rotation.
		s := full()
		next := make([][]byte, memBenchUsers)
		for i, u := range users {
			next[i] = memBenchValue(u + "'")
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			k, round := i%memBenchUsers, i/memBenchUsers
			old, replacement := values[k], next[k]
			if round%2 == 1 {
				old, replacement = replacement, old
			}
			if ok, err := s.CompareAndSwap(ctx, users[k], old, replacement, memBenchTTL); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})

	b.Run("CompareAndSwapMiss", func(b *testing.B) {
		// A replayed, rotated-out value: the compare fails and nothing is written.
		s := full()
		stale := memBenchValue("stale")
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			k := i % memBenchUsers
			if ok, err := s.CompareAndSwap(ctx, users[k], stale, values[k], memBenchTTL); err != nil || ok {
				b.Fatal(ok, err)
			}
		}
	})

	b.Run("InsertDelete", func(b *testing.B) {
		// A login into an empty slot, then a logout: the map grows and shrinks by one.
		s := full()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			k := i % memBenchUsers
			if ok, err := s.CompareAndSwap(ctx, users[k], values[k], nil, 0); err != nil || !ok {
				b.Fatal(ok, err)
			}
			if ok, err := s.CompareAndSwap(ctx, users[k], nil, values[k], memBenchTTL); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})

	b.Run("LoadParallel", func(b *testing.B) {
		s := full()
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if v, err := s.Load(ctx, users[i%memBenchUsers]); err != nil || v == nil {
					b.Error(v, err)
					return
				}
			}
		})
	})

	b.Run("CompareAndSwapParallel", func(b *testing.B) {
		// Every goroutine swaps the same keys: a swap fails when another goroutine
		// moved the value first, which is the store doing its job under contention.
		s := full()
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				k := i % memBenchUsers
				if _, err := s.CompareAndSwap(ctx, users[k], values[k], values[k], memBenchTTL); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkMemStoreMemory stores one value for each of 1M users and reports the live
// heap it costs per value (user id included: the store keeps its own copy) and how long
// a full sweep of that store holds the lock. Run it with -benchtime=1x.
func BenchmarkMemStoreMemory(b *testing.B) {
	const users = 1_000_000
	if testing.Short() {
		b.Skip("stores 1M values")
	}
	ctx := context.Background()
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		// The values are made up front (the store copies them, so they become garbage
		// once stored); the user ids are made inside the measurement, so that the
		// store's copies are what remains of them.
		values := make([][]byte, users)
		for i := range values {
			values[i] = memBenchValue(fmt.Sprint(i))
		}
		before := memHeap()
		b.StartTimer()

		s := new(MemStore)
		for i, d := range values {
			if ok, err := s.CompareAndSwap(ctx, fmt.Sprintf("user%06d", i), nil, d, memBenchTTL); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}

		b.StopTimer()
		values = nil
		after := memHeap()
		s.mu.Lock()
		t0 := time.Now()
		s.sweepLocked(time.Now().UnixNano()) // nothing expired: the cost of visiting every entry
		sweep := time.Since(t0)
		s.mu.Unlock()
		if s.len() != users {
			b.Fatalf("len = %d; want %d", s.len(), users)
		}
		runtime.KeepAlive(s)
		b.ReportMetric(float64(after-before)/users, "B/value")
		b.ReportMetric(float64(sweep.Microseconds())/1000, "ms/sweep")
		b.StartTimer()
	}
}

// BenchmarkMemStoreSessionMemory logs in 1M users twice each (two sessions, as a phone
// and a laptop) through IssueTokens on a MemStore, and reports the live heap per session:
// the record (two sessions and its MAC), the user id, the map entry. Run it with
// -benchtime=1x.
func BenchmarkMemStoreSessionMemory(b *testing.B) {
	const users = 1_000_000
	if testing.Short() {
		b.Skip("opens 2M sessions")
	}
	ctx := context.Background()
	for n := 0; n < b.N; n++ {
		st := new(MemStore)
		a, err := New(Config{Secret: testSecret, RetrieveUser: userFromClaims, Refresh: &Refresh{Store: st}})
		if err != nil {
			b.Fatal(err)
		}
		before := memHeap()
		for i := 0; i < users; i++ {
			u := &User{ID: fmt.Sprintf("user%07d", i)}
			for j := 0; j < 2; j++ {
				if _, err := a.IssueTokens(ctx, u); err != nil {
					b.Fatal(err)
				}
			}
		}
		after := memHeap()
		runtime.KeepAlive(st)
		b.ReportMetric(float64(after-before)/(2*users), "B/session")
	}
}
