// These tests run jwtauth's endpoints (Auth.Handler, Auth.Protected) against the Redis
// store: two instances sharing one Redis, concurrent refreshes, and an outage.

package redisstore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jwtauth/jwtauth"
	"github.com/jwtauth/jwtauth/redisstore"
	"github.com/redis/go-redis/v9"
)

// httpSecret is shared by every instance, as by replicas of one service.
var httpSecret = []byte("0123456789abcdef0123456789abcdef")

// newInstance starts one replica of a service: a jwtauth.Auth whose refresh tokens live
// in store, serving the endpoints under /auth and a protected GET /orders. Every login
// is the user "alice". The reuse interval is off, so that a rotated-out token is reuse
// at once and of concurrent refreshes exactly one wins.
func newInstance(t testing.TB, store *redisstore.Store) *httptest.Server {
	t.Helper()
	return newInstanceWith(t, &jwtauth.Refresh{Store: store, ReuseInterval: jwtauth.NoReuseInterval})
}

// newInstanceWith is newInstance with the given refresh settings.
func newInstanceWith(t testing.TB, refresh *jwtauth.Refresh) *httptest.Server {
	t.Helper()
	auth, err := jwtauth.New(jwtauth.Config{
		Secret: httpSecret,
		Endpoints: &jwtauth.Endpoints{
			Authenticate: func(*http.Request) (*jwtauth.User, error) {
				return &jwtauth.User{ID: "alice"}, nil
			},
		},
		RetrieveUser: func(_ context.Context, c *jwtauth.Claims) (*jwtauth.User, error) {
			return &jwtauth.User{ID: c.UserID}, nil
		},
		Refresh:  refresh,
		ErrorLog: slog.New(slog.NewTextHandler(io.Discard, nil)), // the 500s are expected
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth", auth.Handler())
	mux.Handle("/auth/", auth.Handler())
	mux.Handle("GET /orders", auth.Protected(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "orders")
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// reply is a decoded endpoint response.
type reply struct {
	status    int
	access    string
	refresh   string
	exception string
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// post sends a POST with a JSON body and, when access is set, a bearer token.
func post(t testing.TB, srv *httptest.Server, path, access string, body any) reply {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if access != "" {
		req.Header.Set("Authorization", "Bearer "+access)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Error(err) // Error, not Fatal: post runs in goroutines too
		return reply{}
	}
	defer resp.Body.Close()
	var v struct {
		Access    string `json:"access_token"`
		Refresh   string `json:"refresh_token"`
		Exception string `json:"exception"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Errorf("POST %s: %d with a body that is not JSON: %q", path, resp.StatusCode, raw)
	}
	return reply{resp.StatusCode, v.Access, v.Refresh, v.Exception}
}

// login logs in and returns the tokens.
func login(t testing.TB, srv *httptest.Server) (access, refresh string) {
	t.Helper()
	r := post(t, srv, "/auth", "", map[string]string{"username": "alice", "password": "ignored"})
	if r.status != http.StatusOK || r.access == "" || r.refresh == "" {
		t.Fatalf("POST /auth: %+v, want 200 with both tokens", r)
	}
	return r.access, r.refresh
}

// refresh trades refreshTok for new tokens.
func refresh(t testing.TB, srv *httptest.Server, access, refreshTok string) reply {
	t.Helper()
	return post(t, srv, "/auth/refresh", access, map[string]string{"refresh_token": refreshTok})
}

// wantReply fails t unless r has status and, for errors, exception.
func wantReply(t testing.TB, what string, r reply, status int, exception string) {
	t.Helper()
	if r.status != status || r.exception != exception {
		t.Fatalf("%s: %d %q, want %d %q", what, r.status, r.exception, status, exception)
	}
}

// getOrders calls the protected route.
func getOrders(t testing.TB, srv *httptest.Server, access string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/orders", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// wantNoRawToken fails t unless Redis holds a value under key that contains neither
// refreshTok nor the bytes it encodes: a leaked Redis must not leak sessions.
func wantNoRawToken(t testing.TB, c *redis.Client, key, refreshTok string) {
	t.Helper()
	raw, err := c.Get(context.Background(), key).Bytes()
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	if len(raw) == 0 || bytes.Contains(raw, []byte(refreshTok)) {
		t.Fatalf("Redis holds %q for refresh token %q, want a value that does not contain it", raw, refreshTok)
	}
	if b, err := base64.RawURLEncoding.DecodeString(refreshTok); err == nil && bytes.Contains(raw, b) {
		t.Fatalf("Redis holds %q, which contains the bytes of refresh token %q", raw, refreshTok)
	}
}

func TestHTTPTwoInstancesShareRefreshTokens(t *testing.T) {
	c := sharedClient(t)
	prefix := testPrefix(t, c)
	store := redisstore.New(c, redisstore.Options{Prefix: prefix})
	a, b := newInstance(t, store), newInstance(t, store)
	key := prefix + "alice"

	a1, r1 := login(t, a)
	wantNoRawToken(t, c, key, r1)
	if got := getOrders(t, b, a1); got != http.StatusOK {
		t.Fatalf("B rejects A's access token: %d", got)
	}

	// Refresh on B with the token A issued: rotated.
	got := refresh(t, b, a1, r1)
	wantReply(t, "refresh on B", got, http.StatusOK, "")
	if got.refresh == "" || got.refresh == r1 {
		t.Fatalf("refresh on B returned refresh token %q, want a new one", got.refresh)
	}
	a2, r2 := got.access, got.refresh
	wantNoRawToken(t, c, key, r2)

	// Replay the rotated-out token on A: 401, and the whole family is revoked.
	wantReply(t, "replay of the rotated-out token on A", refresh(t, a, a1, r1), http.StatusUnauthorized, "AuthenticationFailed")
	if err := c.Get(context.Background(), key).Err(); err != redis.Nil {
		t.Fatalf("after the replay, GET %s: %v, want redis.Nil (revoked)", key, err)
	}
	wantReply(t, "current token on B after the replay", refresh(t, b, a2, r2), http.StatusUnauthorized, "AuthenticationFailed")
	wantReply(t, "current token on A after the replay", refresh(t, a, a2, r2), http.StatusUnauthorized, "AuthenticationFailed")

	// Logging in again starts a new family, usable anywhere.
	a3, r3 := login(t, b)
	wantReply(t, "refresh on A after a new login on B", refresh(t, a, a3, r3), http.StatusOK, "")
}

func TestHTTPConcurrentRefreshOneWinner(t *testing.T) {
	// 32 refreshes with one token, split across two instances: the atomic swap lets
	// exactly one through.
	c := sharedClient(t)
	store := redisstore.New(c, redisstore.Options{Prefix: testPrefix(t, c)})
	servers := [2]*httptest.Server{newInstance(t, store), newInstance(t, store)}
	access, refreshTok := login(t, servers[0])

	const n = 32
	replies := make([]reply, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			replies[i] = refresh(t, servers[i%2], access, refreshTok)
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, r := range replies {
		switch r.status {
		case http.StatusOK:
			ok++
		case http.StatusUnauthorized:
			wantReply(t, "losing refresh", r, http.StatusUnauthorized, "AuthenticationFailed")
		default:
			t.Errorf("refresh %d: %d %q, want 200 or 401", i, r.status, r.exception)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent refreshes with one token succeeded, want exactly 1", ok, n)
	}
}

func TestHTTPRedisDown(t *testing.T) {
	// Redis gone: login and refresh answer 500, never 401 (which would revoke), and
	// routes that only verify access tokens keep working. Once Redis is back, the
	// refresh token issued before the outage still works.
	srv := startRedisServer(t, "--appendonly", "yes", "--appendfsync", "always")
	// Dial fails fast; reads get a second, since a killed server refuses at once anyway.
	c := redis.NewClient(&redis.Options{
		Addr: srv.Addr(), DialTimeout: fastTimeout, ReadTimeout: time.Second, WriteTimeout: time.Second,
		MaxRetries: -1, DialerRetries: 1,
	})
	t.Cleanup(func() { c.Close() })
	store := redisstore.New(c, redisstore.Options{})
	a := newInstance(t, store)
	access, refreshTok := login(t, a)

	srv.Kill()
	start := time.Now()
	wantReply(t, "login while Redis is down", post(t, a, "/auth", "", map[string]string{}), http.StatusInternalServerError, "InternalServerError")
	wantReply(t, "refresh while Redis is down", refresh(t, a, access, refreshTok), http.StatusInternalServerError, "InternalServerError")
	if got := getOrders(t, a, access); got != http.StatusOK {
		t.Fatalf("protected route while Redis is down: %d, want 200", got)
	}
	if el := time.Since(start); el > 3*outageBudget {
		t.Errorf("three requests took %v while Redis is down", el)
	}

	srv.Restart()
	waitUp(t, store, "alice")
	got := refresh(t, a, access, refreshTok)
	wantReply(t, "refresh with the pre-outage token after Redis came back", got, http.StatusOK, "")
	wantReply(t, "refresh with the rotated token", refresh(t, a, got.access, got.refresh), http.StatusOK, "")
	login(t, a)
}

// TestHTTPKeyOfAnotherTypeLocksNoOneOut (S12): someone else's list under a user's key
// holds no live session: the refresh is a 401 and leaves the list alone, a login
// replaces it, and RevokeSessions deletes one.
func TestHTTPKeyOfAnotherTypeLocksNoOneOut(t *testing.T) {
	c := sharedClient(t)
	prefix := testPrefix(t, c)
	store := redisstore.New(c, redisstore.Options{Prefix: prefix})
	a := newInstance(t, store)
	access, refreshTok := login(t, a)
	ctx := context.Background()
	list := func() {
		t.Helper()
		c.Del(ctx, prefix+"alice")
		c.RPush(ctx, prefix+"alice", "not a record")
	}
	list()
	wantReply(t, "refresh over a list", refresh(t, a, access, refreshTok), http.StatusUnauthorized, "AuthenticationFailed")
	if typ := c.Type(ctx, prefix+"alice").Val(); typ != "list" {
		t.Fatalf("a refresh turned the list into a %q", typ)
	}
	access, refreshTok = login(t, a)
	wantReply(t, "refresh after a login over the list", refresh(t, a, access, refreshTok), http.StatusOK, "")
	list()
	auth, err := jwtauth.New(jwtauth.Config{Secret: httpSecret, RetrieveUser: func(context.Context, *jwtauth.Claims) (*jwtauth.User, error) { return nil, nil },
		Refresh: &jwtauth.Refresh{Store: store}})
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.RevokeSessions(ctx, "alice"); err != nil {
		t.Fatalf("RevokeSessions of a list: %v", err)
	}
	if n := c.Exists(ctx, prefix+"alice").Val(); n != 0 {
		t.Fatal("RevokeSessions left the list")
	}
}

func TestHTTPIdleTimeoutReachesRedis(t *testing.T) {
	// Refresh.IdleTimeout is the TTL of every write, so Redis expires an idle session
	// and each refresh restarts the clock.
	c := sharedClient(t)
	prefix := testPrefix(t, c)
	a := newInstanceWith(t, &jwtauth.Refresh{
		Store:       redisstore.New(c, redisstore.Options{Prefix: prefix}),
		IdleTimeout: time.Hour,
	})
	key := prefix + "alice"
	wantAboutAnHour := func(what string) {
		t.Helper()
		if ms := pttl(t, c, key); ms <= time.Hour.Milliseconds()-60_000 || ms > time.Hour.Milliseconds() {
			t.Fatalf("PTTL %s = %d ms, want about an hour", what, ms)
		}
	}
	access, refreshTok := login(t, a)
	wantAboutAnHour("after login")
	if err := c.PExpire(context.Background(), key, time.Minute).Err(); err != nil { // as if 59 minutes passed
		t.Fatal(err)
	}
	wantReply(t, "refresh", refresh(t, a, access, refreshTok), http.StatusOK, "")
	wantAboutAnHour("after a refresh")
}

func BenchmarkHTTPRefresh(b *testing.B) {
	// A refresh round trip over loopback HTTP: verify the access token, load and swap
	// the value in Redis, sign a new access token, answer JSON.
	c := sharedClient(b)
	benchmarkRefresh(b, redisstore.New(c, redisstore.Options{Prefix: testPrefix(b, c)}))
}

// benchmarkRefresh measures refreshes through the endpoint with sessions in s.
func benchmarkRefresh(b *testing.B, s *redisstore.Store) {
	a := newInstance(b, s)
	access, refreshTok := login(b, a)
	b.ReportAllocs()
	for b.Loop() {
		r := refresh(b, a, access, refreshTok)
		if r.status != http.StatusOK {
			b.Fatalf("refresh: %d %q", r.status, r.exception)
		}
		access, refreshTok = r.access, r.refresh
	}
}
