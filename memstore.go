package jwtauth

import (
	"context"
	"crypto/subtle"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
)

// DefaultMemStoreTTL is how long MemStore keeps a refresh token unless MemStoreTTL says
// otherwise.
const DefaultMemStoreTTL = 30 * 24 * time.Hour

// memDigestLen is the length of what the package hands its hooks: a SHA-256 sum (32
// bytes) in base64url without padding.
const memDigestLen = 43

// memMinSweepAt is the fewest entries that trigger an amortised sweep, so that a small
// store is not swept on every other write.
const memMinSweepAt = 1024

// Reasons wrapped around ErrRefreshTokenNotFound, allocated once so that a miss costs no
// allocation. A missing token is the bare sentinel.
var (
	errMemExpired  = fmt.Errorf("%w: expired", ErrRefreshTokenNotFound)
	errMemMismatch = fmt.Errorf("%w: presented token is not the current one", ErrRefreshTokenNotFound)
)

// MemStore is the built-in in-memory refresh-token store: a map from user id to the
// digest of the user's current refresh token, guarded by a mutex. Its methods fit the
// Config hooks StoreRefreshToken, RetrieveRefreshToken, RevokeRefreshToken and
// SwapRefreshToken, and all of them are safe for concurrent use.
//
// MemStore loses everything on restart and holds one token per user; use a shared store
// (such as the Redis adapter) for more than one process. As in Sanic JWT, storing a
// token for a user replaces the previous one, so a new login ends the refresh token of
// an older session.
//
// A token expires TTL after it was stored (see MemStoreTTL). Expired tokens are dropped
// when they are next looked up, and by a sweep of the whole store that runs inside a
// write whenever the number of entries has doubled since the last sweep, so memory stays
// within about twice the live tokens without a background goroutine. A sweep holds the
// lock for time proportional to the entries held (a few milliseconds per 100,000 on
// current hardware); see MemStoreSweepInterval for a background sweeper.
//
// Create a MemStore with NewMemStore; the zero value is not usable.
type MemStore struct {
	ttl time.Duration // 0: tokens never expire
	now func() time.Time

	mu sync.Mutex
	// tokens holds digests that are canonical base64url SHA-256 sums, the only kind the
	// package produces, decoded to 32 bytes: a 43-byte string would cost its 16-byte
	// header plus a 48-byte allocation per entry.
	tokens map[string]memEntry
	// other holds any other string a direct caller stores, as given; nil until needed.
	// A user is in at most one of the two maps.
	other   map[string]memOtherEntry
	sweepAt int // an insert that brings the entry count to sweepAt runs a sweep
	peak    int // most entries held since the maps were made; Go maps never shrink

	closeOnce sync.Once
	stop      chan struct{} // closed by Close; nil without a background sweeper
	stopped   chan struct{} // closed by the sweeper as it returns
}

// memEntry is a stored canonical digest. Expiry is Unix nanoseconds rather than a
// time.Time (24 bytes with a pointer the collector must scan); math.MaxInt64 means never.
type memEntry struct {
	exp int64
	sum [32]byte
}

// memOtherEntry is a stored digest that is not a canonical base64url SHA-256 sum.
type memOtherEntry struct {
	exp    int64
	digest string
}

// MemStoreOption configures NewMemStore. MemStore takes functional options, unlike the
// plain Config struct, so that NewMemStore() with no arguments is the common case and
// MemStoreTTL(0) can mean "never expire" rather than "the default".
type MemStoreOption func(*memStoreSettings)

type memStoreSettings struct {
	ttl, sweepEvery time.Duration
	now             func() time.Time
}

// MemStoreTTL sets how long a stored token lives; each Store or successful Swap starts
// its TTL afresh. Zero means tokens never expire. The default is DefaultMemStoreTTL
// (30 days). A negative TTL is a programming error and makes MemStoreTTL panic.
func MemStoreTTL(ttl time.Duration) MemStoreOption {
	if ttl < 0 {
		panic("jwtauth: MemStoreTTL: negative TTL")
	}
	return func(s *memStoreSettings) { s.ttl = ttl }
}

// MemStoreClock sets the clock used for expiry, for tests. Nil means time.Now, the
// default.
func MemStoreClock(now func() time.Time) MemStoreOption {
	return func(s *memStoreSettings) { s.now = now }
}

// MemStoreSweepInterval starts a background goroutine that sweeps expired tokens every
// interval, so that memory is returned even when writes stop. Close stops it; a store
// with a sweeper that is never closed is never garbage collected. Zero, the default,
// means no goroutine: the amortised sweep inside writes already bounds memory. A
// negative interval makes MemStoreSweepInterval panic.
func MemStoreSweepInterval(interval time.Duration) MemStoreOption {
	if interval < 0 {
		panic("jwtauth: MemStoreSweepInterval: negative interval")
	}
	return func(s *memStoreSettings) { s.sweepEvery = interval }
}

// NewMemStore returns an empty MemStore. With no options tokens live 30 days, time is
// time.Now, and no goroutine is started.
func NewMemStore(opts ...MemStoreOption) *MemStore {
	set := memStoreSettings{ttl: DefaultMemStoreTTL}
	for _, o := range opts {
		o(&set)
	}
	s := &MemStore{
		ttl:     set.ttl,
		now:     set.now,
		tokens:  make(map[string]memEntry),
		sweepAt: memMinSweepAt,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if set.sweepEvery > 0 {
		s.stop = make(chan struct{})
		s.stopped = make(chan struct{})
		go s.sweepEvery(set.sweepEvery)
	}
	return s
}

// StoreRefreshToken keeps digest as userID's current refresh token, replacing any
// previous one, for the store's TTL. It fits Config.StoreRefreshToken. It fails only
// when ctx is done.
func (s *MemStore) StoreRefreshToken(ctx context.Context, userID, digest string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sum, canonical := memDecodeDigest(digest)
	now := s.clock()
	s.mu.Lock()
	s.putLocked(userID, digest, sum, canonical, now)
	s.mu.Unlock()
	return nil
}

// RetrieveRefreshToken returns userID's current digest, exactly as it was stored. When
// there is none, or it has expired, the error wraps ErrRefreshTokenNotFound. It fits
// Config.RetrieveRefreshToken.
func (s *MemStore) RetrieveRefreshToken(ctx context.Context, userID string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.tokens[userID]; ok {
		if now >= e.exp {
			delete(s.tokens, userID)
			return "", errMemExpired
		}
		return memEncodeDigest(&e.sum), nil
	}
	if e, ok := s.other[userID]; ok {
		if now >= e.exp {
			delete(s.other, userID)
			return "", errMemExpired
		}
		return e.digest, nil
	}
	return "", ErrRefreshTokenNotFound
}

// RevokeRefreshToken forgets userID's refresh token. Revoking a missing token is not an
// error. It fits Config.RevokeRefreshToken and fails only when ctx is done.
func (s *MemStore) RevokeRefreshToken(ctx context.Context, userID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.tokens, userID)
	delete(s.other, userID)
	s.mu.Unlock()
	return nil
}

// SwapRefreshToken replaces userID's digest presented with next, and starts next's TTL,
// as one atomic step: of several concurrent swaps presenting the same digest exactly one
// succeeds. When the stored digest is not presented (compared in constant time), has
// expired, or is missing, it changes nothing and returns an error wrapping
// ErrRefreshTokenNotFound. It fits Config.SwapRefreshToken.
func (s *MemStore) SwapRefreshToken(ctx context.Context, userID, presented, next string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pSum, pCanonical := memDecodeDigest(presented)
	nSum, nCanonical := memDecodeDigest(next)
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	// subtle.ConstantTimeCompare, as for every refresh-token comparison in the package.
	// A digest reveals nothing a client could present, so this is defence in depth.
	// Whether presented is canonical is the caller's own input and may show in timing.
	var match bool
	if e, ok := s.tokens[userID]; ok {
		if now >= e.exp {
			delete(s.tokens, userID)
			return errMemExpired
		}
		match = pCanonical && subtle.ConstantTimeCompare(e.sum[:], pSum[:]) == 1
	} else if e, ok := s.other[userID]; ok {
		if now >= e.exp {
			delete(s.other, userID)
			return errMemExpired
		}
		match = subtle.ConstantTimeCompare([]byte(e.digest), []byte(presented)) == 1
	} else {
		return ErrRefreshTokenNotFound
	}
	if !match {
		return errMemMismatch
	}
	s.putLocked(userID, next, nSum, nCanonical, now)
	return nil
}

// Len reports how many entries the store holds. Expired tokens that no lookup or sweep
// has dropped yet are counted; after Sweep, Len is exactly the number of live tokens.
func (s *MemStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tokens) + len(s.other)
}

// Sweep drops every expired token now, and gives memory back to the runtime when the
// store holds far fewer entries than it once did. Writes sweep on their own as the
// store grows; call Sweep to force one, for instance after a burst of logins.
func (s *MemStore) Sweep() {
	now := s.clock()
	s.mu.Lock()
	s.sweepLocked(now)
	s.mu.Unlock()
}

// Close stops the background sweeper, if MemStoreSweepInterval started one, and waits
// for it to return. The store stays usable without it. Close is idempotent and always
// returns nil.
func (s *MemStore) Close() error {
	s.closeOnce.Do(func() {
		if s.stop != nil {
			close(s.stop)
			<-s.stopped
		}
	})
	return nil
}

// putLocked stores digest for userID as of now, in the map that fits digest, and takes
// userID out of the other map; then it sweeps if the store has doubled since the last
// sweep.
func (s *MemStore) putLocked(userID, digest string, sum [32]byte, canonical bool, now int64) {
	exp := s.expiryAt(now)
	// The map keeps the key it is given, even when it replaces an entry. userID may be
	// a substring of a larger string (a token payload, a request body) that the store
	// would otherwise keep alive for the token's lifetime, so copy it.
	key := strings.Clone(userID)
	if canonical {
		s.tokens[key] = memEntry{exp: exp, sum: sum}
		delete(s.other, userID)
	} else {
		if s.other == nil {
			s.other = make(map[string]memOtherEntry)
		}
		s.other[key] = memOtherEntry{exp: exp, digest: strings.Clone(digest)}
		delete(s.tokens, userID)
	}
	n := len(s.tokens) + len(s.other)
	s.peak = max(s.peak, n)
	if n >= s.sweepAt {
		s.sweepLocked(now)
	}
}

// sweepLocked drops the entries expired at now. Its cost is proportional to the entries
// held, and it next runs when they have doubled, so a write pays O(1) on average.
func (s *MemStore) sweepLocked(now int64) {
	if s.ttl > 0 {
		for k, e := range s.tokens {
			if now >= e.exp {
				delete(s.tokens, k)
			}
		}
		for k, e := range s.other {
			if now >= e.exp {
				delete(s.other, k)
			}
		}
	}
	n := len(s.tokens) + len(s.other)
	// Go maps keep their largest size forever. Once three quarters of the peak are
	// gone, copy what is left into maps of the right size and let the old ones go.
	if n < s.peak/4 {
		tokens := make(map[string]memEntry, len(s.tokens))
		for k, e := range s.tokens {
			tokens[k] = e
		}
		s.tokens = tokens
		var other map[string]memOtherEntry
		if len(s.other) > 0 {
			other = make(map[string]memOtherEntry, len(s.other))
			for k, e := range s.other {
				other[k] = e
			}
		}
		s.other = other
		s.peak = n
	}
	s.sweepAt = max(2*n, memMinSweepAt)
}

// sweepEvery is the background sweeper started by MemStoreSweepInterval.
func (s *MemStore) sweepEvery(interval time.Duration) {
	defer close(s.stopped)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Sweep()
		}
	}
}

// clock returns the time in Unix nanoseconds. Without a TTL nothing expires and the
// clock is not read.
func (s *MemStore) clock() int64 {
	if s.ttl == 0 {
		return 0
	}
	return s.now().UnixNano()
}

// expiryAt returns when a token stored at now expires: math.MaxInt64 without a TTL or
// when now+TTL would overflow (a TTL of centuries).
func (s *MemStore) expiryAt(now int64) int64 {
	if s.ttl == 0 || now > math.MaxInt64-int64(s.ttl) {
		return math.MaxInt64
	}
	return now + int64(s.ttl)
}

// memDecodeDigest decodes digest when it is the canonical base64url (strict, unpadded)
// of 32 bytes, so that encoding the result gives digest back byte for byte.
func memDecodeDigest(digest string) (sum [32]byte, ok bool) {
	if len(digest) != memDigestLen {
		return sum, false
	}
	var src [memDigestLen]byte // a stack copy: []byte(digest) would allocate
	copy(src[:], digest)
	// The decoder skips CR and LF, but 43 characters that hold one decode to fewer
	// than 32 bytes, so n rules them out.
	n, err := b64.Decode(sum[:], src[:])
	return sum, err == nil && n == len(sum)
}

// memEncodeDigest is the inverse of memDecodeDigest.
func memEncodeDigest(sum *[32]byte) string {
	var dst [memDigestLen]byte
	b64.Encode(dst[:], sum[:])
	return string(dst[:])
}
