// Package redisstore keeps jwtauth refresh tokens in Redis, so that any number of
// processes behind a load balancer share them.
//
// It stores one SHA-256 digest per user (jwtauth never hands a store the token itself)
// under the key Prefix+userID, with a TTL. Rotation is one atomic compare-and-swap in a
// Lua script, so exactly one of several concurrent refreshes with the same token wins.
//
// # Wiring
//
//	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
//	store := redisstore.New(rdb, redisstore.Options{}) // prefix "jwtauth:refresh:", TTL 30 days
//	auth, err := jwtauth.New(jwtauth.Config{
//		Secret:               secret,
//		Authenticate:         login,
//		RetrieveUser:         lookup,
//		RefreshTokenEnabled:  true,
//		StoreRefreshToken:    store.StoreRefreshToken,
//		RetrieveRefreshToken: store.RetrieveRefreshToken,
//		RevokeRefreshToken:   store.RevokeRefreshToken,
//		SwapRefreshToken:     store.SwapRefreshToken,
//	})
//
// # Errors and timeouts
//
// A missing token is an error wrapping jwtauth.ErrRefreshTokenNotFound, which the
// endpoints answer with 401. Every other failure (Redis down, a timeout, a key of the
// wrong type) is returned wrapped and prefixed "redisstore: ", and the endpoints answer
// 500: an outage never looks like a wrong token, which would revoke the user's token.
//
// How long a call may take is the client's business: set DialTimeout, ReadTimeout,
// WriteTimeout and MaxRetries (-1 disables retries; 0 means 3) on the redis.Options, or
// ContextTimeoutEnabled to honour request deadlines. A command that timed out may still
// have been applied by the server, so a refresh that failed with a 500 can have rotated
// the token; the client then has to log in again.
//
// # Durability
//
// Redis keeps data in memory. For tokens to survive a Redis restart, turn on the
// append-only file (appendonly yes; appendfsync everysec loses at most a second of
// rotations on a crash, always loses none).
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jwtauth/jwtauth"
	"github.com/redis/go-redis/v9"
)

// Defaults applied by New to zero-valued Options fields.
const (
	// DefaultPrefix starts every key: the key of a user's token is DefaultPrefix+userID.
	DefaultPrefix = "jwtauth:refresh:"
	// DefaultTTL is how long a stored token lives; jwtauth.MemStore uses the same.
	DefaultTTL = 30 * 24 * time.Hour
	// NoExpiry as Options.TTL keeps tokens until they are replaced or revoked.
	NoExpiry time.Duration = -1
)

// Options configures a Store. The zero value means the defaults.
type Options struct {
	// Prefix is prepended to the user id to make the Redis key. Default DefaultPrefix.
	// Give each application sharing a Redis its own prefix, and never one that begins
	// another's: with "app:" and "app:x:", user "x:1" of the first and user "1" of the
	// second share a key.
	Prefix string
	// TTL is the lifetime of a stored token, counted from its last store or swap (every
	// rotation restarts it). Zero means DefaultTTL (30 days); NoExpiry (or any negative
	// value) means none. Redis counts in milliseconds, so a TTL is rounded up to whole
	// milliseconds (at least 1).
	TTL time.Duration
}

// Store keeps refresh-token digests in Redis. Its methods fit jwtauth's four refresh
// hooks. It is safe for concurrent use (as the redis client is) and holds no state of
// its own besides its configuration.
type Store struct {
	client redis.UniversalClient
	prefix string
	// ttl is 0 for no expiry, else a whole number of milliseconds (at least 1).
	ttl time.Duration
}

// New returns a Store that keeps tokens through client, which may be a *redis.Client,
// a *redis.ClusterClient (every operation touches a single key) or a failover client.
// The Store does not own the client: closing it is the caller's business.
// New panics if client is nil, a programming error.
func New(client redis.UniversalClient, opts Options) *Store {
	if client == nil {
		panic("redisstore: New with nil client")
	}
	s := &Store{client: client, prefix: opts.Prefix, ttl: opts.TTL}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	switch {
	case s.ttl == 0:
		s.ttl = DefaultTTL
	case s.ttl < 0:
		s.ttl = 0
	default:
		// Round up to whole milliseconds: never expire earlier than asked.
		if r := s.ttl % time.Millisecond; r != 0 {
			s.ttl += time.Millisecond - r
		}
	}
	return s
}

// key is the Redis key of userID's token. The prefix is fixed, so distinct user ids
// give distinct keys.
func (s *Store) key(userID string) string { return s.prefix + userID }

// StoreRefreshToken keeps digest as userID's token, replacing any previous one and
// restarting its TTL (SET key digest PX ttl). It fits jwtauth.StoreRefreshTokenFunc.
func (s *Store) StoreRefreshToken(ctx context.Context, userID, digest string) error {
	// go-redis sends PX, or EX for a whole number of seconds; 0 means no expiry.
	if err := s.client.Set(ctx, s.key(userID), digest, s.ttl).Err(); err != nil {
		return fmt.Errorf("redisstore: store refresh token: %w", err)
	}
	return nil
}

// RetrieveRefreshToken returns userID's stored digest (GET), or an error wrapping
// jwtauth.ErrRefreshTokenNotFound when there is none (never stored, revoked, expired).
// It fits jwtauth.RetrieveRefreshTokenFunc.
func (s *Store) RetrieveRefreshToken(ctx context.Context, userID string) (string, error) {
	v, err := s.client.Get(ctx, s.key(userID)).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("redisstore: %w", jwtauth.ErrRefreshTokenNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("redisstore: retrieve refresh token: %w", err)
	}
	return v, nil
}

// RevokeRefreshToken deletes userID's token (DEL). Revoking a missing token is not an
// error. It fits jwtauth.RevokeRefreshTokenFunc.
func (s *Store) RevokeRefreshToken(ctx context.Context, userID string) error {
	if err := s.client.Del(ctx, s.key(userID)).Err(); err != nil {
		return fmt.Errorf("redisstore: revoke refresh token: %w", err)
	}
	return nil
}

// swapScript replaces KEYS[1]'s value ARGV[1] with ARGV[2], restarting its TTL to
// ARGV[3] milliseconds ("0": no expiry), and returns 1; or returns 0 and changes
// nothing when the key is missing or holds anything else. Redis runs a script
// atomically, so the compare and the set are one step even across processes. A key of
// another type makes GET, and so the script, fail with WRONGTYPE.
//
// The comparison is not constant-time. That is fine here, and only here: the values
// are SHA-256 digests of 144-bit random tokens, so learning a prefix of the stored
// digest by timing tells an attacker nothing about a token that hashes to it, and the
// comparison runs inside Redis, out of reach of a network timer. jwtauth's own
// Retrieve-then-compare path uses a constant-time comparison.
//
// A Script is read-only after NewScript (it holds the source and its SHA-1); Run uses
// EVALSHA and falls back to EVAL once when the server does not know the script yet.
var swapScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
	return 0
end
if ARGV[3] == '0' then
	redis.call('SET', KEYS[1], ARGV[2])
else
	redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
`)

// SwapRefreshToken atomically replaces userID's digest presented with next and
// restarts the TTL, in one round trip (a Lua script run with EVALSHA). When the stored
// digest is not presented, or there is none, it changes nothing and returns an error
// wrapping jwtauth.ErrRefreshTokenNotFound. Of several concurrent swaps of the same
// presented digest, exactly one succeeds. It fits jwtauth.SwapRefreshTokenFunc.
func (s *Store) SwapRefreshToken(ctx context.Context, userID, presented, next string) error {
	n, err := swapScript.Run(ctx, s.client, []string{s.key(userID)},
		presented, next, s.ttl.Milliseconds()).Int64()
	if err != nil {
		return fmt.Errorf("redisstore: swap refresh token: %w", err)
	}
	if n != 1 {
		return fmt.Errorf("redisstore: swap refresh token: %w", jwtauth.ErrRefreshTokenNotFound)
	}
	return nil
}
