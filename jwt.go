// Package jwtauth issues and checks HS256 JSON Web Tokens for net/http services:
// access tokens, server-side refresh tokens, login/verify/me/refresh/logout endpoints,
// and middleware that protects routes and checks scopes.
//
// HS256 only: no "none", no asymmetric keys, no encryption, no algorithm negotiation.
// The package uses the standard library only and is meant to be vendored whole.
//
// # Quick start
//
//	store := jwtauth.NewMemStore()
//	auth, err := jwtauth.New(jwtauth.Config{
//		Secret:               secret, // at least 32 random bytes
//		Authenticate:         login,  // func(*http.Request) (*jwtauth.User, error)
//		RetrieveUser:         lookup, // func(context.Context, *jwtauth.Claims) (*jwtauth.User, error)
//		RefreshTokenEnabled:  true,
//		StoreRefreshToken:    store.StoreRefreshToken,
//		RetrieveRefreshToken: store.RetrieveRefreshToken,
//		RevokeRefreshToken:   store.RevokeRefreshToken,
//		SwapRefreshToken:     store.SwapRefreshToken,
//	})
//	mux := http.NewServeMux()
//	mux.Handle("/auth", auth.Handler())
//	mux.Handle("/auth/", auth.Handler())
//	mux.Handle("GET /orders", auth.Protected(orders))
//	mux.Handle("POST /orders", auth.Scoped([]string{"orders:write"}, createOrder))
//
// # Endpoints
//
// Under Config.URLPrefix (default /auth): POST /auth logs in through Config.Authenticate,
// GET /auth/verify says whether the presented access token is valid, GET /auth/me renders
// the current user, POST /auth/refresh trades a refresh token for a new access token and
// POST /auth/logout revokes the user's refresh token. Errors are JSON bodies of the form
// {"reasons": [...], "exception": "..."}.
//
// # Refresh tokens
//
// Refresh tokens are random strings kept by the server through function-typed hooks.
// The hooks only ever see the SHA-256 digest of a token, never the token itself. By default
// every refresh rotates the token (RFC 9700 §4.14.2) and, when Config.RevokeRefreshToken
// is set, a replayed, rotated-out token revokes the user's current one. MemStore is a
// ready-made in-memory store whose methods fit every hook.
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
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
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
	// ErrAuthenticationFailed: wrong credentials or wrong refresh token. Authenticate
	// hooks return fmt.Errorf("%w: message", ErrAuthenticationFailed) to make /auth
	// answer 401 with message as the reason; wrapped any other way it gives the fixed
	// reason "Authentication failed.", so that no other error's text reaches the client.
	ErrAuthenticationFailed = errors.New("jwtauth: authentication failed")
	// ErrRefreshTokenNotFound: returned by RetrieveRefreshToken (and SwapRefreshToken)
	// when the store holds no token for the user.
	ErrRefreshTokenNotFound = errors.New("jwtauth: refresh token not found")
	// ErrUserNotFound: RetrieveUser returns it (or nil, nil) when the token's user no
	// longer exists; the endpoints answer 401.
	ErrUserNotFound = errors.New("jwtauth: user not found")
	// ErrInvalidClaims: Sign was given claims it cannot encode, such as a custom claim
	// that overrides a registered one.
	ErrInvalidClaims = errors.New("jwtauth: invalid claims")
	// ErrInvalidConfig: New rejected the Config; the message names the field.
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
	// Profile is what GET /auth/me renders. Nil renders {"user_id": ID}.
	Profile any
}

// Hook types. They take a context first and never the request: a store needs none.
// The token argument and result are always the SHA-256 digest (base64url, 43 characters)
// of a refresh token, never the token itself: store the string you are given.
type (
	// StoreRefreshTokenFunc keeps digest as the user's current refresh token, replacing
	// any previous one.
	StoreRefreshTokenFunc func(ctx context.Context, userID, digest string) error
	// RetrieveRefreshTokenFunc returns the user's stored digest, or an error wrapping
	// ErrRefreshTokenNotFound when there is none.
	RetrieveRefreshTokenFunc func(ctx context.Context, userID string) (string, error)
	// RevokeRefreshTokenFunc forgets the user's refresh token. Revoking a missing token
	// is not an error.
	RevokeRefreshTokenFunc func(ctx context.Context, userID string) error
	// SwapRefreshTokenFunc atomically replaces the user's digest presented with next, and
	// returns an error wrapping ErrRefreshTokenNotFound when the stored digest is not
	// presented (or there is none).
	SwapRefreshTokenFunc func(ctx context.Context, userID, presented, next string) error
)

// Defaults applied by New to zero-valued Config fields, one per field of the same name.
const (
	// DefaultMaxTokenSize is Config.MaxTokenSize's default: 8 KiB.
	DefaultMaxTokenSize = 8 << 10
	// DefaultMaxBodyBytes is Config.MaxBodyBytes's default: 1 MiB.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultURLPrefix is Config.URLPrefix's default.
	DefaultURLPrefix = "/auth"
	// DefaultExpirationDelta is the access token lifetime by default.
	DefaultExpirationDelta = 30 * time.Minute
	// DefaultLeeway is the clock skew allowed on exp and nbf by default.
	DefaultLeeway = 180 * time.Second
	// DefaultUserIDClaim names the user-id claim by default.
	DefaultUserIDClaim = "user_id"
	// DefaultScopesClaim names the scopes claim by default.
	DefaultScopesClaim = "scopes"
	// DefaultAccessTokenName is the access token's JSON key, cookie and query argument
	// name by default.
	DefaultAccessTokenName = "access_token"
	// DefaultRefreshTokenName is the refresh token's JSON key, cookie and query argument
	// name by default.
	DefaultRefreshTokenName = "refresh_token"
	// DefaultAuthorizationHeader names the header carrying the access token by default.
	DefaultAuthorizationHeader = "Authorization"
	// DefaultAuthorizationHeaderPrefix is the scheme before the token by default.
	DefaultAuthorizationHeaderPrefix = "Bearer"
	// DefaultCookieSplitSignatureName names the signature cookie of CookieSplit by default.
	DefaultCookieSplitSignatureName = "access_token_signature"
)

// MinSecretSize is the shortest Secret New accepts: RFC 7518 §3.2 requires an HS256
// key of at least the hash output size, 256 bits.
const MinSecretSize = 32

// Config configures an Auth. It is a plain struct: the zero value of every field means
// the documented default, and New validates the whole. Fields that default to on are
// *bool, so that nil means on; take the address of a false to turn one off.
type Config struct {
	// Secret is the HS256 key for signing and verifying; required, at least 32 bytes.
	Secret []byte
	// PreviousSecrets still verify tokens (key rotation); new tokens always use Secret.
	// Each must be at least 32 bytes.
	PreviousSecrets [][]byte
	// MaxTokenSize caps a token's length, checked before any decoding. Default 8 KiB.
	// Sign refuses to write a longer token.
	MaxTokenSize int

	// AuthMode turns the endpoints on (nil or true) or off (false: Handler answers 404
	// and only verification is offered). When on, Authenticate is required.
	AuthMode *bool
	// URLPrefix is where Handler serves the endpoints. Default "/auth".
	URLPrefix string
	// MaxBodyBytes caps request bodies read by the endpoints; larger is a 413. Default 1 MiB.
	MaxBodyBytes int64

	// ExpirationDelta is the access token lifetime. Default 30 minutes.
	ExpirationDelta time.Duration
	// Leeway is the clock skew allowed on exp and nbf. Default 180 s; see NoLeeway.
	Leeway time.Duration
	// NoLeeway makes the exp and nbf checks exact (Leeway is then ignored).
	NoLeeway bool
	// VerifyExp requires and checks exp (nil or true). Off, as Sanic JWT's verify_exp
	// off, exp is neither required nor checked: every token, including those the
	// endpoints issue with an exp, is accepted forever. Use it in tests only.
	VerifyExp *bool
	// Issuer, when set, is written as iss and required on verify.
	Issuer string
	// Audience, when set, is written as aud and required (as the string or one element
	// of the array) on verify.
	Audience string
	// SetIssuedAt adds iat to issued tokens.
	SetIssuedAt bool
	// SetNotBefore adds nbf = now + NotBeforeDelta to issued tokens.
	SetNotBefore bool
	// NotBeforeDelta is how long after issue a token becomes valid, with SetNotBefore.
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
	// AuthorizationHeaderPrefix is the scheme before the token. Default "Bearer";
	// see AuthorizationHeaderNoPrefix.
	AuthorizationHeaderPrefix string
	// AuthorizationHeaderNoPrefix makes the whole header value the token.
	AuthorizationHeaderNoPrefix bool

	// CookieSet makes the endpoints set, and the middleware read, cookies.
	CookieSet bool
	// CookieHTTPOnly (nil or true) marks token cookies HttpOnly.
	CookieHTTPOnly *bool
	// CookieSecure marks token cookies Secure.
	CookieSecure bool
	// CookieDomain is the cookies' Domain attribute; empty means host-only cookies.
	CookieDomain string
	// CookiePath is the cookies' Path attribute. Default "/".
	CookiePath string
	// CookieSameSite defaults to http.SameSiteLaxMode. SameSiteNoneMode requires
	// CookieSecure (browsers drop such cookies otherwise).
	CookieSameSite http.SameSite
	// CookieMaxAge is the cookies' Max-Age in seconds; 0 leaves it unset (session cookie).
	CookieMaxAge int
	// CookieStrict (nil or true): in cookie mode, look only at cookies, not at the header.
	CookieStrict *bool
	// CookieOmitBodyTokens (requires CookieSet) leaves the tokens out of the JSON body of
	// POST /auth and POST /auth/refresh (the body is then {}), so that a script injected
	// into the page cannot read them from a response. Off by default, as in Sanic JWT,
	// whose clients read the body; turn it on when only a browser uses the cookies.
	CookieOmitBodyTokens bool
	// CookieSplit stores the access token as two cookies: header.payload readable by
	// scripts, and the signature HttpOnly under CookieSplitSignatureName.
	CookieSplit bool
	// CookieSplitSignatureName names the signature cookie of CookieSplit. Default
	// "access_token_signature".
	CookieSplitSignatureName string

	// QueryStringSet reads the access token from the query argument AccessTokenName,
	// and /auth/refresh the refresh token from RefreshTokenName. URLs end up in access
	// logs, proxies and browser history (RFC 6750 §2.3 advises against it): prefer the
	// header or cookies.
	QueryStringSet bool
	// QueryStringStrict (nil or true): in query mode, look only at the query string.
	QueryStringStrict *bool

	// Debug answers failures with 400 and the precise cause. Never in production.
	Debug bool
	// ErrorHandler writes error responses; err is always an *Error. Default: the JSON
	// body {"reasons": [...], "exception": "..."} with the status and WWW-Authenticate.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
	// ErrorLog receives unexpected hook errors. Default slog.Default().
	ErrorLog *slog.Logger
	// LoginRedirectURL, when set, makes Protected redirect (302) requests that accept
	// text/html instead of answering 401. It must be a path (not "//..." nor "/\...")
	// or an http(s) URL, without control characters.
	LoginRedirectURL string

	// Authenticate checks the credentials in a login request. Required when AuthMode is
	// on. An error wrapping ErrAuthenticationFailed is a 401 (see that error for the
	// message sent); any other error is a 500 whose text is logged, never sent.
	Authenticate func(r *http.Request) (*User, error)
	// RetrieveUser returns the current user for a verified token (for /auth/me and
	// refresh). Returning nil, nil or ErrUserNotFound is a 401.
	RetrieveUser func(ctx context.Context, claims *Claims) (*User, error)

	// RefreshTokenEnabled turns on refresh tokens; it requires StoreRefreshToken,
	// RetrieveRefreshToken and RetrieveUser.
	RefreshTokenEnabled bool
	// RotateRefreshTokens (nil or true) issues a new refresh token at every refresh.
	RotateRefreshTokens *bool
	// RefreshWindow, when non-zero, is how long after its exp an access token may still
	// be used at /auth/refresh.
	RefreshWindow time.Duration
	// GenerateRefreshToken makes a refresh token. Default: 24 base64url characters from
	// crypto/rand (144 bits).
	GenerateRefreshToken func() (string, error)
	// StoreRefreshToken keeps a new refresh token's digest for the user (at login, and at
	// refresh when rotating without SwapRefreshToken). Required when RefreshTokenEnabled.
	StoreRefreshToken StoreRefreshTokenFunc
	// RetrieveRefreshToken returns the user's stored digest at refresh. Required when
	// RefreshTokenEnabled.
	RetrieveRefreshToken RetrieveRefreshTokenFunc
	// RevokeRefreshToken forgets the user's refresh token: at logout (nil makes
	// /auth/logout answer 404) and when a rotated-out token is replayed (nil: the
	// replay is refused, but the user's current token stays valid).
	RevokeRefreshToken RevokeRefreshTokenFunc
	// SwapRefreshToken, when set, makes rotation one atomic compare-and-swap so that
	// exactly one of several concurrent refreshes with one token succeeds.
	SwapRefreshToken SwapRefreshTokenFunc

	// ScopeValidator replaces the Sanic JWT scope rules (see ScopesMatch). It reports
	// whether the user's scopes satisfy the required ones.
	ScopeValidator func(required, user []string, requireAll, requireAllActions bool) bool
}

// Auth signs and verifies tokens and serves the endpoints and middleware. Create it
// with New. It is safe for concurrent use; its configuration must not change after New.
type Auth struct {
	cfg    Config
	keys   []*macKey // Secret first, then PreviousSecrets
	leeway time.Duration

	verifyExp, rotate, httpOnly, cookieStrict, queryStrict, authMode bool
}

// New validates cfg, applies the defaults, and returns a ready Auth. Its error wraps
// ErrInvalidConfig and names the offending field.
func New(cfg Config) (*Auth, error) {
	bad := func(field, why string) (*Auth, error) {
		return nil, fmt.Errorf("%w: %s %s", ErrInvalidConfig, field, why)
	}
	// RFC 7518 §3.2: "A key of the same size as the hash output (for instance, 256 bits
	// for "HS256") or larger MUST be used with this algorithm."
	if len(cfg.Secret) == 0 {
		return bad("Secret", "is required")
	}
	if len(cfg.Secret) < MinSecretSize {
		return bad("Secret", fmt.Sprintf("must be at least %d bytes (RFC 7518 §3.2), got %d", MinSecretSize, len(cfg.Secret)))
	}
	for i, s := range cfg.PreviousSecrets {
		if len(s) < MinSecretSize {
			return bad(fmt.Sprintf("PreviousSecrets[%d]", i), fmt.Sprintf("must be at least %d bytes (RFC 7518 §3.2)", MinSecretSize))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ExpirationDelta", cfg.ExpirationDelta}, {"Leeway", cfg.Leeway},
		{"NotBeforeDelta", cfg.NotBeforeDelta}, {"RefreshWindow", cfg.RefreshWindow},
	} {
		if d.v < 0 {
			return bad(d.name, "must not be negative")
		}
	}
	if cfg.MaxTokenSize < 0 {
		return bad("MaxTokenSize", "must not be negative")
	}
	if cfg.MaxBodyBytes < 0 {
		return bad("MaxBodyBytes", "must not be negative")
	}
	if cfg.CookieMaxAge < 0 {
		return bad("CookieMaxAge", "must not be negative")
	}

	a := &Auth{cfg: cfg}
	c := &a.cfg
	setDefault(&c.MaxTokenSize, DefaultMaxTokenSize)
	setDefault(&c.MaxBodyBytes, DefaultMaxBodyBytes)
	setDefault(&c.URLPrefix, DefaultURLPrefix)
	setDefault(&c.ExpirationDelta, DefaultExpirationDelta)
	setDefault(&c.Leeway, DefaultLeeway)
	setDefault(&c.UserIDClaim, DefaultUserIDClaim)
	setDefault(&c.ScopesClaim, DefaultScopesClaim)
	setDefault(&c.AccessTokenName, DefaultAccessTokenName)
	setDefault(&c.RefreshTokenName, DefaultRefreshTokenName)
	setDefault(&c.AuthorizationHeader, DefaultAuthorizationHeader)
	setDefault(&c.AuthorizationHeaderPrefix, DefaultAuthorizationHeaderPrefix)
	setDefault(&c.CookiePath, "/")
	setDefault(&c.CookieSameSite, http.SameSiteLaxMode)
	setDefault(&c.CookieSplitSignatureName, DefaultCookieSplitSignatureName)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.ErrorLog == nil {
		c.ErrorLog = slog.Default()
	}
	if c.GenerateRefreshToken == nil {
		c.GenerateRefreshToken = generateRefreshToken
	}
	if c.ScopeValidator == nil {
		c.ScopeValidator = ScopesMatch
	}
	a.leeway = c.Leeway
	if c.NoLeeway {
		a.leeway = 0
	}
	a.verifyExp = on(c.VerifyExp)
	a.rotate = on(c.RotateRefreshTokens)
	a.httpOnly = on(c.CookieHTTPOnly)
	a.cookieStrict = on(c.CookieStrict)
	a.queryStrict = on(c.QueryStringStrict)
	a.authMode = on(c.AuthMode)

	for _, n := range []struct{ field, v string }{
		{"UserIDClaim", c.UserIDClaim}, {"ScopesClaim", c.ScopesClaim},
		{"AccessTokenName", c.AccessTokenName}, {"RefreshTokenName", c.RefreshTokenName},
		{"AuthorizationHeader", c.AuthorizationHeader},
		{"CookieSplitSignatureName", c.CookieSplitSignatureName},
	} {
		// A name of only blanks would be "set" yet match nothing a client can send.
		if strings.TrimSpace(n.v) != n.v || !utf8.ValidString(n.v) {
			return bad(n.field, fmt.Sprintf("must be a non-empty name without surrounding spaces, got %q", n.v))
		}
		if isRegisteredName(n.v) && (n.field == "UserIDClaim" || n.field == "ScopesClaim") {
			return bad(n.field, fmt.Sprintf("must not be the registered claim %q", n.v))
		}
	}
	if c.UserIDClaim == c.ScopesClaim {
		return bad("ScopesClaim", "must differ from UserIDClaim")
	}
	if c.URLPrefix[0] != '/' || (len(c.URLPrefix) > 1 && c.URLPrefix[len(c.URLPrefix)-1] == '/') {
		return bad("URLPrefix", `must start with "/" and not end with one`)
	}
	if c.AccessTokenName == c.RefreshTokenName {
		return bad("RefreshTokenName", "must differ from AccessTokenName")
	}
	if a.authMode && c.Authenticate == nil {
		return bad("Authenticate", "is required while AuthMode is on")
	}
	if c.RefreshTokenEnabled {
		switch {
		case c.StoreRefreshToken == nil:
			return bad("StoreRefreshToken", "is required when RefreshTokenEnabled")
		case c.RetrieveRefreshToken == nil:
			return bad("RetrieveRefreshToken", "is required when RefreshTokenEnabled")
		case c.RetrieveUser == nil:
			return bad("RetrieveUser", "is required when RefreshTokenEnabled")
		}
	}
	if c.LoginRedirectURL != "" && !safeRedirect(c.LoginRedirectURL) {
		return bad("LoginRedirectURL", "must be a path or an http(s) URL, without control characters")
	}
	if c.CookieOmitBodyTokens && !c.CookieSet {
		return bad("CookieOmitBodyTokens", "requires CookieSet")
	}
	if c.CookieSet && c.CookieSameSite == http.SameSiteNoneMode && !c.CookieSecure {
		// Browsers drop SameSite=None cookies without Secure: cookie mode would silently fail.
		return bad("CookieSameSite", "None requires CookieSecure")
	}

	a.keys = append(a.keys, newMACKey(c.Secret))
	for _, s := range c.PreviousSecrets {
		a.keys = append(a.keys, newMACKey(s))
	}
	return a, nil
}

// setDefault replaces a zero value with def.
func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// on reads a default-on *bool.
func on(b *bool) bool { return b == nil || *b }

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

// Config returns the configuration in force, with defaults applied. Function and
// slice fields are shared with the Auth, so do not modify them.
func (a *Auth) Config() Config { return a.cfg }

func (a *Auth) now() time.Time { return a.cfg.Now() }
