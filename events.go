package jwtauth

import (
	"context"
	"log/slog"
)

// EventKind says what an Event is about.
type EventKind string

// The kinds of Event.
const (
	// EventLogin: a login succeeded and opened the session SessionID.
	EventLogin EventKind = "login"
	// EventLoginFailed: Authenticate refused a login; Reason is the answer's status.
	EventLoginFailed EventKind = "login_failed"
	// EventRefresh: a session refreshed its tokens.
	EventRefresh EventKind = "refresh"
	// EventReuseDetected: a rotated-out refresh token of session SessionID was presented,
	// GenerationsBehind rotations old, and the session was ended (RFC 9700 §4.14.2). It
	// is the event to alert on: the token was stolen, or a client kept an old one.
	EventReuseDetected EventKind = "reuse_detected"
	// EventSessionEnded: the session SessionID ended; Reason is "logout", "revoked"
	// (RevokeSession, RevokeSessions, DELETE /auth/sessions/{id}, or found opened before
	// Refresh.RevokeBefore at a refresh), "expired" (found
	// past its idle timeout or maximum lifetime at a refresh) or "evicted" (by a login
	// beyond Refresh.MaxSessions).
	EventSessionEnded EventKind = "session_ended"
	// EventRecordUnreadable: no configured key opens the user's record in the store (its
	// Secret was dropped, or something else wrote it): it counts as no live session, a
	// login replaces it and RevokeSessions deletes it. Expected once per user after an
	// emergency Secret rotation; otherwise someone wrote to the store.
	EventRecordUnreadable EventKind = "record_unreadable"
	// EventRollbackDetected: an access token of session SessionID was issued at a later
	// refresh-token generation than the user's record holds: the record was rolled back
	// (a restored backup, or a store writer) and the session was ended. Alert on it; after
	// a restore, set Refresh.RevokeBefore.
	EventRollbackDetected EventKind = "rollback_detected"
	// EventReauthenticated: the user of session SessionID proved who they are again
	// (POST /auth/reauthenticate): its access tokens carry the new auth_time.
	EventReauthenticated EventKind = "reauthenticated"
	// EventCrossOriginRefused: an unsafe request from another origin, in cookie mode,
	// was refused with 403.
	EventCrossOriginRefused EventKind = "cross_origin_refused"
	// EventTokenRejected: an access token was missing or refused; Reason is the cause
	// class: "missing", "malformed_header", "invalid", "expired", "not_yet_valid",
	// "wrong_issuer", "wrong_audience", "verification_failed", "insufficient_scope",
	// "unknown_user", "not_recent" (RequireRecentAuth), "invalid_dpop_proof" and
	// "dpop_binding" (DPoP).
	EventTokenRejected EventKind = "token_rejected"
)

// Event is a security event, for Config.OnEvent: what happened, to which user and
// session. It never carries a token, a digest, a key, a secret or a password, nor the
// text of a hook's error.
type Event struct {
	// Kind says what happened.
	Kind EventKind
	// UserID is the user concerned; empty where the request named none that could be
	// trusted (a refused login, a refused token).
	UserID string
	// SessionID is the session concerned (the sid claim), when there is one.
	SessionID string
	// Reason is the cause class for kinds that have one (see each EventKind).
	Reason string
	// GenerationsBehind is, for EventReuseDetected, how many rotations old the
	// presented token was: 1 for the one rotated out last.
	GenerationsBehind int
	// Label is, for EventLogin and EventReauthenticated, the session's label (the device).
	Label string
	// NewLabel is, for EventLogin, true when none of the user's other live sessions has
	// the label: a hint for a "new sign-in" notice, not proof of a new device (devices
	// of one make share a label, and the label is what the client says it is).
	NewLabel bool
}

// LogEvents returns an OnEvent hook that writes every event to l, one record each:
// message "jwtauth: " and the kind, with the attributes event, user_id, session_id,
// reason, label, generations_behind and new_label (those that are set). Reuse, rollbacks, unreadable
// records and cross-origin refusals are logged at level Warn, the rest at Info.
func LogEvents(l *slog.Logger) func(context.Context, Event) {
	return func(ctx context.Context, e Event) {
		level := slog.LevelInfo
		switch e.Kind {
		case EventReuseDetected, EventCrossOriginRefused, EventRecordUnreadable, EventRollbackDetected:
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{slog.String("event", string(e.Kind))}
		for _, a := range []struct{ k, v string }{{"user_id", e.UserID}, {"session_id", e.SessionID}, {"reason", e.Reason}, {"label", e.Label}} {
			if a.v != "" {
				attrs = append(attrs, slog.String(a.k, a.v))
			}
		}
		if e.GenerationsBehind > 0 {
			attrs = append(attrs, slog.Int("generations_behind", e.GenerationsBehind))
		}
		if e.NewLabel {
			attrs = append(attrs, slog.Bool("new_label", true))
		}
		l.LogAttrs(ctx, level, "jwtauth: "+string(e.Kind), attrs...)
	}
}
