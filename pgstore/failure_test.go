package pgstore_test

// Failure behaviour: the database down or unreachable, a statement cut short by
// statement_timeout or by the caller's context, and PostgreSQL restarted or crashing
// while sessions are being refreshed. The tests that stop a server start one of their
// own (startPostgres); the shared one is never stopped.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jwtauth/jwtauth"
	"github.com/jwtauth/jwtauth/pgstore"
)

// outageBudget is how long a call may take while the database is down: a refused
// connection fails at once; the rest is slack for the race detector on a busy machine.
const outageBudget = time.Second

// waitUp polls until the store answers again (a Load without error), for at most 30 s.
func waitUp(t testing.TB, s *pgstore.Store) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := s.Load(context.Background(), "anyone")
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("store still failing 30s after PostgreSQL came back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDatabaseDown(t *testing.T) {
	// Every call fails promptly with a store error while the server is stopped, and
	// the same Store works again, with its data, once it is back.
	srv := startPostgres(t)
	pool := newPool(t, srv.DSN(), 4)
	s := newStore(t, pool, pgstore.Options{Timeout: 2 * time.Second})
	ctx := context.Background()
	v := []byte("record")
	wantCAS(t, s, "alice", nil, v, time.Hour, true)

	srv.Stop()
	// Twice: first on the pooled connection the server just closed, then on new dials.
	for range 2 {
		for name, f := range map[string]func() error{
			"Load":                    func() error { _, err := s.Load(ctx, "alice"); return err },
			"CompareAndSwap (insert)": func() error { _, err := s.CompareAndSwap(ctx, "bob", nil, v, time.Hour); return err },
			"CompareAndSwap (swap)":   func() error { _, err := s.CompareAndSwap(ctx, "alice", v, v, time.Hour); return err },
			"CompareAndSwap (delete)": func() error { _, err := s.CompareAndSwap(ctx, "alice", v, nil, 0); return err },
			"DeleteExpired":           func() error { _, err := s.DeleteExpired(ctx); return err },
		} {
			start := time.Now()
			wantStoreError(t, name+" while PostgreSQL is down", f())
			if el := time.Since(start); el > outageBudget {
				t.Errorf("%s took %v while PostgreSQL is down, want at most %v", name, el, outageBudget)
			}
		}
	}

	srv.Start()
	waitUp(t, s) // the same pool reconnects by itself
	wantStored(t, s, "alice", v)
	wantStored(t, s, "bob", nil)
	wantCAS(t, s, "alice", v, []byte("next"), time.Hour, true)
}

func TestHTTPDatabaseDown(t *testing.T) {
	// The database stopped: login and refresh answer 500, never 401 (which would end
	// the session), Protected without VerifySessions keeps working (it only verifies
	// the access token), and with VerifySessions it answers 500 too. Once the database
	// is back, the session opened before the outage refreshes as if nothing happened.
	srv := startPostgres(t)
	pool := newPool(t, srv.DSN(), 8)
	s := newStore(t, pool, pgstore.Options{Timeout: 2 * time.Second})
	a := newInstance(t, s)
	verifying := newInstanceWith(t, &jwtauth.Refresh{Store: s, VerifySessions: true})
	d := login(t, a, "alice")
	mustRefresh(t, a, d, "refresh before the outage")
	if got := getOrders(t, verifying, d.access); got != http.StatusOK {
		t.Fatalf("VerifySessions, before the outage: %d", got)
	}

	srv.Stop()
	start := time.Now()
	wantReply(t, "login while PostgreSQL is down", post(t, a, "/auth", "", map[string]string{}), http.StatusInternalServerError, "InternalServerError")
	wantReply(t, "refresh while PostgreSQL is down", refresh(t, a, d), http.StatusInternalServerError, "InternalServerError")
	wantReply(t, "refresh again while PostgreSQL is down", refresh(t, a, d), http.StatusInternalServerError, "InternalServerError")
	wantReply(t, "logout while PostgreSQL is down", post(t, a, "/auth/logout", d.access, nil), http.StatusInternalServerError, "InternalServerError")
	if got := getOrders(t, a, d.access); got != http.StatusOK {
		t.Fatalf("Protected without VerifySessions while PostgreSQL is down: %d, want 200", got)
	}
	if got := getOrders(t, verifying, d.access); got != http.StatusInternalServerError {
		t.Fatalf("Protected with VerifySessions while PostgreSQL is down: %d, want 500", got)
	}
	if el := time.Since(start); el > 6*outageBudget {
		t.Errorf("six requests took %v while PostgreSQL is down", el)
	}

	srv.Start()
	waitUp(t, s)
	mustRefreshRetrying(t, a, d, "the pre-outage token after PostgreSQL came back")
	mustRefresh(t, a, d, "the rotated token")
	login(t, a, "alice")
}

func TestHTTPDatabaseUnreachable(t *testing.T) {
	// Replica B's pool points at a closed port (a wrong host, a partition): on B, login
	// and refresh are 500 and Protected is 200, and B's failures end nothing: the
	// session refreshes on A, which reaches the database.
	pool := sharedPool(t)
	s := newStore(t, pool, pgstore.Options{})
	a := newInstance(t, s)
	closed := newPool(t, "postgres://postgres@127.0.0.1:"+strconv.Itoa(freePort(t))+"/postgres?sslmode=disable&connect_timeout=1", 4)
	unreachable, err := pgstore.New(closed, pgstore.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b := newInstance(t, unreachable)
	d := login(t, a, "alice")
	start := time.Now()
	wantReply(t, "login on B", post(t, b, "/auth", "", map[string]string{}), http.StatusInternalServerError, "InternalServerError")
	wantReply(t, "refresh on B", refresh(t, b, d), http.StatusInternalServerError, "InternalServerError")
	wantReply(t, "logout on B", post(t, b, "/auth/logout", d.access, nil), http.StatusInternalServerError, "InternalServerError")
	if got := getOrders(t, b, d.access); got != http.StatusOK {
		t.Fatalf("Protected on B: %d, want 200", got)
	}
	if el := time.Since(start); el > 4*outageBudget {
		t.Errorf("four requests on B took %v", el)
	}
	mustRefresh(t, a, d, "refresh on A after B's failures")
}

// mustRefreshRetrying is mustRefresh after a restart: the first requests may meet a
// pooled connection to the old server process (pgxpool checks only connections idle for
// a second or more), which is a 500 that changed nothing, so 500s are retried a few
// times. Any other answer is final.
func mustRefreshRetrying(t testing.TB, srv *httptest.Server, d *device, what string) (retries int) {
	t.Helper()
	for ; retries < 20; retries++ {
		r := refresh(t, srv, d)
		if r.status == http.StatusInternalServerError {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		wantReply(t, what, r, http.StatusOK, "")
		d.access, d.refresh = r.access, r.refresh
		return retries
	}
	t.Fatalf("%s: still 500 after %d tries", what, retries)
	return retries
}

// pgCode is the SQLSTATE of a PostgreSQL error in err's chain, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// lockedRead returns key's row as it is once every statement queued for its lock has
// finished: it takes the row lock itself (FOR UPDATE waits behind the earlier waiters).
func lockedRead(t testing.TB, pool interface {
	Begin(context.Context) (pgx.Tx, error)
}, s *pgstore.Store, key string) (row, time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM `+s.Table()+` WHERE user_id = $1 FOR UPDATE) x`, []byte(key)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return readRow(t, tx, s, key)
}

// blocker holds key's row lock in an open transaction of its own, as a slow request
// would; sql, if set, is the statement that takes it (by default SELECT … FOR UPDATE).
func blocker(t testing.TB, pool interface {
	Begin(context.Context) (pgx.Tx, error)
}, s *pgstore.Store, key, sql string) pgx.Tx {
	t.Helper()
	tx, err := pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sql == "" {
		sql = `SELECT 1 FROM ` + s.Table() + ` WHERE user_id = $1 FOR UPDATE`
	}
	if _, err := tx.Exec(context.Background(), sql, []byte(key)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback(context.Background()) })
	return tx
}

func TestStatementTimeoutLeavesRowUnchanged(t *testing.T) {
	// With statement_timeout on the pool's connections, a swap that waits too long for
	// a row lock is cancelled by PostgreSQL itself: an error (SQLSTATE 57014), and the
	// row is exactly as before, value and expiry, since the statement was rolled back.
	pool := sharedPool(t)
	table := testTable(t, pool)
	s := newStore(t, pool, pgstore.Options{Table: table})
	limitedPool := newPool(t, sharedDSN(t), 4, "statement_timeout", "200")
	limited, err := pgstore.New(limitedPool, pgstore.Options{Table: table})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v0, v1 := []byte("old record"), []byte("new record")
	for _, tc := range []struct {
		name     string
		prepare  string // SQL on the row before the lock is taken
		old, new []byte
	}{
		{"swap", "", v0, v1},
		{"delete", "", v0, nil},
		{"insert over an expired row", `UPDATE ` + s.Table() + ` SET expires_at = now() - interval '1 second' WHERE user_id = $1`, nil, v1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "alice " + tc.name
			wantCAS(t, s, key, nil, v0, time.Hour, true)
			if tc.prepare != "" {
				if _, err := pool.Exec(ctx, tc.prepare, []byte(key)); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := readRow(t, pool, s, key)
			tx := blocker(t, pool, s, key, "")
			start := time.Now()
			ok, err := limited.CompareAndSwap(ctx, key, tc.old, tc.new, 2*time.Hour)
			el := time.Since(start)
			wantStoreError(t, "CompareAndSwap past statement_timeout", err)
			if ok || pgCode(err) != "57014" {
				t.Fatalf("CompareAndSwap past statement_timeout = %v, %v; want false and SQLSTATE 57014 (query_canceled)", ok, err)
			}
			if el > 200*time.Millisecond+outageBudget {
				t.Errorf("the cancelled swap took %v", el)
			}
			tx.Rollback(ctx)
			if after, _ := lockedRead(t, pool, s, key); !after.same(before) {
				t.Fatalf("after a swap cancelled by statement_timeout the row is %v, want it unchanged: %v", after, before)
			}
			// The connection is still good, and the swap works once the lock is free.
			wantCAS(t, limited, key, tc.old, tc.new, 2*time.Hour, true)
		})
	}
}

func TestContextDeadlineLeavesNoHalfWrittenRow(t *testing.T) {
	// A swap waiting for a row lock when the caller's context ends (deadline or
	// cancel): the call returns the context's error at once. pgx then abandons the
	// connection, but PostgreSQL still runs the statement once the lock is free, so the
	// row ends up either as it was or as the swap makes it: the old value with the old
	// expiry, or the new value with the new expiry, never a mix. And if the lock holder
	// changed the row, the abandoned swap re-checks its compare and does nothing.
	pool := sharedPool(t)
	s := newStore(t, pool, pgstore.Options{})
	ctx := context.Background()
	v0, v1 := []byte("old record"), []byte("new record")
	for _, tc := range []struct {
		name     string
		cancel   bool   // cancel the context after 100 ms instead of a 100 ms deadline
		commit   string // the lock holder's change, committed; "" rolls back
		old, new []byte
	}{
		{"deadline, swap", false, "", v0, v1},
		{"cancel, swap", true, "", v0, v1},
		{"deadline, delete", false, "", v0, nil},
		{"deadline, the lock holder changes the row", false, "UPDATE %s SET value = 'theirs', expires_at = now() + interval '3 hours' WHERE user_id = $1", v0, v1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "alice " + tc.name
			wantCAS(t, s, key, nil, v0, time.Hour, true)
			before, _ := readRow(t, pool, s, key)
			sql := ""
			if tc.commit != "" {
				sql = fmt.Sprintf(tc.commit, s.Table())
			}
			tx := blocker(t, pool, s, key, sql)
			var callCtx context.Context
			var cancel context.CancelFunc
			want := context.DeadlineExceeded
			if tc.cancel {
				callCtx, cancel = context.WithCancel(ctx)
				time.AfterFunc(100*time.Millisecond, cancel)
				want = context.Canceled
			} else {
				callCtx, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
			}
			defer cancel()
			start := time.Now()
			ok, err := s.CompareAndSwap(callCtx, key, tc.old, tc.new, 2*time.Hour)
			el := time.Since(start)
			wantStoreError(t, "CompareAndSwap past the context's end", err)
			if ok || !errors.Is(err, want) {
				t.Fatalf("CompareAndSwap past the context's end = %v, %v; want false and %v", ok, err, want)
			}
			if el > 100*time.Millisecond+outageBudget {
				t.Errorf("the abandoned swap took %v to return", el)
			}
			var theirs row
			if tc.commit != "" {
				theirs, _ = readRow(t, tx, s, key)
				if err := tx.Commit(ctx); err != nil {
					t.Fatal(err)
				}
			} else {
				tx.Rollback(ctx)
			}
			after, now := lockedRead(t, pool, s, key)
			switch {
			case tc.commit != "":
				if !after.same(theirs) {
					t.Fatalf("the abandoned swap overwrote a row the lock holder changed: %v, want %v", after, theirs)
				}
			case after.same(before):
				t.Logf("the abandoned swap was not applied: %v", after)
			case tc.new == nil && !after.found:
				t.Logf("the abandoned delete was applied after the lock was released")
			case tc.new != nil && bytes.Equal(after.value, tc.new) && after.expiresAt != nil &&
				after.expiresAt.Sub(now) > 2*time.Hour-time.Minute && after.expiresAt.Sub(now) <= 2*time.Hour:
				t.Logf("the abandoned swap was applied after the lock was released: %v", after)
			default:
				t.Fatalf("after an abandoned swap the row is %v; want %v (not applied) or the new value with the new expiry", after, before)
			}
		})
	}
}

func TestRestartLosesNoCommittedSession(t *testing.T) {
	// Sessions are logged in and refreshed (each answer a commit), and more are being
	// refreshed in a loop while PostgreSQL is shut down and started again: once as
	// pg_ctl stop -m fast would, once as a crash (-m immediate: no checkpoint, recovery
	// from the write-ahead log). Afterwards every session whose last answer was 200
	// refreshes with the token of that answer. A session whose refresh was in flight
	// when the server went away may have been rotated with the answer lost (a 500 for
	// a committed rotation): its retry is then a reuse, a 401, as the Store contract
	// allows; those are counted, and can only be sessions that saw a 500.
	srv := startPostgres(t)
	pool := newPool(t, srv.DSN(), 16)
	s := newStore(t, pool, pgstore.Options{Timeout: 2 * time.Second})
	a := newInstance(t, s)
	for _, mode := range []struct {
		name string
		stop func()
	}{{"fast shutdown", srv.Stop}, {"crash (immediate shutdown)", srv.Crash}} {
		t.Run(mode.name, func(t *testing.T) {
			committed := make([]*device, 20)
			for i := range committed {
				committed[i] = login(t, a, fmt.Sprintf("%s committed %d", mode.name, i))
				mustRefresh(t, a, committed[i], "refresh before the restart")
				mustRefresh(t, a, committed[i], "refresh before the restart")
			}
			const workers = 8
			type worker struct {
				d         *device
				last      int // the last answer's status
				before401 int // the answer before a 401, if there was one
				ok, err5  int
			}
			ws := make([]*worker, workers)
			for i := range ws {
				ws[i] = &worker{d: login(t, a, fmt.Sprintf("%s busy %d", mode.name, i)), last: 200}
			}
			var stop atomic.Bool
			var wg sync.WaitGroup
			for _, w := range ws {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for !stop.Load() {
						r := refresh(t, a, w.d)
						w.last, w.before401 = r.status, w.last
						switch r.status {
						case http.StatusOK:
							w.ok++
							w.d.access, w.d.refresh = r.access, r.refresh
						case http.StatusInternalServerError:
							w.err5++
							time.Sleep(20 * time.Millisecond) // then retry the same token
						case http.StatusUnauthorized:
							return
						default:
							t.Errorf("refresh during the restart: %d %q", r.status, r.exception)
							return
						}
					}
				}()
			}
			time.Sleep(300 * time.Millisecond)
			mode.stop()
			time.Sleep(100 * time.Millisecond)
			srv.Start()
			waitUp(t, s)
			time.Sleep(300 * time.Millisecond)
			stop.Store(true)
			wg.Wait()

			retries := 0
			for i, d := range committed {
				retries += mustRefreshRetrying(t, a, d, fmt.Sprintf("committed session %d after the restart", i))
			}
			var ok, err5, lost int
			for i, w := range ws {
				ok, err5 = ok+w.ok, err5+w.err5
				what := fmt.Sprintf("busy session %d after the restart", i)
				switch w.last {
				case http.StatusOK: // committed and answered: it must live on
					retries += mustRefreshRetrying(t, a, w.d, what)
					continue
				case http.StatusInternalServerError: // retry until the outcome is known
					for range 20 {
						if r := refresh(t, a, w.d); r.status != http.StatusInternalServerError {
							w.last, w.before401 = r.status, w.last
							break
						}
						time.Sleep(20 * time.Millisecond)
					}
				}
				switch {
				case w.last == http.StatusOK:
				case w.last == http.StatusUnauthorized && w.before401 == http.StatusInternalServerError:
					lost++ // the retry of a token whose rotation committed unanswered: a reuse
				case w.last == http.StatusUnauthorized:
					// A 401 right after a 200: the rotation that answered 200 was lost.
					t.Fatalf("%s: a 401 after a %d, not after a 500: a committed rotation was lost", what, w.before401)
				default:
					t.Fatalf("%s: %d", what, w.last)
				}
			}
			if ok == 0 || err5 == 0 {
				t.Fatalf("the traffic did not span the restart: %d refreshes answered 200, %d answered 500", ok, err5)
			}
			t.Logf("%d committed sessions and %d busy ones survived; during the restart %d refreshes answered 200 and %d answered 500; %d sessions ended by a rotation whose answer was lost; %d retried 500s on stale pooled connections afterwards",
				len(committed), workers-lost, ok, err5, lost, retries)
		})
	}
}
