package jwtauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// benchAuth returns an Auth and the benchmark token: a user id, iss, aud, exp, iat and
// three scopes (benchClaims), 309 bytes as a token.
func benchAuth(b *testing.B) (*Auth, string) {
	b.Helper()
	now := time.Unix(1_700_000_000, 0)
	a, err := New(Config{
		Secret:      []byte(strings.Repeat("k", 32)),
		Issuer:      "https://auth.example.com",
		Audience:    "orders-api",
		SetIssuedAt: true,
		Now:         func() time.Time { return now },
	})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := a.Sign(benchClaims(now))
	if err != nil {
		b.Fatal(err)
	}
	return a, tok
}

func benchClaims(now time.Time) *Claims {
	return &Claims{
		UserID:    "user-0123456789abcdef",
		Scopes:    []string{"orders:read", "orders:write", "profile"},
		Issuer:    "https://auth.example.com",
		Audience:  []string{"orders-api"},
		ExpiresAt: now.Add(30 * time.Minute),
		IssuedAt:  now,
	}
}

func BenchmarkVerify(b *testing.B) {
	a, tok := benchAuth(b)
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c, err := a.Verify(tok)
		if err != nil || c.UserID == "" {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	a, tok := benchAuth(b)
	c := benchClaims(time.Unix(1_700_000_000, 0))
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := a.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyFloor is the least any HS256 verifier must do: decode the signature,
// MAC the signing input with a pooled pre-keyed HMAC, compare with hmac.Equal, and
// decode the payload bytes. Verify is measured against it.
func BenchmarkVerifyFloor(b *testing.B) {
	a, tok := benchAuth(b)
	d1 := strings.IndexByte(tok, '.')
	d2 := strings.LastIndexByte(tok, '.')
	buf := []byte(tok)
	payload := make([]byte, b64.DecodedLen(d2-d1-1))
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var sig [sha256.Size]byte
		if _, err := b64.Decode(sig[:], buf[d2+1:]); err != nil {
			b.Fatal(err)
		}
		st := a.tok.keys[0].get()
		ok := hmac.Equal(st.sum(buf[:d2]), sig[:])
		a.tok.keys[0].put(st)
		if !ok {
			b.Fatal("mac")
		}
		if _, err := b64.Decode(payload, buf[d1+1:d2]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyForeignOrder verifies the claims of BenchmarkVerify written as other
// libraries write them: golang-jwt and jose marshal a map, whose keys encoding/json
// sorts (aud, exp, iat, iss, scopes, user_id), where Sign writes the claim table's order.
func BenchmarkVerifyForeignOrder(b *testing.B) {
	a, own := benchAuth(b)
	c, err := a.Verify(own)
	if err != nil {
		b.Fatal(err)
	}
	payload, err := json.Marshal(map[string]any{
		"user_id": c.UserID, "scopes": c.Scopes, "iss": c.Issuer, "aud": c.Audience[0],
		"exp": c.ExpiresAt.Unix(), "iat": c.IssuedAt.Unix(),
	})
	if err != nil {
		b.Fatal(err)
	}
	tok := forge(stdHeader, string(payload), []byte(strings.Repeat("k", 32)))
	if len(tok) != len(own) {
		b.Fatalf("foreign token of %d bytes, own of %d: not the same claims", len(tok), len(own))
	}
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := a.Verify(tok)
		if err != nil || c.UserID == "" {
			b.Fatal(err)
		}
	}
}

// BenchmarkDPoPProof is verifyProof of one valid ES256 proof for a GET with ath for the
// benchmark token: the parsing, the point check, the ECDSA verification, the thumbprint.
// It checks no jti (the caller spends it), so one proof serves every iteration, at a
// fixed now inside its window. Compare with BenchmarkVerify (HS256).
func BenchmarkDPoPProof(b *testing.B) {
	_, tok := benchAuth(b)
	now := time.Unix(1_700_000_000, 0)
	k := newProofKey(b)
	proof := k.proofFor(b, "GET", dpopOrigin+"/orders", now, tok)
	r := httptest.NewRequest("GET", "/orders", nil)
	r.Header.Set("DPoP", proof)
	htu, window := dpopOrigin+"/orders", time.Minute+defaultLeeway
	if _, err := verifyProof(r, htu, tok, now, window); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(proof)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := verifyProof(r, htu, tok, now, window); err != nil {
			b.Fatal(err)
		}
	}
}
