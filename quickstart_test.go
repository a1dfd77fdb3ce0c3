package jwtauth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/jwtauth/jwtauth"
)

// quickStart is the Quick start of the README and of the package doc, compiled here:
// TestQuickStartIsCompiled checks that the three say the same, line for line.
func quickStart(secret []byte) *http.ServeMux {
	// quick start begins
	auth, err := jwtauth.New(jwtauth.Config{
		Secret: secret, // []byte, at least 32 random bytes (RFC 7518 §3.2)
		Endpoints: &jwtauth.Endpoints{
			Authenticate: func(r *http.Request) (*jwtauth.User, error) {
				// Read the credentials from r (the body is already size-capped) and check them.
				// Wrong password: return nil, &jwtauth.Error{Status: 401, Reason: "Wrong password."}
				// Malformed body: return nil, &jwtauth.Error{Status: 400, Reason: "Send JSON."}
				return &jwtauth.User{ID: "alice", Scopes: []string{"orders:read"}}, nil
			},
		},
		RetrieveUser: func(ctx context.Context, c *jwtauth.Claims) (*jwtauth.User, error) {
			return lookUp(ctx, c.UserID) // fresh scopes and claims at every refresh
		},
		Refresh: &jwtauth.Refresh{Store: new(jwtauth.MemStore)},
		OnEvent: jwtauth.LogEvents(slog.Default()), // alert on "jwtauth: reuse_detected"
	})
	if err != nil {
		log.Fatal(err) // the error names every offending Config field
	}
	mux := http.NewServeMux()
	auth.Mount(mux) // POST /auth, /auth/refresh, /auth/logout, /auth/sessions, ...
	mux.Handle("GET /orders", auth.Protected(http.HandlerFunc(listOrders)))
	mux.Handle("POST /orders", auth.Scoped([]string{"orders:write"}, http.HandlerFunc(createOrder)))
	// quick start ends
	return mux
}

// listOrders is a protected handler: a plain function, wrapped with http.HandlerFunc.
func listOrders(w http.ResponseWriter, r *http.Request) {
	claims, _ := jwtauth.ClaimsFromContext(r.Context())
	fmt.Fprintf(w, "orders of %s\n", claims.UserID)
}

func createOrder(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) }

func lookUp(_ context.Context, id string) (*jwtauth.User, error) {
	return &jwtauth.User{ID: id, Scopes: []string{"orders:read"}}, nil
}

// lines returns the non-blank lines of text between the first line matching begin and
// the next matching end, each stripped of indentation, and in a doc comment of its "//".
func lines(t *testing.T, text, begin, end string, doc bool) []string {
	t.Helper()
	b, e := regexp.MustCompile(begin), regexp.MustCompile(end)
	var out []string
	in := false
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); doc {
			l = strings.TrimSpace(strings.TrimPrefix(l, "//"))
		}
		switch {
		case !in && b.MatchString(l):
			in = true
		case in && e.MatchString(l):
			return out
		case in && l != "":
			out = append(out, l)
		}
	}
	t.Fatalf("no block from %q to %q", begin, end)
	return nil
}

// TestQuickStartIsCompiled: the README's Quick start and the package doc's are the code
// of quickStart, which compiles, and it serves a login and a protected call.
func TestQuickStartIsCompiled(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	code := lines(t, read("quickstart_test.go"), `^// quick start begins$`, `^// quick start ends$`, false)
	readme := read("README.md")
	readme = readme[strings.Index(readme, "## Quick start"):]
	for name, got := range map[string][]string{
		"README.md": lines(t, readme, "^```go$", "^```$", false),
		"jwt.go":    lines(t, read("jwt.go"), `^# Quick start$`, `^where listOrders`, true),
	} {
		if strings.Join(got, "\n") != strings.Join(code, "\n") {
			t.Errorf("the Quick start of %s differs from quickStart:\n%s\n---- want ----\n%s", name, strings.Join(got, "\n"), strings.Join(code, "\n"))
		}
	}
	mux := quickStart([]byte("quick-start-secret-0123456789abcdef"))
	rec := serve(mux, "POST", "/auth", `{}`)
	tok := struct {
		AccessToken string `json:"access_token"`
	}{}
	if rec.StatusCode != 200 || json.NewDecoder(rec.Body).Decode(&tok) != nil {
		t.Fatalf("login: %d", rec.StatusCode)
	}
	if resp := serve(mux, "GET", "/orders", "", "Authorization", "Bearer "+tok.AccessToken); resp.StatusCode != 200 || bodyOf(resp) != "orders of alice" {
		t.Fatalf("GET /orders: %d", resp.StatusCode)
	}
}
