package jwtauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The middleware: Check, Protected, Scoped, ScopedWith and InjectUser, and the request
// context they hand the claims and the user on in.

type ctxKey int

const (
	claimsKey ctxKey = iota
	userKey
	spentKey // the DPoP proof that Protected spent for the request (see Auth.spend)
)

// claimsContext is the request context that Protected passes on: the request's own
// (Context), answering claimsKey with the claims. Protected has Verify allocate the
// claims inside it, so that the context is no allocation of its own (context.WithValue
// would be one) and a refused request allocates neither. The claims come first, at the
// offset a bare Claims has.
type claimsContext struct {
	claims Claims
	context.Context
	spent [16]byte // the jti digest of the request's DPoP proof, if the token is bound
}

func (ctx *claimsContext) Value(key any) any {
	switch {
	case key == claimsKey:
		return &ctx.claims
	case key == spentKey && ctx.claims.KeyThumbprint != "":
		return ctx.spent
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
	c, _, err := a.requestClaims(r, false, newClaims)
	return c, err
}

// Protected lets a request through to next only with a valid access token, and puts
// the token's claims in the request context (see ClaimsFromContext). Otherwise it
// answers with the JSON error body (401, or 400 with the cause with InsecureDebug; see
// the error table in the documentation), or, when Config.LoginRedirectURL is set and
// the request accepts text/html, redirects there (302). Its type fits middleware chains
// as the method value auth.Protected.
//
// It does not let OPTIONS requests through unauthenticated (Sanic JWT does): put a CORS
// handler in front of it to answer preflight requests. The returned handler is safe for
// concurrent use if next is.
func (a *Auth) Protected(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var cc *claimsContext
		_, p, err := a.requestClaims(r, false, func() *Claims { cc = new(claimsContext); return &cc.claims })
		if err != nil {
			a.deny(w, r, err)
			return
		}
		if p != nil {
			cc.spent = p.jti
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
		a.cfg.OnEvent(r.Context(), Event{Kind: e.event, Reason: e.class})
		http.Redirect(w, r, a.cfg.LoginRedirectURL, http.StatusFound)
		return
	}
	a.writeError(w, r, e)
}

// acceptsHTML reports whether r's Accept header names text/html. A wildcard does not
// count: API clients send */* and want the 401.
func acceptsHTML(r *http.Request) bool {
	for _, part := range strings.Split(strings.Join(r.Header.Values("Accept"), ","), ",") {
		if mt, _, _ := strings.Cut(part, ";"); asciiEqualFold(strings.TrimSpace(mt), "text/html") {
			return true
		}
	}
	return false
}

// errNotRecent is an access token whose auth_time is older than a route's maximum age,
// or that has none.
var errNotRecent = fmt.Errorf("%w: the user authenticated too long ago", ErrTokenInvalid)

// RequireRecentAuth is Protected plus step-up (RFC 9470): the token's auth_time (the
// login or the last POST /auth/reauthenticate) must be at most maxAge old, for routes
// such as a password change, deleting the account or reading billing. Otherwise it
// answers 401 InsufficientUserAuthentication with the JSON error body and
// WWW-Authenticate: Bearer error="insufficient_user_authentication", max_age=<seconds>
// (RFC 9470 §3), and the client has the user reauthenticate. A token without auth_time,
// or with one ahead of the clock by more than Leeway, never passes; with Refresh, neither
// does a token whose session has ended (one store read, as with VerifySessions). The
// auth_time is trusted as signed: IssueTokens counts as a fresh authentication, and so
// does a Claims.AuthTime given to Sign. The returned handler is safe for concurrent use
// if next is.
func (a *Auth) RequireRecentAuth(maxAge time.Duration, next http.Handler) http.Handler {
	challenge := fmt.Sprintf(`Bearer error="insufficient_user_authentication", `+
		`error_description="A more recent authentication is required.", max_age=%d`, int64(maxAge/time.Second))
	return a.Protected(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := ClaimsFromContext(r.Context())
		// A session ended since the token was issued (a password change ended it, say)
		// proves nothing, however recent its auth_time: with sessions on, the route
		// checks it as VerifySessions would, which Protected already did when set.
		if a.sess != nil && !a.sess.cfg.VerifySessions {
			if err := a.sess.live(r.Context(), c.UserID, c.SessionID); err != nil {
				a.deny(w, r, err)
				return
			}
		}
		// An auth_time ahead of the clock by more than Leeway is no proof of anything.
		if age := a.cfg.Now().Sub(c.AuthTime); c.AuthTime.IsZero() || age > maxAge || age < -a.tok.leeway {
			a.deny(w, r, &Error{Status: http.StatusUnauthorized, Exception: "InsufficientUserAuthentication",
				Reason: "A more recent authentication is required.", challenge: challenge, err: errNotRecent,
				event: EventTokenRejected, class: "not_recent"})
			return
		}
		next.ServeHTTP(w, r)
	}))
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
// scopes under Config.ScopeValidator (by default ScopesMatch, Sanic JWT's rules). A
// valid token without the scopes is a 403. See ScopedWith for the any-of variants.
func (a *Auth) Scoped(scopes []string, next http.Handler) http.Handler {
	return a.ScopedWith(ScopeRule{Scopes: scopes}, next)
}

// ScopedWith is Scoped with a ScopeRule, for any-of scopes or actions. The rule's
// Scopes are copied. The returned handler is safe for concurrent use if next is.
func (a *Auth) ScopedWith(rule ScopeRule, next http.Handler) http.Handler {
	// Copy the scopes: the caller's slice may change after the route is built.
	rule.Scopes = slices.Clone(rule.Scopes)
	valid := a.cfg.ScopeValidator
	if valid == nil {
		valid = ScopesMatch
	}
	return a.Protected(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := ClaimsFromContext(r.Context())
		if !valid(rule, c.Scopes) {
			a.deny(w, r, ErrInvalidScope)
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// ScopesMatch is the default Config.ScopeValidator: Sanic JWT's scope rules. A scope is
// "namespace[:action[:action...]]". A required scope is met by a token scope when the
// namespaces are equal (or the required namespace is empty) and
//   - the required scope has actions and the token scope has none (a namespace-only
//     scope covers every action), or
//   - both have actions and the token scope has all the required ones (any one of them
//     with rule.AnyAction), or
//   - neither has actions.
//
// One matching token scope is enough for a required scope. All of rule.Scopes must be
// met (any one with rule.AnyScope). There is no "*" wildcard, and a token without
// scopes, or a rule requiring none, never passes.
func ScopesMatch(rule ScopeRule, tokenScopes []string) bool {
	return len(tokenScopes) > 0 && len(rule.Scopes) > 0 && meets(rule.Scopes, !rule.AnyScope, func(req string) bool {
		return slices.ContainsFunc(tokenScopes, func(have string) bool { return scopeMatches(req, have, !rule.AnyAction) })
	})
}

// scopeMatches reports whether the token's scope have meets the required scope req.
func scopeMatches(req, have string, allActions bool) bool {
	reqNS, reqActs, reqHas := strings.Cut(req, ":")
	haveNS, haveActs, haveHas := strings.Cut(have, ":")
	switch {
	case reqNS != "" && reqNS != haveNS:
		return false
	case !reqHas:
		return !haveHas
	case !haveHas:
		return true
	}
	acts := strings.Split(haveActs, ":")
	return meets(strings.Split(reqActs, ":"), allActions, func(act string) bool { return slices.Contains(acts, act) })
}

// meets reports whether ok holds for every one of xs, or with all false for any one.
func meets(xs []string, all bool, ok func(string) bool) bool {
	for _, x := range xs {
		if ok(x) != all {
			return !all
		}
	}
	return all
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

// errNilUser is a hook's user without an ID.
var errNilUser = errors.New("jwtauth: hook returned a nil user or an empty user ID")

// retrieveUser calls RetrieveUser and sorts its answer: not found (nil, nil or
// ErrUserNotFound) is ErrUserNotFound, any other error or a user without ID is an
// internalError.
func (a *Auth) retrieveUser(ctx context.Context, c *Claims) (*User, error) {
	u, err := a.cfg.RetrieveUser(ctx, c)
	switch {
	case errors.Is(err, ErrUserNotFound), err == nil && u == nil:
		return nil, fmt.Errorf("%w: %q", ErrUserNotFound, c.UserID)
	case err != nil:
		return nil, &internalError{"RetrieveUser", err}
	case u.ID == "":
		return nil, &internalError{"RetrieveUser", errNilUser}
	}
	return u, nil
}
