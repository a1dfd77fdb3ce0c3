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

// This file is the refresh-token flow: the Store contract, generating tokens, the
// digests the store sees, POST /auth/refresh and POST /auth/logout.

// Store keeps the server side of refresh tokens: one opaque value per key, the key
// being a user id. It has two operations, and every change the package makes is the
// second one, so that no two requests can both read a value and then both write it: a
// logout, a revocation or a login can never be undone by a refresh that was in flight.
//
// Load returns the value under key, or nil and no error when there is none or it has
// expired. The returned slice is the caller's.
//
// CompareAndSwap stores new under key if, at that moment, the key holds old byte for
// byte, and reports whether it did; the compare and the write are one atomic step. A nil
// old means "only if the key holds nothing" (an expired value counts as nothing), and a
// nil new deletes the key. With ttl > 0 the new value expires ttl after the call; with 0
// it does not expire. A compare that fails is (false, nil) and changes nothing, the
// expiry included. An error means the store failed, and the outcome may be unknown (a
// timed-out write may still have been applied); the package then answers 500, never
// 401. The store must not keep or modify old and new after the call.
//
// What the package passes: keys are user ids, strings that may hold any byte (store
// them as bytes, or encode them); values are never empty; ttl is never negative; old and
// new are never both nil. Calls may come with a context that is never cancelled (a
// revocation must not be skipped because a client hung up), so bound their time in the
// store itself. Both methods must be safe for concurrent use, and storetest.Run checks a
// Store against all of the above.
//
// In SQL, with a table tokens(user_id bytea primary key, value bytea not null,
// expires_at timestamptz), each swap is one statement whose affected-row count is the
// answer, where live means (expires_at IS NULL OR expires_at > now()):
//
//	-- old != nil, new != nil
//	UPDATE tokens SET value = $3, expires_at = $4 WHERE user_id = $1 AND value = $2 AND live;
//	-- old == nil: first delete an expired row, then, in the same transaction,
//	INSERT INTO tokens (user_id, value, expires_at) VALUES ($1, $3, $4)
//	  ON CONFLICT (user_id) DO NOTHING;
//	-- new == nil
//	DELETE FROM tokens WHERE user_id = $1 AND value = $2 AND live;
//
// MemStore implements Store in memory; the redisstore module implements it on Redis.
type Store interface {
	Load(ctx context.Context, key string) ([]byte, error)
	CompareAndSwap(ctx context.Context, key string, old, new []byte, ttl time.Duration) (bool, error)
}

// refreshTokenBytes is the entropy of a refresh token: 18 bytes from crypto/rand, 144
// bits, which base64url writes as exactly 24 characters. Sanic JWT's tokens are 24
// characters too; 144 bits is more than crypto/rand.Text's 128 and puts guessing any
// live token out of reach however many users a store holds.
const refreshTokenBytes = 18

// newRefreshToken returns a new refresh token and the digest the store keeps of it.
func newRefreshToken() (token string, digest []byte, err error) {
	var b [refreshTokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, &hookError{"crypto/rand", err}
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, refreshTokenDigest(token), nil
}

// refreshTokenDigest returns what the store keeps of a refresh token: its SHA-256
// digest, base64url without padding (43 bytes). The store never holds a token a client
// could present, so a leaked store does not leak sessions. A plain hash is enough, no
// salt or stretching: the token is 144 random bits, not a password.
func refreshTokenDigest(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	d := make([]byte, base64.RawURLEncoding.EncodedLen(len(sum)))
	base64.RawURLEncoding.Encode(d, sum[:])
	return d
}

// maxSwaps bounds the compare-and-swap retries of one store update. Each retry means
// another request changed the user's value in between, so running out takes that many
// concurrent logins or logouts of one user: a 500, never a lost write.
const maxSwaps = 16

var errContended = errors.New("the value kept changing under concurrent updates")

// update replaces the user's stored value old with next(old), as one compare-and-swap,
// retried while another request changes it in between. A nil result deletes the value.
func (a *Auth) update(ctx context.Context, userID string, next func(old []byte) []byte) error {
	st := a.refreshCfg.Store
	for i := 0; i < maxSwaps; i++ {
		old, err := st.Load(ctx, userID)
		if err != nil {
			return &hookError{"Store.Load", err}
		}
		val := next(old)
		if old == nil && val == nil {
			return nil // nothing to delete
		}
		ok, err := st.CompareAndSwap(ctx, userID, old, val, a.refreshCfg.IdleTimeout)
		if err != nil {
			return &hookError{"Store.CompareAndSwap", err}
		}
		if ok {
			return nil
		}
	}
	return &hookError{"Store.CompareAndSwap", errContended}
}

// revoke deletes the user's refresh token. It runs even when the client has gone: a
// replayer must not escape the revocation by hanging up (context.WithoutCancel).
func (a *Auth) revoke(ctx context.Context, userID string) error {
	return a.update(context.WithoutCancel(ctx), userID, func([]byte) []byte { return nil })
}

// Refusals of a refresh token, behind a validly signed access token.
var (
	errRefreshMismatch = fmt.Errorf("%w: refresh token does not match", ErrAuthenticationFailed)
	errRefreshNone     = fmt.Errorf("%w: no refresh token stored for the user", ErrAuthenticationFailed)
)

// serveRefresh is POST /auth/refresh.
func (a *Auth) serveRefresh(w http.ResponseWriter, r *http.Request) {
	t, err := a.refresh(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeTokens(w, t)
}

// refresh checks the presented tokens and returns new ones: an access token, and a
// refresh token unless rotation is off.
func (a *Auth) refresh(r *http.Request) (*Tokens, error) {
	ctx := r.Context()
	// The access token says who is refreshing. It may be expired (that is why the
	// client is here) but it must be authentic and otherwise valid.
	c, err := a.refreshableClaims(r)
	if err != nil {
		return nil, err
	}
	presented, err := a.readToken(r, true)
	if err != nil {
		return nil, err
	}
	// The current user, so that the new access token carries today's scopes and claims,
	// not those of the login. Its ID keys the store.
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

	st := a.refreshCfg.Store
	stored, err := st.Load(ctx, u.ID)
	switch {
	case err != nil:
		return nil, &hookError{"Store.Load", err}
	case stored == nil:
		// Nothing stored (logged out, or never logged in here): nothing to revoke.
		return nil, errRefreshNone
	case !hmac.Equal(stored, refreshTokenDigest(presented)):
		return nil, a.replayed(ctx, u.ID)
	}
	// RFC 9700 §4.14.2: "the authorization server issues a new refresh token with every
	// access token refresh response. The previous refresh token is invalidated but
	// retained by the authorization server." One compare-and-swap from the token the
	// client presented, so that of N concurrent refreshes with one token exactly one
	// wins. Without rotation the same value is written back, which restarts its
	// IdleTimeout.
	next := stored
	if !a.refreshCfg.InsecureNoRotation {
		if t.RefreshToken, next, err = newRefreshToken(); err != nil {
			return nil, err
		}
	}
	ok, err := st.CompareAndSwap(ctx, u.ID, stored, next, a.refreshCfg.IdleTimeout)
	switch {
	case err != nil:
		return nil, &hookError{"Store.CompareAndSwap", err}
	case !ok:
		// Another request moved the token on between the load and the swap: the
		// presented token is now a rotated-out one.
		return nil, a.replayed(ctx, u.ID)
	}
	return t, nil
}

// replayed handles a refresh token that is not the user's current one, behind a validly
// signed access token. RFC 9700 §4.14.2: with rotation, if a refresh token "is
// compromised and subsequently used by both the attacker and the legitimate client, one
// of them will present an invalidated refresh token, which will inform the
// authorization server of the breach. The authorization server cannot determine which
// party submitted the invalid refresh token, but it will revoke the active refresh
// token." A mismatch also means a stolen access token presented with a guessed refresh
// token; revoking is right in both cases. The price: two tabs of one browser refreshing
// at the same moment log the user out. Without rotation a mismatch revokes nothing, as
// an old token is then not evidence of anything.
func (a *Auth) replayed(ctx context.Context, userID string) error {
	if !a.refreshCfg.InsecureNoRotation {
		if err := a.revoke(ctx, userID); err != nil {
			return err
		}
	}
	return errRefreshMismatch
}

// refreshableClaims reads and verifies the access token as Protected does, except that
// an expired one is accepted, within Refresh.Window (plus Leeway) after its exp when a
// window is set. Without exp (InsecureNoExpiry) there is nothing to measure the window
// from, and the token is accepted.
func (a *Auth) refreshableClaims(r *http.Request) (*Claims, error) {
	tok, err := a.readToken(r, false)
	if err != nil {
		return nil, err
	}
	c, err := a.verify(tok, true)
	if err != nil {
		return nil, err
	}
	if w := a.refreshCfg.Window; w > 0 && !c.ExpiresAt.IsZero() && a.now().After(c.ExpiresAt.Add(a.leeway+w)) {
		return nil, errRefreshLate
	}
	if c.UserID == "" {
		return nil, errNoUserID
	}
	return c, nil
}

// bodyToken reads a JSON object from body and returns its member name, which must be a
// string. An empty body, an object without the member, or a null member is
// errNoRefreshBody; a body that is not exactly one JSON object or a non-string value is
// errBadBody; a duplicate member (encoding/json would silently keep the last one) is
// errTwoRefresh. A read error, a *http.MaxBytesError among them, is returned wrapped.
func bodyToken(body io.Reader, name string) (string, error) {
	if body == nil {
		return "", errNoRefreshBody
	}
	dec := json.NewDecoder(body)
	tok, err := dec.Token()
	if err == io.EOF {
		return "", errNoRefreshBody
	}
	if d, ok := tok.(json.Delim); err != nil || !ok || d != '{' {
		return "", bodyErr(err)
	}
	var vals []string
	for dec.More() {
		key, err := dec.Token() // a key is always a string inside an object
		if err != nil {
			return "", bodyErr(err)
		}
		// Decode the raw value first: a string is unmarshalled, null means no token,
		// and anything else is refused without building it (a megabyte of array would
		// otherwise become tens of megabytes of interface values).
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return "", bodyErr(err)
		}
		if key != name {
			continue
		}
		var s *string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", errBadBody
		}
		if s == nil {
			s = new(string) // "refresh_token": null is no token
		}
		vals = append(vals, *s)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return "", bodyErr(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", bodyErr(err) // trailing data after the object
	}
	return one(vals, errNoRefreshBody, errTwoRefresh)
}

// bodyErr is errBadBody, or the read error that stopped the decoder (a
// *http.MaxBytesError is a 413, not a malformed body).
func bodyErr(err error) error {
	if errors.As(err, new(*http.MaxBytesError)) {
		return err
	}
	return errBadBody
}

// serveLogout is POST /auth/logout: revoke the refresh token of the access token's
// user and clear the cookies. An expired access token is accepted as at /refresh, so
// that a client whose access token ran out can still end its session.
func (a *Auth) serveLogout(w http.ResponseWriter, r *http.Request) {
	c, err := a.refreshableClaims(r)
	if err == nil {
		err = a.revoke(r.Context(), c.UserID)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if a.cfg.Cookies != nil {
		a.clearCookies(w)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
