package jwtauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"slices"
	"strings"
	"sync"
	"time"
)

// tokens is the token core: HS256 signing and verification of access tokens, with the
// settings they need and nothing else. The core's files (json.go, claims.go, sign.go
// and errors.go) use nothing defined outside them, so they can be read, vendored and
// fuzzed alone; Auth holds a tokens and wraps Sign and Verify.
type tokens struct {
	keys      []*macKey // Secret first, then PreviousSecrets
	names     *claimTable
	maxSize   int           // Config.MaxTokenSize
	leeway    time.Duration // never negative: NoLeeway is 0 here
	verifyExp bool          // false with Config.InsecureNoExpiry
	issuer    string
	audience  string
	extra     []func(*Claims) error
	now       func() time.Time
}

// canonicalHeader is the header Sign writes: base64url of {"alg":"HS256","typ":"JWT"}.
// It is a constant, so issuing never marshals a header and verifying takes a fast path
// (a string comparison) for the header every token of ours carries. A token bound to a
// DPoP key gets boundHeader, {"alg":"HS256","typ":"dpop-bound+jwt"} (RFC 8725 §3.11:
// explicit typing), which verifiers that take typ JWT only refuse (this package's
// versions before DPoP) instead of taking the token for a bearer token. Libraries that
// ignore typ do not: a service that checks no proofs must refuse a token with cnf.
const (
	canonicalHeader = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
	boundHeader     = "eyJhbGciOiJIUzI1NiIsInR5cCI6ImRwb3AtYm91bmQrand0In0"
	boundType       = "dpop-bound+jwt"
)

// b64 is base64url without padding (RFC 7515 §2) in strict mode: the unused low bits of
// the last character must be zero, so every byte string has exactly one encoding. The
// decoder refuses every byte outside the alphabet except CR and LF, which it skips: so
// every decode of a segment also checks that the decoded bytes encode to as many
// characters as the segment has, which fails exactly when one was skipped. It is a
// read-only table, not configuration.
var b64 = base64.RawURLEncoding.Strict()

// sigLen is the length of an encoded HS256 signature: 32 bytes in 43 characters.
const sigLen = 43

// Causes of ErrTokenInvalid, allocated once so that rejecting a hostile token costs no
// allocation. The text after the sentinel is what InsecureDebug shows.
var (
	errTooLong     = fmt.Errorf("%w: token longer than MaxTokenSize", ErrTokenInvalid)
	errEmpty       = fmt.Errorf("%w: empty token", ErrTokenInvalid)
	errShape       = fmt.Errorf("%w: token must have exactly three segments", ErrTokenInvalid)
	errAlphabet    = fmt.Errorf("%w: character outside base64url in token", ErrTokenInvalid)
	errSigLen      = fmt.Errorf("%w: signature must be 43 characters", ErrTokenInvalid)
	errSigEncoding = fmt.Errorf("%w: signature is not canonical base64url", ErrTokenInvalid)
	errHdrEncoding = fmt.Errorf("%w: header is not canonical base64url", ErrTokenInvalid)
	errHdrJSON     = fmt.Errorf("%w: header is not a strict JSON object", ErrTokenInvalid)
	errAlg         = fmt.Errorf("%w: alg must be exactly HS256", ErrTokenInvalid)
	errCrit        = fmt.Errorf("%w: crit header is not supported", ErrTokenInvalid)
	errTyp         = fmt.Errorf("%w: typ must be JWT or "+boundType, ErrTokenInvalid)
	errSignature   = fmt.Errorf("%w: signature does not match", ErrTokenInvalid)
	errPayloadB64  = fmt.Errorf("%w: payload is not canonical base64url", ErrTokenInvalid)
	errNoExp       = fmt.Errorf("%w: exp is required", ErrTokenInvalid)
	errExpired     = fmt.Errorf("%w: exp is past", ErrTokenExpired)
	errNotYet      = fmt.Errorf("%w: nbf is in the future", ErrTokenNotYetValid)
	errIssuer      = fmt.Errorf("%w: iss does not match", ErrInvalidIssuer)
	errAudSet      = fmt.Errorf("%w: aud does not contain the expected audience", ErrInvalidAudience)
	errSignNil     = fmt.Errorf("%w: nil claims", ErrInvalidClaims)
	errSignTooLong = fmt.Errorf("%w: token would be longer than MaxTokenSize", ErrInvalidClaims)
	errSignNoExp   = fmt.Errorf("%w: exp is required: Verify would reject the token", ErrInvalidClaims)
)

// macKey is one HS256 key with a pool of HMAC states already keyed with it: hmac.Reset
// restores the precomputed inner and outer pads instead of rehashing the key. The pool
// belongs to the Auth, so nothing is shared between Auths. It is the package's one
// keyed MAC: token signatures, and through mac the session layer's derived refresh
// tokens and sealed records.
type macKey struct{ pool sync.Pool }

// macState is a pooled keyed HMAC with room for its output (so that the sum does not
// escape to the heap through the hash.Hash interface) and a work buffer for Sign and
// Verify, so that one pool round trip serves a whole call.
type macState struct {
	h   hash.Hash
	out [sha256.Size]byte
	buf []byte
}

func newMACKey(secret []byte) *macKey {
	key := append([]byte(nil), secret...) // the caller's slice may change after New
	return &macKey{pool: sync.Pool{New: func() any { return &macState{h: hmac.New(sha256.New, key)} }}}
}

func (k *macKey) get() *macState { return k.pool.Get().(*macState) }

// maxPooledBuf keeps a rare huge token from pinning a huge buffer in the pool.
const maxPooledBuf = 64 << 10

func (k *macKey) put(st *macState) {
	if cap(st.buf) > maxPooledBuf {
		st.buf = nil
	}
	k.pool.Put(st)
}

// sum returns HMAC-SHA256(key, msg), valid until st is used again.
func (st *macState) sum(msg []byte) []byte {
	st.h.Reset()
	st.h.Write(msg)
	return st.h.Sum(st.out[:0])
}

// mac returns HMAC-SHA256(k, label || parts...): the session layer's MACs, of derived
// refresh tokens and of sealed records. Each label ends in a zero byte, which keeps
// these MACs apart from each other and from token signatures, whose input holds only
// base64url characters and dots; each caller gives its parts fixed lengths, or a
// length before a part that has none.
func (k *macKey) mac(label string, parts ...[]byte) (sum [sha256.Size]byte) {
	st := k.get()
	msg := append(st.buf[:0], label...)
	for _, p := range parts {
		msg = append(msg, p...)
	}
	copy(sum[:], st.sum(msg))
	st.buf = msg[:0]
	k.put(st)
	return sum
}

// sign encodes c as an HS256 JWT under keys[0] (see Auth.Sign).
func (t *tokens) sign(c *Claims) (string, error) {
	if c == nil {
		return "", errSignNil
	}
	if t.verifyExp && c.ExpiresAt.IsZero() {
		return "", errSignNoExp
	}
	st := t.keys[0].get()
	defer t.keys[0].put(st)

	payload, err := t.names.appendPayload(st.buf[:0], c)
	if err != nil {
		return "", err
	}
	// Token layout in the same buffer, after the JSON: header "." payload "." signature.
	pLen, header := b64.EncodedLen(len(payload)), canonicalHeader
	if c.KeyThumbprint != "" {
		header = boundHeader
	}
	total := len(header) + 1 + pLen + 1 + sigLen
	if total > t.maxSize {
		// Verify would refuse it: a token nobody can use is an error here, not later.
		return "", errSignTooLong
	}
	buf := slices.Grow(payload, total)[:len(payload)+total]
	st.buf = buf[:0] // keep any growth for the next call
	payload, tok := buf[:len(payload)], buf[len(payload):]
	n := copy(tok, header)
	tok[n] = '.'
	b64.Encode(tok[n+1:], payload)
	n += 1 + pLen
	mac := st.sum(tok[:n])
	tok[n] = '.'
	b64.Encode(tok[n+1:], mac)
	return string(tok), nil
}

// verify checks token (see Auth.Verify for the steps) and returns its claims, in a
// Claims from alloc: alloc is called once the MAC matched, so that a refused token
// costs no allocation, and it lets a caller place the claims in memory of its own.
// With allowExpired, an expired token is not an error (the refresh endpoint applies a
// window of its own).
func (t *tokens) verify(token string, allowExpired bool, alloc func() *Claims) (*Claims, error) {
	c, err := t.decode(token, alloc)
	if err != nil {
		return nil, err
	}
	if err := t.validate(c, t.now(), allowExpired); err != nil {
		return nil, err
	}
	return c, nil
}

// decode runs steps 1 to 5 of Verify: everything but the checks against the clock and
// the Config.
func (t *tokens) decode(token string, alloc func() *Claims) (*Claims, error) {
	// Bounded input before anything else: CVE-2025-30204 (golang-jwt) was an unbounded
	// split of a token made of dots. Nothing has been decoded or allocated yet.
	if len(token) > t.maxSize {
		return nil, errTooLong
	}
	if token == "" {
		return nil, errEmpty
	}
	// RFC 7519 §7.2 step 1: "Verify that the JWT contains at least one period"; a JWS in
	// compact serialization has exactly two (RFC 7515 §7.1). Four segments would be a JWE,
	// which this package never accepts.
	d1 := strings.IndexByte(token, '.')
	d2 := strings.IndexByte(token[d1+1:], '.') + d1 + 1 // == d1 with fewer than two dots
	if d2 == d1 || strings.IndexByte(token[d2+1:], '.') >= 0 {
		return nil, errShape
	}
	st := t.keys[0].get()
	defer t.keys[0].put(st)
	payload, err := t.authenticate(st, token, d1, d2)
	if err != nil {
		// RFC 7515 §2: each segment is base64url "with all trailing '=' characters
		// omitted ... and without the inclusion of any line breaks, whitespace, or other
		// additional characters". A byte outside the alphabet fails a decode (see b64),
		// or makes the header differ from canonicalHeader, before the payload is decoded:
		// so the alphabet is checked here, on refused tokens only, to refuse them with
		// the error of step 2.
		if !base64URLOnly(token) {
			return nil, errAlphabet
		}
		return nil, err
	}
	c := alloc() // the one allocation besides the payload's string, for an authentic token
	if err := t.names.parse(c, string(payload)); err != nil {
		return nil, err
	}
	return c, nil
}

// authenticate runs the rest of steps 2 to 4 with st, a state of keys[0], and returns
// the decoded payload, a slice of st's buffer.
func (t *tokens) authenticate(st *macState, token string, d1, d2 int) ([]byte, error) {
	if len(token)-d2-1 != sigLen {
		return nil, errSigLen
	}
	// One copy of the token; the MAC input, the signature and the decoded payload are
	// slices of this buffer.
	payloadLen := b64.DecodedLen(d2 - d1 - 1)
	if cap(st.buf) < len(token)+payloadLen {
		st.buf = make([]byte, len(token)+payloadLen)
	}
	buf := st.buf[:len(token)+payloadLen]
	copy(buf, token)
	var sig [sha256.Size]byte // 43 characters decode to 32 bytes only if none was skipped
	if n, err := b64.Decode(sig[:], buf[d2+1:len(token)]); err != nil || n != sha256.Size {
		return nil, errSigEncoding
	}

	// RFC 8725 §3.1: the algorithm is fixed, never taken from the token. The header is
	// checked before any MAC work.
	if h := token[:d1]; h != canonicalHeader && h != boundHeader {
		hdr := buf[len(token) : len(token)+payloadLen] // borrow the payload's space
		if b64.DecodedLen(d1) > len(hdr) {
			hdr = make([]byte, b64.DecodedLen(d1))
		}
		n, err := b64.Decode(hdr, buf[:d1])
		if err != nil || b64.EncodedLen(n) != d1 {
			return nil, errHdrEncoding
		}
		if err := checkHeader(hdr[:n]); err != nil {
			return nil, err
		}
	}

	// RFC 7515 §5.2 step 6 and RFC 7518 §3.2: compare in constant time.
	if !t.macMatches(st, buf[:d2], sig[:]) {
		return nil, errSignature
	}

	// Only an authentic payload is decoded.
	payload := buf[len(token) : len(token)+payloadLen]
	n, err := b64.Decode(payload, buf[d1+1:d2])
	if err != nil || b64.EncodedLen(n) != d2-d1-1 {
		return nil, errPayloadB64
	}
	return payload[:n], nil
}

// macMatches reports whether sig is the MAC of msg under Secret (with st, a state of
// keys[0]) or one of PreviousSecrets.
func (t *tokens) macMatches(st *macState, msg, sig []byte) bool {
	if hmac.Equal(st.sum(msg), sig) {
		return true
	}
	for _, k := range t.keys[1:] {
		prev := k.get()
		ok := hmac.Equal(prev.sum(msg), sig)
		k.put(prev)
		if ok {
			return true
		}
	}
	return false
}

// base64URLOnly reports whether s holds only base64url characters (RFC 4648 §5) and
// dots. It runs only on tokens Verify refuses.
func base64URLOnly(s string) bool {
	return !strings.ContainsFunc(s, func(c rune) bool {
		return !('a' <= c|0x20 && c|0x20 <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.')
	})
}

// checkHeader parses a non-canonical JOSE header strictly: a JSON object without
// duplicate member names (RFC 7515 §4: names "MUST be unique"; parsers reject duplicates
// or keep the last, and we reject), alg
// exactly "HS256" (RFC 8725 §3.1), no crit (RFC 7515 §4.1.11: a recipient must reject
// extensions it does not understand; we understand none), typ absent, "JWT" (RFC 7519
// §5.1) or boundType. Other members, kid among them, are ignored (RFC 7515 §4): every key is tried.
func checkHeader(hdr []byte) error {
	l := lexer{s: string(hdr), syntax: errHdrJSON}
	var keys keySet
	hasAlg := false
	for name, ok := l.member('{', &keys); ok; name, ok = l.member(',', &keys) {
		switch name {
		case "alg":
			// Anything but the string HS256, a malformed string included, is another alg.
			if l.str(errAlg) != "HS256" {
				return errAlg
			}
			hasAlg = true
		case "typ":
			if typ := l.str(errTyp); typ != "JWT" && typ != boundType {
				return errTyp
			}
		case "crit":
			return errCrit
		default:
			l.skip(0)
		}
	}
	if l.end(); l.err == nil && !hasAlg {
		return errAlg
	}
	return l.err
}

// validate runs the checks against the clock and the Config, after RFC 7519 §7.2 has
// accepted the token: exp, nbf, iss, aud, then ExtraVerifications.
func (t *tokens) validate(c *Claims, now time.Time, allowExpired bool) error {
	// RFC 7519 §4.1.4: the current time "MUST be before the expiration date/time";
	// RFC 7519 §4.1.4 allows "some small leeway ... to account for clock skew". A token
	// exactly Leeway past exp is still accepted.
	if t.verifyExp {
		if c.ExpiresAt.IsZero() {
			return errNoExp
		}
		if !allowExpired && now.After(c.ExpiresAt.Add(t.leeway)) {
			return errExpired
		}
	}
	// RFC 7519 §4.1.5: not before nbf, with the same leeway.
	if !c.NotBefore.IsZero() && now.Before(c.NotBefore.Add(-t.leeway)) {
		return errNotYet
	}
	// RFC 7519 §4.1.1 and §4.1.3: when we expect an issuer or audience, a token without
	// it, or with another, is rejected.
	if t.issuer != "" && c.Issuer != t.issuer {
		return errIssuer
	}
	if t.audience != "" && !slices.Contains(c.Audience, t.audience) {
		return errAudSet
	}
	for _, f := range t.extra {
		if err := f(c); err != nil {
			return fmt.Errorf("%w: %w", ErrVerificationFailed, err)
		}
	}
	return nil
}
