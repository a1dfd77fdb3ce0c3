package storetest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jwtauth/jwtauth"
	"github.com/jwtauth/jwtauth/storetest"
)

func TestMemStore(t *testing.T) {
	storetest.Run(t, func() jwtauth.Store { return new(jwtauth.MemStore) })
}

// BenchmarkMemStoreSessions: the session operations through the endpoints on a MemStore.
func BenchmarkMemStoreSessions(b *testing.B) {
	storetest.BenchmarkSessions(b, func() jwtauth.Store { return new(jwtauth.MemStore) })
}

// TestMemStoreSessions: jwtauth's sessions, S1 to S10, on a MemStore.
func TestMemStoreSessions(t *testing.T) {
	storetest.RunSessions(t, func() jwtauth.Store { return new(jwtauth.MemStore) }, 200)
}

// MemStore goes beyond the contract's minimum on a done context: it always fails with
// ctx.Err(), and changes nothing.
func TestMemStoreDoneContextIsCtxErr(t *testing.T) {
	s := new(jwtauth.MemStore)
	bg := context.Background()
	if ok, err := s.CompareAndSwap(bg, "k", nil, []byte("v"), 0); !ok || err != nil {
		t.Fatalf("CompareAndSwap = %v, %v", ok, err)
	}
	cancelled, cancel := context.WithCancel(bg)
	cancel()
	expired, cancel2 := context.WithDeadline(bg, time.Now().Add(-time.Second))
	defer cancel2()
	for _, ctx := range []context.Context{cancelled, expired} {
		if v, err := s.Load(ctx, "k"); v != nil || !errors.Is(err, ctx.Err()) {
			t.Errorf("Load = %q, %v; want nil, %v", v, err, ctx.Err())
		}
		if ok, err := s.CompareAndSwap(ctx, "k", []byte("v"), []byte("w"), 0); ok || !errors.Is(err, ctx.Err()) {
			t.Errorf("CompareAndSwap = %v, %v; want false, %v", ok, err, ctx.Err())
		}
		if ok, err := s.CompareAndSwap(ctx, "k", []byte("v"), nil, 0); ok || !errors.Is(err, ctx.Err()) {
			t.Errorf("CompareAndSwap delete = %v, %v; want false, %v", ok, err, ctx.Err())
		}
	}
	if v, err := s.Load(bg, "k"); string(v) != "v" || err != nil {
		t.Fatalf("after the done-context calls, Load = %q, %v; want \"v\"", v, err)
	}
}

// A negative TTL is outside the contract (the package never passes one); MemStore
// refuses it rather than storing a value that is already expired.
func TestMemStoreNegativeTTLIsAnError(t *testing.T) {
	s := new(jwtauth.MemStore)
	bg := context.Background()
	if ok, err := s.CompareAndSwap(bg, "k", nil, []byte("v"), -time.Second); ok || err == nil {
		t.Fatalf("CompareAndSwap with a negative TTL = %v, %v; want false and an error", ok, err)
	}
	if v, err := s.Load(bg, "k"); v != nil || err != nil {
		t.Fatalf("after the refused CompareAndSwap, Load = %q, %v; want nil, nil", v, err)
	}
}
