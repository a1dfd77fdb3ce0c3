package jwtauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// This file is the HTTP layer: reading the access token from a request, the Protected
// and Scoped middleware, the endpoints under Endpoints.URLPrefix, and the JSON error
// responses. The refresh and logout endpoints live in refresh.go.

// Causes of a missing or ambiguous token, and of the endpoints' other refusals. The
// missing ones wrap ErrTokenMissing and say where the token was looked for last, which
// picks the exception name.
var (
	errNoHeader       = fmt.Errorf("%w: no authorization header", ErrTokenMissing)
	errNoCookie       = fmt.Errorf("%w: no access token cookie", ErrTokenMissing)
	errHeaderIgnored  = fmt.Errorf("%w: an Authorization header was sent, but cookie mode reads the cookie", errNoCookie)
	errNoQueryArg     = fmt.Errorf("%w: no access token query argument", ErrTokenMissing)
	errTwoHeaders     = fmt.Errorf("%w: more than one authorization header", ErrInvalidAuthorizationHeader)
	errHeaderScheme   = fmt.Errorf("%w: not the configured prefix, one space and a token", ErrInvalidAuthorizationHeader)
	errHeaderEmpty    = fmt.Errorf("%w: empty header", ErrInvalidAuthorizationHeader)
	errTwoCookies     = fmt.Errorf("%w: access token cookie sent more than once", ErrTokenInvalid)
	errSplitHalf      = fmt.Errorf("%w: split access token cookie without its other half", ErrTokenInvalid)
	errTwoQueryArgs   = fmt.Errorf("%w: access token query argument repeated", ErrTokenInvalid)
	errNoUserID       = fmt.Errorf("%w: token has no user id", ErrTokenInvalid)
	errRefreshLate    = fmt.Errorf("%w: past the refresh window", ErrTokenExpired)
	errNoRefreshBody  = errors.New("jwtauth: refresh token missing in the JSON body")
	errNoRefreshCook  = errors.New("jwtauth: refresh token cookie missing")
	errNoRefreshQuery = errors.New("jwtauth: refresh token query argument missing")
	errTwoRefresh     = errors.New("jwtauth: refresh token sent more than once")
	errBadBody        = errors.New("jwtauth: request body is not a JSON object with a string refresh token")
	errBodyTooLarge   = errors.New("jwtauth: request body too large")
	errNoEndpoint     = errors.New("jwtauth: no such endpoint")
	errRefreshOff     = fmt.Errorf("%w: it needs Config.Refresh", errNoEndpoint)
	errNotUnderPrefix = fmt.Errorf("%w: the path ends in an endpoint's name, but not under Endpoints.URLPrefix", errNoEndpoint)
	errMethod         = errors.New("jwtauth: method not allowed")
	errNilUser        = errors.New("jwtauth: hook returned a nil user or an empty user ID")
)

// Error is the HTTP form of a failure: the status and the fields of the JSON error body
// {"reasons": [Reason], "exception": Exception}. Config.ErrorHandler always receives an
// *Error (get it with errors.As); Unwrap gives the cause, which wraps one of the
// package's sentinel errors or, for a 500, the failing hook's error. The cause may hold a
// hook's text: log it, never send it.
//
// Endpoints.Authenticate returns an *Error with a 4xx Status to answer a login with
// that status and Reason; an empty Exception is then "AuthenticationFailed".
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Exception is the Sanic JWT exception name, such as "Unauthorized".
	Exception string
	// Reason is the message for the client. It never holds a hook's error text, except
	// the Reason of an *Error that Authenticate returned.
	Reason string

	challenge string    // the WWW-Authenticate value to send, empty for none
	err       error     // the cause
	verify    bool      // the /verify endpoint adds "valid": false to the body
	event     EventKind // emitted when the error is answered, with class as Reason
	class     string
}

// Error returns the cause's text, prefixed with the status.
func (e *Error) Error() string {
	if e.err == nil {
		return fmt.Sprintf("jwtauth: %d %s", e.Status, e.Reason)
	}
	return fmt.Sprintf("%d: %v", e.Status, e.err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.err }

// hookError marks an unexpected error from a hook, the store or the package's own
// machinery: a 500 whose text is logged and never sent.
type hookError struct {
	hook string
	err  error
}

func (e *hookError) Error() string { return "jwtauth: " + e.hook + ": " + e.err.Error() }
func (e *hookError) Unwrap() error { return e.err }

// RFC 6750 §3 challenges. §3.1: "If the request lacks any authentication information
// (e.g., the client was unaware that authentication is necessary or attempted using an
// unsupported authentication method), the resource server SHOULD NOT include an error
// code or other error information", so a missing token gets the bare scheme.
const (
	challengeBare         = `Bearer`
	challengeInvalidToken = `Bearer error="invalid_token"`
	challengeInvalidReq   = `Bearer error="invalid_request"`
	challengeScope        = `Bearer error="insufficient_scope"`
)

// errorClass is one row of errorClasses.
type errorClass struct {
	cause     error // matched with errors.Is
	status    int
	exception string
	reason    string               // with %q: what arg gives
	arg       func(a *Auth) string // nil for a reason without %q
	challenge string
	debug     bool      // InsecureDebug answers 400 with the cause
	event     EventKind // emitted with the answer, with class as its Reason
	class     string
}

// errorClasses decides the HTTP answer of every error the package produces, and the
// event it emits: the first row whose cause the error wraps wins, and an error that
// matches none is a 500. These are Sanic JWT's statuses, exception names and reasons,
// listed in the README. It is a read-only table.
var errorClasses = []errorClass{
	{errBodyTooLarge, 413, "RequestEntityTooLarge", "Request body too large.", nil, "", false, "", ""},
	{errRefreshOff, 404, "NotFound", "Not found: refresh tokens and sessions are off on this server.", nil, "", false, "", ""},
	{errNotUnderPrefix, 404, "NotFound", "Not found: the endpoints are under %q; mount the handler with Auth.Mount, or set Endpoints.URLPrefix.", urlPrefix, "", false, "", ""},
	{errNoEndpoint, 404, "NotFound", "Not found.", nil, "", false, "", ""},
	{errMethod, 405, "MethodNotAllowed", "Method not allowed.", nil, "", false, "", ""},
	{errHeaderIgnored, 401, "MissingAuthorizationCookie", "Authorization cookie not present (the Authorization header is not read in cookie mode without HeaderFallback).", nil, challengeBare, true, EventTokenRejected, "missing"},
	{errNoCookie, 401, "MissingAuthorizationCookie", "Authorization cookie not present.", nil, challengeBare, true, EventTokenRejected, "missing"},
	{errCrossOrigin, 403, "CrossOriginRequest", "Cross-origin request refused.", nil, "", false, EventCrossOriginRefused, ""},
	{errNoQueryArg, 401, "MissingAuthorizationQueryArg", "Authorization query argument not present.", nil, challengeBare, true, EventTokenRejected, "missing"},
	{ErrTokenMissing, 401, "MissingAuthorizationHeader", "Authorization header not present.", nil, challengeBare, true, EventTokenRejected, "missing"},
	// RFC 6750 §3.1 names this invalid_request (a 400); we keep Sanic JWT's 401.
	{ErrInvalidAuthorizationHeader, 401, "InvalidAuthorizationHeader", "Authorization header is invalid: expected %q.", headerForm, challengeInvalidReq, true, EventTokenRejected, "malformed_header"},
	{ErrTokenExpired, 401, "Unauthorized", "Signature has expired.", nil, challengeInvalidToken, false, EventTokenRejected, "expired"},
	{ErrTokenNotYetValid, 401, "Unauthorized", "The token is not yet valid (nbf).", nil, challengeInvalidToken, false, EventTokenRejected, "not_yet_valid"},
	{ErrInvalidIssuer, 401, "Unauthorized", "Invalid issuer.", nil, challengeInvalidToken, false, EventTokenRejected, "wrong_issuer"},
	{ErrInvalidAudience, 401, "Unauthorized", "Invalid audience.", nil, challengeInvalidToken, false, EventTokenRejected, "wrong_audience"},
	{ErrVerificationFailed, 401, "Unauthorized", "Verifications were not met.", nil, challengeInvalidToken, false, EventTokenRejected, "verification_failed"},
	{ErrTokenInvalid, 401, "Unauthorized", "Auth required.", nil, challengeInvalidToken, true, EventTokenRejected, "invalid"},
	// RFC 6750 §3.1: insufficient_scope "SHOULD respond with the HTTP 403".
	{ErrInvalidScope, 403, "Unauthorized", "Invalid scope.", nil, challengeScope, false, EventTokenRejected, "insufficient_scope"},
	// An authentic token naming a user who no longer exists: RFC 6750 §3.1
	// invalid_token covers a token that is "revoked ... or invalid for other reasons".
	{ErrUserNotFound, 401, "Unauthorized", "User not found.", nil, challengeInvalidToken, false, EventTokenRejected, "unknown_user"},
	{errRefreshRefused, 401, "AuthenticationFailed", "Authentication failed.", nil, challengeBare, true, "", ""},
	{ErrAuthenticationFailed, 401, "AuthenticationFailed", "Authentication failed.", nil, challengeBare, false, "", ""},
	{errNoRefreshBody, 400, "MissingRefreshToken", "Refresh token %q not present in the JSON body.", refreshName, "", false, "", ""},
	{errNoRefreshCook, 400, "MissingRefreshToken", "Refresh token %q not present as a cookie.", refreshName, "", false, "", ""},
	{errNoRefreshQuery, 400, "MissingRefreshToken", "Refresh token %q not present as a query argument.", refreshName, "", false, "", ""},
	{errTwoRefresh, 400, "InvalidRefreshToken", "Refresh token %q sent more than once.", refreshName, "", false, "", ""},
	{errBadBody, 400, "InvalidRequestBody", "Request body must be a JSON object whose %q is a string.", refreshName, "", false, "", ""},
	{errLogoutScope, 400, "InvalidRequest", "The logout scope must be others or all.", nil, "", false, "", ""},
	{errUnknownSession, 404, "NotFound", "Session not found.", nil, "", false, "", ""},
}

func refreshName(a *Auth) string { return a.cfg.RefreshTokenName }
func urlPrefix(a *Auth) string   { return a.endpoints.URLPrefix }

// headerForm is what the authorization header must hold, for the reason that refuses it.
func headerForm(a *Auth) string {
	if a.cfg.AuthorizationHeaderNoPrefix {
		return "<token>"
	}
	return a.cfg.AuthorizationHeaderPrefix + " <token>"
}

// httpError maps err to its response, with errorClasses. A hook's failure is a 500
// whatever it wraps, even one of our sentinels or an *Error: it is not a verdict about
// the request, and its text must not reach the client.
func (a *Auth) httpError(err error) *Error {
	e := &Error{Status: 500, Exception: "InternalServerError", Reason: "Internal server error.", err: err}
	if errors.As(err, new(*hookError)) {
		return e
	}
	if errors.As(err, &e) {
		return e
	}
	if errors.As(err, new(*http.MaxBytesError)) {
		err = fmt.Errorf("%w: %w", errBodyTooLarge, err)
	}
	for _, c := range errorClasses {
		if !errors.Is(err, c.cause) {
			continue
		}
		e.Status, e.Exception, e.Reason, e.challenge = c.status, c.exception, c.reason, c.challenge
		e.event, e.class = c.event, c.class
		if c.arg != nil {
			e.Reason = fmt.Sprintf(c.reason, c.arg(a))
		}
		if c.debug && a.cfg.InsecureDebug {
			e.Status, e.Reason = http.StatusBadRequest, strings.TrimPrefix(err.Error(), "jwtauth: ")
		}
		break
	}
	return e
}

// fail answers r with err.
func (a *Auth) fail(w http.ResponseWriter, r *http.Request, err error) {
	a.writeError(w, r, a.httpError(err))
}

// writeError answers r with e. A 500 is logged with its cause first; the response never
// carries the cause of a 500.
func (a *Auth) writeError(w http.ResponseWriter, r *http.Request, e *Error) {
	if e.event != "" {
		a.emit(r.Context(), Event{Kind: e.event, Reason: e.class})
	}
	if e.Status >= 500 {
		a.cfg.ErrorLog.ErrorContext(r.Context(), "jwtauth: request failed",
			"method", r.Method, "path", r.URL.Path, "status", e.Status, "err", e.err)
	}
	if e.challenge != "" {
		w.Header().Set("WWW-Authenticate", e.challenge)
	}
	if a.cfg.ErrorHandler != nil {
		a.cfg.ErrorHandler(w, r, e)
		return
	}
	body := map[string]any{"reasons": []string{e.Reason}, "exception": e.Exception}
	if e.verify {
		body["valid"] = false
	}
	writeJSON(w, e.Status, body)
}

// writeJSON writes v with status. Only a caller's Profile can fail to marshal, and
// serveMe marshals that itself, so a failure here is a constant 500 body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"reasons":["Internal server error."],"exception":"InternalServerError"}`)
	}
	writeJSONBytes(w, status, b)
}

// writeJSONBytes writes the JSON document b. Responses that may carry tokens must not be
// cached (RFC 6749 §5.1 asks the same of token responses), so every endpoint says no-store.
func writeJSONBytes(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// Token sources.

// place names a token and the errors of the places it may be missing from or repeated in.
type place struct {
	name                 string
	noCookie, twoCookies error
	noQuery, twoQuery    error
}

// readToken reads the access token from r or, with refresh, the refresh token. It is
// the one place that knows where tokens travel, in Sanic JWT's order: the cookie (with
// Config.Cookies), then the query string (with InsecureQueryString), then the
// Authorization header for an access token or the JSON body for a refresh token. A
// place that lacks the token ends the search with its own "missing" error, unless
// HeaderFallback sends the search on to the next place.
//
// Ambiguous input is refused, never resolved by picking one value: two Authorization
// headers, two cookies, two query arguments or two body members of the token's name.
// RFC 6750 §2 lets a client use only one method per request ("Clients MUST NOT use more
// than one method to transmit the token in each request"); we do not go as far as
// rejecting a second method, but we never guess between two values of one.
func (a *Auth) readToken(r *http.Request, refresh bool) (string, error) {
	if a.cfg.Cookies == nil && !a.cfg.InsecureQueryString {
		if refresh {
			return bodyToken(r.Body, a.cfg.RefreshTokenName)
		}
		return a.headerToken(r) // the common case, first
	}
	p := place{a.cfg.AccessTokenName, errNoCookie, errTwoCookies, errNoQueryArg, errTwoQueryArgs}
	if refresh {
		p = place{a.cfg.RefreshTokenName, errNoRefreshCook, errTwoRefresh, errNoRefreshQuery, errTwoRefresh}
	}
	if a.cfg.Cookies != nil {
		if tok, err := a.cookieToken(r, p, refresh); err != p.noCookie || !a.cfg.HeaderFallback {
			return tok, err
		}
	}
	if a.cfg.InsecureQueryString {
		q, _ := url.ParseQuery(r.URL.RawQuery) // what Go could parse of a malformed query
		tok, err := one(q[p.name], p.noQuery, p.twoQuery)
		if err != p.noQuery || !a.cfg.HeaderFallback {
			return tok, err
		}
	}
	if refresh {
		return bodyToken(r.Body, p.name)
	}
	return a.headerToken(r)
}

// one returns the only value of vals: missing when there is none (an empty value, as in
// "?access_token=", is no token), twice when there are several.
func one(vals []string, missing, twice error) (string, error) {
	switch {
	case len(vals) == 0 || len(vals) == 1 && vals[0] == "":
		return "", missing
	case len(vals) > 1:
		return "", twice
	}
	return vals[0], nil
}

// errCrossOrigin is an unsafe request, authenticated by a cookie, from another origin.
var errCrossOrigin = errors.New("jwtauth: cross-origin request refused")

// sameOrigin refuses an unsafe request from another origin: the check of Go 1.25's
// net/http.CrossOriginProtection, written here for older Go versions. GET, HEAD and
// OPTIONS are safe and always allowed. A browser's Fetch Metadata decides first
// (Sec-Fetch-Site: same-origin or none is allowed; same-site, a sibling subdomain, is
// not); without it, an Origin header must name the request's host; a request with
// neither header comes from no browser (or a very old one) and is allowed, since a
// cross-site request forgery needs a browser. Cookies.TrustedOrigins are allowed
// whatever the headers say.
func (a *Auth) sameOrigin(r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	origin := r.Header.Get("Origin")
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return nil
	case "":
		if origin == "" {
			return nil
		}
		// The Host header carries no scheme: an HTTP page posting to the HTTPS site
		// passes here, as with net/http. Browsers without Fetch Metadata are from
		// before 2023, and HSTS closes the gap.
		if u, err := url.Parse(origin); err == nil && u.Host == r.Host {
			return nil
		}
	}
	if origin != "" && slices.Contains(a.cookies.TrustedOrigins, origin) {
		return nil
	}
	return errCrossOrigin
}

// cookieToken reads the token's cookie, on a request from this origin; a missing cookie
// beside an Authorization header says that the header is not read.
func (a *Auth) cookieToken(r *http.Request, p place, refresh bool) (string, error) {
	tok, err := a.cookieValue(r, p, refresh)
	switch {
	case err == nil:
		// A browser attaches cookies to cross-site requests too: an unsafe one must
		// come from this origin (RFC 6265bis §8.2).
		if err = a.sameOrigin(r); err != nil {
			return "", err
		}
		return tok, nil
	case err == errNoCookie && !a.cfg.HeaderFallback && r.Header.Get(a.cfg.AuthorizationHeader) != "":
		return "", errHeaderIgnored
	}
	return "", err
}

// cookieValue reads the token's cookie. Browsers send two cookies of one name when they
// differ in Path or Domain, and we do not guess which one is meant. With Cookies.Split
// the access token is its header.payload cookie joined to its signature cookie.
func (a *Auth) cookieValue(r *http.Request, p place, refresh bool) (string, error) {
	var vals, sigs []string
	sigName := p.name + "_signature"
	for _, c := range r.Cookies() {
		switch c.Name {
		case p.name:
			vals = append(vals, c.Value)
		case sigName:
			sigs = append(sigs, c.Value)
		}
	}
	tok, err := one(vals, p.noCookie, p.twoCookies)
	if refresh || !a.cookies.Split {
		return tok, err
	}
	sig, sigErr := one(sigs, p.noCookie, p.twoCookies)
	switch {
	case err == p.noCookie && sigErr == p.noCookie:
		return "", p.noCookie
	case err == p.noCookie || sigErr == p.noCookie:
		return "", errSplitHalf
	case err != nil:
		return "", err
	case sigErr != nil:
		return "", sigErr
	}
	return tok + "." + sig, nil
}

// headerToken reads "<prefix> <token>" from the authorization header. RFC 7235 §2.1:
// the scheme is case-insensitive, compared here in ASCII only; RFC 6750 §2.1 b64token
// syntax has exactly one space after "Bearer". Anything else is ambiguous and refused.
func (a *Auth) headerToken(r *http.Request) (string, error) {
	vals := r.Header[a.cfg.AuthorizationHeader] // canonical since New
	switch {
	case len(vals) == 0:
		return "", errNoHeader
	case len(vals) > 1:
		return "", errTwoHeaders
	case vals[0] == "":
		return "", errHeaderEmpty
	}
	tok := vals[0]
	if !a.cfg.AuthorizationHeaderNoPrefix {
		scheme, rest, ok := strings.Cut(tok, " ")
		if !ok || !asciiEqualFold(scheme, a.cfg.AuthorizationHeaderPrefix) {
			return "", errHeaderScheme
		}
		tok = rest
	}
	if tok == "" || strings.IndexByte(tok, ' ') >= 0 || strings.IndexByte(tok, '\t') >= 0 {
		return "", errHeaderScheme
	}
	return tok, nil
}

// asciiEqualFold is strings.EqualFold restricted to ASCII letters, so that no Unicode
// case folding (the Kelvin sign folds to "k") can make two schemes equal.
func asciiEqualFold(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		a, b := s[i], t[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// Protection.

type ctxKey int

const (
	claimsKey ctxKey = iota
	userKey
)

// claimsContext holds the claims of a token, and is the request context that Protected
// passes on: the request's own (Context, which Protected sets), answering claimsKey with
// the claims. Verify allocates every Claims inside one, so that Protected's context is
// no allocation of its own (context.WithValue would be one); it costs a Claims 16 bytes,
// within the same size class. The claims come first, where a bare Claims would be: Verify
// measured 2% slower with the Context in front.
type claimsContext struct {
	claims Claims
	context.Context
}

func (ctx *claimsContext) Value(key any) any {
	if key == claimsKey {
		return &ctx.claims
	}
	return ctx.Context.Value(key)
}

// ClaimsFromContext returns the claims that Protected, Scoped or InjectUser verified
// for the request whose context ctx is.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey).(*Claims)
	return c, ok && c != nil
}

// UserFromContext returns the user that InjectUser retrieved for the request whose
// context ctx is.
func UserFromContext(ctx context.Context) (*User, bool) {
	u, ok := ctx.Value(userKey).(*User)
	return u, ok && u != nil
}

// Check reads the access token from r as Protected does and verifies it, without
// answering: it returns the claims, or an error wrapping ErrTokenMissing,
// ErrInvalidAuthorizationHeader or one of Verify's errors. With Refresh.VerifySessions it
// also refuses, with ErrTokenInvalid, a token whose session has ended (Verify, which
// reads no store, does not). It is safe for concurrent use.
func (a *Auth) Check(r *http.Request) (*Claims, error) {
	cc, err := a.verifyRequest(r)
	if err != nil {
		return nil, err
	}
	return &cc.claims, nil
}

// verifyRequest is Check returning the claims in their claimsContext.
func (a *Auth) verifyRequest(r *http.Request) (*claimsContext, error) {
	tok, err := a.readToken(r, false)
	if err != nil {
		return nil, err
	}
	cc, err := a.verify(tok, false)
	if err == nil && a.refreshCfg.VerifySessions {
		err = a.sessionLive(r.Context(), &cc.claims)
	}
	if err != nil {
		return nil, err
	}
	return cc, nil
}

// Protected lets a request through to next only with a valid access token, and puts
// the token's claims in the request context (see ClaimsFromContext). Otherwise it
// answers with the JSON error body (401, or 400 with the cause with InsecureDebug; see the
// README's Endpoints section), or, when Config.LoginRedirectURL is set and the
// request accepts text/html, redirects there (302). Its type fits middleware chains as
// the method value auth.Protected.
//
// It does not let OPTIONS requests through unauthenticated (Sanic JWT does): put a CORS
// handler in front of it to answer preflight requests. The returned handler is safe for
// concurrent use if next is.
func (a *Auth) Protected(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cc, err := a.verifyRequest(r)
		if err != nil {
			a.deny(w, r, err)
			return
		}
		cc.Context = r.Context() // cc is new: no one else has it yet
		next.ServeHTTP(w, r.WithContext(cc))
	})
}

// deny answers a request the middleware refuses: a redirect to the login page for a
// browser that is not authenticated, the error response otherwise.
func (a *Auth) deny(w http.ResponseWriter, r *http.Request, err error) {
	e := a.httpError(err)
	if a.cfg.LoginRedirectURL != "" && e.Status == http.StatusUnauthorized && acceptsHTML(r) {
		a.emit(r.Context(), Event{Kind: e.event, Reason: e.class})
		http.Redirect(w, r, a.cfg.LoginRedirectURL, http.StatusFound)
		return
	}
	a.writeError(w, r, e)
}

// acceptsHTML reports whether r's Accept header names text/html. A wildcard does not
// count: API clients send */* and want the 401.
func acceptsHTML(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if asciiEqualFold(strings.TrimSpace(mt), "text/html") {
				return true
			}
		}
	}
	return false
}

// ScopeRule is what a scoped route requires. The zero value of the flags is Sanic
// JWT's default: all of Scopes, each with all its actions.
type ScopeRule struct {
	// Scopes are the required scopes, "namespace[:action[:action...]]". A rule with
	// none never passes. An empty namespace matches any namespace, as in Sanic JWT, so
	// the scope "" is met by every namespace-only user scope: do not build Scopes with
	// strings.Split of a string that may be empty.
	Scopes []string
	// AnyScope lets one matching scope suffice (Sanic JWT's require_all=False).
	AnyScope bool
	// AnyAction lets one of a required scope's actions suffice (Sanic JWT's
	// require_all_actions=False).
	AnyAction bool
}

// Scoped is Protected plus a scope check: the token's scopes must satisfy every one of
// scopes under Config.ScopeValidator (by default ScopesMatch, Sanic JWT's rules). A valid token
// without the scopes is a 403. See ScopedWith for the any-of variants.
func (a *Auth) Scoped(scopes []string, next http.Handler) http.Handler {
	return a.ScopedWith(ScopeRule{Scopes: scopes}, next)
}

// ScopedWith is Scoped with a ScopeRule, for any-of scopes or actions. The rule's
// Scopes are copied. The returned handler is safe for concurrent use if next is.
func (a *Auth) ScopedWith(rule ScopeRule, next http.Handler) http.Handler {
	// Copy the scopes: the caller's slice may change after the route is built.
	rule.Scopes = append([]string(nil), rule.Scopes...)
	return a.Protected(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := ClaimsFromContext(r.Context())
		if !a.cfg.ScopeValidator(rule.Scopes, c.Scopes, !rule.AnyScope, !rule.AnyAction) {
			a.deny(w, r, ErrInvalidScope)
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// InjectUser is Protected plus Config.RetrieveUser: it puts both the claims and the
// current user in the request context (see UserFromContext), Sanic JWT's inject_user.
// A user that no longer exists is a 401, a failing RetrieveUser a 500. Without a
// RetrieveUser, the user is the one the token describes.
// The returned handler is safe for concurrent use if next and RetrieveUser are.
func (a *Auth) InjectUser(next http.Handler) http.Handler {
	return a.Protected(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := ClaimsFromContext(r.Context())
		u, err := a.retrieveUser(r.Context(), c)
		if err != nil {
			a.deny(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey, u)))
	}))
}

// retrieveUser calls RetrieveUser and sorts its answer: not found (nil, nil or
// ErrUserNotFound) is ErrUserNotFound, any other error or a user without ID is a
// hookError.
func (a *Auth) retrieveUser(ctx context.Context, c *Claims) (*User, error) {
	u, err := a.cfg.RetrieveUser(ctx, c)
	switch {
	case errors.Is(err, ErrUserNotFound), err == nil && u == nil:
		return nil, fmt.Errorf("%w: %q", ErrUserNotFound, c.UserID)
	case err != nil:
		return nil, &hookError{"RetrieveUser", err}
	case u.ID == "":
		return nil, &hookError{"RetrieveUser", errNilUser}
	}
	return u, nil
}

// Issuing.

// Tokens is what IssueTokens returns.
type Tokens struct {
	// AccessToken is the signed JWT.
	AccessToken string
	// RefreshToken is empty unless refresh tokens are enabled. Only its digest was stored.
	RefreshToken string
}

// IssueTokens is what POST /auth does after Authenticate: it signs an access token for
// u and, with Config.Refresh, opens a session (ending the least recently used one beyond
// Refresh.MaxSessions) and returns its first refresh token. The claims are the user's
// ID, Scopes and Claims plus, from the Config, exp (now + ExpirationDelta), iat when
// SetIssuedAt, nbf when NotBeforeDelta is set, iss and aud when set, and sid with
// Config.Refresh. A nil user, an empty ID or an extra claim overriding a registered one
// is an error wrapping ErrInvalidClaims, and so is a token Sign refuses (see Sign); a
// failing store's error is returned wrapped. It takes no request: no hook needs one. It
// is safe for concurrent use.
func (a *Auth) IssueTokens(ctx context.Context, u *User) (*Tokens, error) {
	if a.cfg.Refresh == nil {
		access, err := a.issueAccessToken(u, "")
		if err != nil {
			return nil, err
		}
		a.emit(ctx, Event{Kind: EventLogin, UserID: u.ID})
		return &Tokens{AccessToken: access}, nil
	}
	s, err := newSession()
	if err != nil {
		return nil, err
	}
	// Sign before touching the store: claims that cannot be signed open no session.
	access, err := a.issueAccessToken(u, s.sid())
	if err != nil {
		return nil, err
	}
	if err := a.openSession(ctx, u.ID, &s); err != nil {
		return nil, err
	}
	return &Tokens{AccessToken: access, RefreshToken: s.tokenString(a.keys[0])}, nil
}

// issueAccessToken builds the claims for u and the session sid from the Config and signs
// them.
func (a *Auth) issueAccessToken(u *User, sid string) (string, error) {
	if u == nil || u.ID == "" {
		return "", fmt.Errorf("%w: nil user or empty user ID", ErrInvalidClaims)
	}
	now := a.now()
	c := &Claims{
		UserID:    u.ID,
		Scopes:    u.Scopes,
		Issuer:    a.cfg.Issuer,
		SessionID: sid,
		ExpiresAt: now.Add(a.cfg.ExpirationDelta),
		Extra:     u.Claims,
	}
	if a.cfg.Audience != "" {
		c.Audience = []string{a.cfg.Audience}
	}
	if a.cfg.SetIssuedAt {
		c.IssuedAt = now
	}
	if a.cfg.NotBeforeDelta > 0 {
		c.NotBefore = now.Add(a.cfg.NotBeforeDelta)
	}
	return a.Sign(c)
}

// Endpoints.

// endpoint is one route under URLPrefix.
type endpoint struct {
	methods string // the Allow header, OPTIONS included
	allowed func(method string) bool
	serve   func(a *Auth, w http.ResponseWriter, r *http.Request, id string) // id: of /sessions/{id}
	enabled func(a *Auth) bool
}

func isPost(m string) bool     { return m == http.MethodPost }
func isGet(m string) bool      { return m == http.MethodGet || m == http.MethodHead }
func isDelete(m string) bool   { return m == http.MethodDelete }
func always(*Auth) bool        { return true }
func withRefresh(a *Auth) bool { return a.cfg.Refresh != nil }

// endpoints maps the path below URLPrefix to its endpoint. It is a read-only table.
var endpoints = map[string]*endpoint{
	"":         {"POST, OPTIONS", isPost, (*Auth).serveLogin, always},
	"/":        {"POST, OPTIONS", isPost, (*Auth).serveLogin, always},
	"/verify":  {"GET, HEAD, OPTIONS", isGet, (*Auth).serveVerify, always},
	"/me":      {"GET, HEAD, OPTIONS", isGet, (*Auth).serveMe, always},
	"/refresh": {"POST, OPTIONS", isPost, (*Auth).serveRefresh, withRefresh},
	"/logout":  {"POST, OPTIONS", isPost, (*Auth).serveLogout, withRefresh},
	// The sessions of the access token's user, and one of them by id.
	"/sessions":  {"GET, HEAD, OPTIONS", isGet, (*Auth).serveSessions, withRefresh},
	"/sessions/": {"DELETE, OPTIONS", isDelete, (*Auth).serveEndSession, withRefresh},
}

// Mount registers the endpoints on mux: the Handler under Endpoints.URLPrefix (default
// /auth) itself, the login, and under everything below it. A ServeMux needs both
// patterns: "/auth" alone leaves /auth/refresh to the mux's plain-text 404, and
// "/auth/" alone answers POST /auth with a redirect. Like mux.Handle, it panics when one
// of the patterns is already registered, a mistake in the program's wiring.
func (a *Auth) Mount(mux *http.ServeMux) {
	prefix := a.endpoints.URLPrefix
	if prefix == "" {
		prefix = "/auth" // without Endpoints: the handler answers 404 there
	}
	mux.Handle(prefix, a.Handler())
	if prefix != "/" {
		mux.Handle(prefix+"/", a.Handler())
	}
}

// Handler serves the endpoints under Endpoints.URLPrefix (default /auth):
//
//	POST /auth          log in: Authenticate, then IssueTokens
//	GET  /auth/verify   {"valid": true} for a valid access token
//	GET  /auth/me       {"me": Profile} for the token's user, from RetrieveUser
//	POST /auth/refresh  a new access token (and refresh token) for a refresh token
//	POST /auth/logout   end the token's session (?scope=others: the user's other
//	                    sessions; ?scope=all: all of them) and clear the cookies
//	GET  /auth/sessions         the user's sessions
//	DELETE /auth/sessions/{id}  end one of them
//
// The endpoint is chosen by the end of the request path: the prefix and the endpoint's
// name ("/auth/verify"), or the endpoint's name alone when a router has already
// stripped the prefix ("/verify", and "" or "/" for the login). So it works mounted on
// a ServeMux (mux.Handle("/auth", h) and mux.Handle("/auth/", h)), under a router that
// keeps the full path (chi's Mount), and behind http.StripPrefix. Any other path is a
// 404, and so is everything without Config.Endpoints, and /refresh, /logout and
// /sessions without Config.Refresh.
//
// Every endpoint answers OPTIONS with 204 and a wrong method with 405 and Allow.
// Request bodies are capped at MaxBodyBytes (413 beyond), Authenticate's reads included.
// The handler is safe for concurrent use; Handler may be called more than once.
func (a *Auth) Handler() http.Handler {
	return http.HandlerFunc(a.serveHTTP)
}

func (a *Auth) serveHTTP(w http.ResponseWriter, r *http.Request) {
	ep, id := a.route(r.URL.Path)
	switch {
	case ep == nil && a.cfg.Endpoints != nil && a.misrouted(r.URL.Path):
		a.fail(w, r, errNotUnderPrefix)
		return
	case ep == nil || a.cfg.Endpoints == nil:
		a.fail(w, r, errNoEndpoint)
		return
	case !ep.enabled(a):
		a.fail(w, r, errRefreshOff)
		return
	}
	if r.Method == http.MethodOptions {
		w.Header().Set("Allow", ep.methods)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if !ep.allowed(r.Method) {
		w.Header().Set("Allow", ep.methods)
		a.fail(w, r, fmt.Errorf("%w: %q", errMethod, r.Method))
		return
	}
	// Every input is bounded, the body included.
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, a.endpoints.MaxBodyBytes)
	}
	ep.serve(a, w, r, id)
}

// misrouted reports whether path names an endpoint but not under URLPrefix: the handler
// was mounted where its prefix does not lead to it.
func (a *Auth) misrouted(path string) bool {
	if a.endpoints.URLPrefix == "/" {
		return false // the names alone are the paths: nothing to mount elsewhere
	}
	for _, name := range endpointNames[:len(endpointNames)-2] { // all but the login's, "/" and ""
		if strings.HasSuffix(strings.TrimSuffix(path, "/"), strings.TrimSuffix(name, "/")) {
			return true
		}
	}
	return false
}

// endpointNames lists the keys of endpoints, longest first, for route's suffix search.
var endpointNames = []string{"/sessions/", "/sessions", "/refresh", "/logout", "/verify", "/me", "/", ""}

// route finds the endpoint for path, and the id of /sessions/{id}: a name alone when a
// router stripped the prefix, or URLPrefix and a name at the end of the path. In the
// second case whatever comes before the prefix (where a router mounted the handler) must
// not itself hold the prefix as a path segment, so "/auth/verify/auth" is not a login.
// Only a path that names no endpoint is read as /sessions/{id}.
func (a *Auth) route(path string) (*endpoint, string) {
	if ep := a.routeName(path); ep != nil {
		return ep, ""
	}
	i := strings.LastIndex(path, "/sessions/")
	if i < 0 || strings.IndexByte(path[i+len("/sessions/"):], '/') >= 0 {
		return nil, ""
	}
	id := path[i+len("/sessions/"):]
	if ep := a.routeName(path[:i+len("/sessions/")]); ep == endpoints["/sessions/"] && id != "" {
		return ep, id
	}
	return nil, ""
}

// routeName finds the endpoint whose name ends path.
func (a *Auth) routeName(path string) *endpoint {
	if ep, ok := endpoints[path]; ok {
		return ep
	}
	prefix := a.endpoints.URLPrefix
	if prefix == "/" { // the names are the whole path, handled above
		return nil
	}
	for _, name := range endpointNames {
		mount, ok := strings.CutSuffix(path, prefix+name)
		if ok && !strings.Contains(mount+"/", prefix+"/") {
			return endpoints[name]
		}
	}
	return nil
}

// serveLogin is POST /auth.
func (a *Auth) serveLogin(w http.ResponseWriter, r *http.Request, _ string) {
	// In cookie mode a cross-site login would plant the attacker's session in the
	// victim's browser (login CSRF).
	if a.cfg.Cookies != nil {
		if err := a.sameOrigin(r); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	u, err := a.endpoints.Authenticate(r)
	var e *Error
	switch {
	case errors.As(err, &e) && e.Status >= 400 && e.Status < 500:
		// The hook's own answer: its status and reason, nothing else of it.
		answer := &Error{Status: e.Status, Exception: e.Exception, Reason: e.Reason, err: err,
			event: EventLoginFailed, class: strconv.Itoa(e.Status)}
		setDefault(&answer.Exception, "AuthenticationFailed")
		if answer.Status == http.StatusUnauthorized {
			answer.challenge = challengeBare
		}
		a.writeError(w, r, answer)
		return
	case errors.Is(err, ErrAuthenticationFailed):
		a.emit(r.Context(), Event{Kind: EventLoginFailed, Reason: "401"})
		a.fail(w, r, err)
		return
	case errors.As(err, new(*http.MaxBytesError)):
		a.fail(w, r, err)
		return
	case err != nil:
		a.fail(w, r, &hookError{"Authenticate", err})
		return
	case u == nil || u.ID == "":
		a.fail(w, r, &hookError{"Authenticate", errNilUser})
		return
	}
	t, err := a.IssueTokens(r.Context(), u)
	if err != nil {
		if !errors.As(err, new(*hookError)) {
			err = &hookError{"IssueTokens", err} // a bad extra claim: the app's bug, a 500
		}
		a.fail(w, r, err)
		return
	}
	a.writeTokens(w, r, "", t)
}

// writeTokens answers a login or refresh: the JSON body, and cookies in cookie mode,
// where the body stays empty unless Cookies.InsecureBodyTokens. name is the endpoint's,
// to find the refresh endpoint's path from the request's.
func (a *Auth) writeTokens(w http.ResponseWriter, r *http.Request, name string, t *Tokens) {
	if a.cfg.Cookies != nil {
		a.setCookies(w, r, name, t)
	}
	// The package's own JSON writer: every refresh pays for this body, and a map through
	// encoding/json cost a fifth of a refresh's allocations.
	body := objWriter{b: append(make([]byte, 0, 512), '{')}
	if a.cfg.Cookies == nil || a.cookies.InsecureBodyTokens {
		body.key(a.cfg.AccessTokenName)
		body.str(t.AccessToken)
		if t.RefreshToken != "" {
			body.key(a.cfg.RefreshTokenName)
			body.str(t.RefreshToken)
		}
	}
	writeJSONBytes(w, http.StatusOK, append(body.b, '}'))
}

// setCookies sets the token cookies of t, or expires every one of them (Max-Age=0 on
// the wire) when t is nil. With Split the access token's header.payload is readable by
// scripts (that is the point of splitting) and its signature is always HttpOnly, so a
// script can read the claims but not replay the token. The refresh cookie's Path is the
// refresh endpoint's, as the browser addressed it, so that no other request carries it;
// name is the endpoint answering r.
func (a *Auth) setCookies(w http.ResponseWriter, r *http.Request, name string, t *Tokens) {
	access, refresh, maxAge := "", "", -1
	if t != nil {
		access, refresh, maxAge = t.AccessToken, t.RefreshToken, a.cookies.MaxAge
	}
	set := func(name, value, path string, httpOnly bool) {
		http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: path, Domain: a.cookies.Domain, MaxAge: maxAge,
			Secure: !a.cookies.InsecureAllowHTTP, HttpOnly: httpOnly, SameSite: a.cookies.SameSite})
	}
	httpOnly := !a.cookies.InsecureScriptAccess
	if a.cookies.Split {
		sig := ""
		if i := strings.LastIndexByte(access, '.'); i >= 0 {
			access, sig = access[:i], access[i+1:]
		}
		set(a.cfg.AccessTokenName+"_signature", sig, a.cookies.Path, true)
		httpOnly = false
	}
	set(a.cfg.AccessTokenName, access, a.cookies.Path, httpOnly && !a.cookies.Split)
	if refresh != "" || t == nil && a.cfg.Refresh != nil {
		// The path the browser used, from the request line: a router may have
		// stripped a prefix from r.URL.Path.
		path := r.URL.Path
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
			path = u.Path
		}
		set(a.cfg.RefreshTokenName, refresh, strings.TrimSuffix(strings.TrimSuffix(path, name), "/")+"/refresh", !a.cookies.InsecureScriptAccess)
	}
}

// serveVerify is GET /auth/verify: {"valid": true}, or the error with "valid": false.
func (a *Auth) serveVerify(w http.ResponseWriter, r *http.Request, _ string) {
	if _, err := a.Check(r); err != nil {
		e := *a.httpError(err) // a copy, so as not to mark an *Error the cause may hold
		e.verify = true
		a.writeError(w, r, &e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"valid": true})
}

// serveMe is GET /auth/me: {"me": Profile}, or {"me": {"<UserIDClaim>": ID}} when the
// user has no Profile.
func (a *Auth) serveMe(w http.ResponseWriter, r *http.Request, _ string) {
	c, err := a.Check(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	u, err := a.retrieveUser(r.Context(), c)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var me any = map[string]string{a.cfg.UserIDClaim: u.ID}
	if u.Profile != nil {
		me = u.Profile
	}
	// Marshal first, so that a Profile json cannot encode is a logged 500 and not a
	// half-written body.
	b, err := json.Marshal(map[string]any{"me": me})
	if err != nil {
		a.fail(w, r, &hookError{"RetrieveUser (Profile)", err})
		return
	}
	writeJSONBytes(w, http.StatusOK, b)
}
