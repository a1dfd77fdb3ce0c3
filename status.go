package jwtauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// How a failure is answered: the *Error a handler writes, the table that maps every
// cause to its status, exception name, reason and RFC 6750 challenge, and the JSON
// writers.

// Error is the HTTP form of a failure: the status and the fields of the JSON error body
// {"reasons": [Reason], "exception": Exception}. Config.ErrorHandler always receives an
// *Error (get it with errors.As); Unwrap gives the cause, which wraps one of the
// package's sentinel errors or, for a 500, the failing hook's error. The cause may hold a
// hook's text: log it, never send it.
//
// Endpoints.Authenticate returns an *Error with a 4xx Status to answer a login with
// that status and Reason; an empty Exception is then "AuthenticationFailed".
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Exception is the Sanic JWT exception name, such as "Unauthorized".
	Exception string
	// Reason is the message for the client. It never holds a hook's error text, except
	// the Reason of an *Error that Authenticate returned.
	Reason string

	challenge string    // the WWW-Authenticate value to send, empty for none
	err       error     // the cause
	verify    bool      // the /verify endpoint adds "valid": false to the body
	event     EventKind // emitted when the error is answered, with class as Reason
	class     string
}

// Error returns the cause's text, prefixed with the status.
func (e *Error) Error() string {
	if e.err == nil {
		return fmt.Sprintf("jwtauth: %d %s", e.Status, e.Reason)
	}
	return fmt.Sprintf("%d: %v", e.Status, e.err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.err }

// RFC 6750 §3 challenges. §3.1: "If the request lacks any authentication information
// (e.g., the client was unaware that authentication is necessary or attempted using an
// unsupported authentication method), the resource server SHOULD NOT include an error
// code or other error information", so a missing token gets the bare scheme.
const (
	challengeBare         = `Bearer`
	challengeInvalidToken = `Bearer error="invalid_token"`
	challengeInvalidReq   = `Bearer error="invalid_request"`
	challengeScope        = `Bearer error="insufficient_scope"`
	// RFC 9449 §7.1: a DPoP failure is answered with the DPoP scheme and the algs the
	// server takes.
	challengeDPoPProof = `DPoP error="invalid_dpop_proof", algs="ES256"`
	challengeDPoPToken = `DPoP error="invalid_token", algs="ES256"`
)

// errorClass is one row of errorClasses.
type errorClass struct {
	cause     error // matched with errors.Is
	status    int
	exception string
	reason    string               // with %q: what arg gives
	arg       func(a *Auth) string // nil for a reason without %q
	challenge string
	debug     bool      // InsecureDebug answers 400 with the cause
	event     EventKind // emitted with the answer; EventTokenRejected when class is set
	class     string    // the EventTokenRejected reason
}

// errorClasses decides the HTTP answer of every error the package produces, and the
// event it emits: the first row whose cause the error wraps wins, and an error that
// matches none is a 500. These are Sanic JWT's statuses, exception names and reasons,
// listed in the documentation's error table. It is a read-only table.
var errorClasses = []errorClass{
	{cause: errBodyTooLarge, status: 413, exception: "RequestEntityTooLarge", reason: "Request body too large."},
	{cause: errRefreshOff, status: 404, exception: "NotFound", reason: "Not found: refresh tokens and sessions are off on this server."},
	{cause: errNotUnderPrefix, status: 404, exception: "NotFound", arg: urlPrefix, reason: "Not found: the endpoints are under %q; mount the handler with Auth.Mount, or set Endpoints.URLPrefix."},
	{cause: errNoEndpoint, status: 404, exception: "NotFound", reason: "Not found."},
	{cause: errMethod, status: 405, exception: "MethodNotAllowed", reason: "Method not allowed."},
	{cause: errHeaderIgnored, status: 401, exception: "MissingAuthorizationCookie", challenge: challengeBare, debug: true, class: "missing",
		reason: "Authorization cookie not present (the Authorization header is not read in cookie mode without HeaderFallback)."},
	{cause: errNoCookie, status: 401, exception: "MissingAuthorizationCookie", challenge: challengeBare, debug: true, class: "missing", reason: "Authorization cookie not present."},
	{cause: errCrossOrigin, status: 403, exception: "CrossOriginRequest", event: EventCrossOriginRefused, reason: "Cross-origin request refused."},
	{cause: errNoQueryArg, status: 401, exception: "MissingAuthorizationQueryArg", challenge: challengeBare, debug: true, class: "missing", reason: "Authorization query argument not present."},
	{cause: ErrTokenMissing, status: 401, exception: "MissingAuthorizationHeader", challenge: challengeBare, debug: true, class: "missing", reason: "Authorization header not present."},
	// RFC 6750 §3.1 names this invalid_request (a 400); we keep Sanic JWT's 401.
	{cause: ErrInvalidAuthorizationHeader, status: 401, exception: "InvalidAuthorizationHeader", arg: headerForm, challenge: challengeInvalidReq, debug: true, class: "malformed_header",
		reason: "Authorization header is invalid: expected %q."},
	{cause: ErrTokenExpired, status: 401, exception: "Unauthorized", challenge: challengeInvalidToken, class: "expired", reason: "Signature has expired."},
	{cause: ErrTokenNotYetValid, status: 401, exception: "Unauthorized", challenge: challengeInvalidToken, class: "not_yet_valid", reason: "The token is not yet valid (nbf)."},
	{cause: ErrInvalidIssuer, status: 401, exception: "Unauthorized", challenge: challengeInvalidToken, class: "wrong_issuer", reason: "Invalid issuer."},
	{cause: ErrInvalidAudience, status: 401, exception: "Unauthorized", challenge: challengeInvalidToken, class: "wrong_audience", reason: "Invalid audience."},
	{cause: ErrVerificationFailed, status: 401, exception: "Unauthorized", challenge: challengeInvalidToken, class: "verification_failed", reason: "Verifications were not met."},
	{cause: errDPoPBinding, status: 401, exception: "Unauthorized", challenge: challengeDPoPToken, debug: true, class: "dpop_binding",
		reason: "The token is bound to a key: present it as DPoP with a proof by that key."},
	{cause: errDPoPProof, status: 401, exception: "InvalidDPoPProof", challenge: challengeDPoPProof, debug: true, class: "invalid_dpop_proof", reason: "Invalid DPoP proof."},
	{cause: errUnbindable, status: 400, exception: "InvalidRequest", reason: "DPoP needs the Authorization header with a scheme, and a client that is not answered with cookies."},
	{cause: ErrTokenInvalid, status: 401, exception: "Unauthorized", challenge: challengeInvalidToken, debug: true, class: "invalid", reason: "Auth required."},
	// RFC 6750 §3.1: insufficient_scope "SHOULD respond with the HTTP 403".
	{cause: ErrInvalidScope, status: 403, exception: "Unauthorized", challenge: challengeScope, class: "insufficient_scope", reason: "Invalid scope."},
	// An authentic token naming a user who no longer exists: RFC 6750 §3.1
	// invalid_token covers a token that is "revoked ... or invalid for other reasons".
	{cause: ErrUserNotFound, status: 401, exception: "Unauthorized", challenge: challengeInvalidToken, class: "unknown_user", reason: "User not found."},
	{cause: errRefreshRefused, status: 401, exception: "AuthenticationFailed", challenge: challengeBare, debug: true, reason: "Authentication failed."},
	{cause: ErrAuthenticationFailed, status: 401, exception: "AuthenticationFailed", challenge: challengeBare, reason: "Authentication failed."},
	{cause: errNoRefreshBody, status: 400, exception: "MissingRefreshToken", arg: refreshName, reason: "Refresh token %q not present in the JSON body."},
	{cause: errNoRefreshCook, status: 400, exception: "MissingRefreshToken", arg: refreshName, reason: "Refresh token %q not present as a cookie."},
	{cause: errNoRefreshQuery, status: 400, exception: "MissingRefreshToken", arg: refreshName, reason: "Refresh token %q not present as a query argument."},
	{cause: errTwoRefresh, status: 400, exception: "InvalidRefreshToken", arg: refreshName, reason: "Refresh token %q sent more than once."},
	{cause: errBadBody, status: 400, exception: "InvalidRequestBody", arg: refreshName, reason: "Request body must be a JSON object whose %q is a string."},
	{cause: ErrUnavailable, status: 503, exception: "ServiceUnavailable", reason: "Busy: try again shortly."},
	{cause: errLogoutScope, status: 400, exception: "InvalidRequest", reason: "The logout scope must be others or all."},
	{cause: errUnknownSession, status: 404, exception: "NotFound", reason: "Session not found."},
	{cause: errReauthOtherUser, status: 403, exception: "WrongUser", reason: "These credentials are another user's."},
}

func refreshName(a *Auth) string { return a.cfg.RefreshTokenName }
func urlPrefix(a *Auth) string   { return a.ep.URLPrefix }

// headerForm is what the authorization header must hold, for the reason that refuses it.
func headerForm(a *Auth) string {
	if a.cfg.AuthorizationHeaderNoPrefix {
		return "<token>"
	}
	return a.cfg.AuthorizationHeaderPrefix + " <token>"
}

// httpError maps err to its response, with errorClasses. A hook's failure is a 500
// whatever it wraps, even one of our sentinels or an *Error: it is not a verdict about
// the request, and its text must not reach the client.
func (a *Auth) httpError(err error) *Error {
	e := &Error{Status: 500, Exception: "InternalServerError", Reason: "Internal server error.", err: err}
	if errors.As(err, new(*internalError)) || errors.As(err, &e) {
		return e
	}
	if errors.As(err, new(*http.MaxBytesError)) {
		err = fmt.Errorf("%w: %w", errBodyTooLarge, err)
	}
	for _, c := range errorClasses {
		if errors.Is(err, c.cause) {
			e.Status, e.Exception, e.Reason, e.challenge, e.event, e.class = c.status, c.exception, c.reason, c.challenge, c.event, c.class
			if c.class != "" {
				e.event = EventTokenRejected
			}
			if c.arg != nil {
				e.Reason = fmt.Sprintf(c.reason, c.arg(a))
			}
			if c.debug && a.cfg.InsecureDebug {
				e.Status, e.Reason = http.StatusBadRequest, strings.TrimPrefix(err.Error(), "jwtauth: ")
			}
			break
		}
	}
	return e
}

// writeError answers r with e. A 500 is logged with its cause first; the response never
// carries the cause of a 500.
func (a *Auth) writeError(w http.ResponseWriter, r *http.Request, e *Error) {
	if e.event != "" {
		a.cfg.OnEvent(r.Context(), Event{Kind: e.event, Reason: e.class})
	}
	if e.Status >= 500 {
		a.cfg.ErrorLog.ErrorContext(r.Context(), "jwtauth: request failed",
			"method", r.Method, "path", r.URL.Path, "status", e.Status, "err", e.err)
	}
	if e.challenge != "" {
		w.Header().Set("WWW-Authenticate", e.challenge)
	}
	if e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1") // RFC 9110 §10.2.3, in seconds
	}
	if a.cfg.ErrorHandler != nil {
		a.cfg.ErrorHandler(w, r, e)
		return
	}
	body := map[string]any{"reasons": []string{e.Reason}, "exception": e.Exception}
	if e.verify {
		body["valid"] = false
	}
	_ = writeJSON(w, e.Status, body) // strings and a bool: it cannot fail
}

// writeJSON writes v with status. If v cannot be marshalled (a caller's Profile, or a
// time past year 9999) it writes nothing and returns the error, for the caller to answer.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err == nil {
		writeJSONBytes(w, status, b)
	}
	return err
}

// writeJSONBytes writes the JSON document b. Responses that may carry tokens must not be
// cached (RFC 6749 §5.1 asks the same of token responses), so every endpoint says no-store.
func writeJSONBytes(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
