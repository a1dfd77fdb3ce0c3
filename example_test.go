package jwtauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/jwtauth/jwtauth"
	"golang.org/x/crypto/bcrypt"
)

// secret is a fixed key so that the examples are reproducible; use 32 bytes from
// crypto/rand in a real program.
var secret = []byte("example-secret-0123456789abcdef-0123")

// fixedNow makes the examples' tokens the same on every run.
func fixedNow() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }

// users is the examples' user database: scopes by user name.
var users = map[string][]string{
	"alice": {"orders:read", "orders:write"},
	"bob":   {"orders:read"},
}

// trustingLogin accepts any known user name without a password: examples only.
func trustingLogin(r *http.Request) (*jwtauth.User, error) {
	var creds struct{ Username string }
	if err := json.NewDecoder(r.Body).Decode(&creds); err != nil {
		return nil, &jwtauth.Error{Status: http.StatusBadRequest, Reason: "Malformed body."}
	}
	scopes, ok := users[creds.Username]
	if !ok {
		return nil, jwtauth.ErrAuthenticationFailed // 401, "Authentication failed."
	}
	return &jwtauth.User{ID: creds.Username, Scopes: scopes}, nil
}

// currentUser is the RetrieveUser of the examples: today's scopes of the token's user.
func currentUser(_ context.Context, c *jwtauth.Claims) (*jwtauth.User, error) {
	scopes, ok := users[c.UserID]
	if !ok {
		return nil, jwtauth.ErrUserNotFound
	}
	return &jwtauth.User{ID: c.UserID, Scopes: scopes}, nil
}

// serve sends one request to h and returns the response.
func serve(h http.Handler, method, path, body string, header ...string) *http.Response {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec.Result()
}

func bodyOf(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

// accessToken logs user in and returns the access token of the response.
func accessToken(h http.Handler, user string) string {
	resp := serve(h, "POST", "/auth", `{"username":"`+user+`"}`)
	var body struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	return body.AccessToken
}

// Log in at POST /auth, then call a protected route with the access token.
func Example() {
	auth, err := jwtauth.New(jwtauth.Config{
		Secret:    secret,
		Endpoints: &jwtauth.Endpoints{Authenticate: trustingLogin},
		Now:       fixedNow,
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth", auth.Handler())
	mux.Handle("/auth/", auth.Handler())
	mux.Handle("GET /orders", auth.Protected(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := jwtauth.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "orders of %s\n", claims.UserID)
	})))

	tok := accessToken(mux, "alice")
	resp := serve(mux, "GET", "/orders", "", "Authorization", "Bearer "+tok)
	fmt.Println(resp.StatusCode, bodyOf(resp))

	resp = serve(mux, "GET", "/orders", "")
	fmt.Println(resp.StatusCode, resp.Header.Get("WWW-Authenticate"), bodyOf(resp))

	resp = serve(mux, "GET", "/auth/verify", "", "Authorization", "Bearer "+tok)
	fmt.Println(resp.StatusCode, bodyOf(resp))
	// Output:
	// 200 orders of alice
	// 401 Bearer {"exception":"MissingAuthorizationHeader","reasons":["Authorization header not present."]}
	// 200 {"valid":true}
}

// Scoped routes: alice may write orders, bob may only read them.
func ExampleAuth_Scoped() {
	auth, err := jwtauth.New(jwtauth.Config{
		Secret:    secret,
		Endpoints: &jwtauth.Endpoints{Authenticate: trustingLogin},
		Now:       fixedNow,
	})
	if err != nil {
		panic(err)
	}
	created := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	})
	mux := http.NewServeMux()
	mux.Handle("/auth", auth.Handler())
	mux.Handle("POST /orders", auth.Scoped([]string{"orders:write"}, created))

	for _, user := range []string{"alice", "bob"} {
		resp := serve(mux, "POST", "/orders", "", "Authorization", "Bearer "+accessToken(mux, user))
		fmt.Printf("%s %d %q\n", user, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// Output:
	// alice 201 ""
	// bob 403 "Bearer error=\"insufficient_scope\""
}

// ScopedWith relaxes Sanic JWT's defaults: here one of two scopes suffices.
func ExampleAuth_ScopedWith() {
	auth, err := jwtauth.New(jwtauth.Config{
		Secret:    secret,
		Endpoints: &jwtauth.Endpoints{Authenticate: trustingLogin},
		Now:       fixedNow,
	})
	if err != nil {
		panic(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	mux := http.NewServeMux()
	mux.Handle("/auth", auth.Handler())
	mux.Handle("GET /reports", auth.ScopedWith(jwtauth.ScopeRule{
		Scopes:   []string{"reports:read", "orders:read"},
		AnyScope: true,
	}, ok))
	// A rule as middleware, for func(http.Handler) http.Handler chains.
	adminOnly := func(next http.Handler) http.Handler {
		return auth.ScopedWith(jwtauth.ScopeRule{Scopes: []string{"admin"}}, next)
	}
	mux.Handle("GET /admin", adminOnly(ok))

	tok := accessToken(mux, "bob")
	for _, path := range []string{"/reports", "/admin"} {
		resp := serve(mux, "GET", path, "", "Authorization", "Bearer "+tok)
		fmt.Println(path, resp.StatusCode)
	}
	// Output:
	// /reports 200
	// /admin 403
}

// Cookie mode: the endpoints set the tokens as cookies, Secure, HttpOnly and
// SameSite=Lax by default, and keep them out of the response body; the middleware reads
// them.
func Example_cookies() {
	auth, err := jwtauth.New(jwtauth.Config{
		Secret:    secret,
		Endpoints: &jwtauth.Endpoints{Authenticate: trustingLogin},
		Cookies:   &jwtauth.Cookies{MaxAge: 3600},
		Now:       fixedNow,
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth", auth.Handler())
	mux.Handle("GET /orders", auth.Protected(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})))

	resp := serve(mux, "POST", "/auth", `{"username":"bob"}`)
	fmt.Println(resp.StatusCode, bodyOf(resp))
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		fmt.Printf("%s: Path=%s Max-Age=%d HttpOnly=%v Secure=%v SameSite=Lax:%v\n",
			c.Name, c.Path, c.MaxAge, c.HttpOnly, c.Secure, c.SameSite == http.SameSiteLaxMode)
		cookie = c
	}
	resp = serve(mux, "GET", "/orders", "", "Cookie", cookie.String())
	fmt.Println(resp.StatusCode, bodyOf(resp))
	// Without HeaderFallback the header is not looked at.
	resp = serve(mux, "GET", "/orders", "", "Authorization", "Bearer "+cookie.Value)
	fmt.Println(resp.StatusCode, bodyOf(resp))
	// Output:
	// 200 {}
	// __Host-access_token: Path=/ Max-Age=3600 HttpOnly=true Secure=true SameSite=Lax:true
	// 200 ok
	// 401 {"exception":"MissingAuthorizationCookie","reasons":["Authorization cookie not present (the Authorization header is not read in cookie mode without HeaderFallback)."]}
}

// An Authenticate hook that checks bcrypt password hashes. An unknown user is compared
// against a dummy hash, so that both failures take the same time. The hook answers with
// its own message by returning a *jwtauth.Error.
func Example_bcrypt() {
	// bcrypt.MinCost keeps the example fast; use bcrypt.DefaultCost or more.
	hash := func(pw string) []byte {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		return h
	}
	hashes := map[string][]byte{"alice": hash("correct horse battery staple")}
	dummy := hash("dummy password")

	authenticate := func(r *http.Request) (*jwtauth.User, error) {
		var creds struct{ Username, Password string }
		if err := json.NewDecoder(r.Body).Decode(&creds); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return nil, err // answered 413
			}
			return nil, &jwtauth.Error{Status: http.StatusBadRequest, Reason: "malformed credentials"}
		}
		h, known := hashes[creds.Username]
		if !known {
			h = dummy
		}
		if bcrypt.CompareHashAndPassword(h, []byte(creds.Password)) != nil || !known {
			return nil, &jwtauth.Error{Status: http.StatusUnauthorized, Reason: "wrong username or password"}
		}
		return &jwtauth.User{ID: creds.Username, Scopes: users[creds.Username]}, nil
	}
	auth, err := jwtauth.New(jwtauth.Config{
		Secret:    secret,
		Endpoints: &jwtauth.Endpoints{Authenticate: authenticate},
		Now:       fixedNow,
	})
	if err != nil {
		panic(err)
	}
	h := auth.Handler()

	for _, body := range []string{
		`{"username":"alice","password":"correct horse battery staple"}`,
		`{"username":"alice","password":"Tr0ub4dor&3"}`,
		`{"username":"mallory","password":"x"}`,
		`{"username":`,
	} {
		resp := serve(h, "POST", "/auth", body)
		if resp.StatusCode == http.StatusOK {
			fmt.Println(resp.StatusCode, "token issued")
			continue
		}
		fmt.Println(resp.StatusCode, bodyOf(resp))
	}
	// Output:
	// 200 token issued
	// 401 {"exception":"AuthenticationFailed","reasons":["wrong username or password"]}
	// 401 {"exception":"AuthenticationFailed","reasons":["wrong username or password"]}
	// 400 {"exception":"AuthenticationFailed","reasons":["malformed credentials"]}
}

// IssueTokens signs tokens for a user outside the login endpoint, for instance after
// a sign-up form.
func ExampleAuth_IssueTokens() {
	auth, err := jwtauth.New(jwtauth.Config{Secret: secret, Now: fixedNow})
	if err != nil {
		panic(err)
	}
	t, err := auth.IssueTokens(context.Background(), &jwtauth.User{ID: "carol", Scopes: []string{"orders:read"}})
	if err != nil {
		panic(err)
	}
	claims, err := auth.Verify(t.AccessToken)
	if err != nil {
		panic(err)
	}
	fmt.Println(claims.UserID, claims.Scopes, claims.ExpiresAt.Format(time.RFC3339))
	// Output:
	// carol [orders:read] 2025-01-02T03:34:05Z
}

// Refresh tokens: every login opens a session and issues its first refresh token, POST
// /auth/refresh trades it for new tokens, and a replay of a rotated-out one ends that
// session, its current token included (RFC 9700 §4.14.2). The user's sessions on other
// devices live on.
func Example_refresh() {
	now := fixedNow()
	auth, err := jwtauth.New(jwtauth.Config{
		Secret:       secret,
		Endpoints:    &jwtauth.Endpoints{Authenticate: trustingLogin},
		RetrieveUser: currentUser,
		Refresh:      &jwtauth.Refresh{Store: new(jwtauth.MemStore)},
		Now:          func() time.Time { return now },
	})
	if err != nil {
		panic(err)
	}
	h := auth.Handler()
	var first, second, retry struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	json.NewDecoder(serve(h, "POST", "/auth", `{"username":"alice"}`).Body).Decode(&first)
	var phone struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	json.NewDecoder(serve(h, "POST", "/auth", `{"username":"alice"}`).Body).Decode(&phone) // another device
	refresh := func(access, refresh string) *http.Response {
		return serve(h, "POST", "/auth/refresh", `{"refresh_token":"`+refresh+`"}`, "Authorization", "Bearer "+access)
	}

	resp := refresh(first.AccessToken, first.RefreshToken)
	json.NewDecoder(resp.Body).Decode(&second)
	fmt.Println(resp.StatusCode, second.RefreshToken != first.RefreshToken)
	// The first refresh token again within the reuse interval (10 s by default): a
	// retry of a refresh whose answer was lost gets the same successor.
	now = now.Add(5 * time.Second)
	resp = refresh(first.AccessToken, first.RefreshToken)
	json.NewDecoder(resp.Body).Decode(&retry)
	fmt.Println(resp.StatusCode, retry.RefreshToken == second.RefreshToken)
	// Once the interval is over, it is a replay. It fails and ends the session, so the
	// second one fails too.
	now = now.Add(10 * time.Second)
	resp = refresh(first.AccessToken, first.RefreshToken)
	fmt.Println(resp.StatusCode, bodyOf(resp))
	resp = refresh(second.AccessToken, second.RefreshToken)
	fmt.Println(resp.StatusCode)
	// The other device's session is untouched.
	resp = refresh(phone.AccessToken, phone.RefreshToken)
	fmt.Println(resp.StatusCode)
	// Output:
	// 200 true
	// 200 true
	// 401 {"exception":"AuthenticationFailed","reasons":["Authentication failed."]}
	// 401
	// 200
}
