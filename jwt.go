// Package jwtauth issues and checks HS256 JSON Web Tokens for net/http services:
// access tokens, server-side refresh tokens, login/verify/me/refresh/logout endpoints,
// and middleware that protects routes and checks scopes.
//
// HS256 only: no "none", no asymmetric keys, no encryption, no algorithm negotiation.
// The package uses the standard library only and is meant to be vendored whole.
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
// for a new access token and POST /auth/logout revokes the user's refresh token. Errors
// are JSON bodies of the form {"reasons": [...], "exception": "..."}.
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

// Sentinel errors. Every error the package returns wraps one of these; test with errors.Is.
var (
	// ErrTokenMissing: the request carries no access token where one was looked for.
	ErrTokenMissing = errors.New("jwtauth: token missing")
	// ErrInvalidAuthorizationHeader: an Authorization header is present but is not
	// exactly "<prefix> <token>" (wrong prefix, extra spaces, two headers).
	ErrInvalidAuthorizationHeader = errors.New("jwtauth: invalid authorization header")
	// ErrTokenInvalid: the token is malformed, forged, altered, or uses anything but HS256.
	ErrTokenInvalid = errors.New("jwtauth: token invalid")
	// ErrTokenExpired: the token's MAC is good but its exp is past (beyond Leeway).
	ErrTokenExpired = errors.New("jwtauth: token expired")
	// ErrTokenNotYetValid: the token's MAC is good but its nbf is in the future (beyond Leeway).
	ErrTokenNotYetValid = errors.New("jwtauth: token not yet valid")
	// ErrInvalidIssuer: Config.Issuer is set and the token's iss differs.
	ErrInvalidIssuer = errors.New("jwtauth: invalid issuer")
	// ErrInvalidAudience: Config.Audience is set and the token's aud does not contain it.
	ErrInvalidAudience = errors.New("jwtauth: invalid audience")
	// ErrVerificationFailed: one of Config.ExtraVerifications returned an error.
	ErrVerificationFailed = errors.New("jwtauth: verifications were not met")
	// ErrInvalidScope: the token's scopes do not satisfy the route's required scopes.
	ErrInvalidScope = errors.New("jwtauth: invalid scope")
	// ErrAuthenticationFailed: wrong credentials or wrong refresh token. An Authenticate
	// hook that returns an error wrapping it makes POST /auth answer 401 with the fixed
	// reason "Authentication failed."; to send a message of its own, or a 400 for a
	// malformed body, the hook returns an *Error instead.
	ErrAuthenticationFailed = errors.New("jwtauth: authentication failed")
	// ErrUserNotFound: RetrieveUser returns it (or nil, nil) when the token's user no
	// longer exists; the endpoints answer 401.
	ErrUserNotFound = errors.New("jwtauth: user not found")
	// ErrInvalidClaims: Sign was given claims it cannot encode, such as a custom claim
	// that overrides a registered one.
	ErrInvalidClaims = errors.New("jwtauth: invalid claims")
	// ErrInvalidConfig: New rejected the Config; the message names every offending field.
	ErrInvalidConfig = errors.New("jwtauth: invalid config")
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
	// tokens, POST /auth/logout ends sessions and /auth/sessions lists them. Nil: those
	// endpoints answer 404.
	Refresh *Refresh

	// ScopeValidator replaces the Sanic JWT scope rules (see ScopesMatch). It reports
	// whether the user's scopes satisfy the required ones.
	ScopeValidator func(required, user []string, requireAll, requireAllActions bool) bool
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

// Refresh configures refresh tokens and the sessions they belong to. Every login opens
// a session, with a refresh token of its own that rotates at every refresh; a user has
// up to MaxSessions of them, one per device or browser, and logging in on one leaves the
// others alone.
type Refresh struct {
	// Store keeps every user's sessions in one record under the user id; required.
	// MemStore keeps them in memory.
	Store Store
	// MaxSessions is how many sessions a user may have; a login beyond ends the least
	// recently used one. Default 10, at most 255.
	MaxSessions int
	// IdleTimeout ends a session that has not been refreshed for this long. Default
	// 30 days.
	IdleTimeout time.Duration
	// MaxLifetime ends a session this long after its login, however often it is
	// refreshed: rotation never extends it. Default 90 days.
	MaxLifetime time.Duration
	// ReuseInterval is how long after a rotation the token just rotated out still
	// works, answered with the same new refresh token the first request got, so that
	// two tabs refreshing at the same moment both stay logged in. Default 0: presenting
	// a rotated-out token ends its session at once (RFC 9700 §4.14.2 reuse detection).
	// A few seconds is enough for racing tabs; an older token ends its session even
	// inside the interval.
	ReuseInterval time.Duration
	// Window, when non-zero, is how long after its exp an access token may still be
	// used at POST /auth/refresh.
	Window time.Duration
	// VerifySessions makes Protected, Scoped and InjectUser also load the user's
	// sessions at every request, and refuse (401) an access token whose session has
	// ended, so that a logout or a revocation reaches access tokens at once. Off, access
	// tokens stay valid until their exp, and verifying them touches no store.
	VerifySessions bool
	// InsecureNoRotation keeps a session's refresh token the same at every refresh, so
	// that a stolen one works until its session ends. With rotation (the default, RFC
	// 9700 §4.14.2), presenting a rotated-out token ends its session.
	InsecureNoRotation bool
}

// Auth signs and verifies tokens and serves the endpoints and middleware. Create it
// with New. It is safe for concurrent use.
type Auth struct {
	cfg        Config // defaults applied; the groups below are copies
	endpoints  Endpoints
	cookies    Cookies
	refreshCfg Refresh
	keys       []*macKey // Secret first, then PreviousSecrets
	leeway     time.Duration
	verifyExp  bool
	names      claimTable // a.claims(), computed once: Verify reads it on every call
	jsonKeys   claimTable // the names as Sign writes them as JSON keys: "name":
}

// Defaults that New applies to zero fields.
const (
	defaultMaxTokenSize    = 8 << 10
	defaultMaxBodyBytes    = 1 << 20
	defaultExpirationDelta = 30 * time.Minute
	defaultLeeway          = 180 * time.Second
	defaultIdleTimeout     = 30 * 24 * time.Hour
	defaultMaxLifetime     = 90 * 24 * time.Hour
	defaultMaxSessions     = 10
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
	if c.ScopeValidator == nil {
		c.ScopeValidator = ScopesMatch
	}
	a.names = a.claims()
	for i, n := range a.names {
		a.jsonKeys[i] = `"` + n + `":` // n needs no escape: checkNames, registeredClaims
	}
	if c.Endpoints != nil {
		a.endpoints = *c.Endpoints
		setDefault(&a.endpoints.URLPrefix, "/auth")
		setDefault(&a.endpoints.MaxBodyBytes, defaultMaxBodyBytes)
	}
	if c.Cookies != nil {
		a.cookies = *c.Cookies
		a.cookies.TrustedOrigins = slices.Clone(a.cookies.TrustedOrigins) // the caller's may change
		setDefault(&a.cookies.Path, "/")
		if a.cookies.SameSite == 0 || a.cookies.SameSite == http.SameSiteDefaultMode {
			a.cookies.SameSite = http.SameSiteLaxMode
		}
	}
	if c.Refresh != nil {
		a.refreshCfg = *c.Refresh
		setDefault(&a.refreshCfg.IdleTimeout, defaultIdleTimeout)
		setDefault(&a.refreshCfg.MaxLifetime, defaultMaxLifetime)
		setDefault(&a.refreshCfg.MaxSessions, defaultMaxSessions)
	}
	if c.RetrieveUser == nil && c.Refresh == nil {
		c.RetrieveUser = userFromClaims
	}
	a.leeway = max(c.Leeway, 0)
	a.verifyExp = !c.InsecureNoExpiry

	if err := a.check(); err != nil {
		return nil, err
	}
	a.keys = append(a.keys, newMACKey(c.Secret))
	for _, s := range c.PreviousSecrets {
		a.keys = append(a.keys, newMACKey(s))
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

// problems collects what New finds wrong, every problem naming its field.
type problems []error

func (p *problems) bad(field, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%w: %s %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
}

// check validates the Config with its defaults applied, and reports every problem.
func (a *Auth) check() error {
	var p problems
	a.checkSizes(&p)
	a.checkNames(&p)
	a.checkGroups(&p)
	return errors.Join(p...)
}

// checkSizes checks the secrets, counts and durations.
func (a *Auth) checkSizes(p *problems) {
	c := &a.cfg
	// RFC 7518 §3.2: "A key of the same size as the hash output (for instance, 256 bits
	// for "HS256") or larger MUST be used with this algorithm."
	if len(c.Secret) < minSecretSize {
		p.bad("Secret", "must be at least %d bytes (RFC 7518 §3.2), got %d", minSecretSize, len(c.Secret))
	}
	for i, s := range c.PreviousSecrets {
		if len(s) < minSecretSize {
			p.bad(fmt.Sprintf("PreviousSecrets[%d]", i), "must be at least %d bytes (RFC 7518 §3.2)", minSecretSize)
		}
	}
	for _, n := range []struct {
		field  string
		v, max int64
	}{
		{"MaxTokenSize", int64(c.MaxTokenSize), math.MaxInt64}, {"Endpoints.MaxBodyBytes", a.endpoints.MaxBodyBytes, math.MaxInt64},
		{"Cookies.MaxAge", int64(a.cookies.MaxAge), math.MaxInt64}, {"Refresh.MaxSessions", int64(a.refreshCfg.MaxSessions), 255},
	} {
		if n.v < 0 || n.v > n.max {
			p.bad(n.field, "must be from 0 to %d, got %d", n.max, n.v)
		}
	}
	// Durations stay within a century, so that no time arithmetic overflows; a session
	// lasts at least a second (without Refresh, both are 0).
	second := time.Duration(0)
	if c.Refresh != nil {
		second = time.Second
	}
	for _, d := range []struct {
		field  string
		v, min time.Duration
	}{
		{"ExpirationDelta", c.ExpirationDelta, 0}, {"Leeway", max(c.Leeway, 0), 0}, {"NotBeforeDelta", c.NotBeforeDelta, 0},
		{"Refresh.IdleTimeout", a.refreshCfg.IdleTimeout, second}, {"Refresh.MaxLifetime", a.refreshCfg.MaxLifetime, second},
		{"Refresh.ReuseInterval", a.refreshCfg.ReuseInterval, 0}, {"Refresh.Window", a.refreshCfg.Window, 0},
	} {
		if d.v < d.min || d.v > maxDuration {
			p.bad(d.field, "must be from %v to 100 years, got %v", d.min, d.v)
		}
	}
	if c.Leeway < 0 && c.Leeway != NoLeeway {
		p.bad("Leeway", "must not be negative (NoLeeway turns it off)")
	}
}

// checkGroups checks what the Endpoints, Refresh and Cookies groups need.
func (a *Auth) checkGroups(p *problems) {
	c := &a.cfg
	if pre := a.endpoints.URLPrefix; c.Endpoints != nil {
		if _, isName := endpoints[pre]; pre[0] != '/' || (len(pre) > 1 && pre[len(pre)-1] == '/') || isName && pre != "/" {
			p.bad("Endpoints.URLPrefix", `must start with "/", not end with one, and not be an endpoint's name, got %q`, pre)
		}
		if a.endpoints.Authenticate == nil {
			p.bad("Endpoints.Authenticate", "is required")
		}
	}
	if c.Refresh != nil && a.refreshCfg.Store == nil {
		p.bad("Refresh.Store", "is required")
	}
	if c.Refresh != nil && c.RetrieveUser == nil {
		p.bad("RetrieveUser", "is required with Refresh")
	}
	if c.LoginRedirectURL != "" && !safeRedirect(c.LoginRedirectURL) {
		p.bad("LoginRedirectURL", "must be a path or an http(s) URL, without control characters")
	}
	if c.Cookies != nil {
		a.checkCookies(p)
	}
}

// checkNames checks the claim, token and header names.
func (a *Auth) checkNames(p *problems) {
	c := &a.cfg
	for _, n := range []struct{ field, v string }{
		{"UserIDClaim", c.UserIDClaim}, {"ScopesClaim", c.ScopesClaim},
		{"AccessTokenName", c.AccessTokenName}, {"RefreshTokenName", c.RefreshTokenName},
		{"AuthorizationHeader", c.AuthorizationHeader}, {"AuthorizationHeaderPrefix", c.AuthorizationHeaderPrefix},
	} {
		// Names travel as cookie names, query arguments, header names or JSON keys: one
		// rule for all, the token characters of RFC 9110 §5.6.2, so that no name holds a
		// space, a separator or a byte a client cannot send.
		if !isToken(n.v) {
			p.bad(n.field, "must be a name of letters, digits and !#$%%&'*+-.^_`|~, got %q", n.v)
		}
	}
	if isRegisteredName(c.UserIDClaim) || isRegisteredName(c.ScopesClaim) {
		p.bad("UserIDClaim, ScopesClaim", "must not be registered claims (exp, nbf, iat, iss, aud, sid)")
	}
	if c.UserIDClaim == c.ScopesClaim {
		p.bad("ScopesClaim", "must differ from UserIDClaim")
	}
	if c.AccessTokenName == c.RefreshTokenName || c.Cookies != nil && c.Cookies.Split && c.AccessTokenName+"_signature" == c.RefreshTokenName {
		p.bad("RefreshTokenName", "must differ from AccessTokenName and from its split-signature cookie")
	}
}

// checkCookies checks the Cookies group. RFC 6265bis §4.1.3: a "__Secure-" cookie must
// be Secure, and a "__Host-" cookie must also be host-only with Path=/.
func (a *Auth) checkCookies(p *problems) {
	k := &a.cookies
	if k.InsecureBodyTokens && k.Split {
		p.bad("Cookies.InsecureBodyTokens", "cannot be combined with Split: the body would hold the whole token")
	}
	if k.SameSite == http.SameSiteNoneMode && k.InsecureAllowHTTP {
		// Browsers drop SameSite=None cookies without Secure: cookie mode would silently fail.
		p.bad("Cookies.SameSite", "None requires Secure, so not with InsecureAllowHTTP")
	}
	for _, o := range k.TrustedOrigins {
		// An origin is exactly scheme://host[:port]: no user, path, query or fragment.
		if u, err := url.Parse(o); err != nil || u.Host == "" || o != u.Scheme+"://"+u.Host {
			p.bad("Cookies.TrustedOrigins", "must hold origins of the form scheme://host[:port], got %q", o)
		}
	}
	a.checkCookiePrefixes(p)
}

// checkCookiePrefixes applies RFC 6265bis §4.1.3 to the cookie names: a "__Secure-"
// cookie must be Secure, and a "__Host-" cookie also host-only with Path=/.
func (a *Auth) checkCookiePrefixes(p *problems) {
	k := &a.cookies
	for _, name := range []string{a.cfg.AccessTokenName, a.cfg.RefreshTokenName} {
		host, secure := strings.HasPrefix(name, "__Host-"), strings.HasPrefix(name, "__Secure-")
		if (host || secure) && k.InsecureAllowHTTP {
			p.bad("Cookies.InsecureAllowHTTP", "cannot be set with the cookie name %q, which requires Secure", name)
		}
		if host && name == a.cfg.RefreshTokenName {
			// The refresh cookie's Path is the refresh endpoint's; __Host- needs Path=/.
			p.bad("RefreshTokenName", "cannot start with __Host- (which needs Path=/, and the refresh cookie is scoped to the refresh endpoint): use __Secure-, got %q", name)
		}
		if host && (k.Domain != "" || k.Path != "/") {
			p.bad("Cookies.Domain, Cookies.Path", "must be empty and \"/\" with the cookie name %q (RFC 6265bis §4.1.3.2)", name)
		}
	}
}

// isToken reports whether s is a non-empty RFC 9110 §5.6.2 token.
func isToken(s string) bool {
	const separators = "\"(),/:;<=>?@[\\]{}"
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || strings.IndexByte(separators, s[i]) >= 0 {
			return false
		}
	}
	return s != ""
}

// setDefault replaces a zero value with def.
func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
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

func (a *Auth) now() time.Time { return a.cfg.Now() }
