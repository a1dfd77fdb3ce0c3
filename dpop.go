package jwtauth

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DPoP proofs (RFC 9449): the client signs, at every request, a small JWT with a private
// key it holds, and the server checks it against the public key in the proof's header. A
// session bound to that key's thumbprint (RFC 7638) then refreshes only for its holder.
// The package verifies the client's ES256 signatures with crypto/ecdsa; it signs nothing
// but HS256. This file is the verifier, RFC 9449 §4.3 step by step.

// maxProofSize caps the DPoP header, checked before any decoding: an ES256 proof with
// its key, an ath and a nonce is about 600 bytes.
const maxProofSize = 2048

// proofFail is errDPoPProof with the check that failed.
func proofFail(check string) error { return fmt.Errorf("%w: %s", errDPoPProof, check) }

// The failures of a proof's JSON, which asProofError makes errDPoPProof; made once, so
// that parsing a valid proof costs no error value.
var (
	errProofHeader  = errors.New("header is not a strict JSON object")
	errProofPayload = errors.New("payload is not a strict JSON object")
	errProofIat     = errors.New("iat is not a positive number")
	errProofCrit    = errors.New("crit names extensions this verifier does not know")
)

// asProofError is a failure of a proof's JSON (its syntax, a duplicate member, nesting
// too deep, a value of the wrong type) as errDPoPProof.
func asProofError(err error) error { return fmt.Errorf("%w: %w", errDPoPProof, err) }

// verifyProof checks the DPoP proof of r (RFC 9449 §4.3) made for r's method at htu (the
// request's URI as the client addressed it, without query or fragment) within window of
// now, and, when access is set, for that access token (ath). It does not check the jti's
// single use, which needs state: the caller does. A nonce in the proof is not checked:
// this server issues none (RFC 9449 §8 makes them optional).
func verifyProof(r *http.Request, htu, access string, now time.Time, window time.Duration) (*keyProof, error) {
	// 1. "There is not more than one DPoP HTTP request header field."
	vals := r.Header.Values("DPoP")
	if len(vals) != 1 {
		return nil, proofFail("want exactly one DPoP header")
	}
	jws := vals[0]
	if len(jws) > maxProofSize {
		return nil, proofFail("longer than 2048 bytes")
	}
	// 2. "The DPoP HTTP request header field value is a single and well-formed JWT."
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		return nil, proofFail("not a JWS of three parts")
	}
	key, x, y, err := readProofKey(parts[0])
	if err != nil {
		return nil, err
	}
	// 7. "The JWT signature verifies with the public key contained in the jwk JOSE
	// Header Parameter." crypto/ecdsa refuses r or s out of [1, N-1], so the all-zero
	// signature of CVE-2022-21449 fails.
	sig, err := b64.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return nil, proofFail("signature is not 64 bytes of base64url (R || S, RFC 7518 §3.4)")
	}
	digest := sha256.Sum256([]byte(jws[:len(parts[0])+1+len(parts[1])]))
	if !ecdsa.Verify(key, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return nil, proofFail("signature does not verify with the jwk")
	}
	// 8-12. htm, htu, iat, ath; and the jti the caller keeps.
	c, err := readProofClaims(parts[1])
	switch {
	case err != nil:
		return nil, err
	case c.jti == "" || len(c.jti) > 256:
		return nil, proofFail("jti is missing or longer than 256 bytes")
	case c.htm != r.Method:
		return nil, proofFail("htm is not the request's method")
	case htu == "" || normalURI(c.htu) != htu:
		return nil, proofFail("htu is not the request's URI")
	case c.iat.IsZero() || c.iat.Before(now.Add(-window)) || c.iat.After(now.Add(window)):
		return nil, proofFail("iat is missing or outside the accepted window")
	case access != "" && c.ath != accessTokenHash(access):
		return nil, proofFail("ath is not the hash of the access token")
	}
	// RFC 7638 §3.2: the required members of an EC key, in lexicographic order, no
	// whitespace; x and y as the client wrote them, which the strict decoder and their
	// length (43, with no CR or LF skipped) have shown to be the one base64url form of
	// their bytes.
	p := &keyProof{jkt: sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`))}
	p.until = c.iat.Add(window).UnixMilli()
	// The jti is unique per key (RFC 9449 §11.1): the digest names both.
	sum := sha256.Sum256(append(p.jkt[:], c.jti...))
	copy(p.jti[:], sum[:])
	return p, nil
}

// readProofKey reads a proof's header, RFC 9449 §4.3 steps 3 to 6: typ dpop+jwt, an
// asymmetric alg (ES256 only here: no none, no HMAC, no other curve), and a jwk that is
// a public key (no "d") of P-256, on the curve. It returns the key, and its x and y as
// written.
func readProofKey(segment string) (key *ecdsa.PublicKey, x, y string, err error) {
	header, err := b64.DecodeString(segment)
	if err != nil {
		return nil, "", "", proofFail("header is not base64url")
	}
	var typ, alg, kty, crv string
	private := false
	l := lexer{s: string(header), syntax: errProofHeader}
	var keys keySet
	for name, ok := l.member('{', &keys); ok; name, ok = l.member(',', &keys) {
		switch name {
		case "typ":
			typ = l.str(l.syntax)
		case "alg":
			alg = l.str(l.syntax)
		case "jwk":
			var jkeys keySet
			for name, ok := l.member('{', &jkeys); ok; name, ok = l.member(',', &jkeys) {
				switch name {
				case "kty":
					kty = l.str(l.syntax)
				case "crv":
					crv = l.str(l.syntax)
				case "x":
					x = l.str(l.syntax)
				case "y":
					y = l.str(l.syntax)
				case "d", "p", "q", "dp", "dq", "qi", "k":
					private = true
					l.skip(1)
				default: // use, kid, key_ops, ext, alg: informative
					l.skip(1)
				}
			}
		case "crit":
			l.fail(errProofCrit)
		default:
			l.skip(0)
		}
	}
	l.end()
	// 43 characters that decode to 32 bytes: the decoder skips CR and LF, and the
	// thumbprint hashes x and y as written, so that each key has one spelling.
	xb, errX := b64.DecodeString(x)
	yb, errY := b64.DecodeString(y)
	switch {
	case l.err != nil:
		return nil, "", "", asProofError(l.err)
	case typ != "dpop+jwt":
		return nil, "", "", proofFail(`typ is not "dpop+jwt"`)
	case alg != "ES256":
		return nil, "", "", proofFail(`alg is not "ES256"`)
	case private:
		return nil, "", "", proofFail("jwk holds a private key")
	case kty != "EC" || crv != "P-256":
		return nil, "", "", proofFail("jwk is not an EC P-256 public key")
	case errX != nil || errY != nil || len(x) != 43 || len(y) != 43 || len(xb) != 32 || len(yb) != 32:
		return nil, "", "", proofFail("jwk x and y are not 43 base64url characters of 32 bytes each")
	}
	// The point must be on the curve: crypto/ecdh checks it.
	if _, err := ecdh.P256().NewPublicKey(append(append([]byte{4}, xb...), yb...)); err != nil {
		return nil, "", "", proofFail("jwk is not a point of P-256")
	}
	return &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(xb), Y: new(big.Int).SetBytes(yb)}, x, y, nil
}

// proofClaims holds the claims of a proof that verifyProof checks.
type proofClaims struct {
	jti, htm, htu, ath string
	iat                time.Time
}

// readProofClaims reads a proof's payload segment: a strict JSON object whose jti, htm,
// htu and ath are strings and iat a NumericDate; other members are ignored.
func readProofClaims(segment string) (c proofClaims, err error) {
	payload, err := b64.DecodeString(segment)
	if err != nil {
		return c, proofFail("payload is not base64url")
	}
	l := lexer{s: string(payload), syntax: errProofPayload}
	var keys keySet
	for name, ok := l.member('{', &keys); ok; name, ok = l.member(',', &keys) {
		switch name {
		case "jti":
			c.jti = l.str(l.syntax)
		case "htm":
			c.htm = l.str(l.syntax)
		case "htu":
			c.htu = l.str(l.syntax)
		case "iat":
			c.iat = l.date(errProofIat)
		case "ath":
			c.ath = l.str(l.syntax)
		default:
			l.skip(0)
		}
	}
	if l.end(); l.err != nil {
		return c, asProofError(l.err)
	}
	return c, nil
}

// Causes of a DPoP refusal besides the proof's own checks.
var (
	// errDPoPBinding is a token under the wrong scheme: a bound one (cnf.jkt) as Bearer, a
	// downgrade, or a bearer one as DPoP; or a proof by another key than the token's.
	// RFC 9449 §7.1 answers it with invalid_token.
	errDPoPBinding     = fmt.Errorf("%w: the token's DPoP binding does not match the request", ErrTokenInvalid)
	errProofOfOtherKey = fmt.Errorf("%w: the proof is by another key than the token's", errDPoPBinding)
	errUnbindable      = errors.New("jwtauth: this client could not present a DPoP-bound token: " +
		"it is answered with cookies, or the Authorization header is not read with a scheme")
	errReplaysFull = fmt.Errorf("%w: too many DPoP proofs to remember", ErrUnavailable)
)

// proofWindow is how far a proof's iat may be from the clock: 60 s plus Leeway.
func (a *Auth) proofWindow() time.Duration { return time.Minute + a.tok.leeway }

// proof verifies the DPoP proof of r for the access token access ("" at a login).
func (a *Auth) proof(r *http.Request, access string) (*keyProof, error) {
	p, err := verifyProof(r, a.htu(r), access, a.cfg.Now(), a.proofWindow())
	if err != nil {
		return nil, err
	}
	return p, nil
}

// spend records p in this instance's memory of proofs, once the request it proves has
// been authenticated otherwise too (so that a stranger's keys fill no memory); a second
// check of the same request (a Protected around another, Check inside one) spends nothing.
func (a *Auth) spend(r *http.Request, p *keyProof) error {
	if spent, _ := r.Context().Value(spentKey).([16]byte); spent == p.jti {
		return nil
	}
	return a.replays.spend(p.jti, a.cfg.Now(), 2*a.proofWindow())
}

// binding checks the DPoP binding of the verified access token tok of r, presented with
// the DPoP scheme when dpop (RFC 9449 §7.1): a bound token needs that scheme and a proof
// by its key for it (ath); a bearer token must not claim the scheme. It returns the
// proof, nil for a bearer token.
func (a *Auth) binding(r *http.Request, tok string, c *Claims, dpop bool) (*keyProof, error) {
	switch {
	case c.KeyThumbprint == "" && !dpop:
		return nil, nil
	case c.KeyThumbprint == "" || !dpop:
		return nil, errDPoPBinding
	}
	p, err := a.proof(r, tok)
	if err != nil {
		return nil, err
	}
	var jkt [43]byte // the thumbprint as cnf.jkt writes it, on the stack
	if b64.Encode(jkt[:], p.jkt[:]); string(jkt[:]) != c.KeyThumbprint {
		return nil, errProofOfOtherKey
	}
	return p, a.spend(r, p)
}

// htu is the URI that a DPoP proof of r must name (RFC 9449 §4.3 step 9):
// Config.PublicOrigin, else the request's scheme and Host, then the path the client
// sent (the request line's: a router may have stripped a prefix from r.URL.Path).
func (a *Auth) htu(r *http.Request) string {
	origin := a.cfg.PublicOrigin
	if origin == "" {
		origin = "http://" + r.Host
		if r.TLS != nil {
			origin = "https://" + r.Host
		}
	}
	path := r.URL.EscapedPath()
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
		path = u.EscapedPath()
	}
	return normalURI(origin + path)
}

// replays is one instance's memory of the DPoP proofs it accepted, for the routes that
// keep none in a session record (all but refresh and reauthenticate, which keep them in
// both): digests of jti and key in two generations of maps, each span long, so that a
// proof is remembered for at least span after its use. A proof replayed to another
// instance within its window is accepted there (see the sessions doc). At most
// maxReplays proofs per generation: past that, ErrUnavailable, never a forgotten proof.
type replays struct {
	mu        sync.Mutex
	cur, prev map[[16]byte]struct{}
	started   time.Time // of cur
}

const maxReplays = 1 << 18 // 256 Ki digests, a few MiB, per generation

// spend records jti at now, or refuses it when it was recorded before.
func (c *replays) spend(jti [16]byte, now time.Time, span time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.started) >= span {
		c.prev, c.cur, c.started = c.cur, make(map[[16]byte]struct{}), now
	}
	_, inCur := c.cur[jti]
	_, inPrev := c.prev[jti]
	switch {
	case inCur || inPrev:
		return errProofReplay
	case len(c.cur) >= maxReplays:
		return errReplaysFull
	}
	c.cur[jti] = struct{}{}
	return nil
}

// accessTokenHash is ath (RFC 9449 §4.2): the base64url SHA-256 of the access token.
func accessTokenHash(access string) string {
	sum := sha256.Sum256([]byte(access))
	return b64.EncodeToString(sum[:])
}

// normalURI is u without query or fragment, its scheme and host in lower case and
// without a default port (RFC 3986 §6.2.2 and §6.2.3), its path "/" when empty; "" when
// u is not an absolute http(s) URI.
func normalURI(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || p.User != nil {
		return ""
	}
	scheme, host := strings.ToLower(p.Scheme), strings.ToLower(p.Host)
	if port := p.Port(); scheme == "https" && port == "443" || scheme == "http" && port == "80" {
		host = strings.TrimSuffix(host, ":"+port)
	}
	if scheme != "https" && scheme != "http" {
		return ""
	}
	path := p.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path
}
