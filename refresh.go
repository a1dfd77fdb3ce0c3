package jwtauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// This file is the refresh-token flow: generating tokens, the digests the store hooks
// see, POST /auth/refresh and POST /auth/logout.

// Store keeps the server side of refresh tokens: one opaque value per key, the key
// being a user id. It has two operations, and every change the package makes is the
// second one, so that no two requests can both read a value and then both write it: a
// logout, a revocation or a login can never be undone by a refresh that was in flight.
//
// Load returns the value under key, or nil and no error when there is none or it has
// expired.
//
// CompareAndSwap stores new under key if, at that moment, the key holds old byte for
// byte, and reports whether it did; the compare and the write are one atomic step. A nil
// old means "only if the key holds nothing" (an expired value counts as nothing), and a
// nil new deletes the key. With ttl > 0 the new value expires ttl after the call; with 0
// it does not expire. A compare that fails is (false, nil); an error means the store
// itself failed, and the package then answers 500, never 401.
//
// The package never stores an empty value, and values must round-trip byte for byte.
// Both methods must be safe for concurrent use. In SQL, with a table
// tokens(user_id text primary key, value bytea, expires_at timestamptz), the swap is one
// statement whose affected-row count is the answer:
//
//	-- old != nil, new != nil
//	UPDATE tokens SET value = $3, expires_at = $4
//	 WHERE user_id = $1 AND value = $2 AND (expires_at IS NULL OR expires_at > now());
//	-- old == nil: insert if absent (delete an expired row first, in the same transaction)
//	INSERT INTO tokens (user_id, value, expires_at) VALUES ($1, $3, $4)
//	ON CONFLICT (user_id) DO NOTHING;
//	-- new == nil
//	DELETE FROM tokens WHERE user_id = $1 AND value = $2;
//
// MemStore implements Store in memory; the redisstore module implements it on Redis.
type Store interface {
	Load(ctx context.Context, key string) ([]byte, error)
	CompareAndSwap(ctx context.Context, key string, old, new []byte, ttl time.Duration) (bool, error)
}

// refreshTokenBytes is the entropy of a default refresh token: 18 bytes from
// crypto/rand, 144 bits, which base64url writes as exactly 24 characters.
const refreshTokenBytes = 18

// generateRefreshToken is the default Config.GenerateRefreshToken: 24 base64url
// characters holding 18 bytes (144 bits) from crypto/rand. Sanic JWT's default is 24
// characters too; 144 bits is more than crypto/rand.Text's 128 and puts guessing any
// live token out of reach however many users a store holds.
func generateRefreshToken() (string, error) {
	var b [refreshTokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// RefreshTokenDigest returns what the store hooks are given for a refresh token: its
// SHA-256 digest, base64url without padding (43 characters). The store never holds a
// token a client could present, so a leaked store does not leak sessions. A plain hash
// is enough, no salt or stretching: the token is 144 random bits, not a password.
func RefreshTokenDigest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// newRefreshToken generates a refresh token and its digest.
func (a *Auth) newRefreshToken() (token, digest string, err error) {
	token, err = a.cfg.GenerateRefreshToken()
	if err == nil && token == "" {
		err = errors.New("empty refresh token")
	}
	if err != nil {
		return "", "", &hookError{"GenerateRefreshToken", err}
	}
	return token, RefreshTokenDigest(token), nil
}

// errRefreshMismatch is a presented refresh token that is not the user's current one.
var errRefreshMismatch = fmt.Errorf("%w: refresh token does not match", ErrAuthenticationFailed)

// serveRefresh is POST /auth/refresh.
func (a *Auth) serveRefresh(w http.ResponseWriter, r *http.Request) {
	t, err := a.refresh(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeTokens(w, t)
}

// refresh runs the refresh flow, steps 1 to 6 below, and returns the new tokens (RefreshToken empty when not rotating).
func (a *Auth) refresh(r *http.Request) (*Tokens, error) {
	ctx := r.Context()

	// Step 1: the access token says who is refreshing. It may be expired (that is why
	// the client is here) but it must be authentic and otherwise valid.
	c, err := a.refreshableClaims(r)
	if err != nil {
		return nil, err
	}

	// Step 2: the refresh token itself.
	presented, err := a.presentedRefreshToken(r)
	if err != nil {
		return nil, err
	}

	// Step 3: the current user, so that the new access token carries today's scopes and
	// claims, not those of the login. Its ID keys the store.
	u, err := a.retrieveUser(ctx, c)
	if err != nil {
		return nil, err
	}
	// Sign before touching the store: a user whose claims cannot be signed is a 500
	// that must not cost the client its refresh token.
	access, err := a.issueAccessToken(u)
	if err != nil {
		return nil, &hookError{"RetrieveUser (claims)", err}
	}
	t := &Tokens{AccessToken: access}

	// Steps 4 to 6: check the presented token against the stored one and, when
	// rotating, replace it. RFC 9700 §4.14.2: "the authorization server issues a new
	// refresh token with every access token refresh response. The previous refresh
	// token is invalidated but retained by the authorization server."
	digest := RefreshTokenDigest(presented)
	var nextDigest string
	if a.rotate {
		if t.RefreshToken, nextDigest, err = a.newRefreshToken(); err != nil {
			return nil, err
		}
	}
	if a.rotate && a.cfg.SwapRefreshToken != nil {
		// One atomic compare-and-swap: of N concurrent refreshes with one token,
		// exactly one finds its digest still stored.
		err := a.cfg.SwapRefreshToken(ctx, u.ID, digest, nextDigest)
		switch {
		case errors.Is(err, ErrRefreshTokenNotFound):
			return nil, a.refreshMismatch(ctx, u.ID)
		case err != nil:
			return nil, &hookError{"SwapRefreshToken", err}
		}
		return t, nil
	}

	stored, err := a.cfg.RetrieveRefreshToken(ctx, u.ID)
	switch {
	case errors.Is(err, ErrRefreshTokenNotFound):
		// Nothing stored (logged out, or never logged in here): nothing to revoke.
		return nil, fmt.Errorf("%w: no refresh token stored for the user", ErrAuthenticationFailed)
	case err != nil:
		return nil, &hookError{"RetrieveRefreshToken", err}
	}
	// Constant-time, as every token comparison here (STYLE §6). The values are digests,
	// so timing would leak little, but there is no reason to reason about it.
	if !hmac.Equal([]byte(stored), []byte(digest)) {
		return nil, a.refreshMismatch(ctx, u.ID)
	}
	if a.rotate {
		// Retrieve, compare and store are three calls, so two requests presenting one
		// token can both get here and both succeed; the later store wins and the other
		// new token is dead. SwapRefreshToken closes that race.
		if err := a.cfg.StoreRefreshToken(ctx, u.ID, nextDigest); err != nil {
			return nil, &hookError{"StoreRefreshToken", err}
		}
	}
	return t, nil
}

// refreshMismatch handles a refresh token that is not the user's current one, behind a
// validly signed access token. RFC 9700 §4.14.2: with rotation, if a refresh token "is
// compromised and subsequently used by both the attacker and the legitimate client, one
// of them will present an invalidated refresh token, which will inform the
// authorization server of the breach. The authorization server cannot determine which
// party submitted the invalid refresh token, but it will revoke the active refresh
// token." A mismatch also means a stolen access token presented with a guessed refresh
// token; revoking is right in both cases. The price: two tabs of one browser refreshing
// at the same moment log the user out. Without rotation a mismatch revokes nothing, as
// an old token is then not evidence of anything. The revocation runs even when the
// client has gone: a replayer must not escape it by hanging up (context.WithoutCancel).
func (a *Auth) refreshMismatch(ctx context.Context, userID string) error {
	if a.rotate && a.cfg.RevokeRefreshToken != nil {
		if err := a.cfg.RevokeRefreshToken(context.WithoutCancel(ctx), userID); err != nil {
			return &hookError{"RevokeRefreshToken", err}
		}
	}
	return errRefreshMismatch
}

// refreshableClaims reads and verifies the access token as Protected does, except that
// an expired one is accepted, within RefreshWindow (plus Leeway) after its exp when a
// window is set. Without exp (VerifyExp off) there is nothing to measure the window
// from, and the token is accepted.
func (a *Auth) refreshableClaims(r *http.Request) (*Claims, error) {
	tok, err := a.accessToken(r)
	if err != nil {
		return nil, err
	}
	c, err := a.verify(tok, true)
	if err != nil {
		return nil, err
	}
	if w := a.cfg.RefreshWindow; w > 0 && !c.ExpiresAt.IsZero() && a.now().After(c.ExpiresAt.Add(a.leeway+w)) {
		return nil, errRefreshLate
	}
	if c.UserID == "" {
		return nil, errNoUserID
	}
	return c, nil
}

// Where a refresh token was looked for, for the 400 that names it.
const (
	inBody   = "in the JSON body"
	inCookie = "as a cookie"
	inQuery  = "as a query argument"
)

// presentedRefreshToken reads the refresh token from r, from the same kind of place the
// access token comes from and in the same order: the cookie RefreshTokenName in cookie
// mode, the query argument in query mode, else the JSON body member RefreshTokenName.
// Strictness is the access token's.
func (a *Auth) presentedRefreshToken(r *http.Request) (string, error) {
	name := a.cfg.RefreshTokenName
	if a.cfg.CookieSet {
		tok, err := uniqueCookie(r, name, errNoCookie, errTwoCookies)
		if err != errNoCookie || a.cookieStrict {
			return a.refreshValue(tok, err, inCookie)
		}
	}
	if a.cfg.QueryStringSet {
		tok, err := a.queryValue(r, name, errNoQueryArg, errTwoQueryArgs)
		if err != errNoQueryArg || a.queryStrict {
			return a.refreshValue(tok, err, inQuery)
		}
	}
	tok, err := jsonStringMember(r.Body, name)
	return a.refreshValue(tok, err, inBody)
}

// errNoMember is jsonStringMember's "the body has no such member".
var errNoMember = errors.New("jwtauth: no such JSON member")

// refreshValue turns a source's answer into the refresh token or a 400 that names it.
func (a *Auth) refreshValue(tok string, err error, where string) (string, error) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return "", tooBig
	case err == errNoCookie || err == errNoQueryArg || err == errNoMember || err == nil && tok == "":
		return "", &Error{Status: http.StatusBadRequest, Exception: "MissingRefreshToken",
			Reason: fmt.Sprintf("Refresh token %q not present %s.", a.cfg.RefreshTokenName, where),
			Err:    errors.New("jwtauth: refresh token missing")}
	case err == errTwoCookies || err == errTwoQueryArgs || err == errDuplicateMember:
		return "", &Error{Status: http.StatusBadRequest, Exception: "InvalidRefreshToken",
			Reason: fmt.Sprintf("Refresh token %q sent more than once.", a.cfg.RefreshTokenName),
			Err:    errors.New("jwtauth: refresh token sent more than once")}
	case err != nil:
		return "", &Error{Status: http.StatusBadRequest, Exception: "InvalidRequestBody",
			Reason: fmt.Sprintf("Request body must be a JSON object whose %q is a string.", a.cfg.RefreshTokenName),
			Err:    fmt.Errorf("jwtauth: request body: %w", err)}
	}
	return tok, nil
}

var (
	errNotObject       = errors.New("not a JSON object")
	errNotString       = errors.New("member is not a string")
	errDuplicateMember = errors.New("duplicate member")
)

// jsonStringMember reads a JSON object from body and returns its member name, which
// must be a string. An empty body or an object without the member is errNoMember; a
// body that is not exactly one JSON object, a duplicate member (encoding/json would
// silently keep the last one) or a non-string value is an error. Read errors, a
// *http.MaxBytesError among them, are returned as they are.
func jsonStringMember(body io.Reader, name string) (string, error) {
	if body == nil {
		return "", errNoMember
	}
	dec := json.NewDecoder(body)
	tok, err := dec.Token()
	if err == io.EOF {
		return "", errNoMember
	}
	if err != nil {
		return "", err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return "", errNotObject
	}
	val, found := "", false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", err
		}
		key, _ := tok.(string) // a key is always a string inside an object
		if key != name {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return "", err
			}
			continue
		}
		if found {
			return "", errDuplicateMember
		}
		found = true
		// Decode the raw value first: a string is unmarshalled, null means no token,
		// and anything else is refused without building it (a megabyte of array would
		// otherwise become tens of megabytes of interface values).
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return "", err
		}
		switch {
		case string(raw) == "null": // "refresh_token": null is no token
		case raw[0] == '"':
			if err := json.Unmarshal(raw, &val); err != nil {
				return "", err
			}
		default:
			return "", errNotString
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return "", err
	}
	if _, err := dec.Token(); err != io.EOF {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return "", err
		}
		return "", errNotObject // trailing data after the object
	}
	if !found {
		return "", errNoMember
	}
	return val, nil
}

// serveLogout is POST /auth/logout: revoke the refresh token of the access token's
// user and clear the cookies. An expired access token is accepted as at /refresh, so
// that a client whose access token ran out can still end its session.
func (a *Auth) serveLogout(w http.ResponseWriter, r *http.Request) {
	c, err := a.refreshableClaims(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.cfg.RevokeRefreshToken(r.Context(), c.UserID); err != nil {
		a.fail(w, r, &hookError{"RevokeRefreshToken", err})
		return
	}
	if a.cfg.CookieSet {
		a.clearCookies(w)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
