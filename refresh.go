package jwtauth

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	mathrand "math/rand"
	"slices"
	"time"
)

// This file is the session layer: refresh tokens and the sessions they belong to. Every
// login opens a session, a family of refresh tokens of its own (RFC 9700 §4.14.2
// rotation, reuse detection per family), so that devices do not log each other out. All
// sessions of a user live in one record under the user id (record.go), and every change
// to it is one Store.CompareAndSwap (update). It uses the token core's keys and nothing
// of HTTP: the handlers in endpoints.go call it.
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
// storing it.

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
	// works, answered with the same new refresh token the first request got: two tabs
	// or two calls of an app that refresh at the same moment both stay logged in, and a
	// client whose refresh answer was lost retries and gets it again. Default 10 s (as
	// Supabase Auth); NoReuseInterval turns it off, and then presenting a rotated-out
	// token ends its session at once (RFC 9700 §4.14.2 reuse detection). The cost: a
	// thief presenting the token just rotated out within the interval shares the
	// session instead of ending it. An older token ends its session even inside it.
	ReuseInterval time.Duration
	// Window, when non-zero, is how long after its exp an access token may still be
	// used at POST /auth/refresh.
	Window time.Duration
	// RevokeBefore ends every session opened before it: set it to the present time after
	// restoring a backup of the store, or after anyone could write to the store, and
	// every user logs in again (the store cannot tell a rolled-back record from a
	// current one). Zero: none. New refuses a time more than a minute in the future.
	RevokeBefore time.Time
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
	// AuthenticatedAt is when the user last proved who they are in this session: the
	// login, or the last POST /auth/reauthenticate. Its access tokens carry it as
	// auth_time.
	AuthenticatedAt time.Time `json:"authenticated_at"`
	// Label names the device: Config.SessionLabel's answer at the login, by default a
	// summary of its User-Agent ("Chrome on Linux"); at most 64 printable ASCII bytes.
	Label string `json:"label"`
}

// sessions is the session layer's own state: the Refresh group with its defaults, the
// token core's keys (Secret first) and the clock. Auth holds one with Config.Refresh.
type sessions struct {
	cfg          Refresh
	revokeBefore int64 // cfg.RevokeBefore in Unix milliseconds, 0 for none
	keys         []*macKey
	now          func() time.Time
	emit         func(context.Context, Event)
	turns        [64]chan struct{} // see update
	seed         maphash.Seed
	random       io.Reader // crypto/rand.Reader
}

// NoReuseInterval, as Refresh.ReuseInterval, turns the reuse interval off: a zero
// ReuseInterval means the default of 10 seconds.
const NoReuseInterval time.Duration = -1

// Defaults of the Refresh group.
const (
	defaultReuseInterval = 10 * time.Second
	defaultIdleTimeout   = 30 * 24 * time.Hour
	defaultMaxLifetime   = 90 * 24 * time.Hour
	defaultMaxSessions   = 10
)

// newSessions returns the session layer for cfg, with its defaults applied (New checks
// the result).
func newSessions(cfg Refresh, keys []*macKey, now func() time.Time, emit func(context.Context, Event)) *sessions {
	setDefault(&cfg.IdleTimeout, defaultIdleTimeout)
	setDefault(&cfg.MaxLifetime, defaultMaxLifetime)
	setDefault(&cfg.MaxSessions, defaultMaxSessions)
	setDefault(&cfg.ReuseInterval, defaultReuseInterval)
	m := &sessions{cfg: cfg, keys: keys, now: now, emit: emit, seed: maphash.MakeSeed(), random: rand.Reader}
	for i := range m.turns {
		m.turns[i] = make(chan struct{}, 1)
	}
	if !cfg.RevokeBefore.IsZero() {
		m.revokeBefore = cfg.RevokeBefore.UnixMilli()
	}
	return m
}

// setDefault replaces a zero value with def.
func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// internalError is a failure that says nothing about the request: a hook's unexpected
// error, a store's, or crypto/rand's. It answers 500, whatever it wraps (even one of the
// package's sentinels), and its text is logged, never sent.
type internalError struct {
	op  string // what failed: "RetrieveUser", "Store.Load", ...
	err error
}

func (e *internalError) Error() string { return "jwtauth: " + e.op + ": " + e.err.Error() }
func (e *internalError) Unwrap() error { return e.err }

// newSession makes a session with a random id and key; start sets its times.
func (m *sessions) newSession() (s session, err error) {
	if _, err = io.ReadFull(m.random, s.id[:]); err == nil {
		_, err = io.ReadFull(m.random, s.key[:])
	}
	if err != nil {
		err = &internalError{"crypto/rand", err}
	}
	return s, err
}

// refreshTokenBytes is the entropy of a refresh token: 144 bits, which base64url writes
// as exactly 24 characters. Sanic JWT's tokens are 24 characters too; 144 bits is more
// than crypto/rand.Text's 128 and puts guessing any live token out of reach however
// many sessions a store holds.
const refreshTokenBytes = 18

// token derives the session's refresh token of generation gen under key k.
func (s *session) token(k *macKey, gen uint32) [24]byte {
	var g [4]byte
	binary.BigEndian.PutUint32(g[:], gen)
	sum := k.mac("jwtauth refresh\x00", s.id[:], s.key[:], g[:])
	var t [24]byte
	base64.RawURLEncoding.Encode(t[:], sum[:refreshTokenBytes])
	return t
}

// current is the session's current refresh token, derived under k.
func (s *session) current(k *macKey) string {
	t := s.token(k, s.gen)
	return string(t[:])
}

// expiry is when s ends if it is not used again: IdleTimeout after its last use, and
// never later than MaxLifetime after the login, which rotation does not extend. A
// session opened before RevokeBefore has ended at its login.
func (m *sessions) expiry(s *session) int64 {
	if s.created < m.revokeBefore {
		return s.created
	}
	return min(s.used+m.cfg.IdleTimeout.Milliseconds(), s.created+m.cfg.MaxLifetime.Milliseconds())
}

// Causes of a refused refresh token, each its own reason with InsecureDebug. All answer
// 401 AuthenticationFailed.
var (
	errRefreshRefused  = fmt.Errorf("%w: refresh refused", ErrAuthenticationFailed)
	errNoSession       = fmt.Errorf("%w: no such session (logged out, ended, or a token from before sessions)", errRefreshRefused)
	errSessionIdle     = fmt.Errorf("%w: session idle longer than Refresh.IdleTimeout", errRefreshRefused)
	errSessionTooOld   = fmt.Errorf("%w: session older than Refresh.MaxLifetime", errRefreshRefused)
	errSessionRevoked  = fmt.Errorf("%w: session opened before Refresh.RevokeBefore", errRefreshRefused)
	errRefreshReused   = fmt.Errorf("%w: rotated-out refresh token presented: session ended", errRefreshRefused)
	errRefreshMismatch = fmt.Errorf("%w: refresh token does not match the session", errRefreshRefused)
	errRolledBack      = fmt.Errorf("%w: the session's record is older than its access token (rolled back): session ended", errRefreshRefused)
)

// ended says why s is over at now, or nil.
func (m *sessions) ended(s *session, now int64) error {
	switch {
	case s.created < m.revokeBefore:
		return errSessionRevoked
	case now >= s.created+m.cfg.MaxLifetime.Milliseconds():
		return errSessionTooOld
	case now >= m.expiry(s):
		return errSessionIdle
	}
	return nil
}

// How a presented refresh token relates to its session.
const (
	noMatch  = iota // not a token of this session: a plain 401
	current         // the session's token now
	previous        // the one rotated out last (S4 within ReuseInterval, else reuse)
	ancestor        // an older one: reuse, the session ends
)

// reuseWindow is how many of the latest generations (the current one, the previous one
// and older ones) match tries besides the one issued with the access token: a client
// that presents a refresh token with an access token of another generation (one half of
// a refresh response lost) is still recognised within it.
const reuseWindow = 8

// match compares presented with the session's tokens of the latest reuseWindow
// generations and of generation g, the one issued with the access token that came with
// it (g is at most s.gen: see rotate), under Secret and each of PreviousSecrets (so that
// rotating the Secret ends no session). A rotated-out token that comes with its own
// access token is recognised however many rotations ago it was (S3). Every candidate is
// derived and compared with hmac.Equal, with no early exit: a token that matches nothing
// costs what a valid one does. back is how many rotations old the match is.
func (m *sessions) match(s *session, presented string, g uint32) (kind, back int) {
	p := []byte(presented)
	try := func(k *macKey, b uint32) {
		if t := s.token(k, s.gen-b); hmac.Equal(t[:], p) {
			kind, back = min(current+int(b), ancestor), int(b)
		}
	}
	for _, k := range m.keys {
		for b := uint32(0); b <= min(s.gen, reuseWindow-1); b++ {
			try(k, b)
		}
		if s.gen-g >= reuseWindow {
			try(k, s.gen-g)
		}
	}
	return kind, back
}

// load returns userID's record as stored, and its sessions. A record that no key opens
// holds no live session (S12): load returns it with no sessions (a record that opens
// holds at least one), and a login replaces it from this exact value.
func (m *sessions) load(ctx context.Context, userID string) ([]byte, []session, error) {
	raw, err := m.cfg.Store.Load(ctx, userID)
	if err != nil {
		return nil, nil, &internalError{"Store.Load", err}
	}
	ss, err := openRecord(m.keys, userID, raw)
	switch {
	case err == errUnreadable, err == nil:
		return raw, ss, nil
	case errors.Is(err, ErrUnavailable):
		return nil, nil, err
	}
	return nil, nil, &internalError{"Store (record)", err}
}

// contention is how long update keeps trying while other requests change the user's
// record (S13): past it, ErrUnavailable, a 503 with Retry-After, never a lost write.
// Between tries it waits a random time below a bound that doubles from 1 ms to 64 ms
// (full jitter), so that many requests of one user at once spread out.
const contention = 2 * time.Second

var (
	errBusy = fmt.Errorf("%w: the session record kept changing under concurrent requests", ErrUnavailable)
	// errUnchanged, from an update's change function, ends the update without a write.
	errUnchanged = errors.New("jwtauth: no change")
)

// update changes the sessions of userID with change, as one compare-and-swap of the
// record, retried while another request changes it in between. change sees every
// session, ended ones included, and may run more than once, each time on a fresh load;
// ended sessions are dropped after it, and a record left without sessions is deleted.
//
// Time only moves forward: now is never before the newest time in the record, so that a
// server whose clock is behind another's never writes a session used before it was
// created, nor reopens a reuse interval.
//
// Within one process, the updates of one user take turns (one of len(m.turns) slots,
// by a hash of the user id) rather than race each other's swaps: a storm of logins of
// one user then costs one load and one swap each. Processes still race, and retry.
func (m *sessions) update(ctx context.Context, userID string, change func(ss []session, now int64) ([]session, error)) error {
	deadline := time.Now().Add(contention) // the real clock: Config.Now may stand still
	var unreadable bool                    // reported after the turn, so that OnEvent may change the record
	defer func() {
		if unreadable {
			m.emit(ctx, Event{Kind: EventRecordUnreadable, UserID: userID})
		}
	}()
	turn, t := m.turns[maphash.String(m.seed, userID)%uint64(len(m.turns))], time.NewTimer(contention)
	select {
	case turn <- struct{}{}:
		t.Stop()
		defer func() { <-turn }()
	case <-t.C:
		return errBusy
	}
	for wait := time.Millisecond; ; wait = min(2*wait, 64*time.Millisecond) {
		raw, ss, err := m.load(ctx, userID)
		if err != nil {
			return err
		}
		unreadable = raw != nil && ss == nil
		now := m.now().UnixMilli()
		for _, s := range ss {
			now = max(now, s.used, s.rotated)
		}
		if ss, err = change(ss, now); err == errUnchanged {
			return nil
		} else if err != nil {
			return err
		}
		n, end := 0, int64(0)
		for _, s := range ss {
			if e := m.expiry(&s); now < e {
				ss[n], end = s, max(end, e)
				n++
			}
		}
		next := sealRecord(m.keys[0], userID, ss[:n])
		if raw == nil && next == nil {
			return nil // the Store never sees a swap of nothing for nothing
		}
		// The record lives until its last session ends. New bounds every duration by
		// maxDuration, so this fits a Duration.
		ttl := time.Duration(max(end-now, 1)) * time.Millisecond
		if ok, err := m.cfg.Store.CompareAndSwap(ctx, userID, raw, next, ttl); err != nil {
			return &internalError{"Store.CompareAndSwap", err}
		} else if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errBusy
		}
		time.Sleep(time.Duration(mathrand.Int63n(int64(wait)))) // not a secret: any source will do
	}
}

// start stores s, made by newSession, as a new session of userID opened now, ending the
// least recently used live sessions beyond Refresh.MaxSessions, and returns its first
// refresh token.
func (m *sessions) start(ctx context.Context, userID string, s *session) (string, error) {
	var evicted []sessionID
	newLabel := false
	err := m.update(ctx, userID, func(ss []session, now int64) ([]session, error) {
		s.created, s.used, s.rotated, s.authed, s.gen = now, now, now, now, 0
		ss = slices.DeleteFunc(ss, func(x session) bool { return m.ended(&x, now) != nil })
		newLabel = !slices.ContainsFunc(ss, func(x session) bool { return x.label == s.label })
		evicted = evicted[:0]
		for len(ss) >= m.cfg.MaxSessions {
			lru := slices.MinFunc(ss, func(x, y session) int { return cmp.Compare(x.used, y.used) })
			evicted = append(evicted, lru.id)
			ss = slices.DeleteFunc(ss, func(x session) bool { return x.id == lru.id })
		}
		return append(ss, *s), nil
	})
	if err != nil {
		return "", err
	}
	m.emit(ctx, Event{Kind: EventLogin, UserID: userID, SessionID: s.id.String(), Label: s.label, NewLabel: newLabel})
	for _, id := range evicted {
		m.emit(ctx, Event{Kind: EventSessionEnded, UserID: userID, SessionID: id.String(), Reason: "evicted"})
	}
	return s.current(m.keys[0]), nil
}

// rotate decides on the refresh token presented for the session id of userID (sid, its
// claim, names it in events), with the access token that came with it, issued at
// generation g. It returns the session's next refresh token (empty without rotation),
// and the access token that sign makes for the generation it answers with: sign runs
// before the write, so that claims that cannot be signed cost the client no session.
// The decision and the write are one compare-and-swap of the record; another session's
// change in between makes update decide again on a fresh load. Its caller passes a
// context that the client cannot cancel: a client that presents a rotated-out token and
// hangs up must not escape the end of its session.
func (m *sessions) rotate(ctx context.Context, userID string, id sessionID, sid string, g uint32, presented string,
	p *keyProof, sign func(*session) (string, error)) (next, access string, err error) {
	var behind int // rotations behind, for a rotated-out token: reuse
	var rolledBack bool
	err = m.update(ctx, userID, func(ss []session, now int64) (_ []session, err error) {
		behind, rolledBack, next = 0, false, ""
		i := find(ss, id)
		if i < 0 {
			return nil, errNoSession
		}
		s := &ss[i]
		if err := m.ended(s, now); err != nil {
			return nil, err // S5: even inside the reuse interval
		}
		// D2, D4: a bound session decides nothing, ends nothing and shares nothing
		// (not even within the reuse interval) for a request its key did not prove.
		if err := prove(s, p, now); err != nil {
			return nil, err
		}
		if g > s.gen {
			// S9: the access token was issued at a later generation than the record
			// holds, so the record was rolled back (a restored backup, a store
			// writer), and the tokens it rotated out would refresh again: end it.
			rolledBack = true
			return slices.Delete(ss, i, i+1), nil
		}
		kind, back := m.match(s, presented, g)
		switch kind {
		case current:
			next = m.renew(s, now)
			access, err = sign(s)
			return ss, err
		case previous:
			// Within ReuseInterval of the rotation, the token just rotated out gets
			// the same successor the first request got: two tabs refreshing at once
			// both stay logged in, and the session still has one current token. The
			// unchanged record is still written back, so that the answer is decided
			// on the record as it is at the swap: never after a logout.
			if !m.cfg.InsecureNoRotation && now-s.rotated < m.cfg.ReuseInterval.Milliseconds() { // now >= rotated (see update); NoReuseInterval is 0 ms
				next = s.current(m.keys[0])
				access, err = sign(s)
				return ss, err
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
			behind = back
			return slices.Delete(ss, i, i+1), nil
		}
		// Not a token of this session at all: no evidence of a breach, nothing revoked.
		return nil, errRefreshMismatch
	})
	ev := Event{Kind: EventRefresh, UserID: userID, SessionID: sid}
	switch {
	case errors.Is(err, errSessionIdle), errors.Is(err, errSessionTooOld):
		ev.Kind, ev.Reason = EventSessionEnded, "expired"
	case errors.Is(err, errSessionRevoked):
		ev.Kind, ev.Reason = EventSessionEnded, "revoked"
	case err != nil:
		return "", "", err
	case rolledBack:
		ev.Kind, err = EventRollbackDetected, errRolledBack
	case behind > 0:
		ev.Kind, ev.GenerationsBehind, err = EventReuseDetected, behind, errRefreshReused
	}
	m.emit(ctx, ev)
	if err != nil {
		return "", "", err
	}
	return next, access, nil
}

// renew is what a refresh does to the live session s at now. RFC 9700 §4.14.2: "the
// authorization server issues a new refresh token with every access token refresh
// response. The previous refresh token is invalidated but retained by the authorization
// server." It returns that token, "" with InsecureNoRotation.
func (m *sessions) renew(s *session, now int64) (next string) {
	if !m.cfg.InsecureNoRotation {
		s.gen, s.rotated = s.gen+1, now
		next = s.current(m.keys[0])
	}
	s.used = now
	return next
}

// reauthenticate renews the auth_time of the live session id of userID (its user has
// just proved who they are again) and renews it as a refresh does; sign
// makes the access token for the generation and auth_time it answers with.
func (m *sessions) reauthenticate(ctx context.Context, userID string, id sessionID, p *keyProof,
	sign func(*session) (string, error)) (next, access string, err error) {
	var label string
	err = m.update(ctx, userID, func(ss []session, now int64) ([]session, error) {
		i := find(ss, id)
		if i < 0 || m.ended(&ss[i], now) != nil {
			return nil, errSessionGone
		}
		s := &ss[i]
		if err := prove(s, p, now); err != nil {
			return nil, err
		}
		s.authed, label, next = now, s.label, m.renew(s, now)
		access, err = sign(s)
		return ss, err
	})
	if err != nil {
		return "", "", err
	}
	m.emit(ctx, Event{Kind: EventReauthenticated, UserID: userID, SessionID: id.String(), Label: label})
	return next, access, nil
}

// Causes of a refresh or reauthentication of a bound session refused for its proof.
var (
	// errDPoPProof is a DPoP proof that fails a check of RFC 9449 §4.3, or none where
	// one is needed: the invalid_dpop_proof error of §7.1.
	errDPoPProof   = errors.New("jwtauth: invalid DPoP proof")
	errProofKey    = fmt.Errorf("%w: the session is bound to another key, or the request carries no proof", errDPoPProof)
	errProofReplay = fmt.Errorf("%w: jti already used", errDPoPProof)
	errProofLate   = fmt.Errorf("%w: its iat window had passed when the session was updated", errDPoPProof)
	errProofBurst  = fmt.Errorf("%w: the session accepted %d proofs within the iat window already", errDPoPProof, maxProofUses)
)

// prove checks that the DPoP proof p, verified by the caller, is by the key that the
// session s is bound to, still within its window at now, the update's clock, and not
// accepted by s before, and records it: the jti is single-use through the record,
// across every instance (RFC 9449 §11.1). A record forgets a proof once its window has
// passed by the record's clock, which only moves forward (see update), and from then on
// refuses it as too old: a request that was slow to arrive (a body held back, a slow
// store) is judged at the update, not when its headers came. A session bound to no key
// takes any request.
func prove(s *session, p *keyProof, now int64) error {
	switch {
	case s.jkt == [32]byte{}:
		return nil
	case p == nil || p.jkt != s.jkt:
		return errProofKey
	case p.until < now:
		return errProofLate
	case slices.ContainsFunc(s.uses, func(u proofUse) bool { return u.jti == p.jti }):
		return errProofReplay
	}
	if s.uses = slices.DeleteFunc(s.uses, func(u proofUse) bool { return u.until < now }); len(s.uses) >= maxProofUses {
		return errProofBurst
	}
	s.uses = append(s.uses, p.proofUse)
	return nil
}

// errSessionGone is an access token whose session has ended, where a live one is
// needed: with VerifySessions, and to list or end sessions.
var errSessionGone = fmt.Errorf("%w: the token's session has ended", ErrTokenInvalid)

// end ends the live sessions of userID for which end is true, in one compare-and-swap,
// and reports how many it ended; each is an EventSessionEnded with reason. With caller,
// the session of the access token that asks must be live: a token of an ended session
// manages nothing; and the DPoP proof p of the request, when there is one, must be new to
// that session (prove), so that a captured request replayed to another instance ends
// nothing. A record no key opens holds no session: without caller, end deletes
// it. It runs even when the client has gone: a request must not escape a revocation by
// hanging up.
func (m *sessions) end(ctx context.Context, userID string, caller *sessionID, p *keyProof, reason string, end func(*session) bool) (int, error) {
	var ended []sessionID
	err := m.update(context.WithoutCancel(ctx), userID, func(ss []session, now int64) ([]session, error) {
		i := -1
		if caller != nil {
			i = slices.IndexFunc(ss, func(s session) bool { return s.id == *caller && m.ended(&s, now) == nil })
		}
		switch {
		case caller != nil && i < 0:
			return nil, errSessionGone
		case i >= 0 && p != nil:
			if err := prove(&ss[i], p, now); err != nil {
				return nil, err
			}
		}
		ended = ended[:0]
		kept := ss[:0]
		for _, s := range ss {
			if m.ended(&s, now) == nil && end(&s) {
				ended = append(ended, s.id)
				continue
			}
			kept = append(kept, s)
		}
		if len(ended) == 0 && len(ss) > 0 {
			return nil, errUnchanged
		}
		return kept, nil
	})
	if err != nil {
		return 0, err
	}
	for _, id := range ended {
		m.emit(ctx, Event{Kind: EventSessionEnded, UserID: userID, SessionID: id.String(), Reason: reason})
	}
	return len(ended), nil
}

// endAll ends every session of userID and deletes the record, whatever it holds: one
// that no key opens (end deletes it: it holds no session), one that does not decode, or
// one of a newer version. RevokeSessions is the admin's way out of each.
func (m *sessions) endAll(ctx context.Context, userID string) error {
	_, err := m.end(ctx, userID, nil, nil, "revoked", func(*session) bool { return true })
	if errors.Is(err, errCorruptRecord) || errors.Is(err, errNewerRecord) {
		err = m.deleteRecord(context.WithoutCancel(ctx), userID)
	}
	return err
}

// deleteRecord deletes userID's record as it is loaded now, whatever it holds; errBusy
// if another request changes it in between.
func (m *sessions) deleteRecord(ctx context.Context, userID string) error {
	raw, err := m.cfg.Store.Load(ctx, userID)
	switch {
	case err != nil:
		return &internalError{"Store.Load", err}
	case raw == nil: // gone already; and a swap from nil to nil breaks the Store contract
		return nil
	}
	if ok, err := m.cfg.Store.CompareAndSwap(ctx, userID, raw, nil, 0); err != nil {
		return &internalError{"Store.CompareAndSwap", err}
	} else if !ok {
		return errBusy
	}
	return nil
}

// list returns the live sessions of userID, oldest first; with caller, that session must
// be live, and is marked Current.
func (m *sessions) list(ctx context.Context, userID string, caller *sessionID) ([]Session, error) {
	_, ss, err := m.load(ctx, userID)
	if err != nil {
		return nil, err
	}
	now, out, found := m.now().UnixMilli(), []Session{}, caller == nil
	for _, s := range ss {
		if m.ended(&s, now) != nil {
			continue
		}
		cur := caller != nil && s.id == *caller
		found = found || cur
		out = append(out, Session{ID: s.id.String(), CreatedAt: time.UnixMilli(s.created).UTC(),
			LastUsedAt: time.UnixMilli(s.used).UTC(), ExpiresAt: time.UnixMilli(m.expiry(&s)).UTC(), Current: cur,
			AuthenticatedAt: time.UnixMilli(s.authed).UTC(), Label: s.label})
	}
	if !found {
		return nil, errSessionGone
	}
	return out, nil
}

// live is VerifySessions' check: the session sid of userID exists and has not ended.
func (m *sessions) live(ctx context.Context, userID, sid string) error {
	id, _ := parseSessionID(sid) // an unparsable sid is the zero id, which no session has
	_, ss, err := m.load(ctx, userID)
	if i := find(ss, id); err == nil && (i < 0 || m.ended(&ss[i], m.now().UnixMilli()) != nil) {
		return errSessionGone
	}
	return err
}
