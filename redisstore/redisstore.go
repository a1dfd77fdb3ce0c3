// Package redisstore is a jwtauth.Store on Redis, so that any number of processes
// behind a load balancer share the users' sessions.
//
// It keeps each user's record of sessions under the key Prefix+userID, as a Redis
// string, byte for byte, with the TTL jwtauth passes at every write (the time until the
// record's last session ends).
// Load is one GET; CompareAndSwap is one Lua script, which Redis runs atomically, so
// exactly one of several concurrent swaps from the same value wins, across processes.
// Every operation touches a single key (the script names it in KEYS), so a Redis
// Cluster works unchanged: the tests run the store and session suites on a cluster of
// three masters too.
//
// # Wiring
//
//	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
//	// or, on a Redis Cluster:
//	// rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"redis-1:6379", "redis-2:6379"}})
//	store := redisstore.New(rdb, redisstore.Options{}) // keys "jwtauth:refresh:"+userID
//	auth, err := jwtauth.New(jwtauth.Config{
//		Secret:       secret,
//		Endpoints:    &jwtauth.Endpoints{Authenticate: login},
//		RetrieveUser: lookup,
//		Refresh:      &jwtauth.Refresh{Store: store},
//	})
//
// # Errors and timeouts
//
// A missing key is Load's (nil, nil) and a failed compare is CompareAndSwap's (false,
// nil), as the Store contract says. A key of another type (someone's list under a
// user's key) is a value no jwtauth key opens, so jwtauth counts it as no live session:
// a login replaces it, and Auth.RevokeSessions deletes it. Every other outcome (Redis
// down, a timeout, a done context) is an error prefixed "redisstore: " and wrapping
// the client's, and jwtauth answers 500: an outage never looks like a missing session
// or a wrong refresh token, which would log the user out or end a session.
//
// How long a call may take is the client's business: set DialTimeout, ReadTimeout,
// WriteTimeout and MaxRetries (-1 disables retries; 0 means 3) on the redis.Options, or
// ContextTimeoutEnabled to honour request deadlines. A command that timed out may still
// have been applied by the server, so a refresh that failed with a 500 can have rotated
// the session's refresh token; the client then has to log in again (or retry within
// Refresh.ReuseInterval).
//
// # Durability
//
// Redis keeps data in memory. For sessions to survive a Redis restart, turn on the
// append-only file (appendonly yes; appendfsync everysec loses at most a second of
// rotations on a crash, always loses none). Under a maxmemory limit, an eviction policy
// that may pick these keys (allkeys-*, or volatile-* since every key has a TTL) logs
// users out when memory runs short; noeviction makes writes fail (a 500) instead.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jwtauth/jwtauth"
	"github.com/redis/go-redis/v9"
)

// DefaultPrefix starts every key when Options.Prefix is empty: a user's key is
// DefaultPrefix+userID.
const DefaultPrefix = "jwtauth:refresh:"

// Options configures a Store. The zero value means the defaults.
type Options struct {
	// Prefix is prepended to the user id to make the Redis key. Default DefaultPrefix.
	// Give each application sharing a Redis its own prefix, and never one that begins
	// another's: with "app:" and "app:x:", user "x:1" of the first and user "1" of the
	// second share a key.
	Prefix string
}

// Store is a jwtauth.Store on Redis. It is safe for concurrent use (as the redis client
// is) and holds no state of its own besides its configuration.
type Store struct {
	client redis.UniversalClient
	prefix string
}

var _ jwtauth.Store = (*Store)(nil)

// New returns a Store that keeps values through client, which may be a *redis.Client,
// a *redis.ClusterClient (every operation touches a single key) or a failover client.
// The Store does not own the client: closing it is the caller's business.
// New panics if client is nil, a programming error.
func New(client redis.UniversalClient, opts Options) *Store {
	if client == nil {
		panic("redisstore: New with nil client")
	}
	s := &Store{client: client, prefix: opts.Prefix}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	return s
}

// otherType is what Load returns for a key of another type than string: a value that
// no jwtauth record equals (a record begins with its version, 1). A compare-and-swap
// from it replaces or deletes the key, whatever its type.
const otherType = "\x00redisstore: a key of another type"

// Load returns the value stored under Prefix+key (GET), or nil and no error when there
// is none or it has expired. A key of another type than string is the value
// "\x00redisstore: a key of another type", which a CompareAndSwap from it replaces. The
// slice is the caller's.
func (s *Store) Load(ctx context.Context, key string) ([]byte, error) {
	v, err := s.client.Get(ctx, s.prefix+key).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE") {
		return []byte(otherType), nil
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: load: %w", err)
	}
	// A copy: the client's Bytes would hand out the memory of a Go string, and nil for
	// an empty value, which would read as "no value".
	return []byte(v), nil
}

// casScript is CompareAndSwap in one step: Redis runs a script atomically, so nothing
// can change the key between the compare and the write.
//
//	KEYS[1]  the key
//	ARGV[1]  "1": the key must hold ARGV[2], byte for byte; "0": it must not exist
//	ARGV[3]  "1": store ARGV[4]; "0": delete the key
//	ARGV[5]  the TTL in milliseconds, "0" for none
//	ARGV[6]  otherType, what a key of another type than string compares as
//
// It returns 1 when it swapped, 0 when the compare failed and nothing changed. GET of a
// key of another type is a WRONGTYPE error, which the script catches (redis.pcall); SET
// and DEL replace a key of any type. Lua strings hold any bytes, and == on them compares
// bytes. SET without PX removes an earlier TTL, so a
// value stored with ttl 0 never expires.
//
// The comparison is not constant-time. It need not be: old is a record jwtauth loaded,
// which holds no token a client can present, and jwtauth compares presented refresh
// tokens in constant time itself.
//
// A Script is read-only after NewScript (it holds the source and its SHA-1); Run uses
// EVALSHA and falls back to EVAL when the server does not know the script yet (after a
// restart or SCRIPT FLUSH).
var casScript = redis.NewScript(`
local cur = redis.pcall('GET', KEYS[1])
if type(cur) == 'table' and cur.err then
	if string.sub(cur.err, 1, 9) ~= 'WRONGTYPE' then
		return cur
	end
	cur = ARGV[6]
end
if ARGV[1] == '1' then
	if cur ~= ARGV[2] then
		return 0
	end
elseif cur then
	return 0
end
if ARGV[3] == '0' then
	redis.call('DEL', KEYS[1])
elseif ARGV[5] == '0' then
	redis.call('SET', KEYS[1], ARGV[4])
else
	redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[5])
end
return 1
`)

// CompareAndSwap stores new under Prefix+key, for ttl (0: no expiry), if the key holds
// old byte for byte (nil: if the key does not exist), and reports whether it did; a nil
// new deletes the key. It is one round trip, a Lua script run with EVALSHA. Redis
// counts TTLs in whole milliseconds: ttl is rounded up, so a value never expires
// earlier than asked. A negative ttl is an error.
func (s *Store) CompareAndSwap(ctx context.Context, key string, old, new []byte, ttl time.Duration) (bool, error) {
	if ttl < 0 {
		return false, fmt.Errorf("redisstore: compare-and-swap: negative TTL %v", ttl)
	}
	ms := ttl / time.Millisecond
	if ttl%time.Millisecond != 0 {
		ms++
	}
	n, err := casScript.Run(ctx, s.client, []string{s.prefix + key},
		flag(old != nil), old, flag(new != nil), new, strconv.FormatInt(int64(ms), 10), otherType).Int64()
	if err != nil {
		return false, fmt.Errorf("redisstore: compare-and-swap: %w", err)
	}
	return n == 1, nil
}

// flag is a script argument for a condition: "1" or "0".
func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
