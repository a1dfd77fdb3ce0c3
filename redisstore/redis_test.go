package redisstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Test setup. The tests need a Redis server:
//
//   - JWTAUTH_REDIS_ADDR (host:port) names a shared server for the conformance and
//     contract tests; each test uses keys under its own random prefix and deletes only
//     those.
//   - The outage and restart tests start their own redis-server (JWTAUTH_REDIS_SERVER_BIN,
//     else redis-server on PATH) in a temporary directory, so the shared one is never
//     stopped.
//
// scripts/with-redis.sh provides both. Without them a test skips, unless CI is set: in
// CI a missing server is a failure, so that the Redis tests cannot silently not run.

// skipOrFail skips t, or fails it when CI is set.
func skipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (required because CI is set; run the tests through scripts/with-redis.sh)", why)
	}
	t.Skipf("%s; run the tests through scripts/with-redis.sh", why)
}

// redisAddr returns the shared test server's address.
func redisAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("JWTAUTH_REDIS_ADDR")
	if addr == "" {
		skipOrFail(t, "JWTAUTH_REDIS_ADDR is not set")
	}
	return addr
}

// newClient returns a client for addr, closed when t ends, whose every timeout is
// timeout and which never retries, so that a failure shows as one prompt error.
// The outage tests use 200 ms; the others a lenient 5 s, since a loaded CI machine
// can stall a process for longer than 200 ms.
func newClient(t testing.TB, addr string, timeout time.Duration) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:          addr,
		DialTimeout:   timeout,
		ReadTimeout:   timeout,
		WriteTimeout:  timeout,
		PoolTimeout:   timeout,
		MaxRetries:    -1, // -1 disables retries; 0 would mean the default, 3
		DialerRetries: 1,
		PoolSize:      64, // the concurrency tests run 32 commands at once
	})
	t.Cleanup(func() { c.Close() })
	return c
}

const (
	fastTimeout    = 200 * time.Millisecond
	lenientTimeout = 5 * time.Second
)

// sharedClient returns a client for the shared test server.
func sharedClient(t testing.TB) *redis.Client {
	t.Helper()
	return newClient(t, redisAddr(t), lenientTimeout)
}

// testPrefix returns a key prefix of t's own, and deletes every key under it when t
// ends (and now, in case a previous run left some). It holds no glob characters.
func testPrefix(t testing.TB, c *redis.Client) string {
	t.Helper()
	name := strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '/' {
			return r
		}
		return '_'
	}, t.Name())
	var b [6]byte
	rand.Read(b[:])
	prefix := "jwtauth-test:" + name + ":" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() { deleteKeys(t, c, prefix) })
	return prefix
}

// deleteKeys deletes the keys under prefix, and only those.
func deleteKeys(t testing.TB, c *redis.Client, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		if err := c.Del(ctx, iter.Val()).Err(); err != nil {
			t.Logf("cleanup: DEL %s: %v", iter.Val(), err)
		}
	}
	if err := iter.Err(); err != nil {
		t.Logf("cleanup: SCAN %s*: %v", prefix, err)
	}
}

// newToken returns a refresh token shaped like jwtauth's: 18 random bytes, base64url.
func newToken(t testing.TB) string {
	t.Helper()
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// digest is what jwtauth stores for a refresh token: its SHA-256 digest, base64url, 43
// characters.
func digest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// redisServer is a redis-server process of the test's own, which the test may kill,
// freeze and restart on the same port with the same data directory.
type redisServer struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	args []string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	log  bytes.Buffer
}

// startRedisServer starts redis-server on a free loopback port with its data in a
// fresh temporary directory, plus extra arguments, and waits until it answers PING.
// The server is killed when t ends.
func startRedisServer(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	bin := os.Getenv("JWTAUTH_REDIS_SERVER_BIN")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			skipOrFail(t, "redis-server is not on PATH and JWTAUTH_REDIS_SERVER_BIN is not set")
		}
	}
	s := &redisServer{t: t, bin: bin, dir: t.TempDir(), args: extra}
	t.Cleanup(s.Kill)
	// A port found free can be taken before redis-server binds it; try a few.
	var err error
	for range 5 {
		s.port = freePort(t)
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("starting redis-server: %v\n%s", err, s.log.String())
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

// Addr is the server's host:port.
func (s *redisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// start runs redis-server and waits (at most 10 s) until it answers PING.
func (s *redisServer) start() error {
	args := append([]string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--daemonize", "no", "--logfile", "",
	}, s.args...)
	s.cmd = exec.Command(s.bin, args...)
	s.cmd.Stdout = &s.log
	s.cmd.Stderr = &s.log
	setDeathSignal(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	s.done = done
	cmd := s.cmd
	go func() { cmd.Wait(); close(done) }()

	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("redis-server on port %d exited early", s.port)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redis-server on port %d not answering PING after 10s: %v", s.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server abruptly (SIGKILL: no shutdown, no final save), as a crash
// would, and waits for it to exit. Killing a stopped server does nothing.
func (s *redisServer) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	thaw(s.cmd) // a frozen process cannot exit; SIGKILL works anyway, but be tidy
	s.cmd.Process.Kill()
	<-s.done
}

// Restart starts the server again on the same port with the same directory.
func (s *redisServer) Restart() {
	s.t.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		s.t.Fatalf("restarting redis-server: %v\n%s", err, s.log.String())
	}
}

// Freeze suspends the server (SIGSTOP): connections are still accepted by the kernel
// but nothing answers, as with a hung server or a network partition.
func (s *redisServer) Freeze() { s.t.Helper(); freeze(s.t, s.cmd) }

// Thaw resumes a frozen server.
func (s *redisServer) Thaw() { thaw(s.cmd) }

// appendOnlyFiles lists the AOF files the server has written, for failure messages.
func (s *redisServer) appendOnlyFiles() []string {
	m, _ := filepath.Glob(filepath.Join(s.dir, "*", "*.aof"))
	return m
}
