package redisstore_test

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtauth/jwtauth"
	"github.com/jwtauth/jwtauth/redisstore"
	"github.com/jwtauth/jwtauth/storetest"
	"github.com/redis/go-redis/v9"
)

// The store on a Redis Cluster of three masters, through go-redis's ClusterClient, as
// the README wires it: every operation touches one key (the Lua script names it in
// KEYS), so the client sends it to the master that holds the key's hash slot.
// scripts/with-redis-cluster.sh starts the cluster and sets JWTAUTH_REDIS_CLUSTER_ADDRS.

// clusterClient returns a ClusterClient for the test cluster and a prefix of t's own,
// whose keys are deleted from every master when t ends.
func clusterClient(t testing.TB) (*redis.ClusterClient, string) {
	t.Helper()
	addrs := os.Getenv("JWTAUTH_REDIS_CLUSTER_ADDRS")
	if addrs == "" {
		skipOrFail(t, "JWTAUTH_REDIS_CLUSTER_ADDRS is not set (scripts/with-redis-cluster.sh)")
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:        strings.Split(addrs, ","),
		ReadTimeout:  lenientTimeout,
		WriteTimeout: lenientTimeout,
		PoolSize:     64,
	})
	t.Cleanup(func() { c.Close() })
	prefix := "jwtauth-test:" + strings.ReplaceAll(t.Name(), "/", "_") + ":"
	t.Cleanup(func() {
		c.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
			deleteKeys(t, m, prefix)
			return nil
		})
	})
	return c, prefix
}

// mastersHolding returns how many masters hold keys under prefix.
func mastersHolding(t testing.TB, c *redis.ClusterClient, prefix string) int {
	t.Helper()
	var n atomic.Int32
	err := c.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
		keys, _, err := m.Scan(ctx, 0, prefix+"*", 1000).Result()
		if len(keys) > 0 {
			n.Add(1)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return int(n.Load())
}

// TestClusterConformance: the Store contract through a ClusterClient.
func TestClusterConformance(t *testing.T) {
	c, prefix := clusterClient(t)
	storetest.Run(t, func() jwtauth.Store { return redisstore.New(c, redisstore.Options{Prefix: prefix}) })
}

// TestClusterSessions: jwtauth's sessions end to end on the cluster, with 200 rounds
// of each race; the users' records land on every master.
func TestClusterSessions(t *testing.T) {
	c, prefix := clusterClient(t)
	s := redisstore.New(c, redisstore.Options{Prefix: prefix})
	storetest.RunSessions(t, func() jwtauth.Store { return s }, 200)
	// Keys of the suite's users, of which some stay until their TTL: spread over the
	// masters by hash slot, or the test did not exercise a cluster.
	for _, user := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s.CompareAndSwap(ctx, user, nil, []byte("x"), time.Minute)
		cancel()
	}
	if n := mastersHolding(t, c, prefix); n < 2 {
		t.Fatalf("keys on %d master(s), want them spread over the cluster", n)
	}
}

// BenchmarkHTTPRefreshCluster is BenchmarkHTTPRefresh through the ClusterClient.
func BenchmarkHTTPRefreshCluster(b *testing.B) {
	c, prefix := clusterClient(b)
	benchmarkRefresh(b, redisstore.New(c, redisstore.Options{Prefix: prefix}))
}
