package benchmarks

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	cjwt "github.com/cristalhq/jwt/v5"
	gjwt "github.com/golang-jwt/jwt/v5"
	"github.com/jwtauth/jwtauth"
	pjwt "github.com/pascaldekloe/jwt"
)

// readBack is the full set of claims a test reads out of a token.
type readBack struct {
	UserID    string
	Scopes    []string
	Issuer    string
	Audience  []string
	ExpiresAt time.Time
	IssuedAt  time.Time
}

func (r readBack) check(t *testing.T, who string, want *testClaims) {
	t.Helper()
	if r.UserID != want.UserID || !slices.Equal(r.Scopes, want.Scopes) || r.Issuer != want.Issuer ||
		!slices.Equal(r.Audience, []string{want.Audience}) ||
		!r.ExpiresAt.Equal(want.ExpiresAt) || !r.IssuedAt.Equal(want.IssuedAt) {
		t.Errorf("%s read back %+v, want %+v", who, r, *want)
	}
}

// header returns the decoded JOSE header of a compact token, for the log.
func header(tok string) string {
	h, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return "(undecodable: " + err.Error() + ")"
	}
	return string(b)
}

func TestJWTAuthTokenVerifiesInPeers(t *testing.T) {
	want := benchClaims()
	tok := benchToken(t)
	t.Logf("jwtauth header %s", header(tok))

	t.Run("golangjwt", func(t *testing.T) {
		var c golangJWTClaims
		_, err := golangJWTParser(verifyConfig{}).ParseWithClaims(tok, &c, golangJWTKey)
		if err != nil {
			t.Fatal(err)
		}
		readBack{c.UserID, c.Scopes, c.Issuer, c.Audience, c.ExpiresAt.Time, c.IssuedAt.Time}.check(t, "golang-jwt", want)
	})
	t.Run("cristalhq", func(t *testing.T) {
		v, err := cjwt.NewVerifierHS(cjwt.HS256, secret)
		if err != nil {
			t.Fatal(err)
		}
		var c cristalhqClaims
		if err := cjwt.ParseClaims([]byte(tok), v, &c); err != nil {
			t.Fatal(err)
		}
		readBack{c.UserID, c.Scopes, c.Issuer, c.Audience, c.ExpiresAt.Time, c.IssuedAt.Time}.check(t, "cristalhq", want)
	})
	t.Run("pascaldekloe", func(t *testing.T) {
		h, err := pjwt.NewHMAC(pjwt.HS256, secret)
		if err != nil {
			t.Fatal(err)
		}
		c, err := h.Check([]byte(tok))
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := c.String("user_id")
		var scopes []string
		for _, s := range c.Set["scopes"].([]any) {
			scopes = append(scopes, s.(string))
		}
		readBack{uid, scopes, c.Issuer, c.Audiences, c.Expires.Time(), c.Issued.Time()}.check(t, "pascaldekloe", want)
	})
}

func TestPeerTokensVerifyInJWTAuth(t *testing.T) {
	want := benchClaims()
	a := newJWTAuth(verifyConfig{Issuer: want.Issuer, Audience: want.Audience})
	for _, lib := range libraries {
		if lib.sign == nil || lib.name == "jwtauth" {
			continue
		}
		t.Run(lib.name, func(t *testing.T) {
			s, b, err := lib.sign(want)()
			if err != nil {
				t.Fatal(err)
			}
			tok := tokenText(s, b)
			t.Logf("%s header %s, %d bytes", lib.name, header(tok), len(tok))
			c, err := a.Verify(tok)
			if err != nil {
				t.Fatalf("jwtauth rejects a %s HS256 token: %v\n%s", lib.name, err, tok)
			}
			readBack{c.UserID, c.Scopes, c.Issuer, c.Audience, c.ExpiresAt, c.IssuedAt}.check(t, "jwtauth", want)
		})
	}
}

// TestPeerNonHS256RejectedByJWTAuth: tokens MACed with the same secret under HS384 or
// HS512 are valid for the peers' HMAC code but never for jwtauth.
func TestPeerNonHS256RejectedByJWTAuth(t *testing.T) {
	c := benchClaims()
	a := newJWTAuth(verifyConfig{})
	claims := golangJWTClaims{UserID: c.UserID, Scopes: c.Scopes, RegisteredClaims: gjwt.RegisteredClaims{
		ExpiresAt: gjwt.NewNumericDate(c.ExpiresAt),
	}}
	for _, m := range []gjwt.SigningMethod{gjwt.SigningMethodHS384, gjwt.SigningMethodHS512} {
		t.Run("golangjwt-"+m.Alg(), func(t *testing.T) {
			tok, err := gjwt.NewWithClaims(m, claims).SignedString(secret)
			if err != nil {
				t.Fatal(err)
			}
			// The token is genuine: golang-jwt itself accepts it when the method is allowed.
			if _, err := gjwt.NewParser(gjwt.WithValidMethods([]string{m.Alg()}), gjwt.WithTimeFunc(func() time.Time { return fixedNow })).
				ParseWithClaims(tok, &golangJWTClaims{}, golangJWTKey); err != nil {
				t.Fatalf("golang-jwt rejects its own %s token: %v", m.Alg(), err)
			}
			if _, err := a.Verify(tok); !errors.Is(err, jwtauth.ErrTokenInvalid) {
				t.Fatalf("jwtauth.Verify(%s token) = %v, want ErrTokenInvalid", m.Alg(), err)
			}
		})
	}
}
