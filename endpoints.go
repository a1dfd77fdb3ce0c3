package jwtauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The endpoints under Endpoints.URLPrefix: the router that finds them, and the handlers
// of login, verify, me, refresh, logout and the session list, with what they issue.

// Causes of the endpoints' own refusals.
var (
	errBodyTooLarge   = errors.New("jwtauth: request body too large")
	errNoEndpoint     = errors.New("jwtauth: no such endpoint")
	errRefreshOff     = fmt.Errorf("%w: it needs Config.Refresh", errNoEndpoint)
	errNotUnderPrefix = fmt.Errorf("%w: the path ends in an endpoint's name, but not under Endpoints.URLPrefix", errNoEndpoint)
	errMethod         = errors.New("jwtauth: method not allowed")
	errOtherUser      = errors.New("RetrieveUser returned a user with another ID than the token's")
	// errLogoutScope is a query string of POST /auth/logout other than none,
	// scope=others or scope=all.
	errLogoutScope = errors.New("jwtauth: logout scope must be empty, others or all")
	// errUnknownSession is DELETE /auth/sessions/{id} for an id that is not a live
	// session of the caller's: another user's is as unknown as one that never was.
	errUnknownSession = errors.New("jwtauth: no such session of the user")
	// errReauthOtherUser is POST /auth/reauthenticate with another user's credentials.
	errReauthOtherUser = errors.New("jwtauth: reauthentication with another user's credentials")
)

// endpoint is one route under URLPrefix.
type endpoint struct {
	// methods are what it serves; it answers OPTIONS too.
	methods []string
	// serve answers it, or returns the error to answer with; id is that of
	// /sessions/{id}.
	serve func(a *Auth, w http.ResponseWriter, r *http.Request, id string) error
	// refresh says that it needs Config.Refresh.
	refresh bool
}

// endpoints maps the path below URLPrefix to its endpoint. It is a read-only table.
var endpoints = map[string]*endpoint{
	"":         {[]string{"POST"}, (*Auth).serveLogin, false},
	"/":        {[]string{"POST"}, (*Auth).serveLogin, false},
	"/verify":  {[]string{"GET", "HEAD"}, (*Auth).serveVerify, false},
	"/me":      {[]string{"GET", "HEAD"}, (*Auth).serveMe, false},
	"/refresh": {[]string{"POST"}, (*Auth).serveRefresh, true},
	"/logout":  {[]string{"POST"}, (*Auth).serveLogout, true},
	// Step-up: the login body again, for a session whose user must prove who they are.
	"/reauthenticate": {[]string{"POST"}, (*Auth).serveReauthenticate, true},
	// The sessions of the access token's user, and one of them by id.
	"/sessions":  {[]string{"GET", "HEAD"}, (*Auth).serveSessions, true},
	"/sessions/": {[]string{"DELETE"}, (*Auth).serveEndSession, true},
}

// Mount registers the endpoints on mux: the Handler under Endpoints.URLPrefix (default
// /auth) itself, the login, and under everything below it. A ServeMux needs both
// patterns: "/auth" alone leaves /auth/refresh to the mux's plain-text 404, and
// "/auth/" alone answers POST /auth with a redirect. Like mux.Handle, it panics when one
// of the patterns is already registered, a mistake in the program's wiring.
func (a *Auth) Mount(mux *http.ServeMux) {
	prefix := "/auth" // without Endpoints: the handler answers 404 there
	if a.ep != nil {
		prefix = a.ep.URLPrefix
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
//	POST /auth/reauthenticate  the login body again: a new auth_time for the session
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
	var ep *endpoint
	var id string
	if a.ep != nil {
		ep, id = a.route(r.URL.Path)
	}
	switch {
	case ep == nil && a.ep != nil && a.misrouted(r.URL.Path):
		a.writeError(w, r, a.httpError(errNotUnderPrefix))
	case ep == nil:
		a.writeError(w, r, a.httpError(errNoEndpoint))
	case ep.refresh && a.sess == nil:
		a.writeError(w, r, a.httpError(errRefreshOff))
	case r.Method == http.MethodOptions:
		w.Header().Set("Allow", strings.Join(ep.methods, ", ")+", OPTIONS")
		w.WriteHeader(http.StatusNoContent)
	case !slices.Contains(ep.methods, r.Method):
		w.Header().Set("Allow", strings.Join(ep.methods, ", ")+", OPTIONS")
		a.writeError(w, r, a.httpError(fmt.Errorf("%w: %q", errMethod, r.Method)))
	default:
		// Every input is bounded, the body included.
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, a.ep.MaxBodyBytes)
		}
		if err := ep.serve(a, w, r, id); err != nil {
			a.writeError(w, r, a.httpError(err))
		}
	}
}

// misrouted reports whether the last segment of path names an endpoint other than the
// login, but the path did not route: the handler was mounted where URLPrefix does not
// lead to it.
func (a *Auth) misrouted(path string) bool {
	p := strings.TrimSuffix(path, "/")
	name := p[max(strings.LastIndexByte(p, '/'), 0):]
	return a.ep.URLPrefix != "/" && endpoints[name] != nil && len(name) > 1
}

// endpointNames lists the keys of endpoints, longest first, for route's suffix search.
var endpointNames = []string{"/reauthenticate", "/sessions/", "/sessions", "/refresh", "/logout", "/verify", "/me", "/", ""}

// route finds the endpoint for path, and the id of /sessions/{id}: a name alone when a
// router stripped the prefix, or URLPrefix and a name at the end of the path. In the
// second case whatever comes before the prefix (where a router mounted the handler) must
// not itself hold the prefix as a path segment, so "/auth/verify/auth" is not a login.
// Only a path that names no endpoint is read as /sessions/{id}.
func (a *Auth) route(path string) (*endpoint, string) {
	if ep := a.routeName(path); ep != nil {
		return ep, ""
	}
	dir := path[:strings.LastIndexByte(path, '/')+1]
	if ep := a.routeName(dir); ep == endpoints["/sessions/"] && len(dir) < len(path) {
		return ep, path[len(dir):]
	}
	return nil, ""
}

// routeName finds the endpoint whose name ends path.
func (a *Auth) routeName(path string) *endpoint {
	prefix := a.ep.URLPrefix
	if ep, ok := endpoints[path]; ok || prefix == "/" { // with "/", the names are the whole path
		return ep
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
func (a *Auth) serveLogin(w http.ResponseWriter, r *http.Request, _ string) error {
	// In cookie mode a cross-site login would plant the attacker's session in the
	// victim's browser (login CSRF).
	if err := a.sameOrigin(r); err != nil {
		return err
	}
	p, err := a.loginProof(r) // before Authenticate: a refused proof checks no password
	if err != nil {
		return err
	}
	u, err := a.authenticate(r)
	if err != nil {
		return err
	}
	if p != nil {
		if err := a.spend(r, p); err != nil {
			return err
		}
	}
	t, err := a.issueTokens(r.Context(), u, a.sessionLabel(r), p)
	if err != nil && !errors.As(err, new(*internalError)) && !errors.Is(err, ErrUnavailable) {
		return &internalError{"IssueTokens", err} // a bad extra claim: the app's bug, a 500
	} else if err == nil {
		a.writeTokens(w, r, "", t)
	}
	return err
}

// loginProof returns the DPoP proof of a login, verified but not spent, which binds the
// session it opens to the proof's key (D1); nil without one, unless Config.RequireDPoP.
// A client that could not present a bound token (one answered with cookies, or an Auth
// that reads no "DPoP <token>" header) is refused.
func (a *Auth) loginProof(r *http.Request) (*keyProof, error) {
	bindable := !a.cfg.AuthorizationHeaderNoPrefix && !a.cookieClient(r) &&
		(a.cfg.HeaderFallback || a.cookies == nil && !a.cfg.InsecureQueryString)
	switch {
	case r.Header.Values("DPoP") == nil && !a.cfg.RequireDPoP:
		return nil, nil
	case !bindable:
		return nil, errUnbindable
	}
	return a.proof(r, "")
}

// authenticate runs Endpoints.Authenticate on a login body and returns its user, or the
// error to answer with: the hook's own 4xx, a 401 for ErrAuthenticationFailed (both
// EventLoginFailed), or a 500 for anything else.
func (a *Auth) authenticate(r *http.Request) (*User, error) {
	u, err := a.ep.Authenticate(r)
	var e *Error
	switch {
	case errors.As(err, &e) && e.Status >= 400 && e.Status < 500:
		// The hook's own answer: its status and reason, nothing else of it.
		answer := &Error{Status: e.Status, Exception: e.Exception, Reason: e.Reason, err: err,
			event: EventLoginFailed, class: fmt.Sprint(e.Status)}
		setDefault(&answer.Exception, "AuthenticationFailed")
		if answer.Status == http.StatusUnauthorized {
			answer.challenge = challengeBare
		}
		return nil, answer
	case errors.Is(err, ErrAuthenticationFailed):
		a.cfg.OnEvent(r.Context(), Event{Kind: EventLoginFailed, Reason: "401"})
		return nil, err
	case errors.As(err, new(*http.MaxBytesError)):
		return nil, err
	case err != nil:
		return nil, &internalError{"Authenticate", err}
	case u == nil || u.ID == "":
		return nil, &internalError{"Authenticate", errNilUser}
	}
	return u, nil
}

// serveReauthenticate is POST /auth/reauthenticate: an unexpired access token of a live
// session and the login body. Authenticate must accept the credentials and name the
// token's user (another user's are a 403); then the session gets a new auth_time and a
// rotated refresh token, answered as a refresh is, with the same sid. A refusal leaves
// the session as it was.
func (a *Auth) serveReauthenticate(w http.ResponseWriter, r *http.Request, _ string) error {
	if err := a.sameOrigin(r); err != nil {
		return err
	}
	c, p, err := a.requestClaims(r, false, newClaims)
	if err != nil {
		return err
	}
	id, _ := parseSessionID(c.SessionID) // anything else is the zero id, which no session has
	u, err := a.authenticate(r)
	if err != nil {
		return err
	}
	if u.ID != c.UserID {
		// Another user's good credentials: refused, and reported, since no login event
		// will tell of them.
		a.cfg.OnEvent(r.Context(), Event{Kind: EventLoginFailed, UserID: c.UserID, SessionID: c.SessionID, Reason: "wrong_user"})
		return errReauthOtherUser
	}
	t := &Tokens{}
	t.RefreshToken, t.AccessToken, err = a.sess.reauthenticate(context.WithoutCancel(r.Context()), u.ID, id, p,
		a.signer(u, c.SessionID, "Authenticate (claims)"))
	if err == nil {
		a.writeTokens(w, r, "/reauthenticate", t)
	}
	return err
}

// writeTokens answers a login or refresh: the JSON body, and cookies to a cookie client,
// whose body stays empty unless Cookies.InsecureBodyTokens. name is the endpoint's, to
// find the refresh endpoint's path from the request's.
func (a *Auth) writeTokens(w http.ResponseWriter, r *http.Request, name string, t *Tokens) {
	cookies := a.cookieClient(r)
	if cookies {
		a.setCookies(w, r, name, t)
	}
	// The package's own JSON writer: every refresh pays for this body, and a map through
	// encoding/json cost a fifth of a refresh's allocations.
	body := objWriter{b: append(make([]byte, 0, 512), '{')}
	if !cookies || a.cookies.InsecureBodyTokens {
		body.member(a.cfg.AccessTokenName, t.AccessToken)
		body.member(a.cfg.RefreshTokenName, t.RefreshToken)
	}
	writeJSONBytes(w, http.StatusOK, append(body.b, '}'))
}

// cookieClient tells whether a login or refresh request is answered with cookies: every
// one in cookie mode, unless HeaderFallback makes one Auth serve browsers and apps on
// the same routes. Then a request from a browser (it carries Origin or
// Sec-Fetch-Site, headers no script can remove) or a refresh by the refresh cookie gets
// cookies, and any other is an app's, answered as in header mode with the tokens in the
// JSON body: a script injected into a page never reads a token from a body.
func (a *Auth) cookieClient(r *http.Request) bool {
	if a.cookies == nil || !a.cfg.HeaderFallback {
		return a.cookies != nil
	}
	_, err := r.Cookie(a.cfg.RefreshTokenName)
	return r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "" || err == nil
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
	if a.cookies.Split {
		i := strings.LastIndexByte(access, '.') // -1 without a token: both cookies are cleared
		set(a.cookie+"_signature", access[i+1:], a.cookies.Path, true)
		access = access[:max(i, 0)]
	}
	set(a.cookie, access, a.cookies.Path, !a.cookies.InsecureScriptAccess && !a.cookies.Split)
	if refresh != "" || t == nil && a.sess != nil {
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
func (a *Auth) serveVerify(w http.ResponseWriter, r *http.Request, _ string) error {
	if _, err := a.Check(r); err != nil {
		e := *a.httpError(err) // a copy, so as not to mark an *Error the cause may hold
		e.verify = true
		a.writeError(w, r, &e)
		return nil
	}
	return writeJSON(w, http.StatusOK, map[string]bool{"valid": true})
}

// serveMe is GET /auth/me: {"me": Profile}, or {"me": {"<UserIDClaim>": ID}} when the
// user has no Profile.
func (a *Auth) serveMe(w http.ResponseWriter, r *http.Request, _ string) error {
	c, err := a.Check(r)
	var u *User
	if err == nil {
		u, err = a.retrieveUser(r.Context(), c)
	}
	if err != nil {
		return err
	}
	var me any = map[string]string{a.cfg.UserIDClaim: u.ID}
	if u.Profile != nil {
		me = u.Profile
	}
	// Marshal first, so that a Profile json cannot encode is a logged 500 and not a
	// half-written body.
	if err := writeJSON(w, http.StatusOK, map[string]any{"me": me}); err != nil {
		return &internalError{"RetrieveUser (Profile)", err}
	}
	return nil
}

// serveRefresh is POST /auth/refresh: it checks the presented tokens and answers with
// new ones, an access token and the session's next refresh token unless rotation is off.
func (a *Auth) serveRefresh(w http.ResponseWriter, r *http.Request, _ string) error {
	// As at login: in cookie mode, a cross-site refresh with the attacker's own tokens
	// (in the body, a header or the query) would plant the attacker's session in the
	// victim's browser.
	if err := a.sameOrigin(r); err != nil {
		return err
	}
	t, err := a.refresh(r)
	if err == nil {
		a.writeTokens(w, r, "/refresh", t)
	}
	return err
}

// refresh returns the tokens that serveRefresh answers with.
func (a *Auth) refresh(r *http.Request) (*Tokens, error) {
	// Not cancelled with the request: a client that presents a rotated-out token and
	// hangs up must not escape the end of its session (through a RetrieveUser or a
	// store that honours cancellation).
	ctx := context.WithoutCancel(r.Context())
	// The access token says who is refreshing and in which session. It may be expired
	// (that is why the client is here) but it must be authentic and otherwise valid.
	c, p, err := a.requestClaims(r, true, newClaims)
	if err != nil {
		return nil, err
	}
	id, ok := parseSessionID(c.SessionID)
	if !ok {
		return nil, errNoSession // a token from before sessions: its user logs in again
	}
	presented, _, err := a.readToken(r, true)
	if err != nil {
		return nil, err
	}
	// The current user, so that the new access token carries today's scopes and claims,
	// not those of the login.
	u, err := a.retrieveUser(ctx, c)
	if err != nil {
		return nil, err
	}
	if u.ID != c.UserID {
		return nil, &internalError{"RetrieveUser", errOtherUser}
	}
	// The access token is signed inside the decision, for the generation it answers
	// with, and before the write: a user whose claims cannot be signed is a 500 that
	// must not cost the client its session.
	t := &Tokens{}
	t.RefreshToken, t.AccessToken, err = a.sess.rotate(ctx, u.ID, id, c.SessionID, c.Generation, presented, p,
		a.signer(u, c.SessionID, "RetrieveUser (claims)"))
	if err != nil {
		return nil, err
	}
	return t, nil
}

// serveLogout is POST /auth/logout[?scope=others|all]: end the access token's session,
// every other session of its user, or all of them, and clear the cookies unless the
// session lives on. An expired access token is accepted as at /refresh, so that a
// client whose access token ran out can still end its session; ending the others, or
// all, needs an unexpired access token of a live session (S14).
func (a *Auth) serveLogout(w http.ResponseWriter, r *http.Request, _ string) error {
	q, qerr := url.ParseQuery(r.URL.RawQuery)
	scope := q.Get("scope")
	// S14: an expired access token ends its own session only.
	c, p, err := a.requestClaims(r, scope == "", newClaims)
	if err != nil {
		return err
	}
	if qerr != nil || len(q["scope"]) > 1 {
		return errLogoutScope
	}
	id, _ := parseSessionID(c.SessionID) // no sid: no session of its own to end
	switch scope {
	case "":
		_, err = a.sess.end(r.Context(), c.UserID, nil, nil, "logout", func(s *session) bool { return s.id == id })
	case "others":
		_, err = a.sess.end(r.Context(), c.UserID, &id, p, "logout", func(s *session) bool { return s.id != id })
	case "all":
		_, err = a.sess.end(r.Context(), c.UserID, &id, p, "logout", func(*session) bool { return true })
	default:
		err = errLogoutScope
	}
	if err != nil {
		return err
	}
	if a.cookies != nil && scope != "others" {
		a.setCookies(w, r, "/logout", nil)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// serveSessions is GET /auth/sessions: the live sessions of the access token's user,
// {"sessions": [{"id", "created_at", "last_used_at", "expires_at", "current",
// "authenticated_at", "label"}]}. The token's own session must be live.
func (a *Auth) serveSessions(w http.ResponseWriter, r *http.Request, _ string) error {
	c, err := a.Check(r)
	var list []Session
	if err == nil {
		id, _ := parseSessionID(c.SessionID)
		list, err = a.sess.list(r.Context(), c.UserID, &id)
	}
	if err == nil {
		err = writeJSON(w, http.StatusOK, map[string][]Session{"sessions": list})
	}
	return err
}

// serveEndSession is DELETE /auth/sessions/{id}: end one of the caller's own sessions.
// The token's own session must be live.
func (a *Auth) serveEndSession(w http.ResponseWriter, r *http.Request, target string) error {
	c, p, err := a.requestClaims(r, false, newClaims)
	n := 0
	if err == nil {
		caller, _ := parseSessionID(c.SessionID)
		id, ok := parseSessionID(target)
		n, err = a.sess.end(r.Context(), c.UserID, &caller, p, "revoked", func(s *session) bool { return ok && s.id == id })
	}
	switch {
	case err != nil:
		return err
	case n == 0:
		return errUnknownSession
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Tokens is what IssueTokens returns.
type Tokens struct {
	// AccessToken is the signed JWT.
	AccessToken string
	// RefreshToken is empty unless refresh tokens are enabled. The store keeps no copy:
	// the server derives it from the session's key and the Secret.
	RefreshToken string
}

// IssueTokens is what POST /auth does after Authenticate: it signs an access token for
// u and, with Config.Refresh, opens a session (ending the least recently used one beyond
// Refresh.MaxSessions) and returns its first refresh token. The claims are the user's
// ID, Scopes and Claims plus, from the Config, exp (now + ExpirationDelta), iat when
// SetIssuedAt, nbf when NotBeforeDelta is set, iss and aud when set, and sid and sgen
// (generation 0) with Config.Refresh. A nil user, an empty ID or an extra claim overriding a registered one
// is an error wrapping ErrInvalidClaims, and so is a token Sign refuses (see Sign); a
// failing store's error is returned wrapped. It takes no request: no hook needs one. It
// is safe for concurrent use.
func (a *Auth) IssueTokens(ctx context.Context, u *User) (*Tokens, error) {
	return a.issueTokens(ctx, u, "", nil)
}

// issueTokens is IssueTokens for a session labelled label, bound to the key of the DPoP
// proof p when there is one (without Refresh, its access token is).
func (a *Auth) issueTokens(ctx context.Context, u *User, label string, p *keyProof) (*Tokens, error) {
	t, s := &Tokens{}, session{}
	var err error
	if a.sess != nil {
		if s, err = a.sess.newSession(); err != nil {
			return nil, err
		}
		s.label = label
	}
	if p != nil {
		s.jkt = p.jkt
	}
	s.authed = a.cfg.Now().UnixMilli()
	// Sign before touching the store: claims that cannot be signed open no session.
	sid := ""
	if a.sess != nil {
		sid = s.id.String()
	}
	if t.AccessToken, err = a.issueAccessToken(u, sid, &s); err != nil {
		return nil, err
	}
	if a.sess == nil {
		a.cfg.OnEvent(ctx, Event{Kind: EventLogin, UserID: u.ID})
	} else if t.RefreshToken, err = a.sess.start(ctx, u.ID, &s); err != nil {
		return nil, err
	}
	return t, nil
}

// signer signs the access tokens of u's session sid for the session layer, at the
// generation and auth_time it answers with; claims that cannot be signed are the
// failure of hook, the app's bug: a 500.
func (a *Auth) signer(u *User, sid, hook string) func(*session) (string, error) {
	return func(s *session) (string, error) {
		access, err := a.issueAccessToken(u, sid, s)
		if err != nil {
			return "", &internalError{hook, err}
		}
		return access, nil
	}
}

// issueAccessToken builds the claims for u from the Config and the session s, whose id
// is sid (its generation too, unless sid is empty; its auth_time; its key's thumbprint
// when it is bound), and signs them.
func (a *Auth) issueAccessToken(u *User, sid string, s *session) (string, error) {
	if u == nil || u.ID == "" {
		return "", fmt.Errorf("%w: nil user or empty user ID", ErrInvalidClaims)
	}
	now := a.cfg.Now()
	c := &Claims{UserID: u.ID, Scopes: u.Scopes, Issuer: a.cfg.Issuer, Extra: u.Claims,
		ExpiresAt: now.Add(a.cfg.ExpirationDelta), AuthTime: time.UnixMilli(s.authed)}
	if sid != "" {
		c.SessionID, c.Generation = sid, s.gen
	}
	if s.jkt != [32]byte{} {
		c.KeyThumbprint = b64.EncodeToString(s.jkt[:])
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
	return a.tok.sign(c)
}
