package benchmarks

// One small adapter per library: a verifier configured as a careful user would
// (HS256 only, one secret, exp required and checked with the same leeway, iss and aud
// checked when the test expects them) and a signer. Each adapter takes the token in the
// form its library's API takes, so no string/[]byte conversion is measured.

import (
	"errors"
	"fmt"
	"time"

	cjwt "github.com/cristalhq/jwt/v5"
	gjwt "github.com/golang-jwt/jwt/v5"
	"github.com/jwtauth/jwtauth"
	pjwt "github.com/pascaldekloe/jwt"
)

var (
	// secret is the HS256 key every library uses: 32 bytes, the RFC 7518 §3.2 minimum.
	secret = []byte("0123456789abcdef0123456789abcdef")
	// otherSecret signs the "signature by another key" attack.
	otherSecret = []byte("fedcba9876543210fedcba9876543210")
	// fixedNow is every library's clock, so that results do not depend on when the
	// tests run.
	fixedNow = time.Unix(1_700_000_000, 0)
)

// leeway is jwtauth's default clock skew, given to every peer that has the notion.
const leeway = 180 * time.Second // jwtauth's default

// verifyConfig says what a verifier expects besides the signature and exp.
type verifyConfig struct {
	Issuer   string // "" means iss is not checked
	Audience string // "" means aud is not checked
}

// identity is what every verifier reads from an accepted token.
type identity struct {
	UserID string
	Scopes []string
}

// verifyFunc verifies one token, given both as a string and as the same bytes.
type verifyFunc func(s string, b []byte) (identity, error)

// signFunc signs the benchmark claims; it fills whichever of s or b its library returns.
type signFunc func() (s string, b []byte, err error)

type library struct {
	name   string
	verify func(verifyConfig) verifyFunc
	sign   func(*testClaims) signFunc // nil: verify only
}

var libraries = []library{
	{"jwtauth", jwtauthVerifier, jwtauthSigner},
	{"golangjwt", golangJWTVerifier, golangJWTSigner},
	{"golangjwt-struct", golangJWTStructVerifier, nil}, // verify only
	{"cristalhq", cristalhqVerifier, cristalhqSigner},
	{"pascaldekloe", pascaldekloeVerifier, pascaldekloeSigner},
}

// testClaims are the claims signers write, in a library-neutral form.
type testClaims struct {
	UserID    string
	Scopes    []string
	Issuer    string
	Audience  string
	ExpiresAt time.Time
	IssuedAt  time.Time
}

func benchClaims() *testClaims {
	return &testClaims{
		UserID:    "user-0123456789abcdef",
		Scopes:    []string{"orders:read", "orders:write", "profile"},
		Issuer:    "https://auth.example.com",
		Audience:  "orders-api",
		ExpiresAt: fixedNow.Add(30 * time.Minute),
		IssuedAt:  fixedNow,
	}
}

func newJWTAuth(vc verifyConfig) *jwtauth.Auth {
	a, err := jwtauth.New(jwtauth.Config{
		Secret:   secret,
		Issuer:   vc.Issuer,
		Audience: vc.Audience,
		Leeway:   leeway,
		Now:      func() time.Time { return fixedNow },
	})
	if err != nil {
		panic(err)
	}
	return a
}

func jwtauthVerifier(vc verifyConfig) verifyFunc {
	a := newJWTAuth(vc)
	return func(s string, _ []byte) (identity, error) {
		c, err := a.Verify(s)
		if err != nil {
			return identity{}, err
		}
		return identity{c.UserID, c.Scopes}, nil
	}
}

func jwtauthSigner(tc *testClaims) signFunc {
	a := newJWTAuth(verifyConfig{})
	c := &jwtauth.Claims{
		UserID: tc.UserID, Scopes: tc.Scopes, Issuer: tc.Issuer, Audience: []string{tc.Audience},
		ExpiresAt: tc.ExpiresAt, IssuedAt: tc.IssuedAt,
	}
	return func() (string, []byte, error) {
		s, err := a.Sign(c)
		return s, nil, err
	}
}

// golangJWTParser is golang-jwt configured as its documentation advises: the algorithm
// pinned with WithValidMethods, exp required, and the same leeway and clock.
func golangJWTParser(vc verifyConfig) *gjwt.Parser {
	opts := []gjwt.ParserOption{
		gjwt.WithValidMethods([]string{"HS256"}),
		gjwt.WithExpirationRequired(),
		gjwt.WithLeeway(leeway),
		gjwt.WithTimeFunc(func() time.Time { return fixedNow }),
	}
	if vc.Issuer != "" {
		opts = append(opts, gjwt.WithIssuer(vc.Issuer))
	}
	if vc.Audience != "" {
		opts = append(opts, gjwt.WithAudience(vc.Audience))
	}
	return gjwt.NewParser(opts...)
}

func golangJWTKey(*gjwt.Token) (any, error) { return secret, nil }

// golangJWTVerifier decodes into MapClaims, golang-jwt's default. On this token its
// median time was slightly below that of a custom claims struct (within noise; it
// allocates more), so it is the "golangjwt" entry and the struct is shown beside it.
func golangJWTVerifier(vc verifyConfig) verifyFunc {
	p := golangJWTParser(vc)
	return func(s string, _ []byte) (identity, error) {
		c := gjwt.MapClaims{}
		if _, err := p.ParseWithClaims(s, c, golangJWTKey); err != nil {
			return identity{}, err
		}
		id := identity{}
		id.UserID, _ = c["user_id"].(string)
		var err error
		if id.Scopes, err = anyStrings(c["scopes"]); err != nil {
			return identity{}, err
		}
		return id, nil
	}
}

// golangJWTClaims is golang-jwt's documented custom-claims pattern.
type golangJWTClaims struct {
	UserID string   `json:"user_id"`
	Scopes []string `json:"scopes,omitempty"`
	gjwt.RegisteredClaims
}

// golangJWTStructVerifier is golang-jwt's other idiomatic path: a custom claims struct.
func golangJWTStructVerifier(vc verifyConfig) verifyFunc {
	p := golangJWTParser(vc)
	return func(s string, _ []byte) (identity, error) {
		var c golangJWTClaims
		if _, err := p.ParseWithClaims(s, &c, golangJWTKey); err != nil {
			return identity{}, err
		}
		return identity{c.UserID, c.Scopes}, nil
	}
}

// golangJWTSigner signs the custom claims struct, which measured faster than MapClaims
// (json.Marshal sorts a map's keys).
func golangJWTSigner(tc *testClaims) signFunc {
	c := &golangJWTClaims{
		UserID: tc.UserID, Scopes: tc.Scopes,
		RegisteredClaims: gjwt.RegisteredClaims{
			Issuer: tc.Issuer, Audience: gjwt.ClaimStrings{tc.Audience},
			ExpiresAt: gjwt.NewNumericDate(tc.ExpiresAt), IssuedAt: gjwt.NewNumericDate(tc.IssuedAt),
		},
	}
	return func() (string, []byte, error) {
		s, err := gjwt.NewWithClaims(gjwt.SigningMethodHS256, c).SignedString(secret)
		return s, nil, err
	}
}

type cristalhqClaims struct {
	UserID string   `json:"user_id"`
	Scopes []string `json:"scopes,omitempty"`
	cjwt.RegisteredClaims
}

var (
	errPeerExpired  = errors.New("exp missing or past")
	errPeerNotYet   = errors.New("nbf in the future")
	errPeerIssuer   = errors.New("iss does not match")
	errPeerAudience = errors.New("aud does not match")
)

// cristalhqVerifier: the library checks the signature only; the claims are checked
// with its RegisteredClaims helpers, which have no leeway, so it is applied to now.
func cristalhqVerifier(vc verifyConfig) verifyFunc {
	v, err := cjwt.NewVerifierHS(cjwt.HS256, secret)
	if err != nil {
		panic(err)
	}
	return func(_ string, b []byte) (identity, error) {
		var c cristalhqClaims
		if err := cjwt.ParseClaims(b, v, &c); err != nil {
			return identity{}, err
		}
		switch {
		case c.ExpiresAt == nil || !c.IsValidExpiresAt(fixedNow.Add(-leeway)):
			return identity{}, errPeerExpired
		case !c.IsValidNotBefore(fixedNow.Add(leeway)):
			return identity{}, errPeerNotYet
		case vc.Issuer != "" && !c.IsIssuer(vc.Issuer):
			return identity{}, errPeerIssuer
		case vc.Audience != "" && !c.IsForAudience(vc.Audience):
			return identity{}, errPeerAudience
		}
		return identity{c.UserID, c.Scopes}, nil
	}
}

func cristalhqSigner(tc *testClaims) signFunc {
	s, err := cjwt.NewSignerHS(cjwt.HS256, secret)
	if err != nil {
		panic(err)
	}
	builder := cjwt.NewBuilder(s)
	c := &cristalhqClaims{
		UserID: tc.UserID, Scopes: tc.Scopes,
		RegisteredClaims: cjwt.RegisteredClaims{
			Issuer: tc.Issuer, Audience: cjwt.Audience{tc.Audience},
			ExpiresAt: cjwt.NewNumericDate(tc.ExpiresAt), IssuedAt: cjwt.NewNumericDate(tc.IssuedAt),
		},
	}
	return func() (string, []byte, error) {
		t, err := builder.Build(c)
		if err != nil {
			return "", nil, err
		}
		return "", t.Bytes(), nil
	}
}

// pascaldekloeVerifier: HMAC.Check verifies the signature (and that alg is HS256);
// AcceptTemporal checks exp and nbf with leeway but only when present, so exp is
// required here. AcceptAudience accepts a token without aud, so aud is required too.
func pascaldekloeVerifier(vc verifyConfig) verifyFunc {
	h, err := pjwt.NewHMAC(pjwt.HS256, secret)
	if err != nil {
		panic(err)
	}
	return func(_ string, b []byte) (identity, error) {
		c, err := h.Check(b)
		if err != nil {
			return identity{}, err
		}
		if c.Expires == nil {
			return identity{}, errPeerExpired
		}
		if err := c.AcceptTemporal(fixedNow, leeway); err != nil {
			return identity{}, err
		}
		if vc.Issuer != "" && c.Issuer != vc.Issuer {
			return identity{}, errPeerIssuer
		}
		if vc.Audience != "" && (len(c.Audiences) == 0 || !c.AcceptAudience(vc.Audience)) {
			return identity{}, errPeerAudience
		}
		id := identity{}
		id.UserID, _ = c.String("user_id")
		if id.Scopes, err = anyStrings(c.Set["scopes"]); err != nil {
			return identity{}, err
		}
		return id, nil
	}
}

// anyStrings reads the scopes claim as the map-based libraries decode it: a []any of
// strings, or nil when absent (or not an array).
func anyStrings(v any) ([]string, error) {
	raw, ok := v.([]any)
	if !ok {
		return nil, nil
	}
	out := make([]string, 0, len(raw))
	for _, s := range raw {
		str, ok := s.(string)
		if !ok {
			return nil, fmt.Errorf("scopes: %T is not a string", s)
		}
		out = append(out, str)
	}
	return out, nil
}

func pascaldekloeSigner(tc *testClaims) signFunc {
	h, err := pjwt.NewHMAC(pjwt.HS256, secret)
	if err != nil {
		panic(err)
	}
	c := &pjwt.Claims{
		Registered: pjwt.Registered{
			Issuer: tc.Issuer, Audiences: []string{tc.Audience},
			Expires: pjwt.NewNumericTime(tc.ExpiresAt), Issued: pjwt.NewNumericTime(tc.IssuedAt),
		},
		Set: map[string]any{"user_id": tc.UserID, "scopes": tc.Scopes},
	}
	return func() (string, []byte, error) {
		b, err := h.Sign(c)
		return "", b, err
	}
}

// tokenText returns the token a signFunc produced, whichever form it came in.
func tokenText(s string, b []byte) string {
	if b != nil {
		return string(b)
	}
	return s
}
