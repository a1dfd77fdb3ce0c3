package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jwtauth/jwtauth"
)

// BenchmarkSessions measures jwtauth's session operations through the endpoints
// (httptest, no network between client and handler) with the store newStore returns:
// login, refresh with the current token, refresh with the token just rotated out inside
// the reuse interval, logout, and a protected request with and without
// Refresh.VerifySessions. Call it from a benchmark of your own store to compare it with
// MemStore and Redis.
func BenchmarkSessions(b *testing.B, newStore func() jwtauth.Store) {
	for _, bc := range []struct {
		name string
		f    func(*testing.B, *benchSite)
	}{
		{"login", benchLogin},
		{"refresh", benchRefresh},
		{"refresh-within-interval", benchRefreshWithinInterval},
		{"logout", benchLogout},
		{"protected", benchProtected},
		{"protected-verify-sessions", benchProtected},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bc.f(b, newBenchSite(b, newStore(), bc.name == "protected-verify-sessions"))
		})
	}
}

type benchSite struct {
	h      http.Handler
	prefix string
}

func newBenchSite(b *testing.B, st jwtauth.Store, verify bool) *benchSite {
	a, err := jwtauth.New(jwtauth.Config{
		Secret: testSecret,
		Endpoints: &jwtauth.Endpoints{Authenticate: func(r *http.Request) (*jwtauth.User, error) {
			var creds struct{ User string }
			json.NewDecoder(r.Body).Decode(&creds)
			return &jwtauth.User{ID: creds.User, Scopes: []string{"orders:read"}}, nil
		}},
		RetrieveUser: func(_ context.Context, c *jwtauth.Claims) (*jwtauth.User, error) {
			return &jwtauth.User{ID: c.UserID, Scopes: []string{"orders:read"}}, nil
		},
		Refresh: &jwtauth.Refresh{Store: st, ReuseInterval: time.Hour, VerifySessions: verify},
	})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	a.Mount(mux)
	mux.Handle("GET /orders", a.Protected(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	return &benchSite{h: mux, prefix: userPrefix(b)}
}

// call sends one request and decodes the JSON answer into out (if not nil).
func (s *benchSite) call(b *testing.B, method, path, access, body string, want int, out any) {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if access != "" {
		r.Header.Set("Authorization", "Bearer "+access)
	}
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, r)
	if w.Code != want {
		b.Fatalf("%s %s: %d %s, want %d", method, path, w.Code, w.Body, want)
	}
	if out != nil {
		json.Unmarshal(w.Body.Bytes(), out)
	}
}

type benchTokens struct {
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
}

func (s *benchSite) login(b *testing.B, user string) benchTokens {
	var t benchTokens
	s.call(b, "POST", "/auth", "", fmt.Sprintf(`{"user":%q}`, s.prefix+user), 200, &t)
	return t
}

func benchLogin(b *testing.B, s *benchSite) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.login(b, fmt.Sprint(i%1000)) // up to MaxSessions (10) per user's record
	}
}

func benchRefresh(b *testing.B, s *benchSite) {
	t := s.login(b, "alice")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var next benchTokens
		s.call(b, "POST", "/auth/refresh", t.Access, `{"refresh_token":"`+t.Refresh+`"}`, 200, &next)
		t = next
	}
}

func benchRefreshWithinInterval(b *testing.B, s *benchSite) {
	t := s.login(b, "alice")
	var next benchTokens
	s.call(b, "POST", "/auth/refresh", t.Access, `{"refresh_token":"`+t.Refresh+`"}`, 200, &next)
	body := `{"refresh_token":"` + t.Refresh + `"}` // the token just rotated out
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.call(b, "POST", "/auth/refresh", t.Access, body, 200, nil)
	}
}

func benchLogout(b *testing.B, s *benchSite) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		t := s.login(b, fmt.Sprint(i%1000))
		b.StartTimer()
		s.call(b, "POST", "/auth/logout", t.Access, "", 204, nil)
	}
}

func benchProtected(b *testing.B, s *benchSite) {
	t := s.login(b, "alice")
	r := httptest.NewRequest("GET", "/orders", nil)
	r.Header.Set("Authorization", "Bearer "+t.Access)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}
