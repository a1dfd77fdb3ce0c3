package redisstore_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/jwtauth/jwtauth/redisstore"
)

// The benchmarks run against the shared server (JWTAUTH_REDIS_ADDR), over loopback:
// they measure a round trip to Redis plus the client's work, which is what a refresh
// adds to a request.

func benchStore(b *testing.B) *redisstore.Store {
	b.Helper()
	c := sharedClient(b)
	return redisstore.New(c, redisstore.Options{Prefix: testPrefix(b, c)})
}

func BenchmarkSwap(b *testing.B) {
	ctx := context.Background()
	b.Run("hit", func(b *testing.B) {
		// A rotation: one EVALSHA that compares and sets.
		s := benchStore(b)
		d := [2]string{digest(newToken(b)), digest(newToken(b))}
		if err := s.StoreRefreshToken(ctx, "alice", d[0]); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := s.SwapRefreshToken(ctx, "alice", d[i], d[1-i]); err != nil {
				b.Fatal(err)
			}
			i = 1 - i
		}
	})
	b.Run("stale", func(b *testing.B) {
		// A replayed token: the compare fails and nothing is written.
		s := benchStore(b)
		current, stale := digest(newToken(b)), digest(newToken(b))
		if err := s.StoreRefreshToken(ctx, "alice", current); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := s.SwapRefreshToken(ctx, "alice", stale, current); err == nil {
				b.Fatal("stale swap succeeded")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		// Many users rotating at once, one goroutine per user.
		s := benchStore(b)
		var users atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			user := "user" + strconv.FormatInt(users.Add(1), 10)
			d := [2]string{digest(user + "a"), digest(user + "b")}
			if err := s.StoreRefreshToken(ctx, user, d[0]); err != nil {
				b.Error(err)
				return
			}
			i := 0
			for pb.Next() {
				if err := s.SwapRefreshToken(ctx, user, d[i], d[1-i]); err != nil {
					b.Error(err)
					return
				}
				i = 1 - i
			}
		})
	})
}

func BenchmarkStoreRetrieve(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	d := digest(newToken(b))
	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.StoreRefreshToken(ctx, "alice", d); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("retrieve", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.RetrieveRefreshToken(ctx, "alice"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("store+retrieve", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := s.StoreRefreshToken(ctx, "alice", d); err != nil {
				b.Fatal(err)
			}
			if _, err := s.RetrieveRefreshToken(ctx, "alice"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
