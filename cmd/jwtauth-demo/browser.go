package main

import (
	"embed"
	"net/http"
)

// The browser app: a page at /app/ that logs in with cookies. The tokens live in
// HttpOnly cookies that no script on the page can read; the page only calls fetch,
// and the browser attaches the cookies. It has no endpoints of its own: it calls the
// routes that curl and apps call, and the demo's one Auth answers it with cookies
// because its fetch carries Origin or Sec-Fetch-Site (main.go):
//
//	GET  /app/            the page (static/app.html, app.js, app.css)
//	POST /auth            log in: sets the cookies, answers {}
//	GET  /auth/me         the user
//	POST /auth/refresh    new cookies for the refresh cookie
//	POST /auth/logout     ends the session and clears the cookies
//	GET  /api/orders      the orders, with the access cookie
//	POST /api/orders      a new order (orders:write)
//	GET  /auth/sessions   the user's sessions, for the page's sessions list
//	DELETE /auth/sessions/{id}  end another of them (its End button)
//
// Every unsafe request that a cookie authorises, and every login, is checked for its
// origin by jwtauth: a page of another origin cannot make the browser act with these
// cookies.

// appPath is where the page is served.
const appPath = "/app/"

//go:embed static
var static embed.FS

// mountBrowserApp adds the page, its script and its style to mux.
func mountBrowserApp(mux *http.ServeMux) error {
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
