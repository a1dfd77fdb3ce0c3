package jwtauth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

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

// TestVendoredCopyBuilds follows the README's vendoring instruction: it copies exactly the
// files that the README's cp command names into a new module whose go directive is the
// oldest Go the README promises, and builds and vets it there. go vet's stdversion check
// reports any standard-library API newer than that directive. The list must also be the
// package's whole non-test code, so that a file added later cannot be forgotten in it.
func TestVendoredCopyBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module with the go command")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	cp := regexp.MustCompile("(?s)\ncp ([^`]*?)\n *\\S*/\n").FindSubmatch(readme)
	if cp == nil {
		t.Fatal("README.md has no cp command ending in a destination folder")
	}
	listed := regexp.MustCompile(`[a-z_]+\.go`).FindAllString(string(cp[1]), -1)
	all, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range all {
		if !strings.HasSuffix(f, "_test.go") {
			want = append(want, f)
		}
	}
	if slices.Sort(listed); !slices.Equal(listed, want) {
		t.Fatalf("README.md lists %v; the package's non-test files are %v", listed, want)
	}
	goVersion := regexp.MustCompile(`build with Go (1\.\d+) or later`).FindSubmatch(readme)
	if goVersion == nil {
		t.Fatal(`README.md does not say "build with Go 1.N or later"`)
	}
	dir := t.TempDir()
	mod := fmt.Sprintf("module example.com/vendored\n\ngo %s\n", goVersion[1])
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range listed {
		b, err := os.ReadFile(f)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, f), b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("no go command:", err)
	}
	for _, args := range [][]string{{"build", "./..."}, {"vet", "./..."}} {
		cmd := exec.Command(goTool, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("go %s in a go %s module of the listed files: %v\n%s", strings.Join(args, " "), goVersion[1], err, out)
		}
	}
}

// passwordChange is the README's password-change recipe, compiled here:
// TestPasswordChangeRecipe checks that the README says the same and that it works.
func passwordChange(mux *http.ServeMux, auth *jwtauth.Auth) {
	// password change begins
	mux.Handle("POST /account/password", auth.RequireRecentAuth(5*time.Minute, http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			claims, _ := jwtauth.ClaimsFromContext(r.Context())
			// setPassword checks the current password in the body, then stores the new one.
			if err := setPassword(r.Context(), claims.UserID, r); err != nil {
				http.Error(w, "could not change the password", http.StatusBadRequest)
				return
			}
			// Every other device logs in again; this one stays logged in.
			if err := auth.EndOtherSessions(r.Context(), claims.UserID, claims.SessionID); err != nil {
				http.Error(w, "could not end the other sessions", http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})))
	// password change ends
}

func setPassword(context.Context, string, *http.Request) error { return nil }

// TestPasswordChangeRecipe: the README's recipe is passwordChange; right after a login
// it changes the password and ends the user's other session, not the caller's, whose
// token then changes nothing; six minutes later it needs POST /auth/reauthenticate
// first.
func TestPasswordChangeRecipe(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	code, err := os.ReadFile("quickstart_test.go")
	if err != nil {
		t.Fatal(err)
	}
	want := lines(t, string(code), `^// password change begins$`, `^// password change ends$`, false)
	text := string(readme)
	if i := strings.Index(text, "**Changing a password.**"); i >= 0 {
		text = text[i:]
	}
	if got := lines(t, text, "^```go$", "^```$", false); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the README's password change differs from passwordChange:\n%s\n---- want ----\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	auth, err := jwtauth.New(jwtauth.Config{
		Secret:       []byte("password-change-secret-0123456789abcdef"),
		Endpoints:    &jwtauth.Endpoints{Authenticate: trustingLogin},
		RetrieveUser: currentUser,
		Refresh:      &jwtauth.Refresh{Store: new(jwtauth.MemStore)},
		Now:          func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	auth.Mount(mux)
	passwordChange(mux, auth)
	type tokens struct{ AccessToken, RefreshToken string }
	login := func() (tk tokens) {
		resp := serve(mux, "POST", "/auth", `{"username":"alice"}`)
		var m map[string]string
		json.NewDecoder(resp.Body).Decode(&m)
		return tokens{m["access_token"], m["refresh_token"]}
	}
	refresh := func(tk tokens) int {
		return serve(mux, "POST", "/auth/refresh", `{"refresh_token":"`+tk.RefreshToken+`"}`, "Authorization", "Bearer "+tk.AccessToken).StatusCode
	}
	laptop, phone := login(), login()
	if code := serve(mux, "POST", "/account/password", "", "Authorization", "Bearer "+laptop.AccessToken).StatusCode; code != 204 {
		t.Fatalf("the change right after the login: %d", code)
	}
	if refresh(phone) != 401 || refresh(laptop) != 200 {
		t.Fatal("the change must end the phone's session and keep the laptop's")
	}
	// The phone's access token still verifies, and its auth_time is as recent, but its
	// session has ended: it changes nothing (it would end the laptop's session).
	if code := serve(mux, "POST", "/account/password", "", "Authorization", "Bearer "+phone.AccessToken).StatusCode; code != 401 {
		t.Fatalf("the ended session's token at the password change: %d, want 401", code)
	}
	now = now.Add(6 * time.Minute)
	other := login()
	now = now.Add(6 * time.Minute)
	resp := serve(mux, "POST", "/account/password", "", "Authorization", "Bearer "+other.AccessToken)
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "max_age=300") {
		t.Fatalf("six minutes after the login: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp = serve(mux, "POST", "/auth/reauthenticate", `{"username":"alice"}`, "Authorization", "Bearer "+other.AccessToken)
	var m map[string]string
	json.NewDecoder(resp.Body).Decode(&m)
	if code := serve(mux, "POST", "/account/password", "", "Authorization", "Bearer "+m["access_token"]).StatusCode; resp.StatusCode != 200 || code != 204 {
		t.Fatalf("after reauthentication: %d, then %d", resp.StatusCode, code)
	}
}
