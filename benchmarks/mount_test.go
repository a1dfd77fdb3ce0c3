package benchmarks

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jwtauth/jwtauth"
)

// TestChiMount: the endpoints work mounted under chi, at the top level and inside a
// sub-router, and Protected and ScopedWith fit chi's middleware chains.
func TestChiMount(t *testing.T) {
	auth, err := jwtauth.New(jwtauth.Config{
		Secret: []byte(strings.Repeat("s", 32)),
		Endpoints: &jwtauth.Endpoints{Authenticate: func(*http.Request) (*jwtauth.User, error) {
			return &jwtauth.User{ID: "alice", Scopes: []string{"orders:read"}}, nil
		}},
		RetrieveUser: func(_ context.Context, c *jwtauth.Claims) (*jwtauth.User, error) {
			return &jwtauth.User{ID: c.UserID, Scopes: []string{"orders:read"}}, nil
		},
		Refresh: &jwtauth.Refresh{Store: new(jwtauth.MemStore)},
		Now:     func() time.Time { return time.Unix(1_700_000_000, 0) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })

	r := chi.NewRouter()
	r.Mount("/auth", auth.Handler())
	r.Route("/api", func(r chi.Router) {
		r.Mount("/auth", auth.Handler())
		r.With(auth.Protected).Get("/orders", ok)
		r.With(func(h http.Handler) http.Handler {
			return auth.ScopedWith(jwtauth.ScopeRule{Scopes: []string{"orders:write"}}, h)
		}).Post("/orders", ok)
	})

	do := func(method, path, body, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		return rec
	}
	for _, prefix := range []string{"/auth", "/api/auth"} {
		rec := do("POST", prefix, "{}", "")
		var tok struct {
			Access  string `json:"access_token"`
			Refresh string `json:"refresh_token"`
		}
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &tok) != nil || tok.Refresh == "" {
			t.Fatalf("POST %s: %d %s", prefix, rec.Code, rec.Body)
		}
		if rec := do("GET", prefix+"/verify", "", tok.Access); rec.Code != 200 {
			t.Errorf("GET %s/verify: %d %s", prefix, rec.Code, rec.Body)
		}
		if rec := do("POST", prefix+"/refresh", `{"refresh_token":"`+tok.Refresh+`"}`, tok.Access); rec.Code != 200 {
			t.Errorf("POST %s/refresh: %d %s", prefix, rec.Code, rec.Body)
		}
		if rec := do("GET", "/api/orders", "", tok.Access); rec.Code != 200 {
			t.Errorf("GET /api/orders: %d", rec.Code)
		}
		if rec := do("POST", "/api/orders", "", tok.Access); rec.Code != 403 {
			t.Errorf("POST /api/orders without orders:write: %d, want 403", rec.Code)
		}
	}
	if rec := do("GET", "/api/orders", "", ""); rec.Code != 401 {
		t.Errorf("GET /api/orders without a token: %d, want 401", rec.Code)
	}
}
