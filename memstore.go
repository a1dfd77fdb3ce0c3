package jwtauth

import (
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"maps"
	"math"
	"strings"
	"sync"
	"time"
)

// Store keeps the sessions' records: one opaque value per key, the key being a user id.
// It has two operations, and every change the package makes is the second one, so that
// no two requests can both read a value and then both write it: a logout, a revocation
// or a login can never be undone by a refresh that was in flight.
//
// Load returns the value under key, or nil and no error when there is none or it has
// expired. The returned slice is the caller's.
//
// CompareAndSwap stores new under key if, at that moment, the key holds old byte for
// byte, and reports whether it did; the compare and the write are one atomic step. A nil
// old means "only if the key holds nothing" (an expired value counts as nothing), and a
// nil new deletes the key. With ttl > 0 the new value expires ttl after the call; with 0
// it does not expire. A compare that fails is (false, nil) and changes nothing, the
// expiry included. An error means the store failed, and the outcome may be unknown (a
// timed-out write may still have been applied); the package then answers 500, never
// 401. The store must not keep or modify old and new after the call.
//
// What the package passes: keys are user ids, strings that may hold any byte (store
// them as bytes, or encode them); values are never empty; ttl is never negative; old and
// new are never both nil. Calls may come with a context that is never cancelled (a
// revocation must not be skipped because a client hung up), so bound their time in the
// store itself. Both methods must be safe for concurrent use, and storetest.Run checks a
// Store against all of the above.
//
// MemStore implements Store in memory; the redisstore module implements it on Redis, and
// the pgstore module on PostgreSQL (its documentation gives the SQL: one statement per
// swap, whose affected-row count is the answer).
type Store interface {
	Load(ctx context.Context, key string) ([]byte, error)
	CompareAndSwap(ctx context.Context, key string, old, new []byte, ttl time.Duration) (bool, error)
}

// MemStore is the built-in Store: values in a map guarded by a mutex, in this process's
// memory. It is safe for concurrent use, and its zero value is ready to use.
//
// It loses everything when the process stops, and two processes do not share it: run
// more than one instance with a shared Store, such as the Redis one.
//
// An expired value is dropped when it is next looked at, and by a sweep of the whole
// map that runs inside a write whenever the number of entries has doubled since the
// last sweep, so memory stays within about twice the live values without a background
// goroutine. A sweep holds the lock for time proportional to the entries (a few
// milliseconds per 100,000 on current hardware).
type MemStore struct {
	mu      sync.Mutex
	m       map[string]memEntry
	sweepAt int // a write that brings the entry count to sweepAt sweeps first
	peak    int // most entries held since m was made; Go maps never shrink

	now func() time.Time // the clock; nil means time.Now (tests set it)
}

// memEntry is a stored value. exp is in Unix nanoseconds, 0 for never: a time.Time
// would be 24 bytes with a pointer for the collector to scan.
type memEntry struct {
	val []byte
	exp int64
}

// memMinSweepAt is the fewest entries that trigger a sweep, so that a small store is not
// swept on every other write.
const memMinSweepAt = 1024

// Load returns a copy of the value stored under key, or nil when there is none or it has
// expired. It fails only when ctx is done.
func (s *MemStore) Load(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, _ := s.liveLocked(key, now)
	return bytes.Clone(e.val), nil // nil for no value: values are never empty
}

// CompareAndSwap stores new under key, for ttl (0: no expiry), if key holds old (nil:
// if key holds nothing live), as one step under the store's lock; a nil new deletes the
// key. It reports whether it swapped. old is compared with subtle.ConstantTimeCompare,
// as every comparison of a secret or a MAC in the package is. It fails only when ctx is
// done or ttl is negative.
func (s *MemStore) CompareAndSwap(ctx context.Context, key string, old, new []byte, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if ttl < 0 {
		return false, fmt.Errorf("jwtauth: MemStore: negative TTL %v", ttl)
	}
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.liveLocked(key, now)
	if ok != (old != nil) || ok && subtle.ConstantTimeCompare(e.val, old) != 1 {
		return false, nil
	}
	if new == nil {
		delete(s.m, key)
		return true, nil
	}
	if s.m == nil {
		s.m = make(map[string]memEntry)
	}
	if len(s.m)+1 >= max(s.sweepAt, memMinSweepAt) {
		s.sweepLocked(now)
	}
	exp := int64(0)
	if ttl > 0 {
		exp = now + min(int64(ttl), math.MaxInt64-now) // a TTL of centuries saturates
	}
	// The map keeps the key it is given. key may be a substring of a larger string (a
	// token payload) that would otherwise stay alive as long as the entry: copy it.
	s.m[strings.Clone(key)] = memEntry{val: bytes.Clone(new), exp: exp}
	s.peak = max(s.peak, len(s.m))
	return true, nil
}

// liveLocked returns key's entry if it has not expired at now, and drops it if it has.
func (s *MemStore) liveLocked(key string, now int64) (memEntry, bool) {
	e, ok := s.m[key]
	if ok && e.exp != 0 && now >= e.exp {
		delete(s.m, key)
		return memEntry{}, false
	}
	return e, ok
}

// sweepLocked drops the entries expired at now. It costs time proportional to the
// entries held and next runs when they have doubled, so a write pays O(1) on average.
func (s *MemStore) sweepLocked(now int64) {
	maps.DeleteFunc(s.m, func(_ string, e memEntry) bool { return e.exp != 0 && now >= e.exp })
	// Go maps keep their largest size. Once three quarters of the peak are gone, copy
	// what is left into a map of the right size and let the old one go.
	if len(s.m) < s.peak/4 {
		m := make(map[string]memEntry, len(s.m))
		maps.Copy(m, s.m)
		s.m, s.peak = m, len(m)
	}
	s.sweepAt = 2 * len(s.m)
}

// clock returns the time in Unix nanoseconds.
func (s *MemStore) clock() int64 {
	if s.now != nil {
		return s.now().UnixNano()
	}
	return time.Now().UnixNano()
}
