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
	"unicode/utf16"
	"unicode/utf8"
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
	// SessionID is sid: the login session the token was issued for, when refresh
	// tokens are on. It names the session; it is not a secret.
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
	p := scanner{s: c.raw}
	var keys keySet
	if !p.open('{') {
		return fmt.Errorf("%w: %q", ErrClaimNotFound, name)
	}
	for n := 0; ; n++ {
		key, done, err := p.member(&keys, n)
		if err != nil || done {
			return fmt.Errorf("%w: %q", ErrClaimNotFound, name)
		}
		start := p.i
		if !p.skip(0) {
			return fmt.Errorf("%w: %q", ErrClaimNotFound, name)
		}
		if key == name {
			return json.Unmarshal([]byte(c.raw[start:p.i]), v)
		}
	}
}

// Claim-specific causes of ErrTokenInvalid (see sign.go for the rest).
var (
	errExp     = fmt.Errorf("%w: exp must be a positive JSON number", ErrTokenInvalid)
	errNbf     = fmt.Errorf("%w: nbf must be a positive JSON number", ErrTokenInvalid)
	errIat     = fmt.Errorf("%w: iat must be a positive JSON number", ErrTokenInvalid)
	errIss     = fmt.Errorf("%w: iss must be a string", ErrTokenInvalid)
	errSid     = fmt.Errorf("%w: sid must be a string", ErrTokenInvalid)
	errAud     = fmt.Errorf("%w: aud must be a string or an array of strings", ErrTokenInvalid)
	errUserID  = fmt.Errorf("%w: user id claim must be a string", ErrTokenInvalid)
	errScopes  = fmt.Errorf("%w: scopes claim must be an array of strings", ErrTokenInvalid)
	errNoExp   = fmt.Errorf("%w: exp is required", ErrTokenInvalid)
	errExpired = fmt.Errorf("%w: exp is past", ErrTokenExpired)
	errNotYet  = fmt.Errorf("%w: nbf is in the future", ErrTokenNotYetValid)
	errIssuer  = fmt.Errorf("%w: iss does not match", ErrInvalidIssuer)
	errAudSet  = fmt.Errorf("%w: aud does not contain the expected audience", ErrInvalidAudience)
)

// parseClaims reads the registered claims of an authenticated payload into c and keeps
// the payload for Get. RFC 7519 §7.2 step 10: the claims must be a JSON object. RFC 7519
// §4: claim names "MUST be unique"; a parser must reject duplicates or keep the last. We
// reject them, at every depth, so that no two parsers can read two different tokens out
// of one (an "exp" twice, the first past and the second future).
func (a *Auth) parseClaims(c *Claims, raw string) error {
	c.raw = raw
	p := scanner{s: raw}
	// Duplicates: registered names are tracked in a bit set, custom names in a keySet.
	var seen uint8
	var keys keySet
	if !p.open('{') {
		return errPayloadJSON
	}
	for n := 0; ; n++ {
		name, done, err := p.member(nil, n)
		if err != nil {
			return payloadErr(err)
		}
		if done {
			break
		}
		if bit := a.registeredBit(name); bit != 0 {
			if seen&bit != 0 {
				return errDuplicateKey
			}
			seen |= bit
		} else if !keys.add(name) {
			return errDuplicateKey
		}
		var ok bool
		switch name {
		case "exp":
			if c.ExpiresAt, ok = p.date(); !ok {
				return errExp
			}
		case "nbf":
			if c.NotBefore, ok = p.date(); !ok {
				return errNbf
			}
		case "iat":
			if c.IssuedAt, ok = p.date(); !ok {
				return errIat
			}
		case "iss":
			if c.Issuer, ok = p.str(); !ok {
				return p.failOr(errIss)
			}
		case "sid":
			if c.SessionID, ok = p.str(); !ok {
				return p.failOr(errSid)
			}
		case "aud":
			if p.peek() == '"' {
				c.audBuf[0], ok = p.str()
				c.Audience = c.audBuf[:]
			} else {
				c.Audience, ok = p.strings(c.audBuf[:0])
			}
			if !ok {
				return p.failOr(errAud)
			}
		case a.cfg.UserIDClaim:
			if c.UserID, ok = p.str(); !ok {
				return p.failOr(errUserID)
			}
		case a.cfg.ScopesClaim:
			if c.Scopes, ok = p.strings(c.scopeBuf[:0]); !ok {
				return p.failOr(errScopes)
			}
		default:
			if !p.skip(0) {
				return payloadErr(p.fail())
			}
		}
	}
	if !p.atEnd() {
		return errPayloadJSON
	}
	return nil
}

// registeredBit returns the bit of a claim parseClaims reads, or 0 for a custom claim.
func (a *Auth) registeredBit(name string) uint8 {
	switch name {
	case "exp":
		return 1 << 0
	case "nbf":
		return 1 << 1
	case "iat":
		return 1 << 2
	case "iss":
		return 1 << 3
	case "sid":
		return 1 << 7
	case "aud":
		return 1 << 4
	case a.cfg.UserIDClaim:
		return 1 << 5
	case a.cfg.ScopesClaim:
		return 1 << 6
	}
	return 0
}

func payloadErr(err error) error {
	if err == errInvalidJSON {
		return errPayloadJSON
	}
	return err
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

// isRegisteredName reports whether name is a claim the package writes from the Config.
func isRegisteredName(name string) bool {
	switch name {
	case "exp", "nbf", "iat", "iss", "aud", "sid":
		return true
	}
	return false
}

// appendPayload appends the JSON object for c: registered claims in a fixed order, then
// Extra sorted by name, so that equal claims always give the same bytes.
func (a *Auth) appendPayload(b []byte, c *Claims) ([]byte, error) {
	var err error
	w := objWriter{b: append(b, '{')}
	if c.UserID != "" {
		w.key(a.cfg.UserIDClaim)
		w.str(c.UserID)
	}
	if c.Scopes != nil {
		w.key(a.cfg.ScopesClaim)
		w.strs(c.Scopes)
	}
	if c.Issuer != "" {
		w.key("iss")
		w.str(c.Issuer)
	}
	if c.SessionID != "" {
		w.key("sid")
		w.str(c.SessionID)
	}
	switch len(c.Audience) {
	case 0:
	case 1:
		w.key("aud")
		w.str(c.Audience[0])
	default:
		w.key("aud")
		w.strs(c.Audience)
	}
	for _, d := range []struct {
		name string
		t    time.Time
	}{{"exp", c.ExpiresAt}, {"nbf", c.NotBefore}, {"iat", c.IssuedAt}} {
		if d.t.IsZero() {
			continue
		}
		sec := d.t.Unix()
		if sec <= 0 || sec > maxNumericDate {
			return nil, fmt.Errorf("%w: %s out of range", ErrInvalidClaims, d.name)
		}
		w.key(d.name)
		w.b = strconv.AppendInt(w.b, sec, 10)
	}
	if len(c.Extra) > 0 {
		names := make([]string, 0, len(c.Extra))
		for k := range c.Extra {
			if isRegisteredName(k) || k == a.cfg.UserIDClaim || k == a.cfg.ScopesClaim {
				return nil, fmt.Errorf("%w: custom claim %q overrides a registered claim", ErrInvalidClaims, k)
			}
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			w.key(k)
			if s, ok := c.Extra[k].(string); ok {
				w.str(s)
				continue
			}
			v, jerr := json.Marshal(c.Extra[k])
			if jerr != nil {
				return nil, fmt.Errorf("%w: custom claim %q: %v", ErrInvalidClaims, k, jerr)
			}
			// encoding/json writes what a json.Marshaler or json.RawMessage gives it:
			// duplicate names, lone surrogates, deep nesting. Verify would refuse the
			// token forever, so refuse to sign it.
			if p := (scanner{s: string(v)}); !p.skip(0) || !p.atEnd() {
				return nil, fmt.Errorf("%w: custom claim %q is not strict JSON", ErrInvalidClaims, k)
			}
			w.b = append(w.b, v...)
		}
	}
	if w.bad {
		err = fmt.Errorf("%w: strings must be valid UTF-8", ErrInvalidClaims)
	}
	return append(w.b, '}'), err
}

// objWriter appends JSON object members; bad records a string that is not valid UTF-8.
type objWriter struct {
	b     []byte
	first bool // a member has been written
	bad   bool
}

func (w *objWriter) key(k string) {
	if w.first {
		w.b = append(w.b, ',')
	}
	w.first = true
	w.str(k)
	w.b = append(w.b, ':')
}

func (w *objWriter) strs(ss []string) {
	w.b = append(w.b, '[')
	for i, s := range ss {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.str(s)
	}
	w.b = append(w.b, ']')
}

// str appends s as a JSON string (RFC 8259 §7): '"', '\' and control characters are
// escaped, everything else, non-ASCII included, is written as is. Invalid UTF-8 is
// refused rather than silently replaced, so that a signed string always reads back the same.
func (w *objWriter) str(s string) {
	const hex = "0123456789abcdef"
	if !utf8.ValidString(s) {
		w.bad = true
	}
	w.b = append(w.b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		w.b = append(w.b, s[start:i]...)
		switch c {
		case '"', '\\':
			w.b = append(w.b, '\\', c)
		case '\n':
			w.b = append(w.b, '\\', 'n')
		case '\r':
			w.b = append(w.b, '\\', 'r')
		case '\t':
			w.b = append(w.b, '\\', 't')
		default:
			w.b = append(w.b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	w.b = append(w.b, s[start:]...)
	w.b = append(w.b, '"')
}

// maxNumericDate is 9999-12-31T23:59:59Z. Larger dates are refused: they are not real
// expiry times, and they would overflow time arithmetic.
const maxNumericDate = 253402300799

// The strict JSON scanner. It reads exactly RFC 8259 JSON, and is stricter than
// encoding/json in three ways that remove ambiguity: duplicate member names, invalid
// UTF-8 and unpaired UTF-16 surrogate escapes are errors (encoding/json keeps the last
// duplicate and substitutes U+FFFD). Nesting is limited to maxDepth.
var (
	errInvalidJSON = errors.New("invalid JSON")
	errStrictText  = fmt.Errorf("%w: invalid UTF-8 or unpaired surrogate in a JSON string", ErrTokenInvalid)
	errDepth       = fmt.Errorf("%w: JSON nested too deeply", ErrTokenInvalid)
)

const maxDepth = 32

type scanner struct {
	s   string
	i   int
	err error // set by str for errStrictText
}

// ws skips JSON whitespace: space, tab, LF, CR (RFC 8259 §2).
func (p *scanner) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *scanner) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// open skips whitespace and consumes c.
func (p *scanner) open(c byte) bool {
	p.ws()
	if p.peek() != c {
		return false
	}
	p.i++
	return true
}

// atEnd reports whether only whitespace is left.
func (p *scanner) atEnd() bool {
	p.ws()
	return p.i == len(p.s)
}

// member advances to the n-th member of an object whose '{' was consumed: it returns
// the member's name with the scanner at its value, or done at the closing '}'.
func (p *scanner) member(keys *keySet, n int) (name string, done bool, err error) {
	p.ws()
	switch c := p.peek(); {
	case c == '}':
		p.i++
		return "", true, nil
	case n > 0 && c != ',':
		return "", false, errInvalidJSON
	case n > 0:
		p.i++
		p.ws()
	}
	name, ok := p.str()
	if !ok {
		return "", false, p.fail()
	}
	if keys != nil && !keys.add(name) {
		return "", false, errDuplicateKey
	}
	if !p.open(':') {
		return "", false, errInvalidJSON
	}
	p.ws()
	return name, false, nil
}

// failOr returns the strict-text or depth error of the last failed step if there is
// one, else err: invalid UTF-8 in a registered claim is reported as such.
func (p *scanner) failOr(err error) error {
	if p.err != nil {
		return p.err
	}
	return err
}

// fail returns the error of the last failed step.
func (p *scanner) fail() error { return p.failOr(errInvalidJSON) }

// str reads a JSON string. Without escapes the result is a substring of the input and
// costs no allocation.
func (p *scanner) str() (string, bool) {
	if p.peek() != '"' {
		return "", false
	}
	start := p.i + 1
	// The common case in one pass: printable ASCII up to the closing quote.
	j := start
	for j < len(p.s) && plainASCII(p.s[j]) {
		j++
	}
	if j < len(p.s) && p.s[j] == '"' {
		p.i = j + 1
		return p.s[start:j], true
	}
	// Anything else (an escape, a control character, non-ASCII text, no closing quote).
	end := strings.IndexByte(p.s[j:], '"')
	if end < 0 {
		return "", false
	}
	v := p.s[start : j+end]
	if strings.IndexByte(v, '\\') >= 0 {
		return p.unescape(start)
	}
	// RFC 8259 §7: control characters must be escaped; the text must be UTF-8.
	if !utf8.ValidString(v) {
		p.err = errStrictText
		return "", false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 {
			return "", false
		}
	}
	p.i = j + end + 1
	return v, true
}

// plainASCII reports whether c may stand unescaped in a JSON string and needs no
// further check: printable ASCII other than '"' and '\\'.
func plainASCII(c byte) bool { return jsonPlain[c] }

// jsonPlain is plainASCII as a read-only lookup table, filled once at initialisation:
// one load per byte on the hot path instead of three comparisons.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// unescape is str's slow path for a string holding escapes.
func (p *scanner) unescape(start int) (string, bool) {
	b := make([]byte, 0, 32)
	for j := start; j < len(p.s); {
		c := p.s[j]
		switch {
		case c == '"':
			if !utf8.Valid(b) {
				p.err = errStrictText
				return "", false
			}
			p.i = j + 1
			return string(b), true
		case c < 0x20:
			return "", false
		case c != '\\':
			b = append(b, c)
			j++
			continue
		}
		if j+1 >= len(p.s) {
			return "", false
		}
		esc := p.s[j+1]
		j += 2
		switch esc {
		case '"', '\\', '/':
			b = append(b, esc)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(p.s, j)
			if !ok {
				return "", false
			}
			j += 4
			if utf16.IsSurrogate(r) {
				// A high surrogate must be followed by an escaped low one (RFC 8259 §7).
				r2, ok := rune(0), false
				if j+6 <= len(p.s) && p.s[j] == '\\' && p.s[j+1] == 'u' {
					r2, ok = hex4(p.s, j+2)
				}
				if r = utf16.DecodeRune(r, r2); !ok || r == utf8.RuneError {
					p.err = errStrictText
					return "", false
				}
				j += 6
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", false
		}
	}
	return "", false
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// strings reads a JSON array of strings, appending to dst.
func (p *scanner) strings(dst []string) ([]string, bool) {
	if p.peek() != '[' {
		return nil, false
	}
	p.i++
	for n := 0; ; n++ {
		p.ws()
		if p.peek() == ']' {
			p.i++
			return dst, true
		}
		if n > 0 {
			if p.peek() != ',' {
				return nil, false
			}
			p.i++
			p.ws()
		}
		s, ok := p.str()
		if !ok {
			return nil, false
		}
		dst = append(dst, s)
	}
}

// number reads a JSON number (RFC 8259 §6) and returns its text:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *scanner) number() (string, bool) {
	s, start := p.s, p.i
	i := start
	digits := func() bool {
		j := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case !digits():
		return "", false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return "", false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return "", false
		}
	}
	p.i = i
	return s[start:i], true
}

// date reads a NumericDate: a positive JSON number of seconds, fractions allowed
// (RFC 7519 §2), at most maxNumericDate. Strings, null, 0 and negatives are refused.
func (p *scanner) date() (time.Time, bool) {
	text, ok := p.number()
	if !ok {
		return time.Time{}, false
	}
	// Fast path: the whole seconds Sign writes. Twelve digits cannot overflow an int64.
	if sec, ok := smallUint(text); ok {
		if sec <= 0 || sec > maxNumericDate {
			return time.Time{}, false
		}
		return time.Unix(sec, 0).UTC(), true
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || !(f > 0) || f > maxNumericDate {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
}

// smallUint parses up to twelve decimal digits; anything else is left to ParseFloat.
func smallUint(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 12 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 {
			return 0, false
		}
		n = n*10 + int64(d)
	}
	return n, true
}

// skip validates and skips any JSON value at depth.
func (p *scanner) skip(depth int) bool {
	switch c := p.peek(); {
	case c == '"':
		_, ok := p.str()
		return ok
	case c == '{' || c == '[':
		if depth >= maxDepth {
			p.err = errDepth
			return false
		}
		p.i++
		if c == '[' {
			for n := 0; ; n++ {
				p.ws()
				if p.peek() == ']' {
					p.i++
					return true
				}
				if n > 0 {
					if p.peek() != ',' {
						return false
					}
					p.i++
					p.ws()
				}
				if !p.skip(depth + 1) {
					return false
				}
			}
		}
		var keys keySet
		for n := 0; ; n++ {
			_, done, err := p.member(&keys, n)
			if err != nil {
				p.err = err
				return false
			}
			if done {
				return true
			}
			if !p.skip(depth + 1) {
				return false
			}
		}
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	default:
		_, ok := p.number()
		return ok
	}
}

func (p *scanner) literal(lit string) bool {
	if len(p.s)-p.i < len(lit) || p.s[p.i:p.i+len(lit)] != lit {
		return false
	}
	p.i += len(lit)
	return true
}

// keySet detects duplicate member names: a linear scan over a few names, a map beyond,
// so that a hostile object of thousands of members costs linear time.
type keySet struct {
	small [8]string
	n     int
	big   map[string]struct{}
}

func (k *keySet) add(name string) bool {
	if k.big != nil {
		if _, dup := k.big[name]; dup {
			return false
		}
		k.big[name] = struct{}{}
		return true
	}
	for _, s := range k.small[:k.n] {
		if s == name {
			return false
		}
	}
	if k.n < len(k.small) {
		k.small[k.n] = name
		k.n++
		return true
	}
	k.big = make(map[string]struct{}, 2*len(k.small))
	for _, s := range k.small {
		k.big[s] = struct{}{}
	}
	k.big[name] = struct{}{}
	return true
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
