// These tests run jwtauth's endpoints (Auth.Handler, Auth.Protected) over loopback HTTP
// against the PostgreSQL store: two instances sharing one database, each through a pool
// of its own, as two replicas of a service would.

package pgstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jwtauth/jwtauth"
	"github.com/jwtauth/jwtauth/pgstore"
)

// httpSecret is shared by every instance, as by replicas of one service.
var httpSecret = []byte("0123456789abcdef0123456789abcdef")

// newInstance starts one replica of a service: a jwtauth.Auth whose sessions live in
// store, serving the endpoints under /auth and a protected GET /orders. A login is the
// user named by the body's "username", or "alice". The reuse interval is off, so that a
// rotated-out token is reuse at once and of concurrent refreshes exactly one wins.
func newInstance(t testing.TB, store jwtauth.Store) *httptest.Server {
	t.Helper()
	return newInstanceWith(t, &jwtauth.Refresh{Store: store, ReuseInterval: jwtauth.NoReuseInterval})
}

// newInstanceWith is newInstance with the given refresh settings.
func newInstanceWith(t testing.TB, refresh *jwtauth.Refresh) *httptest.Server {
	t.Helper()
	auth, err := jwtauth.New(jwtauth.Config{
		Secret: httpSecret,
		Endpoints: &jwtauth.Endpoints{
			Authenticate: func(r *http.Request) (*jwtauth.User, error) {
				var creds struct{ Username string }
				json.NewDecoder(r.Body).Decode(&creds)
				if creds.Username == "" {
					creds.Username = "alice"
				}
				return &jwtauth.User{ID: creds.Username}, nil
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

// post sends a POST with a JSON body (none for nil) and, when access is set, a bearer
// token.
func post(t testing.TB, srv *httptest.Server, path, access string, body any) reply {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
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
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Errorf("POST %s: %d with a body that is not JSON: %q", path, resp.StatusCode, raw)
		}
	}
	return reply{resp.StatusCode, v.Access, v.Refresh, v.Exception}
}

// device is one client's tokens.
type device struct{ access, refresh string }

// login logs user in and returns the device holding the session.
func login(t testing.TB, srv *httptest.Server, user string) *device {
	t.Helper()
	r := post(t, srv, "/auth", "", map[string]string{"username": user, "password": "ignored"})
	if r.status != http.StatusOK || r.access == "" || r.refresh == "" {
		t.Fatalf("POST /auth as %s: %+v, want 200 with both tokens", user, r)
	}
	return &device{r.access, r.refresh}
}

// refresh presents d's tokens.
func refresh(t testing.TB, srv *httptest.Server, d *device) reply {
	t.Helper()
	return post(t, srv, "/auth/refresh", d.access, map[string]string{"refresh_token": d.refresh})
}

// mustRefresh refreshes d on srv, wants 200, and keeps the new tokens.
func mustRefresh(t testing.TB, srv *httptest.Server, d *device, what string) {
	t.Helper()
	r := refresh(t, srv, d)
	wantReply(t, what, r, http.StatusOK, "")
	if r.refresh == "" || r.refresh == d.refresh {
		t.Fatalf("%s: refresh token %q, want a new one", what, r.refresh)
	}
	d.access, d.refresh = r.access, r.refresh
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

// twoInstances returns replicas A and B, each with a pool and a Store of its own on
// one table.
func twoInstances(t *testing.T) (a, b *httptest.Server, store *pgstore.Store) {
	t.Helper()
	dsn := sharedDSN(t)
	poolA, poolB := newPool(t, dsn, 16), newPool(t, dsn, 16)
	table := testTable(t, poolA)
	storeA := newStore(t, poolA, pgstore.Options{Table: table})
	storeB := newStore(t, poolB, pgstore.Options{Table: table})
	return newInstance(t, storeA), newInstance(t, storeB), storeA
}

func TestHTTPTwoInstances(t *testing.T) {
	a, b, store := twoInstances(t)
	laptop := login(t, a, "alice")
	if got := getOrders(t, b, laptop.access); got != http.StatusOK {
		t.Fatalf("B refuses A's access token: %d", got)
	}
	mustRefresh(t, b, laptop, "refresh on B of a login on A")
	mustRefresh(t, a, laptop, "refresh on A of B's rotation")
	old := *laptop
	mustRefresh(t, b, laptop, "refresh on B")
	// The token B rotated out, replayed on A: reuse, the session ends everywhere.
	wantReply(t, "replay on A of the token B rotated out", refresh(t, a, &old), http.StatusUnauthorized, "AuthenticationFailed")
	wantReply(t, "the current token on B after the replay", refresh(t, b, laptop), http.StatusUnauthorized, "AuthenticationFailed")

	// Logout on B ends a session opened on A, and only that one.
	laptop, phone := login(t, a, "alice"), login(t, a, "alice")
	if r := post(t, b, "/auth/logout", laptop.access, nil); r.status != http.StatusNoContent {
		t.Fatalf("logout on B: %d %q", r.status, r.exception)
	}
	wantReply(t, "refresh on A after logout on B", refresh(t, a, laptop), http.StatusUnauthorized, "AuthenticationFailed")
	wantReply(t, "refresh on B after logout on B", refresh(t, b, laptop), http.StatusUnauthorized, "AuthenticationFailed")
	mustRefresh(t, a, phone, "the other device on A")
	mustRefresh(t, b, phone, "the other device on B")

	// The row holds the session record, not a token.
	v, err := store.Load(context.Background(), "alice")
	if err != nil || v == nil || bytes.Contains(v, []byte(phone.refresh)) {
		t.Fatalf("the row of alice: %q, %v", v, err)
	}
	// scope=all on A ends the phone's session for B too.
	if r := post(t, a, "/auth/logout?scope=all", phone.access, nil); r.status != http.StatusNoContent {
		t.Fatalf("logout scope=all on A: %d", r.status)
	}
	wantReply(t, "refresh on B after scope=all on A", refresh(t, b, phone), http.StatusUnauthorized, "AuthenticationFailed")
	if v, err := store.Load(context.Background(), "alice"); v != nil || err != nil {
		t.Fatalf("after the last session ended, Load = %q, %v; want no row", v, err)
	}
}

// httpRounds is how many rounds each HTTP race runs.
const httpRounds = 200

func TestHTTPConcurrentRefreshAcrossInstances(t *testing.T) {
	// Each round, a fresh session's token is presented n times at once, alternately
	// to A and B: with no reuse interval exactly one refresh wins, the others are 401.
	a, b, _ := twoInstances(t)
	servers := [2]*httptest.Server{a, b}
	const n = 4
	for round := range httpRounds {
		d := login(t, servers[round%2], fmt.Sprint("tabs-", round))
		replies := make([]reply, n)
		race(n, func(i int) { replies[i] = refresh(t, servers[i%2], d) })
		won := 0
		for i, r := range replies {
			switch r.status {
			case http.StatusOK:
				won++
			case http.StatusUnauthorized:
			default:
				t.Fatalf("round %d: refresh %d answered %d %q", round, i, r.status, r.exception)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d of %d concurrent refreshes across A and B won, want exactly 1", round, won, n)
		}
	}
}

func TestHTTPLogoutVersusRefreshAcrossInstances(t *testing.T) {
	// Each round, a logout on one instance races a refresh of the same session on the
	// other: whichever order the database serialised them in, the session is over
	// afterwards (a refresh that won got a token that is already dead), and the user's
	// other session lives on.
	a, b, _ := twoInstances(t)
	for round := range httpRounds {
		user := fmt.Sprint("race-", round)
		logoutOn, refreshOn := a, b
		if round%2 == 1 {
			logoutOn, refreshOn = b, a
		}
		d, other := login(t, a, user), login(t, b, user)
		var logout, ref reply
		race(2, func(i int) {
			if i == 0 {
				logout = post(t, logoutOn, "/auth/logout", d.access, nil)
			} else {
				ref = refresh(t, refreshOn, d)
			}
		})
		if logout.status != http.StatusNoContent || ref.status != http.StatusOK && ref.status != http.StatusUnauthorized {
			t.Fatalf("round %d: logout %d, refresh %d %q", round, logout.status, ref.status, ref.exception)
		}
		wantReply(t, fmt.Sprintf("round %d: the logged-out token", round), refresh(t, refreshOn, d), http.StatusUnauthorized, "AuthenticationFailed")
		if ref.status == http.StatusOK {
			won := &device{ref.access, ref.refresh}
			wantReply(t, fmt.Sprintf("round %d: the token the racing refresh got", round), refresh(t, logoutOn, won), http.StatusUnauthorized, "AuthenticationFailed")
		}
		mustRefresh(t, refreshOn, other, fmt.Sprintf("round %d: the user's other session", round))
	}
}

// race runs f(i) for i in [0, n) in n goroutines released at once.
func race(n int, f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f(i)
		}()
	}
	close(start)
	wg.Wait()
}

func BenchmarkHTTPRefresh(b *testing.B) {
	// A refresh round trip over loopback HTTP: verify the access token, load the
	// user's row and swap it, sign a new access token, answer JSON.
	benchmarkRefresh(b, newStore(b, sharedPool(b), pgstore.Options{}))
}

// benchmarkRefresh measures refreshes through the endpoint with sessions in s.
func benchmarkRefresh(b *testing.B, s *pgstore.Store) {
	a := newInstance(b, s)
	d := login(b, a, "alice")
	b.ReportAllocs()
	for b.Loop() {
		r := refresh(b, a, d)
		if r.status != http.StatusOK {
			b.Fatalf("refresh: %d %q", r.status, r.exception)
		}
		d.access, d.refresh = r.access, r.refresh
	}
}
