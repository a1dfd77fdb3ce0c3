package jwtauth

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// memBenchUsers is the number of distinct users the per-operation benchmarks cycle
// through: enough that the map does not sit in L1 cache.
const memBenchUsers = 1 << 16

// memBenchData returns user ids of 10 characters, as a typical numeric or short id,
// and one digest per user.
func memBenchData(n int) (users, digests []string) {
	users = make([]string, n)
	digests = make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("user%06d", i)
		digests[i] = memDigest(users[i])
	}
	return users, digests
}

func BenchmarkMemStore(b *testing.B) {
	ctx := context.Background()
	users, digests := memBenchData(memBenchUsers)
	full := func() *MemStore {
		s := NewMemStore()
		for i, u := range users {
			memPut(b, s, u, digests[i])
		}
		return s
	}

	b.Run("Store", func(b *testing.B) {
		s := full()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			k := i % memBenchUsers
			if err := s.StoreRefreshToken(ctx, users[k], digests[k]); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("Retrieve", func(b *testing.B) {
		s := full()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := s.RetrieveRefreshToken(ctx, users[i%memBenchUsers]); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("RetrieveMissing", func(b *testing.B) {
		s := NewMemStore()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := s.RetrieveRefreshToken(ctx, users[i%memBenchUsers]); err == nil {
				b.Fatal("found a token never stored")
			}
		}
	})

	b.Run("Swap", func(b *testing.B) {
		// Each user's token alternates between two digests: the one stored and the
		// next, so every swap succeeds.
		s := full()
		next := make([]string, memBenchUsers)
		for i, u := range users {
			next[i] = memDigest(u + "'")
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			k, round := i%memBenchUsers, i/memBenchUsers
			presented, replacement := digests[k], next[k]
			if round%2 == 1 {
				presented, replacement = replacement, presented
			}
			if err := s.SwapRefreshToken(ctx, users[k], presented, replacement); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("RetrieveParallel", func(b *testing.B) {
		s := full()
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, err := s.RetrieveRefreshToken(ctx, users[i%memBenchUsers]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkMemStoreMemory stores one token for each of 1M users and reports the live
// heap it costs per token (user id included: the store keeps its own copy) and how long
// a full sweep of that store holds the lock. Run it with -benchtime=1x.
func BenchmarkMemStoreMemory(b *testing.B) {
	const users = 1_000_000
	if testing.Short() {
		b.Skip("stores 1M tokens")
	}
	ctx := context.Background()
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		// The digests are made up front (they become garbage once stored, the store
		// decodes them); the user ids are made inside the measurement, so that the
		// store's copies are what remains of them.
		digests := make([]string, users)
		for i := range digests {
			digests[i] = memDigest(fmt.Sprint(i))
		}
		before := memHeap()
		b.StartTimer()

		s := NewMemStore()
		for i, d := range digests {
			if err := s.StoreRefreshToken(ctx, fmt.Sprintf("user%06d", i), d); err != nil {
				b.Fatal(err)
			}
		}

		b.StopTimer()
		digests = nil
		after := memHeap()
		t0 := time.Now()
		s.Sweep() // nothing expired: the cost of visiting every entry
		sweep := time.Since(t0)
		if s.Len() != users {
			b.Fatalf("Len = %d; want %d", s.Len(), users)
		}
		runtime.KeepAlive(s)
		b.ReportMetric(float64(after-before)/users, "B/token")
		b.ReportMetric(float64(sweep.Microseconds())/1000, "ms/sweep")
		b.StartTimer()
	}
}
