package jwtauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Claims is the payload of an access token: the registered claims as typed fields, and
// the custom ones on request through Get.
//
// A Claims returned by Verify must be treated as read-only; it may share memory with
// other values of the same token.
type Claims struct {
	// UserID is the user-id claim (Config.UserIDClaim, default "user_id"); a JSON string.
	UserID string
	// Scopes is the scopes claim (Config.ScopesClaim, default "scopes"); a JSON array of
	// strings. Nil when the token has none.
	Scopes []string
	// ExpiresAt, NotBefore and IssuedAt are exp, nbf and iat (RFC 7519 §4.1.4-4.1.6).
	// The zero time means absent. On the wire they are NumericDates: positive JSON
	// numbers of seconds, fractions allowed (RFC 7519 §2).
	ExpiresAt time.Time
	NotBefore time.Time
	IssuedAt  time.Time
	// Issuer is iss (RFC 7519 §4.1.1).
	Issuer string
	// SessionID is sid: the login session the token was issued for, with refresh tokens
	// on (Config.Refresh). It names the session; it is not a secret.
	SessionID string
	// Audience is aud (RFC 7519 §4.1.3): a string or an array of strings on the wire.
	// Sign writes one audience as a string.
	Audience []string
	// Extra holds custom claims for Sign to write (keys sorted). Verify leaves it nil:
	// read custom claims of a verified token with Get.
	Extra map[string]any

	raw string // the verified payload JSON, for Get

	// Inline storage for the common case, so that verifying a token with up to four
	// scopes and one audience allocates neither slice.
	scopeBuf [4]string
	audBuf   [1]string
}

// ErrClaimNotFound is returned by Claims.Get for a claim the token does not carry.
var ErrClaimNotFound = errors.New("jwtauth: claim not found")

// Get decodes the claim name into v with encoding/json. It reads Extra first, then the
// verified payload. A missing claim is an error wrapping ErrClaimNotFound.
//
// Names match exactly here, but encoding/json matches struct fields without regard to
// case: an object claim {"admin":false,"Admin":true} decodes into a struct field Admin
// as true. Decode object claims into maps, or sign only member names you control.
func (c *Claims) Get(name string, v any) error {
	if val, ok := c.Extra[name]; ok {
		b, err := json.Marshal(val)
		if err != nil {
			return fmt.Errorf("jwtauth: claim %q: %w", name, err)
		}
		return json.Unmarshal(b, v)
	}
	// raw passed parseClaims (or is empty): strict JSON without duplicate names.
	l := lexer{s: c.raw, syntax: errPayloadJSON}
	for key, ok := l.member(true, nil); ok; key, ok = l.member(false, nil) {
		start := l.i
		l.skip(0)
		if key == name && l.err == nil {
			return json.Unmarshal([]byte(c.raw[start:l.i]), v)
		}
	}
	return fmt.Errorf("%w: %q", ErrClaimNotFound, name)
}

// Claim-specific causes of ErrTokenInvalid (see sign.go for the rest).
var (
	errExp     = fmt.Errorf("%w: exp must be a positive JSON number", ErrTokenInvalid)
	errNbf     = fmt.Errorf("%w: nbf must be a positive JSON number", ErrTokenInvalid)
	errIat     = fmt.Errorf("%w: iat must be a positive JSON number", ErrTokenInvalid)
	errIss     = fmt.Errorf("%w: iss must be a string", ErrTokenInvalid)
	errAud     = fmt.Errorf("%w: aud must be a string or an array of strings", ErrTokenInvalid)
	errUserID  = fmt.Errorf("%w: user id claim must be a string", ErrTokenInvalid)
	errScopes  = fmt.Errorf("%w: scopes claim must be an array of strings", ErrTokenInvalid)
	errSid     = fmt.Errorf("%w: sid must be a string", ErrTokenInvalid)
	errNoExp   = fmt.Errorf("%w: exp is required", ErrTokenInvalid)
	errExpired = fmt.Errorf("%w: exp is past", ErrTokenExpired)
	errNotYet  = fmt.Errorf("%w: nbf is in the future", ErrTokenNotYetValid)
	errIssuer  = fmt.Errorf("%w: iss does not match", ErrInvalidIssuer)
	errAudSet  = fmt.Errorf("%w: aud does not contain the expected audience", ErrInvalidAudience)
)

// claimTable holds the names of the registered claims, the claims that Claims holds as
// typed fields, by index: it is the one table that Verify reads claims by, that finds
// their duplicates and that keeps Sign from writing them from Extra. Its order is the
// order Sign writes them in.
type claimTable [numClaims]string

const (
	claimUserID = iota // Config.UserIDClaim
	claimScopes        // Config.ScopesClaim
	claimIss           // RFC 7519 §4.1.1
	claimAud           // RFC 7519 §4.1.3
	claimExp           // RFC 7519 §4.1.4; exp, nbf and iat follow each other
	claimNbf           // RFC 7519 §4.1.5
	claimIat           // RFC 7519 §4.1.6
	claimSid           // the session (OpenID Connect Front-Channel Logout 1.0 §3 names it sid)
	numClaims
)

// registeredClaims is the table without the names that the Config gives.
var registeredClaims = claimTable{claimIss: "iss", claimAud: "aud", claimExp: "exp", claimNbf: "nbf", claimIat: "iat", claimSid: "sid"}

// claims returns the table of a: registeredClaims with the Config's names. New keeps
// it in a.names.
func (a *Auth) claims() claimTable {
	t := registeredClaims
	t[claimUserID], t[claimScopes] = a.cfg.UserIDClaim, a.cfg.ScopesClaim
	return t
}

// index returns the index of name, or -1 for a custom claim. The search starts after
// prev, the index of the previous match: a payload that Sign wrote lists the registered
// claims in table order, so that the first comparison usually matches.
func (t *claimTable) index(name string, prev int) int {
	for k := 1; k <= numClaims; k++ {
		if i := (prev + k) % numClaims; t[i] == name {
			return i
		}
	}
	return -1
}

// isRegisteredName reports whether name is a registered claim that no Config renames.
func isRegisteredName(name string) bool {
	return slices.Contains(registeredClaims[claimIss:], name)
}

// parseClaims reads the registered claims of an authenticated payload into c and keeps
// the payload for Get. RFC 7519 §7.2 step 10: the claims must be a JSON object. RFC 7519
// §4: claim names "MUST be unique"; a parser must reject duplicates or keep the last. We
// reject them, at every depth, so that no two parsers can read two different tokens out
// of one (an "exp" twice, the first past and the second future).
func (a *Auth) parseClaims(c *Claims, raw string) error {
	c.raw = raw
	names := &a.names
	l := lexer{s: raw, syntax: errPayloadJSON}
	var seen uint8 // the registered claims read, a bit per index
	prev := -1     // the index of the last registered claim read
	if l.quickClaims(c, &a.jsonKeys, &seen, &prev) {
		return nil
	}
	var keys keySet // the custom names read
	for name, ok := l.member(l.i == 0, nil); ok; name, ok = l.member(false, nil) {
		i := names.index(name, prev)
		if i < 0 {
			if !keys.add(name) {
				l.fail(errDuplicateKey)
			}
			l.skip(0)
			continue
		}
		if seen&(1<<i) != 0 {
			l.fail(errDuplicateKey)
		}
		seen |= 1 << i
		prev = i
		switch i {
		case claimIss:
			c.Issuer = l.str(errIss)
		case claimAud:
			// One audience may be a string instead of an array (RFC 7519 §4.1.3).
			if l.peek() == '"' {
				c.audBuf[0] = l.str(errAud)
				c.Audience = c.audBuf[:]
			} else {
				c.Audience = l.strs(c.audBuf[:0], errAud)
			}
		case claimExp:
			c.ExpiresAt = l.date(errExp)
		case claimNbf:
			c.NotBefore = l.date(errNbf)
		case claimIat:
			c.IssuedAt = l.date(errIat)
		case claimUserID:
			c.UserID = l.str(errUserID)
		case claimScopes:
			c.Scopes = l.strs(c.scopeBuf[:0], errScopes)
		case claimSid:
			c.SessionID = l.str(errSid)
		}
	}
	l.end()
	return l.err
}

// quickClaims is the claims parse's fast path. It reads the registered claims that are
// written as Sign writes them: no whitespace, strings of printable ASCII without
// escapes, dates in whole seconds. It stops at the first member written any other way
// (a custom claim, a claim out of Sign's order, an escape, a fraction, malformed JSON)
// and leaves l at the '{' or ',' before that member, or at the closing '}': the strict
// scan goes on from there and reads what it stopped at, so every error is the strict
// scan's. It reads the claims in table order only, so it never reads one twice. It
// reports whether it read the whole object, which leaves nothing to the strict scan.
func (l *lexer) quickClaims(c *Claims, keys *claimTable, seen *uint8, prev *int) bool {
	s, delim := l.s, byte('{')
	for ; l.i < len(s) && s[l.i] == delim; delim = ',' {
		i := *prev + 1
		for i < numClaims && !strings.HasPrefix(s[l.i+1:], keys[i]) {
			i++
		}
		if i == numClaims {
			return false
		}
		end, ok := quickClaim(c, i, s, l.i+1+len(keys[i]))
		if !ok || end == len(s) || s[end] != ',' && s[end] != '}' {
			return false
		}
		*seen |= 1 << i
		*prev = i
		l.i = end
	}
	return l.i > 0 && l.i == len(s)-1 && s[l.i] == '}' // after a member, the last byte
}

// quickClaim reads the value at s[v] of the registered claim i into c, if it is written
// as Sign writes it, and returns the index after it.
func quickClaim(c *Claims, i int, s string, v int) (end int, ok bool) {
	switch i {
	case claimUserID:
		c.UserID, end, ok = plainStr(s, v)
	case claimIss:
		c.Issuer, end, ok = plainStr(s, v)
	case claimScopes:
		c.Scopes, end, ok = plainStrs(s, v, c.scopeBuf[:0])
	case claimAud: // a string or an array of strings (RFC 7519 §4.1.3)
		c.Audience = c.audBuf[:]
		if c.audBuf[0], end, ok = plainStr(s, v); !ok {
			c.Audience, end, ok = plainStrs(s, v, c.audBuf[:0])
		}
	case claimExp:
		c.ExpiresAt, end, ok = wholeSeconds(s, v)
	case claimNbf:
		c.NotBefore, end, ok = wholeSeconds(s, v)
	case claimIat:
		c.IssuedAt, end, ok = wholeSeconds(s, v)
	case claimSid:
		c.SessionID, end, ok = plainStr(s, v)
	}
	return end, ok
}

// maxNumericDate is 9999-12-31T23:59:59Z. Larger dates are refused: they are not real
// expiry times, and they would overflow time arithmetic.
const maxNumericDate = 253402300799

// date reads a NumericDate: a positive JSON number of seconds, fractions allowed
// (RFC 7519 §2), at most maxNumericDate; anything else fails with bad. Strings, null, 0
// and negatives are refused.
func (l *lexer) date(bad error) time.Time {
	text := l.number(bad)
	// Fast path: the whole seconds Sign writes.
	if t, end, ok := wholeSeconds(text, 0); ok && end == len(text) {
		return t
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || !(f > 0) || f > maxNumericDate {
		l.fail(bad)
		return time.Time{}
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

// wholeSeconds reads the digits at s[i] as a NumericDate if they are written as Sign
// writes one: no leading zero, at most twelve digits (which cannot overflow an int64),
// at most maxNumericDate. It returns the date and the index after the digits it read.
func wholeSeconds(s string, i int) (time.Time, int, bool) {
	var sec int64
	j := i
	for end := min(i+12, len(s)); j < end && s[j]-'0' <= 9; j++ {
		sec = sec*10 + int64(s[j]-'0')
	}
	if j == i || s[i] == '0' || sec > maxNumericDate {
		return time.Time{}, j, false
	}
	return time.Unix(sec, 0).UTC(), j, true
}

// validate runs the checks against the clock and the Config, after RFC 7519 §7.2 has
// accepted the token: exp, nbf, iss, aud, then ExtraVerifications.
func (a *Auth) validate(c *Claims, now time.Time, allowExpired bool) error {
	// RFC 7519 §4.1.4: the current time "MUST be before the expiration date/time";
	// RFC 7519 §4.1.4 allows "some small leeway ... to account for clock skew". A token
	// exactly Leeway past exp is still accepted.
	if a.verifyExp {
		if c.ExpiresAt.IsZero() {
			return errNoExp
		}
		if !allowExpired && now.After(c.ExpiresAt.Add(a.leeway)) {
			return errExpired
		}
	}
	// RFC 7519 §4.1.5: not before nbf, with the same leeway.
	if !c.NotBefore.IsZero() && now.Before(c.NotBefore.Add(-a.leeway)) {
		return errNotYet
	}
	// RFC 7519 §4.1.1 and §4.1.3: when we expect an issuer or audience, a token without
	// it, or with another, is rejected.
	if a.cfg.Issuer != "" && c.Issuer != a.cfg.Issuer {
		return errIssuer
	}
	if a.cfg.Audience != "" && !slices.Contains(c.Audience, a.cfg.Audience) {
		return errAudSet
	}
	for _, f := range a.cfg.ExtraVerifications {
		if err := f(c); err != nil {
			return fmt.Errorf("%w: %w", ErrVerificationFailed, err)
		}
	}
	return nil
}

// appendPayload appends the JSON object for c: registered claims in a fixed order, then
// Extra sorted by name, so that equal claims always give the same bytes.
func (a *Auth) appendPayload(b []byte, c *Claims) ([]byte, error) {
	names := &a.names
	w := objWriter{b: append(b, '{')}
	if c.UserID != "" {
		w.key(names[claimUserID])
		w.str(c.UserID)
	}
	if c.Scopes != nil {
		w.key(names[claimScopes])
		w.strs(c.Scopes)
	}
	if c.Issuer != "" {
		w.key(names[claimIss])
		w.str(c.Issuer)
	}
	if len(c.Audience) > 0 {
		w.key(names[claimAud])
		if len(c.Audience) == 1 {
			w.str(c.Audience[0])
		} else {
			w.strs(c.Audience)
		}
	}
	for i, t := range [...]time.Time{c.ExpiresAt, c.NotBefore, c.IssuedAt} {
		switch sec := t.Unix(); {
		case t.IsZero():
		case sec <= 0 || sec > maxNumericDate:
			w.fail(fmt.Errorf("%w: %s out of range", ErrInvalidClaims, names[claimExp+i]))
		default:
			w.key(names[claimExp+i])
			w.b = strconv.AppendInt(w.b, sec, 10)
		}
	}
	if c.SessionID != "" {
		w.key(names[claimSid])
		w.str(c.SessionID)
	}
	appendExtra(&w, names, c.Extra)
	return append(w.b, '}'), w.err
}

// appendExtra appends the custom claims sorted by name. A string is written directly,
// any other value through encoding/json, whose JSON must be strict and say what the
// value says.
func appendExtra(w *objWriter, names *claimTable, extra map[string]any) {
	keys := make([]string, 0, len(extra))
	for k := range extra {
		if slices.Contains(names[:], k) {
			w.fail(fmt.Errorf("%w: custom claim %q overrides a registered claim", ErrInvalidClaims, k))
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		w.key(k)
		if s, ok := extra[k].(string); ok {
			w.str(s)
			continue
		}
		v, err := json.Marshal(extra[k])
		if err != nil {
			w.fail(fmt.Errorf("%w: custom claim %q: %v", ErrInvalidClaims, k, err))
			continue
		}
		// encoding/json writes what a json.Marshaler or json.RawMessage gives it:
		// duplicate names, lone surrogates, deep nesting. Verify would refuse the
		// token forever, so refuse to sign it.
		l := lexer{s: string(v), syntax: errPayloadJSON}
		l.skip(0)
		if l.end(); l.err != nil {
			w.fail(fmt.Errorf("%w: custom claim %q is not strict JSON", ErrInvalidClaims, k))
		}
		// It also writes U+FFFD for invalid UTF-8 nested in the value: the token would
		// say something else than c.
		if replacesInvalidUTF8(v) {
			w.fail(errSignUTF8)
		}
		w.b = append(w.b, v...)
	}
}

// ScopesMatch is the default Config.ScopeValidator: Sanic JWT's scope rules. A scope is
// "namespace[:action[:action...]]". A required scope is met by a user scope when the
// namespaces are equal (or the required namespace is empty) and
//   - the required scope has actions and the user scope has none (a namespace-only user
//     scope covers every action), or
//   - both have actions and the user scope has all the required ones (any one of them
//     when requireAllActions is false), or
//   - neither has actions.
//
// One matching user scope is enough for a required scope. All required scopes must be
// met (any one when requireAll is false). There is no "*" wildcard, and a user without
// scopes, or a route requiring none, never passes.
func ScopesMatch(required, user []string, requireAll, requireAllActions bool) bool {
	if len(user) == 0 || len(required) == 0 {
		return false
	}
	for _, req := range required {
		met := false
		for _, u := range user {
			if scopeMatches(req, u, requireAllActions) {
				met = true
				break
			}
		}
		if met && !requireAll {
			return true
		}
		if !met && requireAll {
			return false
		}
	}
	return requireAll
}

func scopeMatches(required, user string, requireAllActions bool) bool {
	reqNS, reqActs, reqHas := strings.Cut(required, ":")
	userNS, userActs, userHas := strings.Cut(user, ":")
	if reqNS != "" && reqNS != userNS {
		return false
	}
	switch {
	case !reqHas:
		return !userHas
	case !userHas:
		return true
	}
	have := strings.Split(userActs, ":")
	for _, act := range strings.Split(reqActs, ":") {
		found := slices.Contains(have, act)
		if found && !requireAllActions {
			return true
		}
		if !found && requireAllActions {
			return false
		}
	}
	return requireAllActions
}
