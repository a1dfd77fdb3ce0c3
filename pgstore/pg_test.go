package pgstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jwtauth/jwtauth/pgstore"
)

// Test setup. The tests need PostgreSQL:
//
//   - JWTAUTH_POSTGRES_DSN names a shared server for the conformance, session, HTTP and
//     timeout tests and the benchmarks; each test works in a table of its own, which it
//     drops when it ends.
//   - The outage and restart tests start servers of their own (initdb and postgres from
//     JWTAUTH_POSTGRES_BIN, else from PATH, else from the newest /usr/lib/postgresql/*/bin)
//     in temporary directories, so the shared one is never stopped.
//
// scripts/with-postgres.sh provides both. Without them a test skips, unless CI is set:
// in CI a missing server is a failure, so that the PostgreSQL tests cannot silently not
// run.

func TestMain(m *testing.M) {
	code := m.Run()
	removeTemplate()
	os.Exit(code)
}

// skipOrFail skips t, or fails it when CI is set.
func skipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (required because CI is set; run the tests through scripts/with-postgres.sh)", why)
	}
	t.Skipf("%s; run the tests through scripts/with-postgres.sh", why)
}

// sharedDSN returns the shared test server's connection string.
func sharedDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("JWTAUTH_POSTGRES_DSN")
	if dsn == "" {
		skipOrFail(t, "JWTAUTH_POSTGRES_DSN is not set")
	}
	return dsn
}

// newPool returns a pool for dsn with room for maxConns connections, closed when t
// ends. It connects lazily, so it can be made while the server is down.
func newPool(t testing.TB, dsn string, maxConns int32, runtimeParams ...string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = maxConns
	for i := 0; i+1 < len(runtimeParams); i += 2 {
		cfg.ConnConfig.RuntimeParams[runtimeParams[i]] = runtimeParams[i+1]
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// sharedPool returns a pool on the shared server, enough for 32 concurrent calls.
func sharedPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return newPool(t, sharedDSN(t), 40)
}

// randomHex returns n random bytes in hexadecimal.
func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testTable returns a fresh table name, and drops the table through pool when t ends.
func testTable(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	name := "jwtauth_test_" + randomHex(t, 6)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{name}.Sanitize()); err != nil {
			t.Logf("cleanup: dropping %s: %v", name, err)
		}
	})
	return name
}

// newStore returns a migrated Store on pool in a table of t's own, dropped when t ends.
func newStore(t testing.TB, pool *pgxpool.Pool, opts pgstore.Options) *pgstore.Store {
	t.Helper()
	if opts.Table == "" {
		opts.Table = testTable(t, pool)
	}
	s, err := pgstore.New(pool, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// row is a table row as the tests read it with SQL, bypassing the Store.
type row struct {
	value     []byte
	expiresAt *time.Time // nil: NULL
	found     bool
}

func (r row) String() string {
	if !r.found {
		return "no row"
	}
	e := "NULL"
	if r.expiresAt != nil {
		e = r.expiresAt.Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("(%q, %s)", r.value, e)
}

// same reports whether two rows are identical: value and expiry.
func (r row) same(o row) bool {
	return r.found == o.found && bytes.Equal(r.value, o.value) &&
		(r.expiresAt == nil) == (o.expiresAt == nil) && (r.expiresAt == nil || r.expiresAt.Equal(*o.expiresAt))
}

// readRow reads key's row, live or not, and the database's now().
func readRow(t testing.TB, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, s *pgstore.Store, key string) (r row, now time.Time) {
	t.Helper()
	err := q.QueryRow(context.Background(),
		`SELECT value, expires_at, now() FROM `+s.Table()+` WHERE user_id = $1`, []byte(key)).Scan(&r.value, &r.expiresAt, &now)
	if errors.Is(err, pgx.ErrNoRows) {
		if err := q.QueryRow(context.Background(), `SELECT now()`).Scan(&now); err != nil {
			t.Fatal(err)
		}
		return row{}, now
	}
	if err != nil {
		t.Fatalf("reading the row of %q: %v", key, err)
	}
	r.found = true
	return r, now
}

// postgresBin returns the directory of initdb and postgres, or skips (fails in CI).
func postgresBin(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("JWTAUTH_POSTGRES_BIN"); dir != "" {
		return dir
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if p, err = filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(p)
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(a) - version(b) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	skipOrFail(t, "initdb not found (JWTAUTH_POSTGRES_BIN, PATH, /usr/lib/postgresql/*/bin)")
	return ""
}

// version is N of /usr/lib/postgresql/N/bin.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// owner is who runs initdb and postgres: ourselves, or "postgres" when we are root
// (PostgreSQL refuses to run as root).
type owner struct {
	root     bool // run as uid:gid rather than as ourselves
	uid, gid int
}

func serverOwner(t testing.TB) owner {
	t.Helper()
	if os.Geteuid() != 0 {
		return owner{}
	}
	if !canRunAs {
		skipOrFail(t, "running as root, and starting PostgreSQL as another user is implemented on Linux only")
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		skipOrFail(t, "running as root, and there is no user \"postgres\" to run PostgreSQL as")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return owner{true, uid, gid}
}

// chown gives path to the owner.
func (o owner) chown(t testing.TB, path string) {
	t.Helper()
	if o.root {
		if err := os.Chown(path, o.uid, o.gid); err != nil {
			t.Fatal(err)
		}
	}
}

// command runs bin as the owner, and has the kernel kill it when the test binary dies
// without running its cleanups (a timeout panic, a SIGKILL).
func (o owner) command(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	setProcAttr(cmd, o)
	return cmd
}

// The servers of the outage and restart tests are copies of one cluster, made by
// initdb once per test binary (it takes a second or two; a copy, a fraction of that).
var template struct {
	once sync.Once
	dir  string // holds data/, the cluster
	err  error
}

func clusterTemplate(t testing.TB, bin string, o owner) string {
	t.Helper()
	template.once.Do(func() {
		dir, err := os.MkdirTemp("", "jwtauth-pgtemplate-")
		if err != nil {
			template.err = err
			return
		}
		template.dir = dir
		os.Chmod(dir, 0o755)
		o.chown(t, dir)
		out, err := o.command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"),
			"-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "-N").CombinedOutput()
		if err != nil {
			template.err = fmt.Errorf("initdb: %v\n%s", err, out)
		}
	})
	if template.err != nil {
		t.Fatal(template.err)
	}
	return filepath.Join(template.dir, "data")
}

func removeTemplate() {
	if template.dir != "" {
		os.RemoveAll(template.dir)
	}
}

// pgServer is a PostgreSQL server of a test's own, which the test may stop, crash and
// start again on the same port with the same data.
type pgServer struct {
	t     testing.TB
	bin   string
	owner owner
	data  string
	port  int
	log   string // the server's log file
	cmd   *exec.Cmd
	done  chan struct{} // closed when cmd has exited
}

// startPostgres starts a server on a free loopback port with a fresh copy of the
// template cluster, and waits until it accepts connections. It is stopped when t ends.
func startPostgres(t testing.TB) *pgServer {
	t.Helper()
	bin := postgresBin(t)
	o := serverOwner(t)
	tmpl := clusterTemplate(t, bin, o)
	dir, err := os.MkdirTemp("", "jwtauth-pgserver-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	if out, err := exec.Command("cp", "-a", tmpl, data).CombinedOutput(); err != nil {
		t.Fatalf("copying the cluster: %v\n%s", err, out)
	}
	s := &pgServer{t: t, bin: bin, owner: o, data: data, log: filepath.Join(dir, "postgres.log")}
	t.Cleanup(s.Stop)
	// A port found free can be taken before postgres binds it; try a few.
	for range 5 {
		s.port = freePort(t)
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("starting postgres: %v\n%s", err, s.logTail())
	return nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// DSN is the server's connection string; connect_timeout keeps a dial to a stopped
// server short.
func (s *pgServer) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", s.port)
}

// start runs postgres and waits (at most 30 s) until it accepts a connection.
func (s *pgServer) start() error {
	logFile, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	s.cmd = s.owner.command(filepath.Join(s.bin, "postgres"), "-D", s.data, "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=50")
	s.cmd.Stdout = logFile
	s.cmd.Stderr = logFile
	if err := s.cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	s.done = done
	cmd := s.cmd
	go func() { cmd.Wait(); close(done) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("postgres on port %d exited early", s.port)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := pgx.Connect(ctx, s.DSN())
		if err == nil {
			err = c.Ping(ctx)
			c.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.signal(syscall.SIGQUIT)
			return fmt.Errorf("postgres on port %d not accepting connections after 30s: %v", s.port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signal sends sig to the postmaster and waits for it to exit; nothing if it has.
func (s *pgServer) signal(sig syscall.Signal) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// logTail is the end of the server's log, for failure messages.
func (s *pgServer) logTail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Stop shuts the server down as pg_ctl stop -m fast does (SIGINT: roll back open
// transactions, disconnect everyone, checkpoint) and waits for it to exit.
func (s *pgServer) Stop() { s.signal(syscall.SIGINT) }

// Crash shuts the server down as pg_ctl stop -m immediate does (SIGQUIT: every process
// exits at once, no checkpoint; the next start recovers from the write-ahead log, as
// after a power cut that spared the disk).
func (s *pgServer) Crash() { s.signal(syscall.SIGQUIT) }

// Start starts a stopped server again, on the same port with the same data.
func (s *pgServer) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("restarting postgres: %v\n%s", err, s.logTail())
	}
}
