package jwtauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// This file is sessions: every login opens a session, a family of refresh tokens of its
// own (RFC 9700 §4.14.2 rotation, reuse detection per family), so that devices do not
// log each other out. All sessions of a user live in one record under the user id, and
// every change to it is one Store.CompareAndSwap.
//
// A session's refresh tokens are not stored but derived, as in Supabase Auth's second
// generation of refresh tokens: the token of generation g is
//
//	base64url(HMAC-SHA256(Secret, "jwtauth refresh\x00" || sid || key || g)[:18])
//
// 24 characters, 144 bits. key is 32 bytes from crypto/rand, kept in the record; without
// the server's Secret it computes nothing, so a dump of the store and of every access
// token gives no refresh token (RFC 6819 §5.1.4.1.3: no tokens in the clear at rest).
// Deriving lets the server hand the same successor to a request that presents the
// previous token within Refresh.ReuseInterval (two tabs refreshing at once) without
// storing it. The prefixes keep these MACs apart from each other and from token
// signatures, whose input holds only base64url characters and dots.

// session is one login's refresh-token family. Times are Unix milliseconds.
type session struct {
	id      [16]byte // the sid claim: random, not secret
	key     [32]byte // from crypto/rand; the tokens are derived from it with the Secret
	created int64    // the login
	used    int64    // the last login or refresh: the idle timeout counts from here
	rotated int64    // when generation gen became current: the reuse interval counts from here
	gen     uint32   // how many times the session's token was rotated
}

// The store record: a version byte, a count byte, count sessions of sessionSize bytes
// each (big-endian), and an HMAC-SHA256 of all that and the user id under the Secret, so
// that whoever can write the store can neither roll a session back (to revive a
// rotated-out token) nor move a record to another user. At most 255 sessions.
const (
	recordVersion = 1
	sessionSize   = 16 + 32 + 8 + 8 + 8 + 4
	recordMACSize = 32
	// lookBack is how many generations before the current one a presented token is
	// recognised as an ancestor (and ends its session) rather than as unknown. It bounds
	// what a refresh token that matches nothing costs: (lookBack+1) MACs per key. A
	// token rotated out more than lookBack refreshes ago is a plain 401; at one refresh
	// per 30-minute access token that is 16 hours of use by the legitimate client.
	lookBack = 32
)

var errCorruptRecord = errors.New("jwtauth: the store's session record is corrupt")

// sealRecord returns the record of userID's sessions ss, or nil (delete the record) for
// none.
func (a *Auth) sealRecord(userID string, ss []session) []byte {
	if len(ss) == 0 {
		return nil
	}
	b := make([]byte, 2, 2+len(ss)*sessionSize+recordMACSize)
	b[0], b[1] = recordVersion, byte(len(ss))
	for i := range ss {
		s := &ss[i]
		b = append(b, s.id[:]...)
		b = append(b, s.key[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(s.created))
		b = binary.BigEndian.AppendUint64(b, uint64(s.used))
		b = binary.BigEndian.AppendUint64(b, uint64(s.rotated))
		b = binary.BigEndian.AppendUint32(b, s.gen)
	}
	mac := recordMAC(a.keys[0], userID, b)
	return append(b, mac[:]...)
}

// openRecord checks the MAC of userID's record raw under Secret or one of
// PreviousSecrets, with hmac.Equal, and decodes it. A nil record is no sessions.
func (a *Auth) openRecord(userID string, raw []byte) ([]session, error) {
	if raw == nil {
		return nil, nil
	}
	if len(raw) < recordMACSize {
		return nil, errCorruptRecord
	}
	body, mac := raw[:len(raw)-recordMACSize], raw[len(raw)-recordMACSize:]
	for _, k := range a.keys {
		if want := recordMAC(k, userID, body); hmac.Equal(want[:], mac) {
			return decodeRecord(body)
		}
	}
	return nil, errCorruptRecord
}

// recordMAC is HMAC-SHA256(k, "jwtauth record\x00" || len(userID) || userID || body).
func recordMAC(k *macKey, userID string, body []byte) (mac [recordMACSize]byte) {
	st := k.get()
	msg := append(st.buf[:0], "jwtauth record\x00"...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(userID)))
	msg = append(msg, userID...)
	msg = append(msg, body...)
	copy(mac[:], st.sum(msg))
	st.buf = msg[:0]
	k.put(st)
	return mac
}

// decodeRecord reads an authentic record body strictly: the version, a count from 1 to
// 255 that matches the length exactly, distinct session ids, and times in order
// (0 < created <= used, created <= rotated). Anything else is errCorruptRecord, which
// answers 500 and ends nothing: a record the package did not write is not evidence of
// anything.
func decodeRecord(b []byte) ([]session, error) {
	if len(b) < 2 || b[0] != recordVersion || b[1] == 0 || len(b) != 2+int(b[1])*sessionSize {
		return nil, errCorruptRecord
	}
	ss := make([]session, b[1])
	for i := range ss {
		p, s := b[2+i*sessionSize:], &ss[i]
		copy(s.id[:], p)
		copy(s.key[:], p[16:])
		s.created = int64(binary.BigEndian.Uint64(p[48:]))
		s.used = int64(binary.BigEndian.Uint64(p[56:]))
		s.rotated = int64(binary.BigEndian.Uint64(p[64:]))
		s.gen = binary.BigEndian.Uint32(p[72:])
		if s.created <= 0 || s.used < s.created || s.rotated < s.created || find(ss[:i], s.id) >= 0 {
			return nil, errCorruptRecord
		}
	}
	return ss, nil
}

// find returns the index of the session id in ss, or -1.
func find(ss []session, id [16]byte) int {
	for i := range ss {
		if ss[i].id == id {
			return i
		}
	}
	return -1
}

// newSession makes a session with a random id and key; openSession sets its times.
func newSession() (session, error) {
	var s session
	if _, err := rand.Read(s.id[:]); err != nil {
		return s, &hookError{"crypto/rand", err}
	}
	if _, err := rand.Read(s.key[:]); err != nil {
		return s, &hookError{"crypto/rand", err}
	}
	return s, nil
}

// sid is the session's id as the sid claim carries it: 22 base64url characters.
func (s *session) sid() string { return base64.RawURLEncoding.EncodeToString(s.id[:]) }

// parseSID reads a sid claim; ok is false for anything this package did not write.
func parseSID(sid string) (id [16]byte, ok bool) {
	if len(sid) != 22 {
		return id, false
	}
	n, err := b64.Decode(id[:], []byte(sid))
	return id, err == nil && n == len(id)
}

// expiry is when the session ends if it is not used again: IdleTimeout after its last
// use, and never later than MaxLifetime after the login, which rotation does not extend.
func (a *Auth) expiry(s *session) int64 {
	return min(s.used+a.refreshCfg.IdleTimeout.Milliseconds(), s.created+a.refreshCfg.MaxLifetime.Milliseconds())
}

// Causes of a refused refresh token, each its own reason with InsecureDebug. All answer
// 401 AuthenticationFailed.
var (
	errRefreshRefused  = fmt.Errorf("%w: refresh refused", ErrAuthenticationFailed)
	errNoSession       = fmt.Errorf("%w: no such session (logged out, ended, or a token from before sessions)", errRefreshRefused)
	errSessionIdle     = fmt.Errorf("%w: session idle longer than Refresh.IdleTimeout", errRefreshRefused)
	errSessionTooOld   = fmt.Errorf("%w: session older than Refresh.MaxLifetime", errRefreshRefused)
	errRefreshReused   = fmt.Errorf("%w: rotated-out refresh token presented: session ended", errRefreshRefused)
	errRefreshMismatch = fmt.Errorf("%w: refresh token does not match the session", errRefreshRefused)
)

// sessionEnded says why s is over at now, or nil.
func (a *Auth) sessionEnded(s *session, now int64) error {
	switch {
	case now >= s.created+a.refreshCfg.MaxLifetime.Milliseconds():
		return errSessionTooOld
	case now >= s.used+a.refreshCfg.IdleTimeout.Milliseconds():
		return errSessionIdle
	}
	return nil
}

// token derives the session's refresh token of generation gen under key k.
func (s *session) token(k *macKey, gen uint32) [24]byte {
	st := k.get()
	msg := append(st.buf[:0], "jwtauth refresh\x00"...)
	msg = append(msg, s.id[:]...)
	msg = append(msg, s.key[:]...)
	msg = binary.BigEndian.AppendUint32(msg, gen)
	var t [24]byte
	base64.RawURLEncoding.Encode(t[:], st.sum(msg)[:refreshTokenBytes])
	st.buf = msg[:0]
	k.put(st)
	return t
}

// tokenString is the session's current refresh token, derived under k.
func (s *session) tokenString(k *macKey) string {
	t := s.token(k, s.gen)
	return string(t[:])
}

// How a presented refresh token relates to its session.
const (
	noMatch  = iota // not a token of this session: a plain 401
	current         // the session's token now
	previous        // the one rotated out last (S4 within ReuseInterval, else reuse)
	ancestor        // an older one: reuse, the session ends
)

// match finds presented among the session's current token and the lookBack before it,
// under Secret and each of PreviousSecrets (so that rotating the Secret ends no session).
// Each comparison is hmac.Equal; the search stops at the first match, which tells the
// timing what the response says anyway. back is how many rotations old the match is.
func (a *Auth) match(s *session, presented string) (kind, back int) {
	p := []byte(presented)
	for back := 0; back <= lookBack && back <= int(s.gen); back++ {
		for _, k := range a.keys {
			if t := s.token(k, s.gen-uint32(back)); hmac.Equal(t[:], p) {
				return min(current+back, ancestor), back
			}
		}
	}
	return noMatch, 0
}

// errUnchanged, from an update's change function, ends the update without a write.
var errUnchanged = errors.New("jwtauth: no change")

// update changes the sessions of userID with change, as one compare-and-swap of the
// record, retried while another request changes it in between. change sees every
// session, ended ones included, and may run more than once, each time on a fresh load;
// ended sessions are dropped after it, and a record left without sessions is deleted.
//
// Time only moves forward: now is never before the newest time in the record, so that a
// server whose clock is behind another's never writes a session used before it was
// created, nor reopens a reuse interval.
func (a *Auth) update(ctx context.Context, userID string, change func(ss []session, now int64) ([]session, error)) error {
	st := a.refreshCfg.Store
	for i := 0; i < maxSwaps; i++ {
		raw, err := st.Load(ctx, userID)
		if err != nil {
			return &hookError{"Store.Load", err}
		}
		ss, err := a.openRecord(userID, raw)
		if err != nil {
			return &hookError{"Store (record)", err}
		}
		now := a.now().UnixMilli()
		for _, s := range ss {
			now = max(now, s.used, s.rotated)
		}
		if ss, err = change(ss, now); err != nil {
			if err == errUnchanged {
				return nil
			}
			return err
		}
		n := 0
		for _, s := range ss {
			if now < a.expiry(&s) {
				ss[n] = s
				n++
			}
		}
		ss = ss[:n]
		next := a.sealRecord(userID, ss)
		if raw == nil && next == nil {
			return nil
		}
		// The record lives until its last session ends. New bounds every duration by
		// maxDuration, so this fits a Duration.
		var end int64
		for i := range ss {
			end = max(end, a.expiry(&ss[i]))
		}
		ok, err := st.CompareAndSwap(ctx, userID, raw, next, time.Duration(max(end-now, 1))*time.Millisecond)
		if err != nil {
			return &hookError{"Store.CompareAndSwap", err}
		}
		if ok {
			return nil
		}
	}
	return &hookError{"Store.CompareAndSwap", errContended}
}

// openSession stores s, made by newSession, as a new session of userID opened now,
// ending the least recently used live sessions beyond Refresh.MaxSessions.
func (a *Auth) openSession(ctx context.Context, userID string, s *session) error {
	var evicted []string
	err := a.update(ctx, userID, func(ss []session, now int64) ([]session, error) {
		s.created, s.used, s.rotated, s.gen = now, now, now, 0
		evicted = evicted[:0]
		for {
			lru, live := -1, 0
			for i := range ss {
				if a.sessionEnded(&ss[i], now) == nil {
					live++
					if lru < 0 || ss[i].used < ss[lru].used {
						lru = i
					}
				}
			}
			if live < a.refreshCfg.MaxSessions {
				return append(ss, *s), nil
			}
			evicted = append(evicted, ss[lru].sid())
			ss = append(ss[:lru], ss[lru+1:]...)
		}
	})
	if err == nil {
		a.emit(ctx, Event{Kind: EventLogin, UserID: userID, SessionID: s.sid()})
		for _, sid := range evicted {
			a.emit(ctx, Event{Kind: EventSessionEnded, UserID: userID, SessionID: sid, Reason: "evicted"})
		}
	}
	return err
}

// errSessionGone is an access token whose session has ended, where a live one is
// needed: with VerifySessions, and to list or end sessions.
var errSessionGone = fmt.Errorf("%w: the token's session has ended", ErrTokenInvalid)

// endSessions ends the live sessions of userID for which end is true, in one
// compare-and-swap, and reports how many it ended; each is an EventSessionEnded with
// reason. With caller, the session of the access token that asks must be live: a token
// of an ended session manages nothing. It runs even when the client has gone: a request
// must not escape a revocation by hanging up.
func (a *Auth) endSessions(ctx context.Context, userID string, caller *[16]byte, reason string, end func(*session) bool) (int, error) {
	if a.cfg.Refresh == nil {
		return 0, errNoRefresh
	}
	var ended []string
	err := a.update(context.WithoutCancel(ctx), userID, func(ss []session, now int64) ([]session, error) {
		if caller != nil {
			if i := find(ss, *caller); i < 0 || a.sessionEnded(&ss[i], now) != nil {
				return nil, errSessionGone
			}
		}
		ended = ended[:0]
		kept := ss[:0]
		for _, s := range ss {
			if a.sessionEnded(&s, now) == nil && end(&s) {
				ended = append(ended, s.sid())
				continue
			}
			kept = append(kept, s)
		}
		if len(ended) == 0 {
			return nil, errUnchanged
		}
		return kept, nil
	})
	if err != nil {
		return 0, err
	}
	for _, sid := range ended {
		a.emit(ctx, Event{Kind: EventSessionEnded, UserID: userID, SessionID: sid, Reason: reason})
	}
	return len(ended), nil
}

var errNoRefresh = errors.New("jwtauth: sessions need Config.Refresh")

// Session is one login of a user, as Auth.Sessions and GET /auth/sessions list it.
type Session struct {
	// ID is the session's id, the sid claim of its access tokens.
	ID string `json:"id"`
	// CreatedAt is the login.
	CreatedAt time.Time `json:"created_at"`
	// LastUsedAt is the last login or refresh.
	LastUsedAt time.Time `json:"last_used_at"`
	// ExpiresAt is when the session ends unless it is refreshed before (Refresh.IdleTimeout
	// after LastUsedAt, never later than Refresh.MaxLifetime after CreatedAt).
	ExpiresAt time.Time `json:"expires_at"`
	// Current is true for the session of the access token that asked.
	Current bool `json:"current"`
}

// Sessions returns the live sessions of userID, oldest first, for admin tools. It is
// safe for concurrent use.
func (a *Auth) Sessions(ctx context.Context, userID string) ([]Session, error) {
	return a.sessions(ctx, userID, nil)
}

// sessions lists the live sessions of userID; with caller, that session must be live,
// and is marked Current.
func (a *Auth) sessions(ctx context.Context, userID string, caller *[16]byte) ([]Session, error) {
	if a.cfg.Refresh == nil {
		return nil, errNoRefresh
	}
	raw, err := a.refreshCfg.Store.Load(ctx, userID)
	if err != nil {
		return nil, &hookError{"Store.Load", err}
	}
	ss, err := a.openRecord(userID, raw)
	if err != nil {
		return nil, &hookError{"Store (record)", err}
	}
	now, out, found := a.now().UnixMilli(), []Session{}, caller == nil
	for _, s := range ss {
		if a.sessionEnded(&s, now) != nil {
			continue
		}
		cur := caller != nil && s.id == *caller
		found = found || cur
		out = append(out, Session{ID: s.sid(), CreatedAt: time.UnixMilli(s.created).UTC(),
			LastUsedAt: time.UnixMilli(s.used).UTC(), ExpiresAt: time.UnixMilli(a.expiry(&s)).UTC(),
			Current: cur})
	}
	if !found {
		return nil, errSessionGone
	}
	return out, nil
}

// RevokeSession ends the session sessionID of userID: its refresh tokens stop working at
// once, and its access tokens too with Refresh.VerifySessions. It reports whether there
// was such a live session. It is safe for concurrent use.
func (a *Auth) RevokeSession(ctx context.Context, userID, sessionID string) (bool, error) {
	id, ok := parseSID(sessionID)
	if !ok {
		return false, nil
	}
	n, err := a.endSessions(ctx, userID, nil, "revoked", func(s *session) bool { return s.id == id })
	return n > 0, err
}

// RevokeSessions ends every session of userID, on every device. It is also the way out
// of a record the package cannot read (a 500 at every login, refresh and logout of the
// user): it deletes such a record whole. It is safe for concurrent use.
func (a *Auth) RevokeSessions(ctx context.Context, userID string) error {
	_, err := a.endSessions(ctx, userID, nil, "revoked", func(*session) bool { return true })
	if !errors.Is(err, errCorruptRecord) {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	raw, err := a.refreshCfg.Store.Load(ctx, userID)
	if err == nil && raw != nil {
		var ok bool
		if ok, err = a.refreshCfg.Store.CompareAndSwap(ctx, userID, raw, nil, 0); err == nil && !ok {
			err = errContended
		}
	}
	if err != nil {
		return &hookError{"Store", err}
	}
	return nil
}

// sessionLive is VerifySessions' check: the session of c still exists and has not ended.
func (a *Auth) sessionLive(ctx context.Context, c *Claims) error {
	id, ok := parseSID(c.SessionID)
	if !ok {
		return errSessionGone
	}
	raw, err := a.refreshCfg.Store.Load(ctx, c.UserID)
	if err != nil {
		return &hookError{"Store.Load", err}
	}
	ss, err := a.openRecord(c.UserID, raw)
	if err != nil {
		return &hookError{"Store (record)", err}
	}
	if i := find(ss, id); i < 0 || a.sessionEnded(&ss[i], a.now().UnixMilli()) != nil {
		return errSessionGone
	}
	return nil
}

// serveSessions is GET /auth/sessions: the live sessions of the access token's user,
// {"sessions": [{"id", "created_at", "last_used_at", "expires_at", "current"}]}. The
// token's own session must be live.
func (a *Auth) serveSessions(w http.ResponseWriter, r *http.Request, _ string) {
	c, err := a.Check(r)
	var list []Session
	if err == nil {
		id, _ := parseSID(c.SessionID)
		list, err = a.sessions(r.Context(), c.UserID, &id)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]Session{"sessions": list})
}

// errUnknownSession is DELETE /auth/sessions/{id} for an id that is not a live session
// of the caller's: another user's is as unknown as one that never was.
var errUnknownSession = errors.New("jwtauth: no such session of the user")

// serveEndSession is DELETE /auth/sessions/{id}: end one of the caller's own sessions.
// The token's own session must be live.
func (a *Auth) serveEndSession(w http.ResponseWriter, r *http.Request, target string) {
	c, err := a.Check(r)
	n := 0
	if err == nil {
		caller, _ := parseSID(c.SessionID)
		id, ok := parseSID(target)
		n, err = a.endSessions(r.Context(), c.UserID, &caller, "revoked", func(s *session) bool { return ok && s.id == id })
	}
	switch {
	case err != nil:
		a.fail(w, r, err)
	case n == 0:
		a.fail(w, r, errUnknownSession)
	default:
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	}
}
