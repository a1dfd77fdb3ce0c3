package pgstore_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jwtauth/jwtauth"
	"github.com/jwtauth/jwtauth/pgstore"
	"github.com/jwtauth/jwtauth/storetest"
)

// The store behind PgBouncer in transaction pooling, wired as the package doc shows (a
// pool from a connection string, no query mode or other pool setting): each statement
// may run on another server connection than the one before, so a named prepared
// statement that one transaction created is unknown to the next, or already exists.
// scripts/with-pgbouncer.sh starts a real PgBouncer and sets JWTAUTH_PGBOUNCER_DSN.

// bouncerPool returns a pool through PgBouncer, and the name of a fresh table that is
// dropped, through the direct connection, when t ends.
func bouncerPool(t testing.TB) (*pgstore.Store, string) {
	t.Helper()
	dsn := os.Getenv("JWTAUTH_PGBOUNCER_DSN")
	if dsn == "" {
		skipOrFail(t, "JWTAUTH_PGBOUNCER_DSN is not set (scripts/with-pgbouncer.sh)")
	}
	table := testTable(t, sharedPool(t))
	s, err := pgstore.New(newPool(t, dsn, 40), pgstore.Options{Table: table})
	if err != nil {
		t.Fatal(err)
	}
	return s, table
}

// TestPgBouncerMigrateFromEveryReplica: eight replicas start at once behind PgBouncer
// and each runs Migrate, as the package doc says they may.
func TestPgBouncerMigrateFromEveryReplica(t *testing.T) {
	s, _ := bouncerPool(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			errs[i] = s.Migrate(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
}

// TestPgBouncerConformance: the Store contract through PgBouncer.
func TestPgBouncerConformance(t *testing.T) {
	s, _ := bouncerPool(t)
	migrate(t, s)
	storetest.Run(t, func() jwtauth.Store { return s })
}

// TestPgBouncerSessions: jwtauth's sessions end to end through PgBouncer, with 200
// rounds of each race.
func TestPgBouncerSessions(t *testing.T) {
	s, _ := bouncerPool(t)
	migrate(t, s)
	storetest.RunSessions(t, func() jwtauth.Store { return s }, 200)
}

func migrate(t testing.TB, s *pgstore.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPgBouncerTimeoutsFromTheRole: PgBouncer refuses statement_timeout as a startup
// parameter, so behind it the timeouts are set on the role it logs in as (ALTER ROLE
// … SET), as the package doc says: a swap waiting for a row lock longer than the role's
// statement_timeout is cancelled by PostgreSQL (SQLSTATE 57014) and changes nothing.
func TestPgBouncerTimeoutsFromTheRole(t *testing.T) {
	dsn := os.Getenv("JWTAUTH_PGBOUNCER_DSN")
	if dsn == "" {
		skipOrFail(t, "JWTAUTH_PGBOUNCER_DSN is not set (scripts/with-pgbouncer.sh)")
	}
	direct := sharedPool(t)
	table := testTable(t, direct)
	s := newStore(t, direct, pgstore.Options{Table: table})
	ctx := context.Background()
	for _, q := range []string{
		`DO $$ BEGIN CREATE ROLE jwtauth_limited LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
		`ALTER ROLE jwtauth_limited SET statement_timeout = '200ms'`,
		`ALTER ROLE jwtauth_limited SET lock_timeout = '100ms'`,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ` + s.Table() + ` TO jwtauth_limited`,
	} {
		if _, err := direct.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Database = "jwtauth_limited" // PgBouncer's name for the database as that role
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	limited, err := pgstore.New(pool, pgstore.Options{Table: table})
	if err != nil {
		t.Fatal(err)
	}
	var timeout string
	if err := pool.QueryRow(ctx, `SHOW lock_timeout`, pgx.QueryExecModeSimpleProtocol).Scan(&timeout); err != nil || timeout != "100ms" {
		t.Fatalf("lock_timeout through PgBouncer = %q, %v; want the role's 100ms", timeout, err)
	}
	key, v0 := "alice", []byte("old record")
	wantCAS(t, limited, key, nil, v0, time.Hour, true)
	before, _ := readRow(t, direct, s, key)
	tx := blocker(t, direct, s, key, "")
	ok, err := limited.CompareAndSwap(ctx, key, v0, []byte("new record"), time.Hour)
	if code := pgCode(err); ok || code != "55P03" && code != "57014" {
		t.Fatalf("CompareAndSwap behind a lock = %v, %v; want false and lock_timeout's 55P03 (or statement_timeout's 57014)", ok, err)
	}
	tx.Rollback(ctx)
	if after, _ := lockedRead(t, direct, s, key); !after.same(before) {
		t.Fatalf("after the cancelled swap the row is %v, want it unchanged: %v", after, before)
	}
}

// BenchmarkHTTPRefreshPgBouncer is BenchmarkHTTPRefresh through PgBouncer in
// transaction pooling.
func BenchmarkHTTPRefreshPgBouncer(b *testing.B) {
	s, _ := bouncerPool(b)
	migrate(b, s)
	benchmarkRefresh(b, s)
}
