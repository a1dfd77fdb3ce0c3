// Package pgstore is a jwtauth.Store on PostgreSQL, through a pgx connection pool, so
// that a service which already runs PostgreSQL keeps its users' sessions there: every
// replica behind a load balancer shares them, and they survive restarts of the service
// and of the database.
//
// It is also the Store contract written in SQL, one statement per operation, as an
// example for other databases.
//
// # Wiring
//
//	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
//	// ...
//	store, err := pgstore.New(pool, pgstore.Options{}) // table jwtauth_sessions
//	// ...
//	if err := store.Migrate(ctx); err != nil { // or run the SQL below in your migrations
//		// ...
//	}
//	auth, err := jwtauth.New(jwtauth.Config{
//		Secret:       secret,
//		Endpoints:    &jwtauth.Endpoints{Authenticate: login},
//		RetrieveUser: lookup,
//		Refresh:      &jwtauth.Refresh{Store: store},
//	})
//
// and, every hour or so, from one replica or a cron job, store.DeleteExpired(ctx) to
// remove the rows of users whose last session has ended (an expired row is already
// invisible: this only reclaims space).
//
// # Schema
//
// One table, one row per user id that has a live session (Migrate creates it, and is
// safe to run from every replica at start-up):
//
//	CREATE TABLE IF NOT EXISTS jwtauth_sessions (
//		user_id    bytea PRIMARY KEY,  -- the user id's bytes: any byte, NUL included
//		value      bytea NOT NULL,     -- jwtauth's session record, opaque
//		expires_at timestamptz         -- NULL: never
//	);
//	CREATE INDEX IF NOT EXISTS jwtauth_sessions_expires_at_idx
//		ON jwtauth_sessions (expires_at) WHERE expires_at IS NOT NULL;
//
// Options.Table names another table, optionally in a schema ("auth.sessions"). The name
// is checked against a strict pattern (lowercase letters, digits and underscores) and
// quoted, so that it cannot carry SQL. The service's role needs SELECT, INSERT, UPDATE
// and DELETE on the table; Migrate also needs CREATE on the schema.
//
// # Statements
//
// A row is live when expires_at IS NULL OR expires_at > now(). Every time is the
// database's clock (now(), the start of the statement's transaction), never the
// application server's, so that replicas with skewed clocks agree on what has expired;
// a TTL is added in SQL as $ttl * interval '1 millisecond', rounded up to a whole
// millisecond. Each operation is one statement in its own implicit transaction, and
// each swap reports by its affected-row count:
//
//	-- Load
//	SELECT value FROM t WHERE user_id = $1 AND live
//	-- CompareAndSwap(old, new): a rotation
//	UPDATE t SET value = $new, expires_at = now() + $ttl
//	  WHERE user_id = $1 AND value = $old AND live
//	-- CompareAndSwap(old, nil): a delete
//	DELETE FROM t WHERE user_id = $1 AND value = $old AND live
//	-- CompareAndSwap(nil, new): an insert, where an expired row counts as none
//	INSERT INTO t AS t (user_id, value, expires_at) VALUES ($1, $new, now() + $ttl)
//	  ON CONFLICT (user_id) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
//	  WHERE t.expires_at <= now()
//
// # Why each swap is atomic under READ COMMITTED
//
// PostgreSQL's default isolation level is enough; the store starts no transaction of
// its own and needs no SERIALIZABLE retries.
//
// The UPDATE and the DELETE lock the row they find. A second statement that finds the
// same row while the first holds the lock waits for it to commit, and then, instead of
// acting on the version its snapshot saw, re-evaluates its whole WHERE clause on the
// row's newest version (the "EvalPlanQual" re-check; a deleted row is skipped). So of
// several concurrent swaps from one old value, the first to lock the row wins, and every
// other one re-compares against the winner's value, fails the compare and reports zero
// rows. The compare (value = $old, bytea equality: byte for byte) and the write are one
// step, with nothing in between that another session could change.
//
// The insert must treat an expired row as absent. Two statements, a DELETE of an expired
// row and then INSERT … ON CONFLICT DO NOTHING, would leave a gap: a row still live at
// the DELETE but expired by the INSERT would make the insert fail although the key
// then holds nothing, and another replica's Load would disagree with it. The single
// INSERT … ON CONFLICT DO UPDATE … WHERE has no gap: either it inserts (no row), or it
// locks the existing row (waiting for a concurrent writer to commit, and retrying the
// insert if that writer deleted it) and replaces it only if the locked, newest version
// has expired. PostgreSQL guarantees that outcome, insert or update, even against
// concurrent inserts of the same key (which a two-step "SELECT then INSERT", or MERGE,
// does not: they fail with a unique violation). One affected row means the key held
// nothing live and now holds new; zero means a live row was there, and it is unchanged.
// This statement and Load judge expiry by the same rule, each by its own now().
//
// DeleteExpired deletes in batches with WHERE expires_at <= now() on the deleted row
// itself, so a row an insert revived in the meantime is re-checked, found live, and
// kept.
//
// # Errors and timeouts
//
// A missing row is Load's (nil, nil) and a failed compare is CompareAndSwap's (false,
// nil), as the Store contract says. Every other outcome (the database down, a timeout, a
// done context, a statement error) is an error prefixed "pgstore: " and wrapping pgx's,
// and jwtauth answers 500: an outage never looks like a missing or wrong token, which
// would log the user out or end the session.
//
// jwtauth calls the store with contexts that are never cancelled, so the store bounds
// every call by Options.Timeout (default 5 s). When that expires, or the caller's
// context ends, pgx abandons the connection, but PostgreSQL may still run the statement
// it received (one waiting for a row lock notices that the client has gone only when
// it has a result to send): the swap may be applied after the call returned its error,
// which the Store contract allows (a refresh that failed with a 500 may have rotated the
// session's token, and that client logs in again).
// Statements stay atomic either way: a row holds the old value and expiry or the new
// ones, never a mix. To have PostgreSQL give up first, so that a timed-out call is known
// not to have happened, set statement_timeout and lock_timeout below Options.Timeout on
// the role the service logs in as, which reaches every connection however it was
// opened (PgBouncer refuses them as startup parameters in the connection string):
//
//	ALTER ROLE app SET statement_timeout = '2s';
//	ALTER ROLE app SET lock_timeout = '1s';
//
// # Behind PgBouncer
//
// The store works directly and behind a pooler in session or transaction pooling (not
// statement pooling, where Migrate's transaction is refused), with the pool as
// pgxpool.New makes it: every statement is sent as the unnamed statement (parse, bind
// and execute in one round trip), never prepared under a name that the next
// transaction's server connection would not know, whatever the pool's
// DefaultQueryExecMode. The price is the server's parse and plan of each statement
// (see unprepared: about 0.3 ms per refresh on loopback). Migrate runs in one transaction, which PgBouncer keeps on one
// server connection, advisory lock included.
//
// # Durability
//
// A swap reports success after its transaction commits: with PostgreSQL's defaults
// (fsync on, synchronous_commit on) a committed login, rotation or logout survives a
// crash of the database. synchronous_commit = off may lose the last few hundred
// milliseconds of commits on a crash; with sessions, a lost rotation makes the client's
// newer token unknown (a 401, log in again) and a lost logout revives a session.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jwtauth/jwtauth"
)

// unprepared, as the first argument of every statement, has pgx send it as the unnamed
// statement, parsed, bound and executed in one round trip (pgx caches only the
// statement's parameter and result types, per connection, to exchange values in binary),
// instead of preparing it under a name: behind PgBouncer in transaction pooling the next
// statement may run on another server connection, where that name is unknown or
// already taken (SQLSTATE 26000 and 42P05). The server then parses and plans each
// statement again: on loopback, about 35 µs more per Load and 85 µs per swap than with
// prepared statements, and a refresh through jwtauth's endpoint took 0.87 ms instead of
// 0.53 ms (medians of 10 interleaved runs on a 2-core VM); the round trips are the same.
// It holds whatever the pool's DefaultQueryExecMode.
const unprepared = pgx.QueryExecModeCacheDescribe

// DefaultTable is the table a Store uses when Options.Table is empty.
const DefaultTable = "jwtauth_sessions"

// DefaultTimeout bounds each call when Options.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// Options configures a Store. The zero value means the defaults.
type Options struct {
	// Table is the table's name, "table" or "schema.table". Each part is lowercase
	// ASCII letters, digits and underscores, not starting with a digit; a table name
	// is at most 48 bytes (so that the index named after it fits PostgreSQL's 63), a
	// schema name at most 63. Default DefaultTable, in the connection's search_path.
	Table string

	// Timeout bounds each Load, CompareAndSwap and DeleteExpired batch, on top of the
	// caller's context. Default DefaultTimeout; it must not be negative.
	Timeout time.Duration
}

// Store is a jwtauth.Store on PostgreSQL. It is safe for concurrent use (as the pool
// is) and holds no state of its own besides its configuration and SQL text.
type Store struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	schema  string // "" for the search_path
	table   string
	ident   string // the quoted, possibly schema-qualified table name

	load, swap, del, insert, deleteExpired string
}

var _ jwtauth.Store = (*Store)(nil)

var (
	tablePattern  = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,47}$`)
	schemaPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
)

// deleteBatch is how many expired rows one DeleteExpired statement deletes at most, so
// that no statement holds many row locks for long.
const deleteBatch = 1000

// New returns a Store that keeps values in opts.Table through pool. It checks the
// options (a table name that does not match the pattern is an error, whatever it
// holds) but does not touch the database: call Migrate, or create the table yourself.
// The Store does not own the pool: closing it is the caller's business. New panics if
// pool is nil, a programming error.
func New(pool *pgxpool.Pool, opts Options) (*Store, error) {
	if pool == nil {
		panic("pgstore: New with nil pool")
	}
	s := &Store{pool: pool, timeout: opts.Timeout, table: opts.Table}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if s.timeout < 0 {
		return nil, fmt.Errorf("pgstore: negative Timeout %v", opts.Timeout)
	}
	if s.table == "" {
		s.table = DefaultTable
	}
	schema, table, qualified := strings.Cut(s.table, ".")
	if qualified {
		s.schema, s.table = schema, table
	}
	if !tablePattern.MatchString(s.table) || qualified && !schemaPattern.MatchString(s.schema) {
		return nil, fmt.Errorf("pgstore: table name %q is not [schema.]table in lowercase letters, digits and underscores (at most 63 and 48 bytes)", opts.Table)
	}
	// The pattern already excludes every character that could end an identifier;
	// quoting is the second line, and keeps reserved words ("user") usable.
	id := pgx.Identifier{s.table}
	if qualified {
		id = pgx.Identifier{s.schema, s.table}
	}
	s.ident = id.Sanitize()
	const live = `(expires_at IS NULL OR expires_at > now())`
	const expiry = `now() + $3::bigint * interval '1 millisecond'` // NULL for a NULL ttl
	s.load = `SELECT value FROM ` + s.ident + ` WHERE user_id = $1 AND ` + live
	s.swap = `UPDATE ` + s.ident + ` SET value = $4, expires_at = ` + expiry +
		` WHERE user_id = $1 AND value = $2 AND ` + live
	s.del = `DELETE FROM ` + s.ident + ` WHERE user_id = $1 AND value = $2 AND ` + live
	s.insert = `INSERT INTO ` + s.ident + ` AS t (user_id, value, expires_at) VALUES ($1, $2, ` + expiry + `)` +
		` ON CONFLICT (user_id) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at` +
		` WHERE t.expires_at <= now()`
	s.deleteExpired = `DELETE FROM ` + s.ident + ` WHERE user_id IN (SELECT user_id FROM ` + s.ident +
		` WHERE expires_at <= now() LIMIT $1) AND expires_at <= now()`
	return s, nil
}

// Table returns the table's name as it appears in the Store's SQL: quoted, and
// schema-qualified when Options.Table was.
func (s *Store) Table() string { return s.ident }

// migrateLock is the advisory lock Migrate holds, so that replicas starting at once do
// not race to create the table (CREATE TABLE IF NOT EXISTS is not safe against a
// concurrent CREATE of the same name: one of them fails on a catalog unique index).
const migrateLock = 0x6a77746175746831 // "jwtauth1"

// Migrate creates the table and its index on expires_at if they do not exist, and
// checks that an existing table has the three columns with the right types. It runs in
// one transaction under an advisory lock, so replicas may all call it at start-up. It
// uses ctx as given (no Options.Timeout).
func (s *Store) Migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	index := pgx.Identifier{s.table + "_expires_at_idx"}.Sanitize() // created in the table's schema
	for _, q := range []string{
		fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d)`, migrateLock),
		`CREATE TABLE IF NOT EXISTS ` + s.ident + ` (
	user_id    bytea PRIMARY KEY,
	value      bytea NOT NULL,
	expires_at timestamptz
)`,
		`CREATE INDEX IF NOT EXISTS ` + index + ` ON ` + s.ident + ` (expires_at) WHERE expires_at IS NOT NULL`,
	} {
		if _, err := tx.Exec(ctx, q, unprepared); err != nil {
			return fmt.Errorf("pgstore: migrate: %w", err)
		}
	}
	rows, err := tx.Query(ctx, `SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = $1::regclass AND attname IN ('user_id', 'value', 'expires_at') AND NOT attisdropped`, unprepared, s.ident)
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	want := map[string]string{"user_id": "bytea", "value": "bytea", "expires_at": "timestamp with time zone"}
	types, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (col [2]string, err error) {
		err = r.Scan(&col[0], &col[1])
		return col, err
	})
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	for _, c := range types {
		if want[c[0]] == c[1] {
			delete(want, c[0])
		}
	}
	if len(want) > 0 {
		return fmt.Errorf("pgstore: migrate: table %s exists without the columns user_id bytea, value bytea, expires_at timestamptz (found %v)", s.ident, types)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	return nil
}

// Load returns the value stored under key, or nil and no error when there is no live
// row. The slice is the caller's.
func (s *Store) Load(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var v []byte // pgx scans a bytea into a fresh slice
	err := s.pool.QueryRow(ctx, s.load, unprepared, []byte(key)).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: load: %w", err)
	}
	return v, nil
}

// CompareAndSwap stores new under key, for ttl (0: no expiry), if the key's live row
// holds old byte for byte (nil: if there is no live row), and reports whether it did; a
// nil new deletes the row. It is one statement, whose affected-row count is the answer
// (see the package doc). PostgreSQL counts the TTL from its own clock; ttl is rounded
// up to a whole millisecond, so a value never expires earlier than asked. A negative
// ttl is an error, as are old and new both nil.
func (s *Store) CompareAndSwap(ctx context.Context, key string, old, new []byte, ttl time.Duration) (bool, error) {
	if ttl < 0 {
		return false, fmt.Errorf("pgstore: compare-and-swap: negative TTL %v", ttl)
	}
	var ms *int64 // NULL: no expiry
	if ttl > 0 {
		n := int64((ttl + time.Millisecond - 1) / time.Millisecond)
		ms = &n
	}
	var q string
	args := []any{unprepared, []byte(key), old}
	switch {
	case old != nil && new != nil:
		q, args = s.swap, append(args, ms, new)
	case old != nil:
		q = s.del
	case new != nil:
		q, args = s.insert, []any{unprepared, []byte(key), new, ms}
	default:
		return false, errors.New("pgstore: compare-and-swap: old and new both nil")
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("pgstore: compare-and-swap: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// DeleteExpired deletes the rows that have expired, in batches of at most 1000 (each
// its own statement under Options.Timeout), and returns how many it deleted. Expired
// rows are already invisible to Load and replaced by an insert; this reclaims their
// space. Run it periodically from one place; running it from several at once is safe.
func (s *Store) DeleteExpired(ctx context.Context) (int64, error) {
	var total int64
	for {
		n, err := s.deleteExpiredBatch(ctx)
		total += n
		if err != nil {
			return total, err
		}
		if n < deleteBatch {
			return total, nil
		}
	}
}

func (s *Store) deleteExpiredBatch(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	tag, err := s.pool.Exec(ctx, s.deleteExpired, unprepared, deleteBatch)
	if err != nil {
		return 0, fmt.Errorf("pgstore: delete expired: %w", err)
	}
	return tag.RowsAffected(), nil
}
