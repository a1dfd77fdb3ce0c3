package jwtauth

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
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
//	-- old == nil: insert, or replace a row only if it has expired
//	INSERT INTO tokens AS t (user_id, value, expires_at) VALUES ($1, $3, $4)
//	  ON CONFLICT (user_id) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
//	  WHERE t.expires_at <= now();
//	-- new == nil
//	DELETE FROM tokens WHERE user_id = $1 AND value = $2 AND live;
//
// (Deleting an expired row and then inserting with ON CONFLICT DO NOTHING, in two
// statements, fails an insert when the row expires between the two.)
//
// MemStore implements Store in memory; the redisstore module implements it on Redis,
// and the pgstore module on PostgreSQL, with these statements.
type Store interface {
	Load(ctx context.Context, key string) ([]byte, error)
	CompareAndSwap(ctx context.Context, key string, old, new []byte, ttl time.Duration) (bool, error)
}

// refreshTokenBytes is the entropy of a refresh token: 144 bits, which base64url writes
// as exactly 24 characters. Sanic JWT's tokens are 24 characters too; 144 bits is more
// than crypto/rand.Text's 128 and puts guessing any live token out of reach however
// many sessions a store holds.
const refreshTokenBytes = 18

// maxSwaps bounds the compare-and-swap retries of one store update. Each retry means
// another request changed the user's record in between, so running out takes that many
// concurrent logins, refreshes or logouts of one user: a 500, never a lost write.
const maxSwaps = 16

var (
	errContended = errors.New("the record kept changing under concurrent updates")
	errOtherUser = errors.New("RetrieveUser returned a user with another ID than the token's")
)

// serveRefresh is POST /auth/refresh.
func (a *Auth) serveRefresh(w http.ResponseWriter, r *http.Request, _ string) {
	t, err := a.refresh(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeTokens(w, r, "/refresh", t)
}

// refresh checks the presented tokens and returns new ones: an access token, and the
// session's next refresh token unless rotation is off.
func (a *Auth) refresh(r *http.Request) (*Tokens, error) {
	// Not cancelled with the request: a client that presents a rotated-out token and
	// hangs up must not escape the end of its session (through a RetrieveUser or a
	// store that honours cancellation).
	ctx := context.WithoutCancel(r.Context())
	// The access token says who is refreshing and in which session. It may be expired
	// (that is why the client is here) but it must be authentic and otherwise valid. A
	// token from before sessions has no sid: its user logs in again.
	c, err := a.refreshableClaims(r)
	if err != nil {
		return nil, err
	}
	id, ok := parseSID(c.SessionID)
	if !ok {
		return nil, errNoSession
	}
	presented, err := a.readToken(r, true)
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
		return nil, &hookError{"RetrieveUser", errOtherUser}
	}
	// Sign before touching the store: a user whose claims cannot be signed is a 500
	// that must not cost the client its session.
	access, err := a.issueAccessToken(u, c.SessionID)
	if err != nil {
		return nil, &hookError{"RetrieveUser (claims)", err}
	}
	t := &Tokens{AccessToken: access}
	if t.RefreshToken, err = a.rotate(ctx, u.ID, c.SessionID, id, presented); err != nil {
		return nil, err
	}
	return t, nil
}

// rotate decides on the refresh token presented for session id of userID and returns
// the session's next one (empty without rotation). The decision and the write are one
// compare-and-swap of the record; another session's change in between makes update
// decide again on a fresh load.
func (a *Auth) rotate(ctx context.Context, userID, sid string, id [16]byte, presented string) (next string, err error) {
	var verdict error
	var behind int
	err = a.update(ctx, userID, func(ss []session, now int64) ([]session, error) {
		verdict, next = nil, ""
		i := find(ss, id)
		if i < 0 {
			return nil, errNoSession
		}
		s := &ss[i]
		if err := a.sessionEnded(s, now); err != nil {
			return nil, err // S5: even inside the reuse interval
		}
		rotating := !a.refreshCfg.InsecureNoRotation
		kind, back := a.match(s, presented)
		switch kind {
		case current:
			// RFC 9700 §4.14.2: "the authorization server issues a new refresh token
			// with every access token refresh response. The previous refresh token is
			// invalidated but retained by the authorization server."
			if rotating {
				s.gen, s.rotated = s.gen+1, now
				next = s.tokenString(a.keys[0])
			}
			s.used = now
			return ss, nil
		case previous:
			// Within ReuseInterval of the rotation, the token just rotated out gets
			// the same successor the first request got: two tabs refreshing at once
			// both stay logged in, and the session still has one current token. The
			// unchanged record is still written back, so that the answer is decided
			// on the record as it is at the swap: never after a logout.
			if rotating && now-s.rotated < a.refreshCfg.ReuseInterval.Milliseconds() { // now >= rotated: see update
				next = s.tokenString(a.keys[0])
				return ss, nil
			}
			fallthrough
		case ancestor:
			// RFC 9700 §4.14.2: if a refresh token "is compromised and subsequently
			// used by both the attacker and the legitimate client, one of them will
			// present an invalidated refresh token, which will inform the authorization
			// server of the breach. The authorization server cannot determine which
			// party submitted the invalid refresh token, but it will revoke the active
			// refresh token." The family is this session: the user's other devices
			// stay logged in.
			verdict, behind = errRefreshReused, back
			return append(ss[:i], ss[i+1:]...), nil
		}
		// Not a token of this session at all: no evidence of a breach, nothing revoked.
		return nil, errRefreshMismatch
	})
	switch {
	case errors.Is(err, errSessionIdle), errors.Is(err, errSessionTooOld):
		a.emit(ctx, Event{Kind: EventSessionEnded, UserID: userID, SessionID: sid, Reason: "expired"})
		return "", err
	case err != nil:
		return "", err
	case verdict != nil:
		a.emit(ctx, Event{Kind: EventReuseDetected, UserID: userID, SessionID: sid, GenerationsBehind: behind})
		return "", verdict
	}
	a.emit(ctx, Event{Kind: EventRefresh, UserID: userID, SessionID: sid})
	return next, nil
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
	cc, err := a.verify(tok, true)
	if err != nil {
		return nil, err
	}
	c := &cc.claims
	if w := a.refreshCfg.Window; w > 0 && !c.ExpiresAt.IsZero() && a.now().After(c.ExpiresAt.Add(a.leeway+w)) {
		return nil, errRefreshLate
	}
	if c.UserID == "" {
		return nil, errNoUserID
	}
	return c, nil
}

// bodyToken reads a JSON object from body, with the package's strict lexer, and returns
// its member name, which must be a string. An empty body, an object without the member,
// or a null member is errNoRefreshBody; a body that is not exactly one strict JSON
// object or a non-string value is errBadBody; the member twice (encoding/json would
// silently keep the last one) is errTwoRefresh. A read error, a *http.MaxBytesError
// among them, is returned as it is.
func bodyToken(body io.Reader, name string) (string, error) {
	if body == nil {
		return "", errNoRefreshBody
	}
	b, err := io.ReadAll(body) // bounded by Endpoints.MaxBodyBytes
	if err != nil {
		return "", bodyErr(err)
	}
	l := lexer{s: string(b), syntax: errBadBody}
	if l.ws(); l.i == len(l.s) {
		return "", errNoRefreshBody
	}
	var vals []string
	for key, ok := l.member(true, nil); ok; key, ok = l.member(false, nil) {
		switch {
		case key != name:
			l.skip(0)
		case l.peek() == 'n': // "refresh_token": null is no token
			l.literal()
			vals = append(vals, "")
		default:
			vals = append(vals, l.str(errBadBody))
		}
	}
	if l.end(); l.err != nil {
		return "", errBadBody
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

// errLogoutScope is a query string of POST /auth/logout other than none, scope=others
// or scope=all.
var errLogoutScope = errors.New("jwtauth: logout scope must be empty, others or all")

// serveLogout is POST /auth/logout[?scope=others|all]: end the access token's session,
// every other session of its user, or all of them, and clear the cookies unless the
// session lives on. An expired access token is accepted as at /refresh, so that a
// client whose access token ran out can still end its session; ending the others, or
// all, needs the token's own session to be live.
func (a *Auth) serveLogout(w http.ResponseWriter, r *http.Request, _ string) {
	c, err := a.refreshableClaims(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	id, _ := parseSID(c.SessionID) // no sid: no session of its own to end
	q, err := url.ParseQuery(r.URL.RawQuery)
	scope := ""
	if err == nil {
		scope, err = one(q["scope"], nil, errLogoutScope)
	}
	switch {
	case err != nil:
		err = errLogoutScope
	case scope == "":
		_, err = a.endSessions(r.Context(), c.UserID, nil, "logout", func(s *session) bool { return s.id == id })
	case scope == "others":
		_, err = a.endSessions(r.Context(), c.UserID, &id, "logout", func(s *session) bool { return s.id != id })
	case scope == "all":
		_, err = a.endSessions(r.Context(), c.UserID, &id, "logout", func(*session) bool { return true })
	default:
		err = errLogoutScope
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if a.cfg.Cookies != nil && scope != "others" {
		a.setCookies(w, r, "/logout", nil)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
