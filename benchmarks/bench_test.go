// Package benchmarks compares jwtauth with github.com/golang-jwt/jwt/v5,
// github.com/cristalhq/jwt/v5 and github.com/pascaldekloe/jwt: speed (BenchmarkVerify,
// BenchmarkSign), interoperability (interop_test.go) and the handling of crafted tokens
// (TestAttackMatrix). It is a separate module so that jwtauth itself stays free of
// dependencies.
//
// On a shared, noisy machine, interleave short runs and take medians:
//
//	go test -c -o bench.test
//	for i in $(seq 15); do
//		./bench.test -test.run '^$' -test.bench . -test.benchmem -test.benchtime 500ms
//	done > bench.txt
//	go run golang.org/x/perf/cmd/benchstat@latest bench.txt
package benchmarks

import (
	"slices"
	"testing"
)

// benchToken is the one token every library verifies: signed by jwtauth, 309 bytes,
// header {"alg":"HS256","typ":"JWT"} and payload
// {"user_id":"user-0123456789abcdef","scopes":["orders:read","orders:write","profile"],
// "iss":"https://auth.example.com","aud":"orders-api","exp":1700001800,"iat":1700000000}.
func benchToken(tb testing.TB) string {
	tb.Helper()
	s, _, err := jwtauthSigner(benchClaims())()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// TestBenchTokenAccepted checks that every library accepts the benchmark token and
// reads the same user id and scopes from it, so that BenchmarkVerify times equal work.
func TestBenchTokenAccepted(t *testing.T) {
	tok := benchToken(t)
	if n := len(tok); n != 309 {
		t.Errorf("benchmark token is %d bytes, want 309", n)
	}
	want := benchClaims()
	for _, lib := range libraries {
		id, err := lib.verify(verifyConfig{})(tok, []byte(tok))
		if err != nil {
			t.Errorf("%s rejects the benchmark token: %v", lib.name, err)
			continue
		}
		if id.UserID != want.UserID || !slices.Equal(id.Scopes, want.Scopes) {
			t.Errorf("%s read %+v, want %q %q", lib.name, id, want.UserID, want.Scopes)
		}
	}
}

// BenchmarkVerify: parse, check the HS256 signature, check exp (required, with leeway),
// and read the user id and scopes, all libraries on the same token bytes.
func BenchmarkVerify(b *testing.B) {
	tok := benchToken(b)
	tokBytes := []byte(tok)
	for _, lib := range libraries {
		verify := lib.verify(verifyConfig{})
		b.Run(lib.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				id, err := verify(tok, tokBytes)
				if err != nil || len(id.Scopes) != 3 {
					b.Fatal(id, err)
				}
			}
		})
	}
}

// BenchmarkSign: encode the benchmark claims (built once, in each library's own types)
// as an HS256 token.
func BenchmarkSign(b *testing.B) {
	for _, lib := range libraries {
		if lib.sign == nil {
			continue
		}
		sign := lib.sign(benchClaims())
		b.Run(lib.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s, t, err := sign()
				if err != nil || len(s)+len(t) == 0 {
					b.Fatal(err)
				}
			}
		})
	}
}
