package jwtauth

import "errors"

// Sentinel errors. Every error the package returns wraps one of these, or is an *Error
// that unwraps to one; test with errors.Is. Each check's own cause, which wraps its
// sentinel, is defined beside the check (the token core's in json.go, claims.go and
// sign.go), and status.go gives each its HTTP answer.
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
	// ErrClaimNotFound is returned by Claims.Get for a claim the token does not carry.
	ErrClaimNotFound = errors.New("jwtauth: claim not found")
	// ErrUnavailable: the sessions cannot be changed now: the user's record kept changing
	// under concurrent requests for longer than the package waits (about 2 s), or it was
	// written by a newer version of the package during a rolling deploy. The endpoints
	// answer 503 with Retry-After; try again shortly.
	ErrUnavailable = errors.New("jwtauth: sessions unavailable, retry shortly")
	// ErrInvalidConfig: New rejected the Config; the message names every offending field.
	ErrInvalidConfig = errors.New("jwtauth: invalid config")
)
