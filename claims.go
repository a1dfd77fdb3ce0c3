package jwtauth

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
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
	// AuthTime is auth_time (OpenID Connect Core §2): when the user last proved who they
	// are in this session, by logging in or reauthenticating; a refresh keeps it. The
	// endpoints write it into every access token of a session; RequireRecentAuth reads
	// it. The zero time means absent; on the wire a NumericDate, as exp.
	AuthTime time.Time
	// Generation is sgen: how many times the session's refresh token had been rotated
	// when this token was issued, 0 at the login. The refresh endpoint compares it with
	// the session, so that a rotated-out refresh token is recognised however old it is.
	// Sign writes it whenever SessionID is set.
	Generation uint32
	// KeyThumbprint is cnf.jkt (RFC 9449 §6.1, RFC 7800 §3.1): the RFC 7638 SHA-256
	// thumbprint, base64url, of the client key the token is bound to by DPoP; empty for
	// a bearer token. Check, Protected and the endpoints accept a bound token only as
	// "Authorization: DPoP" with a proof by that key; Verify, which sees no request,
	// does not check the binding: a caller of Verify refuses a token that has one. On
	// the wire {"cnf":{"jkt":"..."}}: a cnf with any other member is refused, since this
	// package cannot confirm it. Sign gives a bound token the typ "dpop-bound+jwt".
	KeyThumbprint string
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
	for key, ok := l.member('{', nil); ok; key, ok = l.member(',', nil) {
		start := l.i
		l.skip(0)
		if key == name && l.err == nil {
			return json.Unmarshal([]byte(c.raw[start:l.i]), v)
		}
	}
	return fmt.Errorf("%w: %q", ErrClaimNotFound, name)
}

// newClaims allocates the Claims that Verify returns.
func newClaims() *Claims { return new(Claims) }

// Causes of a refused payload (see sign.go for the rest of Verify's).
var (
	errPayloadJSON = fmt.Errorf("%w: payload is not a strict JSON object", ErrTokenInvalid)
	errExp         = fmt.Errorf("%w: exp must be a positive JSON number", ErrTokenInvalid)
	errNbf         = fmt.Errorf("%w: nbf must be a positive JSON number", ErrTokenInvalid)
	errIat         = fmt.Errorf("%w: iat must be a positive JSON number", ErrTokenInvalid)
	errAuthTime    = fmt.Errorf("%w: auth_time must be a positive JSON number", ErrTokenInvalid)
	errIss         = fmt.Errorf("%w: iss must be a string", ErrTokenInvalid)
	errAud         = fmt.Errorf("%w: aud must be a string or an array of strings", ErrTokenInvalid)
	errUserID      = fmt.Errorf("%w: user id claim must be a string", ErrTokenInvalid)
	errScopes      = fmt.Errorf("%w: scopes claim must be an array of strings", ErrTokenInvalid)
	errSid         = fmt.Errorf("%w: sid must be a string", ErrTokenInvalid)
	errGen         = fmt.Errorf("%w: sgen must be a whole JSON number from 0 to 4294967295", ErrTokenInvalid)
	errCnf         = fmt.Errorf("%w: cnf must be an object of one non-empty string jkt", ErrTokenInvalid)
)

// claimTable holds the names of the registered claims, the claims that Claims holds as
// typed fields, by index: it is the one table that Verify reads claims by, that finds
// their duplicates and that keeps Sign from writing them from Extra. Its order is the
// order Sign writes them in.
type claimTable struct {
	names [numClaims]string
	// keys holds each name as it stands before its value in compact JSON, `"name":`,
	// and first the indexes of the names by their first byte, a bit each: member finds
	// a name written so with one load and one comparison, in any order.
	keys  [numClaims]string
	first [256]uint16
}

const (
	claimUserID   = iota // Config.UserIDClaim
	claimScopes          // Config.ScopesClaim
	claimIss             // RFC 7519 §4.1.1
	claimAud             // RFC 7519 §4.1.3
	claimExp             // RFC 7519 §4.1.4; exp, nbf, iat and auth_time follow each other
	claimNbf             // RFC 7519 §4.1.5
	claimIat             // RFC 7519 §4.1.6
	claimAuthTime        // OpenID Connect Core §2
	claimSid             // the session (OpenID Connect Front-Channel Logout 1.0 §3 names it sid)
	claimGen             // the session's refresh-token generation (this package's own)
	claimCnf             // RFC 7800 §3.1, with jkt of RFC 9449 §6.1
	numClaims
)

// registeredClaims are the names of the table that no Config gives.
var registeredClaims = [numClaims]string{claimIss: "iss", claimAud: "aud", claimExp: "exp", claimNbf: "nbf", claimIat: "iat",
	claimAuthTime: "auth_time", claimSid: "sid", claimGen: "sgen", claimCnf: "cnf"}

// newClaimTable returns the table of registeredClaims and the Config's names for the
// user id and the scopes, which New has checked to be non-empty RFC 9110 tokens: no
// name needs an escape in JSON.
func newClaimTable(userID, scopes string) *claimTable {
	t := &claimTable{names: registeredClaims}
	t.names[claimUserID], t.names[claimScopes] = userID, scopes
	for i, n := range t.names {
		t.keys[i] = `"` + n + `":`
		t.first[n[0]] |= 1 << i
	}
	return t
}

// index returns the index of name, or -1 for a custom claim. It compares the first
// bytes before the strings: most names differ there, and cost no call to memequal.
func (t *claimTable) index(name string) int {
	for i := range t.names {
		if n := t.names[i]; len(n) == len(name) && name != "" && n[0] == name[0] && n == name {
			return i
		}
	}
	return -1
}

// isRegisteredName reports whether name is a registered claim that no Config renames.
func isRegisteredName(name string) bool {
	return slices.Contains(registeredClaims[claimIss:], name)
}

// member steps to the next member of the object that l reads, as lexer.member does,
// and returns the index of its name in t, or -1 and the name of a custom claim. A
// registered name right after the '{' or ',' (compact JSON, as Sign and other libraries
// write it) is found with one table load and one comparison, whatever the order of
// the claims; any other is read by lexer.member.
func (t *claimTable) member(l *lexer, delim byte) (int, string, bool) {
	s, i := l.s, l.i
	if i+2 < len(s) && s[i] == delim && s[i+1] == '"' {
		for m := t.first[s[i+2]]; m != 0; m &= m - 1 {
			if k := bits.TrailingZeros16(m); strings.HasPrefix(s[i+1:], t.keys[k]) {
				l.i = i + 1 + len(t.keys[k])
				l.ws()
				return k, "", true
			}
		}
	}
	name, ok := l.member(delim, nil)
	if !ok {
		return -1, "", false
	}
	return t.index(name), name, true
}

// parse reads the registered claims of an authenticated payload into c and keeps the
// payload for Get. RFC 7519 §7.2 step 10: the claims must be a JSON object. RFC 7519
// §4: claim names "MUST be unique"; a parser must reject duplicates or keep the last. We
// reject them, at every depth, so that no two parsers can read two different tokens out
// of one (an "exp" twice, the first past and the second future).
func (t *claimTable) parse(c *Claims, raw string) error {
	c.raw = raw
	l := lexer{s: raw, syntax: errPayloadJSON}
	var seen uint16 // the registered claims read, a bit per index
	var keys keySet // the custom names read
	for i, name, ok := t.member(&l, '{'); ok; i, name, ok = t.member(&l, ',') {
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
		case claimAuthTime:
			c.AuthTime = l.date(errAuthTime)
		case claimUserID:
			c.UserID = l.str(errUserID)
		case claimScopes:
			c.Scopes = l.strs(c.scopeBuf[:0], errScopes)
		case claimSid:
			c.SessionID = l.str(errSid)
		case claimGen:
			g, err := strconv.ParseUint(l.number(errGen), 10, 32)
			if err != nil {
				l.fail(errGen)
			}
			c.Generation = uint32(g)
		case claimCnf:
			// The one confirmation method this package checks; any other member
			// (jwk, x5t#S256, ...) asks for a check it cannot make.
			var keys keySet
			for name, ok := l.member('{', &keys); ok; name, ok = l.member(',', &keys) {
				if name != "jkt" {
					l.fail(errCnf)
				}
				c.KeyThumbprint = l.str(errCnf)
			}
			if c.KeyThumbprint == "" {
				l.fail(errCnf)
			}
		}
	}
	l.end()
	return l.err
}

// maxNumericDate is 9999-12-31T23:59:59Z. Larger dates are refused: they are not real
// expiry times, and they would overflow time arithmetic.
const maxNumericDate = 253402300799

// date reads a NumericDate: a positive JSON number of seconds, fractions allowed
// (RFC 7519 §2), at most maxNumericDate; anything else fails with bad. Strings, null, 0
// and negatives are refused.
func (l *lexer) date(bad error) time.Time {
	// The whole seconds Sign writes, in one pass: at most twelve digits (which cannot
	// overflow an int64), no leading zero, and no fraction, exponent or digit after them.
	d, sec, n := l.s[l.i:], int64(0), 0
	for ; n < len(d) && n < 12 && d[n]-'0' <= 9; n++ {
		sec = sec*10 + int64(d[n]-'0')
	}
	if n > 0 && d[0] != '0' && sec <= maxNumericDate && (n == len(d) || d[n] != '.' && d[n]|0x20 != 'e' && d[n]-'0' > 9) {
		l.i += n
		return time.Unix(sec, 0).UTC()
	}
	f, err := strconv.ParseFloat(l.number(bad), 64)
	if err != nil || !(f > 0) || f > maxNumericDate {
		l.fail(bad)
		return time.Time{}
	}
	sec2, frac := math.Modf(f)
	return time.Unix(int64(sec2), int64(frac*1e9)).UTC()
}

// appendPayload appends the JSON object for c: registered claims in a fixed order, then
// Extra sorted by name, so that equal claims always give the same bytes.
func (t *claimTable) appendPayload(b []byte, c *Claims) ([]byte, error) {
	names := &t.names
	w := objWriter{b: append(b, '{')}
	w.member(names[claimUserID], c.UserID)
	if c.Scopes != nil {
		w.key(names[claimScopes])
		w.strs(c.Scopes)
	}
	w.member(names[claimIss], c.Issuer)
	if len(c.Audience) > 0 {
		w.key(names[claimAud])
		if len(c.Audience) == 1 {
			w.str(c.Audience[0])
		} else {
			w.strs(c.Audience)
		}
	}
	for i, t := range [...]time.Time{c.ExpiresAt, c.NotBefore, c.IssuedAt, c.AuthTime} {
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
		w.member(names[claimSid], c.SessionID)
		w.key(names[claimGen])
		w.b = strconv.AppendUint(w.b, uint64(c.Generation), 10)
	}
	if c.KeyThumbprint != "" {
		w.key(names[claimCnf])
		w.b = append(w.b, `{"jkt":`...)
		w.str(c.KeyThumbprint)
		w.b = append(w.b, '}')
	}
	appendExtra(&w, names, c.Extra)
	return append(w.b, '}'), w.err
}

// appendExtra appends the custom claims sorted by name. A string is written directly,
// any other value through encoding/json, whose JSON must be strict and say what the
// value says.
func appendExtra(w *objWriter, names *[numClaims]string, extra map[string]any) {
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
