package pgstore_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtauth/jwtauth/pgstore"
)

// The benchmarks run against the shared server (JWTAUTH_POSTGRES_DSN), over loopback:
// they measure a round trip to PostgreSQL, the statement and a commit, plus pgx's work,
// which is what each store call adds to a request. Their names match the redisstore
// module's, so that benchstat compares the two stores run for run
// (scripts/bench-stores.sh).

func benchStore(b *testing.B) *pgstore.Store {
	b.Helper()
	return newStore(b, sharedPool(b), pgstore.Options{})
}

// benchTTL is what jwtauth passes by default (Refresh.IdleTimeout, 30 days).
const benchTTL = 30 * 24 * time.Hour

// benchValue is a value the size of a session record with one session (110 bytes).
func benchValue(b *testing.B) []byte {
	b.Helper()
	return []byte(randomHex(b, 55))
}

func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	s := benchStore(b)
	if ok, err := s.CompareAndSwap(ctx, "alice", nil, benchValue(b), benchTTL); !ok || err != nil {
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
		// A rotation: one UPDATE that compares and sets, and its commit.
		s := benchStore(b)
		d := [2][]byte{benchValue(b), benchValue(b)}
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
		// A lost race: the compare fails and nothing is written.
		s := benchStore(b)
		current, stale := benchValue(b), benchValue(b)
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
			d := [2][]byte{[]byte(user + "a"), []byte(user + "b")}
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
