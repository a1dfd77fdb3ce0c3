package pgstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jwtauth/jwtauth"
	"github.com/jwtauth/jwtauth/pgstore"
	"github.com/jwtauth/jwtauth/storetest"
)

func TestConformance(t *testing.T) {
	// Every store of the suite shares one table; the suite draws keys of its own.
	pool := sharedPool(t)
	s := newStore(t, pool, pgstore.Options{})
	storetest.Run(t, func() jwtauth.Store { return s })
}

// TestSessions: jwtauth's sessions, S1 to S10, end to end through the endpoints on a
// real PostgreSQL, with 200 rounds of each race (concurrent refreshes with reuse
// interval 0 and 10 s, logout against refresh, login against refresh).
func TestSessions(t *testing.T) {
	pool := sharedPool(t)
	s := newStore(t, pool, pgstore.Options{})
	storetest.RunSessions(t, func() jwtauth.Store { return s }, 200)
}

// wantStored fails t unless Load(key) is want (nil: nothing).
func wantStored(t testing.TB, s *pgstore.Store, key string, want []byte) {
	t.Helper()
	got, err := s.Load(context.Background(), key)
	if err != nil {
		t.Fatalf("Load(%q): %v, want %q", key, err, want)
	}
	if (got == nil) != (want == nil) || !bytes.Equal(got, want) {
		t.Fatalf("Load(%q) = %q, want %q", key, got, want)
	}
}

// wantCAS fails t unless CompareAndSwap(key, old, new, ttl) reports want without error.
func wantCAS(t testing.TB, s *pgstore.Store, key string, old, new []byte, ttl time.Duration, want bool) {
	t.Helper()
	ok, err := s.CompareAndSwap(context.Background(), key, old, new, ttl)
	if err != nil || ok != want {
		t.Fatalf("CompareAndSwap(%q, %q, %q, %v) = %v, %v; want %v, nil", key, old, new, ttl, ok, err, want)
	}
}

// wantStoreError fails t unless err is a store failure, non-nil and prefixed. Load's
// (nil, nil) would read as "no session" and CompareAndSwap's (false, nil) as a changed
// record; an error makes jwtauth answer 500 and end nothing.
func wantStoreError(t testing.TB, what string, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("%s: nil error, want a store error", what)
	case !strings.HasPrefix(err.Error(), "pgstore: "):
		t.Fatalf("%s: %q, want the prefix %q", what, err, "pgstore: ")
	}
}

func TestTableNames(t *testing.T) {
	// New accepts [schema.]table in lowercase letters, digits and underscores, and
	// refuses anything else before any SQL is built: an injection attempt never reaches
	// the database. No server needed: New does not connect.
	pool := newPool(t, "postgres://nobody@127.0.0.1:1/none", 1)
	for _, ok := range []string{
		"", "sessions", "_x", "a1", "user", "select", "auth.sessions", "public.jwtauth_sessions",
		strings.Repeat("t", 48), strings.Repeat("s", 63) + "." + strings.Repeat("t", 48),
	} {
		if _, err := pgstore.New(pool, pgstore.Options{Table: ok}); err != nil {
			t.Errorf("New with table %q: %v", ok, err)
		}
	}
	for _, bad := range []string{
		`sessions; DROP TABLE users; --`,
		`sessions" (x int); DROP TABLE users; --`,
		`"sessions"`, `sessions--`, `sessions/**/`, "sessions\x00", "ses sions", "sessions\n",
		"Sessions", "SESSIONS", "séssions", "1sessions", "ses-sions", "ses$sions",
		"a.b.c", ".sessions", "auth.", ".", "auth..sessions", "auth.\"x\"",
		strings.Repeat("t", 49), strings.Repeat("s", 64) + ".t",
	} {
		s, err := pgstore.New(pool, pgstore.Options{Table: bad})
		if err == nil || s != nil {
			t.Errorf("New with table %q = %v, %v; want an error", bad, s, err)
		} else if !strings.HasPrefix(err.Error(), "pgstore: ") {
			t.Errorf("New with table %q: %q, want the prefix pgstore: ", bad, err)
		}
	}
	if _, err := pgstore.New(pool, pgstore.Options{Timeout: -time.Second}); err == nil {
		t.Error("New with a negative Timeout: no error")
	}
	s, _ := pgstore.New(pool, pgstore.Options{Table: "auth.user"})
	if got := s.Table(); got != `"auth"."user"` {
		t.Errorf("Table() = %s, want the quoted name", got)
	}
	if s, _ := pgstore.New(pool, pgstore.Options{}); s.Table() != `"`+pgstore.DefaultTable+`"` {
		t.Errorf("default Table() = %s", s.Table())
	}
}

func TestReservedWordAndSchemaTables(t *testing.T) {
	// Quoting keeps a reserved word usable as a name, and a schema-qualified table is
	// created and used in its schema.
	pool := sharedPool(t)
	ctx := context.Background()
	schema := "jwtauth_test_schema_" + randomHex(t, 4)
	if _, err := pool.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`) })
	for _, name := range []string{schema + ".user", schema + ".select", schema + ".sessions"} {
		s := newStore(t, pool, pgstore.Options{Table: name})
		wantCAS(t, s, "alice", nil, []byte("v"), time.Hour, true)
		wantStored(t, s, "alice", []byte("v"))
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+s.Table()).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%s: %d rows, %v", name, n, err)
		}
	}
	var idx int
	pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname LIKE '%_expires_at_idx'`, schema).Scan(&idx)
	if idx != 3 {
		t.Fatalf("%d expires_at indexes in %s, want 3 (one per table, in the table's schema)", idx, schema)
	}
}

func TestMigrate(t *testing.T) {
	pool := sharedPool(t)
	ctx := context.Background()
	table := testTable(t, pool)
	s, err := pgstore.New(pool, pgstore.Options{Table: table})
	if err != nil {
		t.Fatal(err)
	}
	// Before Migrate, the store fails (an error, never "no value").
	if _, err := s.Load(ctx, "alice"); err == nil {
		t.Fatal("Load before Migrate: no error")
	}
	// Replicas starting at once: every Migrate succeeds (the advisory lock serialises
	// them; without it, concurrent CREATE TABLE IF NOT EXISTS can fail).
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.Migrate(ctx) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Migrate: %v", err)
	}
	wantCAS(t, s, "alice", nil, []byte("v"), 0, true)
	if err := s.Migrate(ctx); err != nil { // idempotent, and keeps the data
		t.Fatal(err)
	}
	wantStored(t, s, "alice", []byte("v"))
	var cols string
	pool.QueryRow(ctx, `SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable, ', ' ORDER BY ordinal_position)
		FROM information_schema.columns WHERE table_name = $1`, table).Scan(&cols)
	if want := "user_id bytea NO, value bytea NO, expires_at timestamp with time zone YES"; cols != want {
		t.Fatalf("columns: %s, want %s", cols, want)
	}
	var def string
	pool.QueryRow(ctx, `SELECT indexdef FROM pg_indexes WHERE tablename = $1 AND indexname = $2`, table, table+"_expires_at_idx").Scan(&def)
	if !strings.Contains(def, "(expires_at) WHERE (expires_at IS NOT NULL)") {
		t.Fatalf("index on expires_at: %q", def)
	}

	// A table of that name with other columns is refused, not used.
	other := testTable(t, pool)
	if _, err := pool.Exec(ctx, `CREATE TABLE `+other+` (user_id text PRIMARY KEY, value text NOT NULL, expires_at timestamp)`); err != nil {
		t.Fatal(err)
	}
	s2, _ := pgstore.New(pool, pgstore.Options{Table: other})
	err = s2.Migrate(ctx)
	wantStoreError(t, "Migrate over a table with other column types", err)
	if !strings.Contains(err.Error(), "without the columns") {
		t.Fatalf("Migrate over a table with other column types: %v", err)
	}
}

func TestRowLayout(t *testing.T) {
	// The key is the user id's bytes, NUL included; the value is stored byte for
	// byte; the expiry is the database's now() plus the TTL, rounded up to a
	// millisecond; ttl 0 is NULL.
	pool := sharedPool(t)
	s := newStore(t, pool, pgstore.Options{})
	ctx := context.Background()
	key := "user\x00:\xff"
	v := []byte("\x00record\r\n\xff")
	wantCAS(t, s, key, nil, v, 0, true)
	r, _ := readRow(t, pool, s, key)
	if !bytes.Equal(r.value, v) || r.expiresAt != nil {
		t.Fatalf("row: %v, want %q with no expiry", r, v)
	}
	var n int
	pool.QueryRow(ctx, `SELECT count(*) FROM `+s.Table()+` WHERE user_id = '\x75736572003aff'::bytea`).Scan(&n)
	if n != 1 {
		t.Fatal("the key is not stored as the user id's bytes")
	}
	for i, tc := range []struct {
		ttl  time.Duration
		want time.Duration // the expiry's distance from the statement's now()
	}{
		{time.Hour, time.Hour},
		{10*time.Second + time.Nanosecond, 10*time.Second + time.Millisecond},
		{300 * time.Microsecond, time.Millisecond},
		{100 * 365 * 24 * time.Hour, 100 * 365 * 24 * time.Hour},
	} {
		k := fmt.Sprint("ttl ", i)
		var before time.Time
		pool.QueryRow(ctx, `SELECT now()`).Scan(&before)
		wantCAS(t, s, k, nil, []byte("v"), tc.ttl, true)
		r, _ = readRow(t, pool, s, k)
		if r.expiresAt == nil {
			t.Fatalf("ttl %v: no expiry", tc.ttl)
		}
		// now() is the statement's start: after before, and soon after it (5 s leaves
		// room for a loaded machine).
		if d := r.expiresAt.Sub(before); d < tc.want || d > tc.want+5*time.Second {
			t.Fatalf("ttl %v: expires %v after the database's clock before the call, want %v", tc.ttl, d, tc.want)
		}
	}
	// A swap sets the expiry it is given, replacing the row's.
	wantCAS(t, s, "ttl 0", []byte("v"), []byte("w"), 2*time.Hour, true)
	if r, now := readRow(t, pool, s, "ttl 0"); r.expiresAt == nil || r.expiresAt.Sub(now) < 2*time.Hour-time.Minute {
		t.Fatalf("a swap with 2h left %v (now %v)", r, now)
	}
	wantCAS(t, s, "ttl 0", []byte("w"), []byte("forever"), 0, true)
	if r, _ = readRow(t, pool, s, "ttl 0"); r.expiresAt != nil {
		t.Fatalf("a swap with ttl 0 left expires_at %v, want NULL", r.expiresAt)
	}
}

func TestDatabaseClock(t *testing.T) {
	// Expiry is judged by the database's clock, whatever the caller's: a row whose
	// expires_at has passed is absent to Load and to the swaps, and an insert replaces
	// it; a row a minute from expiry is live.
	pool := sharedPool(t)
	s := newStore(t, pool, pgstore.Options{})
	ctx := context.Background()
	set := func(key, value, expiry string) {
		t.Helper()
		if _, err := pool.Exec(ctx, `INSERT INTO `+s.Table()+` VALUES ($1, $2, `+expiry+`)
			ON CONFLICT (user_id) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`, []byte(key), []byte(value)); err != nil {
			t.Fatal(err)
		}
	}
	set("expired", "old", `now() - interval '1 millisecond'`)
	set("live", "cur", `now() + interval '1 minute'`)
	wantStored(t, s, "expired", nil)
	wantStored(t, s, "live", []byte("cur"))
	wantCAS(t, s, "expired", []byte("old"), []byte("x"), time.Hour, false)
	wantCAS(t, s, "expired", []byte("old"), nil, 0, false)
	wantCAS(t, s, "live", nil, []byte("x"), time.Hour, false)
	if r, _ := readRow(t, pool, s, "expired"); !r.found || string(r.value) != "old" {
		t.Fatalf("failed swaps on an expired row changed it: %v", r)
	}
	wantCAS(t, s, "expired", nil, []byte("new"), 0, true) // the insert replaces it
	if r, _ := readRow(t, pool, s, "expired"); string(r.value) != "new" || r.expiresAt != nil {
		t.Fatalf("after an insert over an expired row: %v, want (new, NULL)", r)
	}
}

func TestFailedCASChangesNothing(t *testing.T) {
	// A failed compare writes nothing: no row created, no value or expiry touched.
	pool := sharedPool(t)
	s := newStore(t, pool, pgstore.Options{})
	wantCAS(t, s, "nobody", []byte("a"), []byte("b"), time.Hour, false)
	wantCAS(t, s, "nobody", []byte("a"), nil, 0, false)
	if r, _ := readRow(t, pool, s, "nobody"); r.found {
		t.Fatalf("a failed swap created a row: %v", r)
	}
	wantCAS(t, s, "alice", nil, []byte("cur"), 10*time.Second, true)
	before, _ := readRow(t, pool, s, "alice")
	wantCAS(t, s, "alice", []byte("other"), []byte("x"), time.Hour, false)
	wantCAS(t, s, "alice", nil, []byte("x"), 0, false)
	wantCAS(t, s, "alice", []byte("other"), nil, 0, false)
	wantCAS(t, s, "alice", []byte("cu"), nil, 0, false)
	if after, _ := readRow(t, pool, s, "alice"); !after.same(before) {
		t.Fatalf("failed swaps changed the row from %v to %v", before, after)
	}
}

func TestInvalidArguments(t *testing.T) {
	// Outside the contract (jwtauth never passes them): refused, nothing written.
	pool := sharedPool(t)
	s := newStore(t, pool, pgstore.Options{})
	ok, err := s.CompareAndSwap(context.Background(), "alice", nil, []byte("v"), -time.Millisecond)
	wantStoreError(t, "CompareAndSwap with a negative TTL", err)
	if ok {
		t.Fatal("CompareAndSwap with a negative TTL reported a swap")
	}
	ok, err = s.CompareAndSwap(context.Background(), "alice", nil, nil, 0)
	wantStoreError(t, "CompareAndSwap with old and new nil", err)
	if ok {
		t.Fatal("CompareAndSwap(nil, nil) reported a swap")
	}
	if r, _ := readRow(t, pool, s, "alice"); r.found {
		t.Fatalf("refused calls wrote %v", r)
	}
}

func TestCanceledContext(t *testing.T) {
	pool := sharedPool(t)
	s := newStore(t, pool, pgstore.Options{})
	wantCAS(t, s, "alice", nil, []byte("v"), 0, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, loadErr := s.Load(ctx, "alice")
	_, casErr := s.CompareAndSwap(ctx, "alice", []byte("v"), []byte("w"), 0)
	_, insErr := s.CompareAndSwap(ctx, "bob", nil, []byte("w"), 0)
	for name, err := range map[string]error{"Load": loadErr, "CompareAndSwap": casErr, "insert": insErr} {
		wantStoreError(t, name+" with a canceled context", err)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v, want it to wrap context.Canceled", name, err)
		}
	}
	wantStored(t, s, "alice", []byte("v"))
	wantStored(t, s, "bob", nil)
}

func TestDeleteExpired(t *testing.T) {
	pool := sharedPool(t)
	s := newStore(t, pool, pgstore.Options{})
	ctx := context.Background()
	// 2500 expired rows (more than two batches), 10 live ones, 10 without expiry.
	if _, err := pool.Exec(ctx, `INSERT INTO `+s.Table()+` SELECT ('expired' || i)::bytea, 'v', now() - interval '1 second' FROM generate_series(1, 2500) i`); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		wantCAS(t, s, fmt.Sprint("live", i), nil, []byte("v"), time.Hour, true)
		wantCAS(t, s, fmt.Sprint("forever", i), nil, []byte("v"), 0, true)
	}
	n, err := s.DeleteExpired(ctx)
	if err != nil || n != 2500 {
		t.Fatalf("DeleteExpired = %d, %v; want 2500", n, err)
	}
	var left int
	pool.QueryRow(ctx, `SELECT count(*) FROM `+s.Table()).Scan(&left)
	if left != 20 {
		t.Fatalf("%d rows left, want the 20 live ones", left)
	}
	if n, err := s.DeleteExpired(ctx); err != nil || n != 0 {
		t.Fatalf("second DeleteExpired = %d, %v; want 0", n, err)
	}
	// The index on expires_at serves the delete's search (on a table this small the
	// planner prefers a sequential scan, so forbid that to see that the index can).
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var plan []string
	rows, _ := tx.Query(ctx, `SET LOCAL enable_seqscan = off`)
	rows.Close()
	rows, _ = tx.Query(ctx, `EXPLAIN SELECT user_id FROM `+s.Table()+` WHERE expires_at <= now() LIMIT 1000`)
	plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || !strings.Contains(strings.Join(plan, "\n"), "_expires_at_idx") {
		t.Fatalf("the search for expired rows does not use the index: %v %q", err, plan)
	}
}

func TestDeleteExpiredRacingInsert(t *testing.T) {
	// An insert that revives an expired row, racing DeleteExpired: the insert's
	// success is never undone by the delete, which re-checks expires_at on the row it
	// locks.
	pool := sharedPool(t)
	s := newStore(t, pool, pgstore.Options{})
	ctx := context.Background()
	const rounds = 100
	for round := range rounds {
		key := fmt.Sprint("k", round)
		if _, err := pool.Exec(ctx, `INSERT INTO `+s.Table()+` VALUES ($1, 'old', now() - interval '1 second')`, []byte(key)); err != nil {
			t.Fatal(err)
		}
		var ok bool
		var casErr, delErr error
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); ok, casErr = s.CompareAndSwap(ctx, key, nil, []byte("new"), time.Hour) }()
		go func() { defer wg.Done(); _, delErr = s.DeleteExpired(ctx) }()
		wg.Wait()
		if casErr != nil || delErr != nil || !ok {
			t.Fatalf("round %d: insert = %v, %v; DeleteExpired: %v", round, ok, casErr, delErr)
		}
		wantStored(t, s, key, []byte("new"))
	}
}

func TestNewNilPoolPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New(nil) did not panic")
		}
	}()
	pgstore.New(nil, pgstore.Options{})
}

// TestLoadCopies: Load's slice is the caller's even when pgx reuses its read buffer
// for the next row.
func TestLoadCopies(t *testing.T) {
	pool := newPool(t, sharedDSN(t), 1) // one connection: both loads use its buffer
	s := newStore(t, pool, pgstore.Options{})
	wantCAS(t, s, "a", nil, bytes.Repeat([]byte("a"), 100), 0, true)
	wantCAS(t, s, "b", nil, bytes.Repeat([]byte("b"), 100), 0, true)
	a, _ := s.Load(context.Background(), "a")
	b, _ := s.Load(context.Background(), "b")
	if !bytes.Equal(a, bytes.Repeat([]byte("a"), 100)) || !bytes.Equal(b, bytes.Repeat([]byte("b"), 100)) {
		t.Fatalf("loads share memory: %q, %q", a, b)
	}
}

// TestLoadWithByteaOutputEscape: a role or database still set to the pre-9.0 bytea_output
// = 'escape' changes how a bytea reads as text; Load reads the value byte for byte all
// the same (its results come in binary).
func TestLoadWithByteaOutputEscape(t *testing.T) {
	pool := newPool(t, sharedDSN(t), 4, "bytea_output", "escape")
	s := newStore(t, pool, pgstore.Options{})
	v := []byte("\x01record\x00\\x41\xff")
	wantCAS(t, s, "alice", nil, v, time.Hour, true)
	wantStored(t, s, "alice", v)
}
