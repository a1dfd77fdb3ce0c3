// Package jwtauth issues and checks HS256 JSON Web Tokens for net/http services:
// access tokens, server-side refresh tokens, login/verify/me/refresh/logout endpoints,
// and middleware that protects routes and checks scopes.
//
// HS256 for every token it signs; no "none", no encryption, no algorithm negotiation.
// The only asymmetric crypto is verifying a client's DPoP proof (RFC 9449, ES256), which
// binds a session to a key the client holds. The package uses the standard library only
// and is meant to be vendored whole.
//
// # Quick start
//
//	auth, err := jwtauth.New(jwtauth.Config{
//		Secret: secret, // []byte, at least 32 random bytes (RFC 7518 §3.2)
//		Endpoints: &jwtauth.Endpoints{
//			Authenticate: func(r *http.Request) (*jwtauth.User, error) {
//				// Read the credentials from r (the body is already size-capped) and check them.
//				// Wrong password: return nil, &jwtauth.Error{Status: 401, Reason: "Wrong password."}
//				// Malformed body: return nil, &jwtauth.Error{Status: 400, Reason: "Send JSON."}
//				return &jwtauth.User{ID: "alice", Scopes: []string{"orders:read"}}, nil
//			},
//		},
//		RetrieveUser: func(ctx context.Context, c *jwtauth.Claims) (*jwtauth.User, error) {
//			return lookUp(ctx, c.UserID) // fresh scopes and claims at every refresh
//		},
//		Refresh: &jwtauth.Refresh{Store: new(jwtauth.MemStore)},
//		OnEvent: jwtauth.LogEvents(slog.Default()), // alert on "jwtauth: reuse_detected"
//	})
//	if err != nil {
//		log.Fatal(err) // the error names every offending Config field
//	}
//	mux := http.NewServeMux()
//	auth.Mount(mux) // POST /auth, /auth/refresh, /auth/logout, /auth/sessions, ...
//	mux.Handle("GET /orders", auth.Protected(http.HandlerFunc(listOrders)))
//	mux.Handle("POST /orders", auth.Scoped([]string{"orders:write"}, http.HandlerFunc(createOrder)))
//
// where listOrders and createOrder are plain func(http.ResponseWriter, *http.Request)
// handlers that read the token's claims with ClaimsFromContext(r.Context()).
//
// The zero value of every Config field is the safe default, and every field that
// weakens security says Insecure in its name.
//
// # Endpoints
//
// Under Endpoints.URLPrefix (default /auth): POST /auth logs in through
// Endpoints.Authenticate, GET /auth/verify says whether the presented access token is
// valid, GET /auth/me renders the current user, POST /auth/refresh trades a refresh token
// for new tokens, POST /auth/logout ends the access token's session (or the user's
// other sessions, or all of them), POST /auth/reauthenticate renews a session's
// auth_time for RequireRecentAuth, and GET /auth/sessions lists the user's sessions,
// DELETE /auth/sessions/{id} ends one. Errors are JSON bodies of the form
// {"reasons": [...], "exception": "..."}.
//
// # Refresh tokens
//
// Every login opens a session: a family of refresh tokens of its own, so that devices do
// not log each other out. Every refresh rotates the session's token (RFC 9700 §4.14.2),
// and a replayed, rotated-out token ends that session. A user's sessions live in one
// record under the user id in a Store, which never holds a token a client could present,
// and every change to it is one compare-and-swap, so that no race can undo a logout or a
// revocation. MemStore is a ready-made in-memory Store.
//
// A login that carries a DPoP proof binds its session to the client's key: its access
// tokens (cnf.jkt) and its refreshes then need a proof by that key with every request,
// and a copy of the tokens without the key is useless (Config.RequireDPoP).
//
// # Security notes
//
// Verification order is fixed: size cap, shape, alphabet, header ("alg" must be exactly
// HS256), MAC (compared with hmac.Equal), and only then the claims. An expired token with a
// bad signature is ErrTokenInvalid, never ErrTokenExpired. Every input is bounded and no
// request input makes the package panic.
package jwtauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// User is what Authenticate and RetrieveUser return: who the user is and what their
// tokens say.
type User struct {
	// ID becomes the user-id claim (Config.UserIDClaim) and keys the refresh-token store.
	// It must not be empty.
	ID string
	// Scopes becomes the scopes claim (Config.ScopesClaim); nil omits the claim.
	Scopes []string
	// Claims are extra claims added to every access token issued for the user (Sanic
	// JWT's extend_payload). They may not override a registered claim.
	Claims map[string]any
	// Profile is what GET /auth/me renders. Nil renders {"<UserIDClaim>": ID}.
	Profile any
}

// NoLeeway, as Config.Leeway, makes the exp and nbf checks exact: a zero Leeway means
// the default of 180 seconds.
const NoLeeway time.Duration = -1

// Config configures an Auth. It is one plain struct that New validates as a whole. As
// in crypto/tls, the zero value of every field is the safe choice: a zero number or
// empty string means the documented default, a false bool leaves security as it is,
// and every switch that weakens it says Insecure in its name. A nil group (Cookies,
// Endpoints, Refresh) leaves that feature off.
type Config struct {
	// Secret is the HS256 key for signing and verifying; required, at least 32 bytes
	// (RFC 7518 §3.2). New copies it.
	Secret []byte
	// PreviousSecrets still verify tokens (key rotation); new tokens always use Secret.
	// Each must be at least 32 bytes.
	PreviousSecrets [][]byte
	// MaxTokenSize caps a token's length, checked before any decoding. Default 8 KiB.
	// Sign refuses to write a longer token.
	MaxTokenSize int

	// ExpirationDelta is the access token lifetime. Default 30 minutes.
	ExpirationDelta time.Duration
	// Leeway is the clock skew allowed on exp and nbf. Default 180 s; NoLeeway for none.
	Leeway time.Duration
	// InsecureNoExpiry turns off exp: it is neither required nor checked, so every
	// token, including those the endpoints issue with an exp, is accepted forever
	// (Sanic JWT's verify_exp off). For tests only.
	InsecureNoExpiry bool
	// Issuer, when set, is written as iss and required on verify.
	Issuer string
	// Audience, when set, is written as aud and required (as the string or one element
	// of the array) on verify.
	Audience string
	// SetIssuedAt adds iat to issued tokens.
	SetIssuedAt bool
	// NotBeforeDelta, when set, adds nbf = now + NotBeforeDelta to issued tokens.
	NotBeforeDelta time.Duration
	// UserIDClaim names the user-id claim. Default "user_id".
	UserIDClaim string
	// ScopesClaim names the scopes claim. Default "scopes".
	ScopesClaim string
	// ExtraVerifications run after every built-in check; any error rejects the token
	// with ErrVerificationFailed (401).
	ExtraVerifications []func(*Claims) error
	// Now is the clock. Default time.Now.
	Now func() time.Time

	// AccessTokenName is the access token's JSON key, cookie name and query argument
	// name. Default "access_token".
	AccessTokenName string
	// RefreshTokenName is the refresh token's JSON key, cookie name and query argument
	// name. Default "refresh_token".
	RefreshTokenName string
	// AuthorizationHeader names the header carrying the access token. Default "Authorization".
	AuthorizationHeader string
	// AuthorizationHeaderPrefix is the scheme before the token. Default "Bearer".
	AuthorizationHeaderPrefix string
	// AuthorizationHeaderNoPrefix makes the whole header value the token (no scheme).
	AuthorizationHeaderNoPrefix bool
	// Cookies, when set, makes the endpoints set token cookies and the middleware read
	// the access token from its cookie instead of the header.
	Cookies *Cookies
	// InsecureQueryString reads the access token from the query argument
	// AccessTokenName, and POST /auth/refresh the refresh token from RefreshTokenName,
	// instead of the header and the body. URLs end up in access logs, proxies and
	// browser history (RFC 6750 §2.3 advises against it).
	InsecureQueryString bool
	// HeaderFallback: with Cookies or InsecureQueryString, a request that does not
	// carry the token there is looked at again in the next place, in the order cookie,
	// query string, then the header (the JSON body for a refresh token). Off, the first
	// place is the only one (Sanic JWT's cookie_strict and query_string_strict).
	//
	// With Cookies it makes one Auth serve browsers and apps on the same routes: a
	// login or refresh from a browser (a request with an Origin or Sec-Fetch-Site
	// header, or a refresh by the refresh cookie) is answered with cookies, and one
	// from any other client with the tokens in the JSON body, as without Cookies; the
	// app then sends the Authorization header, which no cross-origin check concerns.
	// Every current browser sends Origin with a POST; one too old to (Firefox before
	// 70, Internet Explorer) would be answered as an app, its tokens readable by the
	// page's scripts.
	HeaderFallback bool

	// Endpoints, when set, turns on the endpoints that Handler serves. Nil means
	// verify only: Handler answers 404 to everything.
	Endpoints *Endpoints
	// RetrieveUser returns the current user for a verified token: for GET /auth/me,
	// InjectUser and every refresh (so that a new access token carries today's scopes).
	// Returning nil, nil or ErrUserNotFound is a 401. Required with Refresh; nil
	// otherwise means the user the token describes (its user id and scopes).
	RetrieveUser func(ctx context.Context, claims *Claims) (*User, error)
	// Refresh, when set, turns on refresh tokens and sessions: every login opens a
	// session with a refresh token of its own, POST /auth/refresh trades it for new
	// tokens, POST /auth/logout ends sessions, POST /auth/reauthenticate renews a
	// session's auth_time and /auth/sessions lists them. Nil: those endpoints answer 404.
	Refresh *Refresh

	// ScopeValidator replaces the Sanic JWT scope rules of Scoped and ScopedWith: it
	// reports whether a token's scopes satisfy a route's rule. Default ScopesMatch.
	ScopeValidator func(rule ScopeRule, tokenScopes []string) bool
	// LoginRedirectURL, when set, makes Protected redirect (302) requests that accept
	// text/html instead of answering 401. It must be a path (not "//..." nor "/\...")
	// or an http(s) URL, without control characters.
	LoginRedirectURL string
	// InsecureDebug answers a missing, malformed or forged token with 400 and the precise
	// cause instead of 401 and a fixed reason. It tells an attacker which check failed:
	// never in production.
	InsecureDebug bool
	// ErrorHandler writes error responses; err is always an *Error, and the
	// WWW-Authenticate header is already set. Default: the JSON body
	// {"reasons": [...], "exception": "..."} with the status.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
	// ErrorLog receives unexpected hook and store errors. Default slog.Default().
	ErrorLog *slog.Logger
	// RequireDPoP refuses a login at POST /auth without a DPoP proof (RFC 9449) with 401
	// invalid_dpop_proof, so that every session the endpoint opens is bound to a key its
	// client holds; IssueTokens, which sees no request, and sessions opened before still
	// issue bearer tokens. Off, a login with a proof is bound and one without is not. A
	// bound session refreshes only with a proof by its key, and its access tokens carry
	// cnf.jkt and are accepted only as "Authorization: DPoP <token>" with a proof (see
	// the sessions doc). DPoP needs the Authorization header read with a scheme and a
	// client not answered with cookies: New refuses RequireDPoP with Cookies,
	// AuthorizationHeaderNoPrefix, or InsecureQueryString without HeaderFallback, and
	// there a login with a proof is a 400.
	RequireDPoP bool
	// PublicOrigin is the origin clients address this service at, scheme://host[:port]
	// in lower case without a default port, for the htu of DPoP proofs: set it behind a
	// proxy or load balancer. Empty: the request's Host header, and https when the
	// request came over TLS.
	PublicOrigin string
	// SessionLabel names the device of the session a login opens, for Session.Label (GET
	// /auth/sessions, Sessions) and the login event; at most 64 printable ASCII bytes of
	// its answer are kept. Nil: a summary of the User-Agent header ("Chrome on Linux",
	// "Safari on iOS", else its first product token), never more of it. The package keeps
	// no IP address; a hook that wants one (or its prefix) adds it to its label.
	SessionLabel func(r *http.Request) string
	// OnEvent receives every security event (see Event): logins, refreshes, reuse of
	// a rotated-out token, ended sessions, refused tokens and cross-origin requests. It
	// is called on the request's goroutine after the decision is made: keep it fast.
	// LogEvents(logger) writes them to a *slog.Logger. Nil: events are dropped.
	OnEvent func(ctx context.Context, e Event)
}

// Cookies configures cookie mode: the endpoints set the tokens as cookies and the
// middleware reads the access token from its cookie. The zero value is the safe
// choice: Secure, HttpOnly, SameSite=Lax, host-only, tokens not in response bodies.
type Cookies struct {
	// Domain is the cookies' Domain attribute. Empty (the default) makes host-only
	// cookies, which no sibling subdomain receives.
	Domain string
	// Path is the cookies' Path attribute. Default "/".
	Path string
	// SameSite defaults to Lax, and http.SameSiteDefaultMode means Lax too. None needs
	// Secure, so it cannot be combined with InsecureAllowHTTP.
	SameSite http.SameSite
	// MaxAge is the cookies' Max-Age in seconds; 0 leaves it unset (session cookies).
	MaxAge int
	// Split stores the access token as two cookies: header.payload, readable by
	// scripts, under AccessTokenName, and the signature, always HttpOnly, under
	// AccessTokenName + "_signature". A script can read the claims but not replay them.
	Split bool
	// TrustedOrigins are origins ("https://admin.example.com": scheme, host and port,
	// nothing else) whose pages may send unsafe requests (POST, PUT, PATCH, DELETE)
	// authenticated by the cookies. Every other cross-origin one is refused with 403
	// CrossOriginRequest, a sibling subdomain's included: cookies ride along on
	// cross-site requests, so a page elsewhere could otherwise act as the user (CSRF).
	// Requests authenticated by the Authorization header are not checked: a browser
	// never attaches that header by itself.
	TrustedOrigins []string
	// InsecureAllowHTTP leaves out the Secure attribute, so that the cookies also
	// travel over plain HTTP. Browsers already accept Secure cookies from
	// http://localhost: this is only for plain HTTP to other hosts.
	InsecureAllowHTTP bool
	// InsecureScriptAccess leaves out HttpOnly, so that scripts on the page, an
	// injected one included, can read the tokens.
	InsecureScriptAccess bool
	// InsecureBodyTokens also puts the tokens in the JSON bodies of POST /auth and POST
	// /auth/refresh, where a script on the page can read them. Not with Split.
	InsecureBodyTokens bool
}

// Endpoints configures the endpoints that Handler serves.
type Endpoints struct {
	// Authenticate checks the credentials of a login request; required. An *Error with
	// a 4xx Status answers with that status and its Reason (for instance 400 for a
	// malformed body, 401 for a wrong password); an error wrapping
	// ErrAuthenticationFailed is a 401 with a fixed reason; any other error is a 500
	// whose text is logged, never sent.
	Authenticate func(r *http.Request) (*User, error)
	// URLPrefix is where Handler serves the endpoints. Default "/auth".
	URLPrefix string
	// MaxBodyBytes caps request bodies read by the endpoints, Authenticate's reads
	// included; larger is a 413. Default 1 MiB.
	MaxBodyBytes int64
}

// Auth signs and verifies tokens and serves the endpoints and middleware. Create it
// with New. It is safe for concurrent use.
type Auth struct {
	tok     tokens     // the token core
	sess    *sessions  // the session layer; nil without Config.Refresh
	cookies *Cookies   // a copy, defaults applied; nil without Config.Cookies
	cookie  string     // the access cookie's name (see Cookies)
	replays replays    // the DPoP proofs this instance accepted
	ep      *Endpoints // a copy, defaults applied; nil without Config.Endpoints
	cfg     Config     // the rest, defaults applied; its group pointers are nil
}

// Defaults that New applies to zero fields (the Refresh group's are in refresh.go).
const (
	defaultMaxTokenSize    = 8 << 10
	defaultMaxBodyBytes    = 1 << 20
	defaultExpirationDelta = 30 * time.Minute
	defaultLeeway          = 180 * time.Second
	minSecretSize          = 32 // RFC 7518 §3.2: at least the hash output, 256 bits
	maxDuration            = 100 * 365 * 24 * time.Hour
)

// New validates cfg, applies the defaults, and returns a ready Auth. Its error wraps
// ErrInvalidConfig and names every offending field, one per line.
func New(cfg Config) (*Auth, error) {
	a := &Auth{cfg: cfg}
	c := &a.cfg
	setDefault(&c.MaxTokenSize, defaultMaxTokenSize)
	setDefault(&c.ExpirationDelta, defaultExpirationDelta)
	setDefault(&c.Leeway, defaultLeeway)
	setDefault(&c.UserIDClaim, "user_id")
	setDefault(&c.ScopesClaim, "scopes")
	setDefault(&c.AccessTokenName, "access_token")
	setDefault(&c.RefreshTokenName, "refresh_token")
	setDefault(&c.AuthorizationHeader, "Authorization")
	// The form net/http stores header names in, so that reading it is one map lookup.
	c.AuthorizationHeader = http.CanonicalHeaderKey(c.AuthorizationHeader)
	setDefault(&c.AuthorizationHeaderPrefix, "Bearer")
	setDefault(&c.ErrorLog, slog.Default())
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.OnEvent == nil {
		c.OnEvent = func(context.Context, Event) {}
	}
	if c.RetrieveUser == nil && c.Refresh == nil {
		c.RetrieveUser = userFromClaims
	}
	var ep Endpoints // the groups' copies, zero for a group that is off
	var k Cookies
	if c.Endpoints != nil {
		ep = *c.Endpoints
		setDefault(&ep.URLPrefix, "/auth")
		setDefault(&ep.MaxBodyBytes, defaultMaxBodyBytes)
		a.ep = &ep
	}
	if c.Cookies != nil {
		k = *c.Cookies
		k.TrustedOrigins = slices.Clone(k.TrustedOrigins) // the caller's may change
		setDefault(&k.Path, "/")
		if k.SameSite == 0 || k.SameSite == http.SameSiteDefaultMode {
			k.SameSite = http.SameSiteLaxMode
		}
		a.cookies = &k
		// RFC 6265bis §4.1.3.2: a browser keeps a "__Host-" cookie only from a secure
		// origin, host-only and with Path=/, so that no sibling subdomain can plant one
		// (cookie tossing). The settings that allow it get it by default.
		a.cookie = c.AccessTokenName
		if k.Domain == "" && k.Path == "/" && !k.InsecureAllowHTTP && cookiePrefix(a.cookie) == "" {
			a.cookie = "__Host-" + a.cookie
		}
	}
	a.tok = tokens{names: newClaimTable(c.UserIDClaim, c.ScopesClaim), maxSize: c.MaxTokenSize,
		leeway: max(c.Leeway, 0), verifyExp: !c.InsecureNoExpiry, issuer: c.Issuer, audience: c.Audience,
		extra: slices.Clone(c.ExtraVerifications), now: c.Now}
	for _, s := range append([][]byte{c.Secret}, c.PreviousSecrets...) {
		a.tok.keys = append(a.tok.keys, newMACKey(s))
	}
	if c.Refresh != nil {
		a.sess = newSessions(*c.Refresh, a.tok.keys, c.Now, c.OnEvent)
	}
	c.Endpoints, c.Cookies, c.Refresh = nil, nil, nil // read the copies above
	if err := a.check(ep, k); err != nil {
		return nil, err
	}
	return a, nil
}

// userFromClaims is RetrieveUser's default without refresh tokens: the user is who the
// verified token says. A token without a user id describes nobody: a 401.
func userFromClaims(_ context.Context, c *Claims) (*User, error) {
	if c.UserID == "" {
		return nil, ErrUserNotFound
	}
	return &User{ID: c.UserID, Scopes: c.Scopes}, nil
}

// check validates the Config with its defaults applied and reports every problem, one
// error each, naming its field: a table of rules, then the rules that apply to each
// element of a list.
func (a *Auth) check(ep Endpoints, k Cookies) error {
	c, r, second := &a.cfg, Refresh{}, time.Duration(0)
	if a.sess != nil {
		r, second = a.sess.cfg, time.Second // a session lasts at least a second
	}
	var errs []error
	rule := func(bad bool, field, is string) {
		if bad {
			errs = append(errs, fmt.Errorf("%w: %s %s", ErrInvalidConfig, field, is))
		}
	}
	// RFC 7518 §3.2: "A key of the same size as the hash output (for instance, 256
	// bits for "HS256") or larger MUST be used with this algorithm."
	rule(len(c.Secret) < minSecretSize, "Secret", fmt.Sprintf("must be at least %d bytes (RFC 7518 §3.2), got %d", minSecretSize, len(c.Secret)))
	rule(c.Leeway < 0 && c.Leeway != NoLeeway, "Leeway", "must not be negative (NoLeeway turns it off)")
	rule(r.ReuseInterval < 0 && r.ReuseInterval != NoReuseInterval, "Refresh.ReuseInterval", "must not be negative (NoReuseInterval turns it off)")
	pre := ep.URLPrefix
	rule(a.ep != nil && (pre[0] != '/' || len(pre) > 1 && pre[len(pre)-1] == '/' || endpoints[pre] != nil && pre != "/"),
		"Endpoints.URLPrefix", fmt.Sprintf(`must start with "/", not end with one, and not be an endpoint's name, got %q`, pre))
	rule(a.ep != nil && ep.Authenticate == nil, "Endpoints.Authenticate", "is required")
	rule(a.sess != nil && r.Store == nil, "Refresh.Store", "is required")
	rule(a.sess != nil && c.RetrieveUser == nil, "RetrieveUser", "is required with Refresh")
	// A minute of grace for a replica whose clock is behind the operator's.
	rule(r.RevokeBefore.After(c.Now().Add(time.Minute)), "Refresh.RevokeBefore", "is in the future: every login until then would end at once")
	rule(c.LoginRedirectURL != "" && !safeRedirect(c.LoginRedirectURL), "LoginRedirectURL", "must be a path or an http(s) URL, without control characters")
	rule(isRegisteredName(c.UserIDClaim) || isRegisteredName(c.ScopesClaim), "UserIDClaim, ScopesClaim",
		"must not be registered claims ("+strings.Join(registeredClaims[claimIss:], ", ")+")")
	rule(c.UserIDClaim == c.ScopesClaim, "ScopesClaim", "must differ from UserIDClaim")
	rule(c.AccessTokenName == c.RefreshTokenName || k.Split && c.AccessTokenName+"_signature" == c.RefreshTokenName,
		"RefreshTokenName", "must differ from AccessTokenName and from its split-signature cookie")
	rule(k.InsecureBodyTokens && k.Split, "Cookies.InsecureBodyTokens", "cannot be combined with Split: the body would hold the whole token")
	// Browsers drop SameSite=None cookies without Secure: cookie mode would silently fail.
	rule(k.SameSite == http.SameSiteNoneMode && k.InsecureAllowHTTP, "Cookies.SameSite", "None requires Secure, so not with InsecureAllowHTTP")
	for i, s := range c.PreviousSecrets {
		rule(len(s) < minSecretSize, fmt.Sprintf("PreviousSecrets[%d]", i), fmt.Sprintf("must be at least %d bytes (RFC 7518 §3.2)", minSecretSize))
	}
	for _, n := range []struct {
		field  string
		v, max int64
	}{
		{"MaxTokenSize", int64(c.MaxTokenSize), math.MaxInt64}, {"Endpoints.MaxBodyBytes", ep.MaxBodyBytes, math.MaxInt64},
		{"Cookies.MaxAge", int64(k.MaxAge), math.MaxInt64}, {"Refresh.MaxSessions", int64(r.MaxSessions), 255},
	} {
		rule(n.v < 0 || n.v > n.max, n.field, fmt.Sprintf("must be from 0 to %d, got %d", n.max, n.v))
	}
	// Durations stay within a century, so that no time arithmetic overflows.
	for _, d := range []struct {
		field  string
		v, min time.Duration
	}{
		{"ExpirationDelta", c.ExpirationDelta, 0}, {"Leeway", max(c.Leeway, 0), 0}, {"NotBeforeDelta", c.NotBeforeDelta, 0},
		{"Refresh.IdleTimeout", r.IdleTimeout, second}, {"Refresh.MaxLifetime", r.MaxLifetime, second},
		{"Refresh.ReuseInterval", max(r.ReuseInterval, 0), 0}, {"Refresh.Window", r.Window, 0},
	} {
		rule(d.v < d.min || d.v > maxDuration, d.field, fmt.Sprintf("must be from %v to 100 years, got %v", d.min, d.v))
	}
	// Names travel as cookie names, query arguments, header names or JSON keys: one rule
	// for all, the token characters of RFC 9110 §5.6.2, so that no name holds a space, a
	// separator or a byte a client cannot send.
	for _, n := range []struct{ field, v string }{
		{"UserIDClaim", c.UserIDClaim}, {"ScopesClaim", c.ScopesClaim},
		{"AccessTokenName", c.AccessTokenName}, {"RefreshTokenName", c.RefreshTokenName},
		{"AuthorizationHeader", c.AuthorizationHeader}, {"AuthorizationHeaderPrefix", c.AuthorizationHeaderPrefix},
	} {
		rule(!isToken(n.v), n.field, fmt.Sprintf("must be a name of letters, digits and !#$%%&'*+-.^_`|~, got %q", n.v))
	}
	const originForm = "must hold origins as browsers send them, scheme://host[:port] in lower case without a default port, got %q"
	rule(c.PublicOrigin != "" && !isOrigin(c.PublicOrigin), "PublicOrigin", fmt.Sprintf(originForm, c.PublicOrigin))
	for _, o := range k.TrustedOrigins {
		rule(!isOrigin(o), "Cookies.TrustedOrigins", fmt.Sprintf(originForm, o))
	}
	rule(c.RequireDPoP && (a.cookies != nil || c.AuthorizationHeaderNoPrefix || c.InsecureQueryString && !c.HeaderFallback), "RequireDPoP",
		"needs the Authorization header read with a scheme: not with Cookies (browsers answered with cookies cannot be bound), "+
			"AuthorizationHeaderNoPrefix, or InsecureQueryString without HeaderFallback")
	// RFC 6265bis §4.1.3: a "__Secure-" cookie must be Secure, and a "__Host-" cookie
	// must also be host-only with Path=/; browsers match the prefixes without regard to
	// case. The refresh cookie's Path is the refresh endpoint's, so it cannot be a
	// "__Host-" cookie.
	for _, name := range []string{a.cookie, c.RefreshTokenName} {
		host := a.cookies != nil && cookiePrefix(name) == "__Host-"
		rule(cookiePrefix(name) != "" && k.InsecureAllowHTTP, "Cookies.InsecureAllowHTTP", fmt.Sprintf("cannot be set with the cookie name %q, which requires Secure", name))
		rule(host && name == c.RefreshTokenName, "RefreshTokenName", fmt.Sprintf("cannot start with __Host- (which needs Path=/, and the refresh cookie is scoped to the refresh endpoint): use __Secure-, got %q", name))
		rule(host && (k.Domain != "" || k.Path != "/"), "Cookies.Domain, Cookies.Path", fmt.Sprintf("must be empty and \"/\" with the cookie name %q (RFC 6265bis §4.1.3.2)", name))
	}
	return errors.Join(errs...)
}

// isOrigin reports whether o is an origin as browsers send it (RFC 6454 §6.2):
// scheme://host[:port] in lower case, without a default port, a user, a path, a query
// or a fragment, and no pattern: an entry that no browser sends trusts nothing, or not
// what it seems to.
func isOrigin(o string) bool {
	u, err := url.Parse(o)
	return err == nil && u.Host != "" && o == u.Scheme+"://"+u.Host && o == strings.ToLower(o) && !strings.ContainsAny(o, "*%") &&
		u.Port() != map[string]string{"http": "80", "https": "443"}[u.Scheme]
}

// cookiePrefix returns the RFC 6265bis prefix that name starts with, "__Host-" or
// "__Secure-", matched without regard to case as browsers do, or "".
func cookiePrefix(name string) string {
	for _, p := range []string{"__Host-", "__Secure-"} {
		if len(name) >= len(p) && strings.EqualFold(name[:len(p)], p) {
			return p
		}
	}
	return ""
}

// isToken reports whether s is a non-empty RFC 9110 §5.6.2 token.
func isToken(s string) bool {
	const separators = "\"(),/:;<=>?@[\\]{}"
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune(separators, r) })
}

// safeRedirect reports whether u is a path on this site or an http(s) URL. "//host" and
// "/\host" are protocol-relative to browsers (an absolute redirect dressed as a path),
// and browsers drop tabs and newlines from URLs, so "/<TAB>/host" would become "//host":
// control characters are refused too.
func safeRedirect(u string) bool {
	if strings.ContainsFunc(u, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return false
	}
	if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
		return len(u) > len("https://")
	}
	return strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//") && !strings.HasPrefix(u, "/\\")
}

// Sign encodes c as an HS256 JWT with the header {"alg":"HS256","typ":"JWT"} (or, for
// claims with a KeyThumbprint, "typ":"dpop-bound+jwt"), MACed with Config.Secret. It writes exactly the fields c holds: use IssueTokens, or the
// endpoints, to get exp, iat, nbf, iss and aud filled in from the Config. Dates are
// written in whole seconds. It refuses, with an error wrapping ErrInvalidClaims, what
// Verify would reject: claims without exp (unless InsecureNoExpiry), a custom claim in
// Extra that overrides a registered one or whose JSON is not strict (duplicate names,
// unpaired surrogates, nesting deeper than 32), and a token longer than MaxTokenSize.
// It also refuses strings that are not valid UTF-8 anywhere in c, nested values and
// map keys in Extra included: encoding/json would silently write U+FFFD in their
// place, and the token would say something else than c. As encoding/json writes that
// replacement as the escape \ufffd, a custom claim whose JSON holds the escape itself
// (from a json.Marshaler or json.RawMessage) is refused as well; write U+FFFD
// unescaped. It is safe for concurrent use.
func (a *Auth) Sign(c *Claims) (string, error) { return a.tok.sign(c) }

// Verify checks token and returns its claims, or nil and an error wrapping one of
// ErrTokenInvalid, ErrTokenExpired, ErrTokenNotYetValid, ErrInvalidIssuer,
// ErrInvalidAudience or ErrVerificationFailed. The steps run in this order, and a
// token that fails several is refused with the error of the first:
//
//  1. length at most MaxTokenSize, before any decoding;
//  2. exactly two dots, only [A-Za-z0-9_-] in the segments, a 43-character canonical
//     signature;
//  3. the header: alg exactly HS256, no crit, typ absent, JWT or dpop-bound+jwt
//     (RFC 8725 §3.1, §3.11);
//  4. the MAC, compared with hmac.Equal, under Secret then each of PreviousSecrets;
//  5. the claims, decoded only once the MAC matches: a strict JSON object with typed
//     registered claims;
//  6. exp and nbf against Now with Leeway, then iss and aud, then ExtraVerifications.
//
// It reads no store and sees no request: with Refresh.VerifySessions, Check also refuses
// a token whose session has ended, and Check checks the DPoP proof of a token bound to a
// key (Claims.KeyThumbprint), which Verify cannot. It is safe for concurrent use.
func (a *Auth) Verify(token string) (*Claims, error) { return a.tok.verify(token, false, newClaims) }

// Sessions returns the live sessions of userID, oldest first, for admin tools. It is
// safe for concurrent use.
func (a *Auth) Sessions(ctx context.Context, userID string) ([]Session, error) {
	if a.sess == nil {
		return nil, errNoRefresh
	}
	return a.sess.list(ctx, userID, nil)
}

// RevokeSession ends the session sessionID of userID: its refresh tokens stop working at
// once, and its access tokens too with Refresh.VerifySessions. It reports whether there
// was such a live session. It is safe for concurrent use.
func (a *Auth) RevokeSession(ctx context.Context, userID, sessionID string) (bool, error) {
	if a.sess == nil {
		return false, errNoRefresh
	}
	id, ok := parseSessionID(sessionID)
	if !ok {
		return false, nil
	}
	n, err := a.sess.end(ctx, userID, nil, nil, "revoked", func(s *session) bool { return s.id == id })
	return n > 0, err
}

// EndOtherSessions ends every session of userID but keepSessionID, in one
// compare-and-swap: after a password change, the caller's own session (the sid of its
// access token, Claims.SessionID) stays and every other device logs in again, its
// access tokens refused at once with Refresh.VerifySessions. When keepSessionID names no
// live session of the user (one a password change has just ended, say), it ends nothing
// and returns an error wrapping ErrTokenInvalid: an ended session changes nothing. It is
// safe for concurrent use.
func (a *Auth) EndOtherSessions(ctx context.Context, userID, keepSessionID string) error {
	if a.sess == nil {
		return errNoRefresh
	}
	keep, _ := parseSessionID(keepSessionID) // anything else is the zero id, which no session has
	_, err := a.sess.end(ctx, userID, &keep, nil, "revoked", func(s *session) bool { return s.id != keep })
	return err
}

// RevokeSessions ends every session of userID, on every device, and deletes the user's
// record whatever it holds: it is also the way out of a record that no key opens, of an
// authentic one that does not decode (a 500 at every login, refresh and logout of the
// user), and of one of a newer version. It is safe for concurrent use.
func (a *Auth) RevokeSessions(ctx context.Context, userID string) error {
	if a.sess == nil {
		return errNoRefresh
	}
	return a.sess.endAll(ctx, userID)
}

var errNoRefresh = errors.New("jwtauth: sessions need Config.Refresh")
