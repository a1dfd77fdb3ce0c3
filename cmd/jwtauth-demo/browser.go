package main

import (
	"embed"
	"net/http"
	"time"

	"github.com/jwtauth/jwtauth"
)

// The browser app: a page at /app/ that logs in with cookies. The tokens live in
// HttpOnly cookies that no script on the page can read; the page only calls fetch,
// and the browser attaches the cookies. It has an Auth of its own, in cookie mode,
// with the same secret, users and store as the API, and the same orders:
//
//	GET  /app/                the page (static/app.html, app.js, app.css)
//	POST /app/auth            log in: sets the cookies, answers {}
//	GET  /app/auth/me         the user
//	POST /app/auth/refresh    new cookies for the refresh cookie
//	POST /app/auth/logout     ends the session and clears the cookies
//	GET  /app/api/orders      as GET /api/orders, with the access cookie
//	POST /app/api/orders      as POST /api/orders (orders:write)
//
// Every unsafe request that a cookie could authorise is checked for its origin by
// jwtauth: a page of another origin cannot make the browser act with these cookies.

// appPath is where the page is served.
const appPath = "/app/"

//go:embed static
var static embed.FS

// appReuseInterval lets two tabs that refresh at the same moment both stay logged in.
const appReuseInterval = 10 * time.Second

// mountBrowserApp adds the page, the app's endpoints and its API to mux. The app's Auth
// is the API's (base: its secret, RetrieveUser, logs) in cookie mode under /app/auth,
// with the same users (authenticate) and sessions (store).
func mountBrowserApp(mux *http.ServeMux, base jwtauth.Config, authenticate func(*http.Request) (*jwtauth.User, error),
	store jwtauth.Store, orders *orderBook) error {
	cfg := base
	cfg.Cookies = &jwtauth.Cookies{} // Secure, HttpOnly, SameSite=Lax, host-only; CSRF check on
	cfg.Endpoints = &jwtauth.Endpoints{Authenticate: authenticate, URLPrefix: "/app/auth"}
	cfg.Refresh = &jwtauth.Refresh{
		Store:         store,
		ReuseInterval: appReuseInterval,
		Window:        24 * time.Hour,
	}
	auth, err := jwtauth.New(cfg)
	if err != nil {
		return err
	}
	auth.Mount(mux) // /app/auth and /app/auth/
	mux.Handle("GET /app/api/orders", auth.Protected(http.HandlerFunc(orders.list)))
	mux.Handle("POST /app/api/orders", auth.Scoped([]string{"orders:write"}, http.HandlerFunc(orders.create)))

	for _, f := range []struct{ pattern, file, contentType string }{
		{"GET /app/{$}", "static/app.html", "text/html; charset=utf-8"},
		{"GET /app/app.js", "static/app.js", "text/javascript; charset=utf-8"},
		{"GET /app/app.css", "static/app.css", "text/css; charset=utf-8"},
	} {
		body, err := static.ReadFile(f.file)
		if err != nil {
			return err
		}
		mux.Handle(f.pattern, staticFile(body, f.contentType))
	}
	mux.Handle("GET /app", http.RedirectHandler(appPath, http.StatusMovedPermanently))
	return nil
}

// pageCSP allows the page its own script and style and nothing else: no inline
// script, no other origin, no framing (clickjacking), forms only to itself.
const pageCSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// staticFile serves one embedded file with the page's security headers.
func staticFile(body []byte, contentType string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		w.Write(body)
	})
}
