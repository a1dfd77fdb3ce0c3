package redisstore_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtauth/jwtauth"
	"github.com/jwtauth/jwtauth/redisstore"
	"github.com/jwtauth/jwtauth/storetest"
)

// The benchmarks run against the shared server (JWTAUTH_REDIS_ADDR), over loopback:
// they measure a round trip to Redis plus the client's work, which is what each store
// call adds to a request.

func benchStore(b *testing.B) *redisstore.Store {
	b.Helper()
	c := sharedClient(b)
	return redisstore.New(c, redisstore.Options{Prefix: testPrefix(b, c)})
}

// benchTTL is what jwtauth passes by default (Refresh.IdleTimeout, 30 days).
const benchTTL = 30 * 24 * time.Hour

func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	d := newDigest(b)
	if ok, err := s.CompareAndSwap(ctx, "alice", nil, d, benchTTL); !ok || err != nil {
		b.Fatal(ok, err)
	}
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if v, err := s.Load(ctx, "alice"); v == nil || err != nil {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if v, err := s.Load(ctx, "nobody"); v != nil || err != nil {
				b.Fatal(v, err)
			}
		}
	})
}

func BenchmarkCompareAndSwap(b *testing.B) {
	ctx := context.Background()
	b.Run("hit", func(b *testing.B) {
		// A rotation: one EVALSHA that compares and sets.
		s := benchStore(b)
		d := [2][]byte{newDigest(b), newDigest(b)}
		if ok, err := s.CompareAndSwap(ctx, "alice", nil, d[0], benchTTL); !ok || err != nil {
			b.Fatal(ok, err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if ok, err := s.CompareAndSwap(ctx, "alice", d[i], d[1-i], benchTTL); !ok || err != nil {
				b.Fatal(ok, err)
			}
			i = 1 - i
		}
	})
	b.Run("conflict", func(b *testing.B) {
		// A replayed token, or a lost race: the compare fails and nothing is written.
		s := benchStore(b)
		current, stale := newDigest(b), newDigest(b)
		if ok, err := s.CompareAndSwap(ctx, "alice", nil, current, benchTTL); !ok || err != nil {
			b.Fatal(ok, err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := s.CompareAndSwap(ctx, "alice", stale, current, benchTTL); ok || err != nil {
				b.Fatal(ok, err)
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
			d := [2][]byte{[]byte(digest(user + "a")), []byte(digest(user + "b"))}
			if ok, err := s.CompareAndSwap(ctx, user, nil, d[0], benchTTL); !ok || err != nil {
				b.Error(ok, err)
				return
			}
			i := 0
			for pb.Next() {
				if ok, err := s.CompareAndSwap(ctx, user, d[i], d[1-i], benchTTL); !ok || err != nil {
					b.Error(ok, err)
					return
				}
				i = 1 - i
			}
		})
	})
}

// BenchmarkSessions: jwtauth's session operations through the endpoints on Redis, to
// set beside storetest's MemStore run (BenchmarkMemStoreSessions).
func BenchmarkSessions(b *testing.B) {
	s := benchStore(b)
	storetest.BenchmarkSessions(b, func() jwtauth.Store { return s })
}
