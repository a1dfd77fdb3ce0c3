// Command jwtauth-demo is a small orders API protected by jwtauth: log in, call the API,
// see a scope refused, refresh, log out. Its README (cmd/jwtauth-demo/README.md) walks
// through it with curl.
//
//	go run . [-addr 127.0.0.1:8080] [-secret hex-or-raw] [-quiet]   (in cmd/jwtauth-demo)
//
// Users: alice / wonderland (orders:read orders:write) and bob / builder (orders:read).
// The secret comes from -secret or $JWTAUTH_SECRET (hex, or at least 32 raw bytes);
// without one, a random secret is made at start and every token dies with the process.
// Refresh tokens live in a MemStore, so they too are lost on restart.
//
// Every request is logged to stdout, one line each, unless -quiet is given.
//
// The "listening on" line (on stderr) gives the process ID. Ctrl-C, or SIGTERM to
// that PID, stops the demo gracefully. go run does not pass SIGTERM on, so when started
// by go run the demo also stops within a second or so of the go run process going away.
//
// One Auth serves both kinds of client on the same routes (/auth, /api/orders): it is in
// cookie mode with HeaderFallback. curl, a mobile app or any other client that is not a
// browser gets its tokens in the JSON body and sends the Authorization header; the small
// browser app at /app/ (browser.go) logs in with cookies that its script never sees. Its
// URL is printed at start-up.
//
// POST /api/password changes the caller's password, {"current": "<current>",
// "password": "<new>"} (the new one at least 8 bytes), and ends the user's other
// sessions: the password-change recipe, behind auth.RequireRecentAuth, so that it needs
// a login (or a POST /auth/reauthenticate) of the last 5 minutes, and the current
// password as well. It answers 200 {"changed":true,"other_sessions_ended":true}.
//
// GET /api/ping and GET /api/ping/protected are the load-test pair: the same tiny
// handler, answering {"pong":true}, served open and behind auth.Protected, so that
// the difference between them is the cost of checking the access token.
// scripts/load.sh runs wrk against both (with -quiet, as the log would dominate).
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/jwtauth/jwtauth"
	"golang.org/x/crypto/pbkdf2"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	secretFlag := flag.String("secret", "", "HS256 secret, hex or at least 32 raw bytes (default $JWTAUTH_SECRET, else random)")
	quiet := flag.Bool("quiet", false, "no access log (for load tests)")
	flag.Parse()
	if err := run(*addr, *secretFlag, *quiet); err != nil {
		fmt.Fprintln(os.Stderr, "jwtauth-demo:", err)
		os.Exit(1)
	}
}

func run(addr, secretFlag string, quiet bool) error {
	source := secretFlag
	if source == "" {
		source = os.Getenv("JWTAUTH_SECRET")
	}
	secret, err := parseSecret(source)
	if err != nil {
		return err
	}
	if secret == nil {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "jwtauth-demo: warning: no -secret or JWTAUTH_SECRET; using a random secret, tokens die with the process")
	}

	// Security events (logins, refreshes, reuse of a rotated-out token, ended sessions)
	// go to stderr, beside the access log on stdout.
	events := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg := config{secret: secret, iterations: pbkdf2Iterations, accessLog: os.Stdout, events: events}
	if quiet {
		cfg.accessLog = nil
	}
	handler, err := newServer(cfg)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
	}
	// The listening line gives the PID: `go run` does not pass SIGTERM on to the program
	// it runs, so `kill <pid of go run>` alone would leave this process holding the port.
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigc)
	done := make(chan struct{})
	defer close(done)
	var goRunGone <-chan struct{} // nil, never ready, unless started by go run
	ppid := os.Getppid()
	if startedByGoRun() {
		goRunGone = parentGone(ppid, time.Second, done)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	pid := os.Getpid()
	log.Printf("jwtauth-demo listening on http://%s (pid %d; Ctrl-C or kill %d stops it)", ln.Addr(), pid, pid)
	log.Printf("jwtauth-demo browser app: http://%s%s", ln.Addr(), appPath)

	select {
	case err := <-errc:
		return err
	case sig := <-sigc:
		log.Printf("jwtauth-demo: %v, shutting down", sig)
	case <-goRunGone:
		log.Printf("jwtauth-demo: go run (pid %d) has exited, shutting down", ppid)
	}
	signal.Stop(sigc) // a second Ctrl-C stops it at once
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return hs.Shutdown(shutdownCtx)
}

// minSecretSize is the shortest secret jwtauth accepts (RFC 7518 §3.2: 256 bits).
const minSecretSize = 32

// parseSecret reads a secret given as hex (64 or more hex digits) or as raw text of at
// least 32 bytes. An empty string is no secret (nil, nil).
func parseSecret(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	if b, err := hex.DecodeString(s); err == nil && len(b) >= minSecretSize {
		return b, nil
	}
	if len(s) >= minSecretSize {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("secret must be at least %d bytes (or %d hex digits)", minSecretSize, 2*minSecretSize)
}

// config is what newServer needs; the test sets a low iteration count.
type config struct {
	secret     []byte
	iterations int       // PBKDF2 iterations for the password hashes
	accessLog  io.Writer // one line per request; nil for none
	errorLog   *slog.Logger
	events     *slog.Logger     // security events; nil for none
	now        func() time.Time // the clock; nil means time.Now (a test moves it on)
}

// account is a demo user: a PBKDF2 hash of the password, never the password. An account
// is not changed once it is in the accounts map: a password change puts a new one there.
type account struct {
	salt, hash []byte
	scopes     []string
	name       string
}

// pbkdf2Iterations is OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256.
const pbkdf2Iterations = 600_000

// accountBook holds the accounts. Logins, refreshes and /auth/me read it while a
// password change writes it, so the map is behind a lock; the lock is held only to look
// an account up or to put one in, never while a password is hashed.
type accountBook struct {
	mu       sync.RWMutex
	accounts map[string]*account
}

// get returns the account of the user id, or nil.
func (b *accountBook) get(id string) *account {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.accounts[id]
}

// setPassword replaces the password hash of the user id with hash and its salt, if the
// user's account is still old, the one whose password the caller checked; otherwise it
// changes nothing and returns false: the password changed in between.
func (b *accountBook) setPassword(id string, old *account, salt, hash []byte) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.accounts[id] != old {
		return false
	}
	acct := *old
	acct.salt, acct.hash = salt, hash
	b.accounts[id] = &acct
	return true
}

// passwordChecker hashes and checks passwords, for the logins and the password change
// alike.
type passwordChecker struct {
	book       *accountBook
	iterations int
	// A password hash costs a few hundred milliseconds of CPU by design; at most one per
	// core runs at a time, so a flood of logins queues instead of starving the API.
	hashing chan struct{}
	// Unknown users are checked against dummy, so that they cost as much as known ones.
	dummy *account
}

// errGaveUp is a client that went away while its password waited to be hashed.
var errGaveUp = errors.New("the client gave up while waiting to hash a password")

// wait takes one of the hashing slots, or returns errGaveUp if ctx ends first; the caller
// gives the slot back with done.
func (p *passwordChecker) wait(ctx context.Context) error {
	select {
	case p.hashing <- struct{}{}:
		return nil
	case <-ctx.Done():
		return errGaveUp
	}
}

func (p *passwordChecker) done() { <-p.hashing }

// hash returns the PBKDF2 hash of password with salt, 32 bytes, computed in a hashing slot.
func (p *passwordChecker) hash(ctx context.Context, password string, salt []byte) ([]byte, error) {
	if err := p.wait(ctx); err != nil {
		return nil, err
	}
	defer p.done()
	return pbkdf2SHA256([]byte(password), salt, p.iterations, 32), nil
}

// check returns the account of the user id if password is its password, else nil (and
// errGaveUp if the client went away first). The account returned is the one checked:
// accountBook.setPassword takes it, so as to change nothing if the password has changed
// since.
func (p *passwordChecker) check(ctx context.Context, id, password string) (*account, error) {
	if err := p.wait(ctx); err != nil {
		return nil, err
	}
	defer p.done()
	acct := p.book.get(id)
	known := acct != nil
	if !known {
		acct = p.dummy
	}
	got := pbkdf2SHA256([]byte(password), acct.salt, p.iterations, len(acct.hash))
	// The last check refuses the old password if it was changed while being hashed
	// (a few hundred milliseconds): such a login could otherwise open a session after
	// the change had ended the others. What remains is the moment between this check
	// and the store's write of the new session.
	if subtle.ConstantTimeCompare(got, acct.hash) != 1 || !known || p.book.get(id) != acct {
		return nil, nil
	}
	return acct, nil
}

// newSalt returns 16 random bytes.
func newSalt() ([]byte, error) {
	salt := make([]byte, 16)
	_, err := rand.Read(salt)
	return salt, err
}

// minPasswordSize is the shortest new password POST /api/password takes.
const minPasswordSize = 8

func newServer(cfg config) (http.Handler, error) {
	book := &accountBook{accounts: map[string]*account{}}
	for _, u := range []struct{ id, password, name string }{
		{"alice", "wonderland", "Alice"},
		{"bob", "builder", "Bob"},
	} {
		salt, err := newSalt()
		if err != nil {
			return nil, err
		}
		scopes := []string{"orders:read"}
		if u.id == "alice" {
			scopes = append(scopes, "orders:write")
		}
		book.accounts[u.id] = &account{salt: salt, hash: pbkdf2SHA256([]byte(u.password), salt, cfg.iterations, 32), scopes: scopes, name: u.name}
	}
	passwords := &passwordChecker{book: book, iterations: cfg.iterations,
		hashing: make(chan struct{}, runtime.NumCPU()),
		dummy:   &account{salt: make([]byte, 16), hash: make([]byte, 32)}}

	authenticate := func(r *http.Request) (*jwtauth.User, error) {
		var creds struct {
			Username string `json:"username"`
			Password string `json:"password"`
		}
		if err := json.NewDecoder(r.Body).Decode(&creds); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return nil, err
			}
			// A malformed body is the client's mistake, not a failed login: 400.
			return nil, &jwtauth.Error{Status: http.StatusBadRequest, Reason: `send {"username": ..., "password": ...}`}
		}
		acct, err := passwords.check(r.Context(), creds.Username, creds.Password)
		if err != nil { // the client gave up while waiting: not a server error
			return nil, fmt.Errorf("%w: request cancelled", jwtauth.ErrAuthenticationFailed)
		}
		if acct == nil {
			return nil, &jwtauth.Error{Status: http.StatusUnauthorized, Reason: "wrong username or password"}
		}
		return &jwtauth.User{ID: creds.Username, Scopes: acct.scopes}, nil
	}
	// retrieveUser runs at /auth/me and at every refresh, so a changed scope takes
	// effect at the next refresh.
	retrieveUser := func(_ context.Context, c *jwtauth.Claims) (*jwtauth.User, error) {
		acct := book.get(c.UserID)
		if acct == nil {
			return nil, jwtauth.ErrUserNotFound
		}
		return &jwtauth.User{ID: c.UserID, Scopes: acct.scopes,
			Profile: map[string]any{"user_id": c.UserID, "name": acct.name, "scopes": acct.scopes}}, nil
	}

	var onEvent func(context.Context, jwtauth.Event)
	if cfg.events != nil {
		onEvent = jwtauth.LogEvents(cfg.events)
	}
	// One Auth for browsers and apps. A login or refresh from a browser (its
	// fetch carries Origin or Sec-Fetch-Site, which no script can remove) is answered
	// with cookies and {}; one from any other client with the tokens in the JSON body.
	// Protected routes read the cookie first, then the Authorization header; the
	// cross-origin check concerns logins and what a cookie authenticated, not the header.
	auth, err := jwtauth.New(jwtauth.Config{
		Secret:         cfg.secret,
		Cookies:        &jwtauth.Cookies{}, // Secure, HttpOnly, SameSite=Lax, host-only; cross-origin check on
		HeaderFallback: true,               // no cookie: read the Authorization header
		Endpoints:      &jwtauth.Endpoints{Authenticate: authenticate},
		RetrieveUser:   retrieveUser,
		// The default reuse interval (10 s) lets two tabs, or an app's retry after a
		// lost answer, present the token just rotated out and get the same successor.
		Refresh: &jwtauth.Refresh{
			Store:  new(jwtauth.MemStore),
			Window: 24 * time.Hour, // a day idle and the user logs in again
		},
		ErrorLog: cfg.errorLog,
		OnEvent:  onEvent,
		Now:      cfg.now,
	})
	if err != nil {
		return nil, err
	}

	orders := &orderBook{}
	mux := http.NewServeMux()
	auth.Mount(mux)
	mux.Handle("GET /api/orders", auth.Protected(http.HandlerFunc(orders.list)))
	mux.Handle("POST /api/orders", auth.Scoped([]string{"orders:write"}, http.HandlerFunc(orders.create)))
	// A password change needs a login of the last 5 minutes; an older one gets 401
	// InsufficientUserAuthentication, and POST /auth/reauthenticate renews it. It needs
	// the current password too.
	changePassword := &passwordChange{auth: auth, passwords: passwords, errorLog: cfg.errorLog, events: cfg.events}
	mux.Handle("POST /api/password", auth.RequireRecentAuth(5*time.Minute, changePassword))
	// The load-test pair: one handler, open and protected.
	mux.Handle("GET /api/ping", http.HandlerFunc(ping))
	mux.Handle("GET /api/ping/protected", auth.Protected(http.HandlerFunc(ping)))
	// The browser app's page; it calls the routes above.
	if err := mountBrowserApp(mux); err != nil {
		return nil, err
	}

	var handler http.Handler = mux
	if cfg.accessLog != nil {
		handler = accessLog(cfg.accessLog, mux)
	}
	return handler, nil
}

// passwordChange serves POST /api/password, the password-change recipe: check that the
// user has just proved who they are (RequireRecentAuth, in front of it, which also
// refuses a token whose session has ended) and knows the current password, store the new
// hash, and end every other session of the user, so that whoever knew the old password
// is logged out everywhere but here. The caller's session stays, and so do its tokens.
//
// The current password is needed as well as a recent login (OWASP ASVS: a password
// change re-verifies the current password): for 5 minutes after any login, whoever holds
// the session's access token (one stolen, or a script injected into the page) would
// otherwise be able to change the password, and with it end the user's other sessions.
//
// Its answers:
//   - 400: the body is not JSON, or the new password is under 8 bytes.
//   - 404: the user has no account.
//   - 401 AuthenticationFailed, "The current password is wrong.": current is wrong or
//     missing, or another request changed the password between the check and the
//     store of the new one (the one sent is no longer the current one). Nothing has
//     changed.
//   - 200 {"changed":true,"other_sessions_ended":true}: done.
//   - 401 {"changed":true,"other_sessions_ended":false,...}, with WWW-Authenticate:
//     Bearer error="invalid_token": the new password is stored, but the caller's own
//     session ended after RequireRecentAuth let the request through (a logout, an End
//     on another device), so EndOtherSessions ended nothing. 401, the status that
//     RequireRecentAuth gives such a token, because the client cannot finish with this
//     session: sent again, the request gets that 401 before reaching the handler. It is
//     neither a 5xx (nothing failed, and the advice "send it again" would be wrong) nor
//     a 200 (the other sessions are still open). The user logs in again, with the new
//     password, and ends the other sessions from there.
//   - 500 (503 when the user's sessions are too busy) with "changed" saying whether the
//     password changed: sent again (once it has, with the new password as current),
//     the request finishes the job.
type passwordChange struct {
	auth      *jwtauth.Auth
	passwords *passwordChecker // shared with the logins, and with them the hashing slots
	errorLog  *slog.Logger     // nil: slog's default
	events    *slog.Logger     // refused changes; nil for none
}

func (p *passwordChange) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	claims, _ := jwtauth.ClaimsFromContext(r.Context())
	var in struct {
		Current  string `json:"current"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&in); err != nil || len(in.Password) < minPasswordSize {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf(`send {"current": "...", "password": "..."}, the new password at least %d bytes`, minPasswordSize)})
		return
	}
	if p.passwords.book.get(claims.UserID) == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such user"})
		return
	}
	// The current password is checked as a login's is, missing (empty) or not.
	acct, err := p.passwords.check(r.Context(), claims.UserID, in.Current)
	if err != nil {
		return // the client gave up while waiting; nothing has changed
	}
	if acct == nil {
		p.refuse(w, r, claims, "wrong_current_password")
		return
	}
	salt, err := newSalt()
	if err != nil {
		p.fail(w, r, "new salt", err, false)
		return
	}
	hash, err := p.passwords.hash(r.Context(), in.Password, salt)
	if err != nil {
		return // as above
	}
	// From here on the change goes through even if the client goes away: a new
	// password with the old sessions still open would be half a change.
	ctx := context.WithoutCancel(r.Context())
	if !p.passwords.book.setPassword(claims.UserID, acct, salt, hash) {
		// Changed by another request since the check: what was sent is not the current
		// password any more.
		p.refuse(w, r, claims, "password_changed_meanwhile")
		return
	}
	if err := p.auth.EndOtherSessions(ctx, claims.UserID, claims.SessionID); errors.Is(err, jwtauth.ErrTokenInvalid) {
		p.event(r, "jwtauth-demo: password changed by an ended session", claims, "session_ended")
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"changed": true, "other_sessions_ended": false,
			"error": "the password changed, but this session has ended, so the other sessions were not ended: log in with the new password and end them (POST /auth/logout?scope=others)"})
		return
	} else if err != nil {
		p.fail(w, r, "EndOtherSessions", err, true)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"changed": true, "other_sessions_ended": true})
}

// refuse answers 401 AuthenticationFailed in the library's JSON error style: the
// current password is wrong, and nothing has changed.
func (p *passwordChange) refuse(w http.ResponseWriter, r *http.Request, claims *jwtauth.Claims, reason string) {
	p.event(r, "jwtauth-demo: password change refused", claims, reason)
	writeJSON(w, http.StatusUnauthorized, map[string]any{"exception": "AuthenticationFailed", "reasons": []string{"The current password is wrong."}})
}

// event logs a refused or unfinished change as a warning among the security events.
func (p *passwordChange) event(r *http.Request, msg string, claims *jwtauth.Claims, reason string) {
	if p.events != nil {
		p.events.WarnContext(r.Context(), msg, "user_id", claims.UserID, "session_id", claims.SessionID, "reason", reason)
	}
}

// fail answers 500 (503 when the sessions are busy), saying whether the password
// changed: when it did, the client sends the request again to end the other sessions,
// with the new password as current now.
func (p *passwordChange) fail(w http.ResponseWriter, r *http.Request, what string, err error, changed bool) {
	log := p.errorLog
	if log == nil {
		log = slog.Default()
	}
	log.ErrorContext(r.Context(), "jwtauth-demo: password change", "step", what, "error", err)
	status := http.StatusInternalServerError
	if errors.Is(err, jwtauth.ErrUnavailable) {
		status = http.StatusServiceUnavailable
	}
	body := map[string]any{"changed": changed, "other_sessions_ended": false, "error": "the password change did not finish"}
	if changed {
		body["error"] = "the password changed, but the other sessions could not be ended: send the request again, with the new password as current"
	}
	writeJSON(w, status, body)
}

var pong = []byte(`{"pong":true}` + "\n")

// ping answers {"pong":true} and does nothing else, so that a load test of it measures
// the server and the middleware in front of it, not the handler.
func ping(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(pong)
}

// pbkdf2SHA256 is PBKDF2 (RFC 8018 §5.2) with HMAC-SHA256 as the PRF, from
// golang.org/x/crypto/pbkdf2 (crypto/pbkdf2 needs Go 1.24; this module supports Go 1.22).
func pbkdf2SHA256(password, salt []byte, iterations, keyLen int) []byte {
	return pbkdf2.Key(password, salt, iterations, keyLen, sha256.New)
}

type order struct {
	ID   int    `json:"id"`
	Item string `json:"item"`
	By   string `json:"by"`
}

// orderBook is the demo's data: a list in memory.
type orderBook struct {
	mu     sync.Mutex
	orders []order
}

func (b *orderBook) list(w http.ResponseWriter, r *http.Request) {
	claims, _ := jwtauth.ClaimsFromContext(r.Context())
	b.mu.Lock()
	list := append([]order{}, b.orders...)
	b.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"user": claims.UserID, "orders": list})
}

func (b *orderBook) create(w http.ResponseWriter, r *http.Request) {
	claims, _ := jwtauth.ClaimsFromContext(r.Context())
	var in struct {
		Item string `json:"item"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&in); err != nil || in.Item == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `send {"item": "..."}`})
		return
	}
	b.mu.Lock()
	o := order{ID: len(b.orders) + 1, Item: in.Item, By: claims.UserID}
	b.orders = append(b.orders, o)
	b.mu.Unlock()
	writeJSON(w, http.StatusCreated, o)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// accessLog writes one line per request: remote address, method, path, status, bytes
// and duration. It never logs headers or bodies, which hold tokens and passwords.
func accessLog(out io.Writer, next http.Handler) http.Handler {
	logger := log.New(out, "", log.LstdFlags)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		logger.Printf("%s %s %s %d %dB %s", r.RemoteAddr, r.Method, r.URL.Path, rec.status, rec.bytes, time.Since(start).Round(time.Microsecond))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status, bytes int
	wrote         bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}
