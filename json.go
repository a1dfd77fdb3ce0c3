package jwtauth

import (
	"bytes"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Strict JSON, read and written. The lexer reads exactly RFC 8259 JSON and is stricter
// than encoding/json in three ways that remove ambiguity: duplicate member names
// (RFC 7519 §4 and RFC 7515 §4: names "MUST be unique"), invalid UTF-8 and unpaired
// UTF-16 surrogate escapes are errors, where encoding/json keeps the last duplicate and
// substitutes U+FFFD. Nesting is limited to maxDepth.
var (
	errStrictText   = fmt.Errorf("%w: invalid UTF-8 or unpaired surrogate in a JSON string", ErrTokenInvalid)
	errDepth        = fmt.Errorf("%w: JSON nested too deeply", ErrTokenInvalid)
	errDuplicateKey = fmt.Errorf("%w: duplicate JSON member name", ErrTokenInvalid)
	errSignUTF8     = fmt.Errorf("%w: strings must be valid UTF-8", ErrInvalidClaims)
)

const maxDepth = 32

// lexer reads one JSON text. Its error is sticky: the first failure is kept and ends
// the input, so every later step finds nothing to read and is a no-op; callers read
// straight on and look at err once. A value of the wrong type fails with the error its
// reader is given (errExp for exp, say); malformed JSON elsewhere fails with syntax.
type lexer struct {
	s      string
	i      int
	err    error // the first failure
	syntax error // what malformed JSON is: errHdrJSON or errPayloadJSON
}

func (l *lexer) fail(err error) {
	if l.err == nil {
		l.err = err
		l.s = l.s[:l.i]
	}
}

// peek returns the next byte, or 0 at the end of the input (and so after a failure).
func (l *lexer) peek() byte {
	if l.i < len(l.s) {
		return l.s[l.i]
	}
	return 0
}

// ws skips JSON whitespace: space, tab, LF, CR (RFC 8259 §2).
func (l *lexer) ws() {
	for l.i < len(l.s) && jsonSpace[l.s[l.i]] {
		l.i++
	}
}

// end fails unless only whitespace is left: one JSON text, nothing after it.
func (l *lexer) end() {
	if l.ws(); l.i != len(l.s) {
		l.fail(l.syntax)
	}
}

// next steps past delim to the next element of an array or member of an object that
// close ends: delim is the opening bracket for the first one, ',' for the others. It
// reports false at close, which it consumes, and on failure (with bad).
func (l *lexer) next(delim, close byte, bad error) bool {
	// Compact JSON, the common case: the delimiter, then at once the next value.
	if i := l.i; i+1 < len(l.s) && l.s[i] == delim && l.s[i+1] != close && !jsonSpace[l.s[i+1]] {
		l.i++
		return true
	}
	first := delim != ','
	if l.ws(); first && !l.accept(delim) {
		l.fail(bad)
	}
	l.ws()
	switch c := l.peek(); {
	case c == close:
		l.i++
		return false
	case !first && !l.accept(','):
		l.fail(bad)
	}
	l.ws()
	return l.err == nil
}

// member is the one walker of JSON objects. It steps to the next member (see next) and
// returns its name with l at its value; it reports false at the closing '}' and on
// failure. With keys, a name seen before in this object is errDuplicateKey.
//
//	for name, ok := l.member('{', keys); ok; name, ok = l.member(',', keys) { ... }
func (l *lexer) member(delim byte, keys *keySet) (string, bool) {
	if !l.next(delim, '}', l.syntax) {
		return "", false
	}
	name := l.str(l.syntax)
	if keys != nil && l.err == nil && !keys.add(name) {
		l.fail(errDuplicateKey)
	}
	if l.ws(); !l.accept(':') {
		l.fail(l.syntax)
	}
	l.ws()
	return name, l.err == nil
}

// str reads a JSON string (RFC 8259 §7), or fails with bad. Without escapes the result
// is a substring of the input and costs no allocation.
func (l *lexer) str(bad error) string {
	if l.peek() != '"' {
		l.fail(bad)
		return ""
	}
	// The common case in one pass: printable ASCII up to the closing quote, read eight
	// bytes at a time as one little-endian word x. The high bit of each byte of m is
	// set where that byte is not plain (see jsonPlain): at or above 0x80 (x itself),
	// below 0x20, '"' or '\\' (the "has a byte less than n" and "has a zero byte"
	// tricks); borrows run only upwards, so the lowest set bit is the first such byte.
	const ones, high = 0x0101010101010101, 0x8080808080808080
	s, start, j := l.s, l.i+1, l.i+1
	for ; j+8 <= len(s); j += 8 {
		w := s[j : j+8]
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 | uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		q, b := x^(ones*'"'), x^(ones*'\\')
		if m := (x | (x-ones*0x20)&^x | (q-ones)&^q | (b-ones)&^b) & high; m != 0 {
			j += bits.TrailingZeros64(m) / 8
			break
		}
	}
	for j < len(s) && jsonPlain[s[j]] {
		j++
	}
	if j < len(s) && s[j] == '"' {
		l.i = j + 1
		return s[start:j]
	}
	// Anything else: an escape, a control character, non-ASCII text, no closing quote.
	var b []byte // the text unescaped, once an escape is met
	for j < len(s) && l.err == nil {
		switch c := s[j]; {
		case c == '"':
			v := s[start:j]
			if b != nil {
				v = string(b)
			}
			if !utf8.ValidString(v) { // RFC 8259 §8.1: the text is UTF-8
				l.fail(errStrictText)
				return ""
			}
			l.i = j + 1
			return v
		case c < 0x20: // RFC 8259 §7: control characters must be escaped
			l.fail(bad)
		case c == '\\':
			if b == nil {
				b = []byte(s[start:j])
			}
			b, j = l.escape(b, j+1, bad)
		default:
			if b != nil {
				b = append(b, c)
			}
			j++
		}
	}
	l.fail(bad)
	return ""
}

// jsonSpace tells JSON whitespace (RFC 8259 §2), a read-only lookup table.
var jsonSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

// jsonPlain tells the bytes that may stand unescaped in a JSON string and need no
// further check: printable ASCII other than '"' and '\\'. It is a read-only lookup table,
// filled once at initialisation: one load per byte on the hot path.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// escape appends the character of the escape that starts with the '\' before s[j]
// (RFC 8259 §7) and returns the index after the escape.
func (l *lexer) escape(b []byte, j int, bad error) ([]byte, int) {
	const from, to = `"\/bfnrt`, "\"\\/\b\f\n\r\t"
	if j >= len(l.s) {
		l.fail(bad)
		return b, j
	}
	switch k := strings.IndexByte(from, l.s[j]); {
	case k >= 0:
		return append(b, to[k]), j + 1
	case l.s[j] != 'u':
		l.fail(bad)
		return b, j
	}
	r := hex4(l.s, j+1)
	if r < 0 {
		l.fail(bad)
	}
	j += 5
	if utf16.IsSurrogate(r) {
		// A high surrogate must be followed by an escaped low one (RFC 8259 §7);
		// anything else is text that UTF-8 cannot hold.
		r2 := rune(-1)
		if strings.HasPrefix(l.s[j:], `\u`) {
			r2 = hex4(l.s, j+2)
		}
		if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
			l.fail(errStrictText)
		}
		j += 6
	}
	return utf8.AppendRune(b, r), j
}

// hex4 returns the value of the four hex digits of a \u escape at s[i], or -1 if there
// are not four. In base 16 ParseUint takes hex digits only: no sign, prefix or '_'.
func hex4(s string, i int) rune {
	if r, err := strconv.ParseUint(s[i:min(i+4, len(s))], 16, 16); err == nil && len(s)-i >= 4 {
		return rune(r)
	}
	return -1
}

// strs reads a JSON array of strings, appending to dst, or fails with bad.
func (l *lexer) strs(dst []string, bad error) []string {
	for more := l.next('[', ']', bad); more; more = l.next(',', ']', bad) {
		dst = append(dst, l.str(bad))
	}
	return dst
}

// number reads a JSON number (RFC 8259 §6) and returns its text, or fails with bad:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (l *lexer) number(bad error) string {
	start := l.i
	l.accept('-')
	ok := l.accept('0') || l.digits()
	if l.accept('.') {
		ok = ok && l.digits()
	}
	if l.accept('e') || l.accept('E') {
		_ = l.accept('+') || l.accept('-') // an optional sign
		ok = ok && l.digits()
	}
	if !ok {
		l.fail(bad)
		return ""
	}
	return l.s[start:l.i]
}

// accept consumes c if it is the next byte.
func (l *lexer) accept(c byte) bool {
	if l.peek() == c {
		l.i++
		return true
	}
	return false
}

// digits consumes decimal digits and reports whether there was one. It counts in a
// local variable: a loop on l.i would wait for each store to l.i before the next load.
func (l *lexer) digits() (ok bool) {
	i := l.i
	for i < len(l.s) && '0' <= l.s[i] && l.s[i] <= '9' {
		i++
	}
	ok, l.i = i > l.i, i
	return ok
}

// skip validates and skips any JSON value, depth levels deep.
func (l *lexer) skip(depth int) {
	switch c := l.peek(); {
	case c == '"':
		l.str(l.syntax)
	case (c == '{' || c == '[') && depth >= maxDepth:
		l.fail(errDepth)
	case c == '[':
		for more := l.next('[', ']', l.syntax); more; more = l.next(',', ']', l.syntax) {
			l.skip(depth + 1)
		}
	case c == '{':
		var keys keySet
		for _, ok := l.member('{', &keys); ok; _, ok = l.member(',', &keys) {
			l.skip(depth + 1)
		}
	case c == 't' || c == 'f' || c == 'n':
		l.literal()
	default:
		l.number(l.syntax)
	}
}

// literal reads true, false or null.
func (l *lexer) literal() {
	for _, lit := range [...]string{"true", "false", "null"} {
		if strings.HasPrefix(l.s[l.i:], lit) {
			l.i += len(lit)
			return
		}
	}
	l.fail(l.syntax)
}

// keySet detects duplicate member names: a linear scan over a few names, a map beyond,
// so that a hostile object of thousands of members costs linear time.
type keySet struct {
	small [8]string
	n     int
	big   map[string]struct{}
}

func (k *keySet) add(name string) bool {
	if k.n < len(k.small) {
		if slices.Contains(k.small[:k.n], name) {
			return false
		}
		k.small[k.n] = name
		k.n++
		return true
	}
	if k.big == nil {
		k.big = make(map[string]struct{}, 2*len(k.small))
		for _, s := range k.small {
			k.big[s] = struct{}{}
		}
	}
	n := len(k.big)
	k.big[name] = struct{}{}
	return len(k.big) > n
}

// objWriter appends the members of a JSON object. Its error is sticky, like the
// lexer's: the first refusal is kept.
type objWriter struct {
	b     []byte
	first bool // a member has been written
	err   error
}

func (w *objWriter) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (w *objWriter) key(k string) {
	if w.first {
		w.b = append(w.b, ',')
	}
	w.first = true
	w.str(k)
	w.b = append(w.b, ':')
}

// member appends the member k with the string v, unless v is empty.
func (w *objWriter) member(k, v string) {
	if v != "" {
		w.key(k)
		w.str(v)
	}
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
		w.fail(errSignUTF8)
	}
	w.b = append(w.b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		w.b = append(w.b, s[start:i]...)
		// \" \\ \n \r \t, and \u00XX for the other control characters.
		if k := strings.IndexByte("\"\\\n\r\t", c); k >= 0 {
			w.b = append(w.b, '\\', `"\nrt`[k])
		} else {
			w.b = append(w.b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	w.b = append(w.b, s[start:]...)
	w.b = append(w.b, '"')
}

// replacesInvalidUTF8 reports whether JSON text written by encoding/json holds the escape
// \ufffd. encoding/json writes that escape in place of each byte of invalid UTF-8 in a
// string or a map key, and writes a real U+FFFD unescaped, so the escape means that the
// JSON says something else than the Go value. (A json.Marshaler may write the escape on
// purpose; it is refused too.)
func replacesInvalidUTF8(j []byte) bool {
	for i := 0; i < len(j); i++ {
		if j[i] == '\\' {
			if bytes.HasPrefix(j[i+1:], []byte("ufffd")) {
				return true
			}
			i++ // the escaped byte, which may be a '\\'
		}
	}
	return false
}
