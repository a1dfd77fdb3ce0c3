package jwtauth

import (
	"crypto/sha512"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"
)

// payloadAt returns a payload for alice with the given extra members and an exp an
// hour after testNow unless extra sets one.
func payloadAt(extra string) string {
	if strings.Contains(extra, `"exp"`) {
		return `{"user_id":"alice",` + extra + `}`
	}
	if extra != "" {
		extra += ","
	}
	return fmt.Sprintf(`{"user_id":"alice",%s"exp":%d}`, extra, testNow.Add(time.Hour).Unix())
}

// TestVerifyRejectsAttacks is the attack table: every row is a token an attacker can
// make (or a token signed with our key whose content is ambiguous), and every row must
// be rejected with the named sentinel.
func TestVerifyRejectsAttacks(t *testing.T) {
	a := testAuth(t, nil)
	withIss := testAuth(t, func(c *Config) { c.Issuer = "https://issuer.example" })
	withAud := testAuth(t, func(c *Config) { c.Audience = "api" })
	valid := forge(stdHeader, payloadAt(""), testSecret)
	hdr, rest, _ := strings.Cut(valid, ".")
	body, sig, _ := strings.Cut(rest, ".")
	noneHdr := func(alg string) string { return enc.EncodeToString([]byte(`{"alg":"` + alg + `","typ":"JWT"}`)) }
	otherKey := []byte(strings.Repeat("K", 32))
	leeway := defaultLeeway
	// Segments that no encoder writes, for tokens under a valid MAC: a lenient decoder
	// would read the same bytes out of them as out of the canonical segments.
	tilde := enc.EncodeToString([]byte(payloadAt(`"n":"~~~?>?"`))) // holds '-' and '_'
	odd := enc.EncodeToString([]byte(payloadAt(`"n":12`)))         // 43 bytes: 4 unused bits
	oddHdr := enc.EncodeToString([]byte(`{"alg":"HS256" }`))       // 16 bytes: 4 unused bits
	if !strings.Contains(tilde, "-") || !strings.Contains(tilde, "_") {
		t.Fatalf("%s lacks - or _", tilde)
	}
	stdAlphabet := strings.NewReplacer("-", "+", "_", "/").Replace(tilde)
	// 2^64 seconds more than an hour from now: as int64 arithmetic wraps, an hour from now.
	wrapped := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 64), big.NewInt(testNow.Add(time.Hour).Unix()))

	for _, tc := range []struct {
		name  string
		a     *Auth
		token string
		want  error
	}{
		{"alg none without signature", a, noneHdr("none") + "." + body + ".", ErrTokenInvalid},
		{"alg None without signature", a, noneHdr("None") + "." + body + ".", ErrTokenInvalid},
		{"alg NONE without signature", a, noneHdr("NONE") + "." + body + ".", ErrTokenInvalid},
		{"alg none with a signature", a, forge(`{"alg":"none","typ":"JWT"}`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"alg None with a signature", a, forge(`{"alg":"None","typ":"JWT"}`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"alg NONE with a signature", a, forge(`{"alg":"NONE","typ":"JWT"}`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"alg hs256 in lower case", a, forge(`{"alg":"hs256"}`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"HS384 signed with the same secret", a, forgeWith(sha512.New384, `{"alg":"HS384","typ":"JWT"}`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"HS512 signed with the same secret", a, forgeWith(sha512.New, `{"alg":"HS512","typ":"JWT"}`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"RS256 header over an HS256 MAC", a, forge(`{"alg":"RS256","typ":"JWT"}`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"ES256 header over an HS256 MAC", a, forge(`{"alg":"ES256","typ":"JWT"}`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"no alg", a, forge(`{"typ":"JWT"}`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"alg null", a, forge(`{"alg":null}`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"crit listing exp", a, forge(`{"alg":"HS256","crit":["exp"],"exp":1}`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"empty crit", a, forge(`{"alg":"HS256","crit":[]}`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"typ other than JWT", a, forge(`{"alg":"HS256","typ":"at+jwt"}`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"duplicate alg none then HS256", a, forge(`{"alg":"none","alg":"HS256"}`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"duplicate alg HS256 then none", a, forge(`{"alg":"HS256","alg":"none"}`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"duplicate alg through an escape", a, forge(`{"alg":"HS256","\u0061lg":"none"}`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"duplicate exp past then future", a, forge(stdHeader, fmt.Sprintf(`{"user_id":"alice","exp":1,"exp":%d}`, testNow.Add(time.Hour).Unix()), testSecret), ErrTokenInvalid},
		{"duplicate user id", a, forge(stdHeader, payloadAt(`"user_id":"mallory"`), testSecret), ErrTokenInvalid},
		{"duplicate key in a nested custom claim", a, forge(stdHeader, payloadAt(`"x":{"a":1,"a":2}`), testSecret), ErrTokenInvalid},
		{"header is an array", a, forge(`[]`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"header is null", a, forge(`null`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"header is a string", a, forge(`"HS256"`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"header with trailing bytes", a, forge(`{"alg":"HS256"}x`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"header followed by a second object", a, forge(`{"alg":"HS256"}{"alg":"none"}`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"header not JSON", a, forge(`{alg:HS256}`, payloadAt(""), testSecret), ErrTokenInvalid},
		{"payload is an array", a, forge(stdHeader, `[]`, testSecret), ErrTokenInvalid},
		{"payload is null", a, forge(stdHeader, `null`, testSecret), ErrTokenInvalid},
		{"payload is a number", a, forge(stdHeader, `1`, testSecret), ErrTokenInvalid},
		{"payload is a lone }", a, forge(stdHeader, `}`, testSecret), errPayloadJSON},
		{"payload cut after a comma", a, forge(stdHeader, strings.TrimSuffix(payloadAt(""), "}")+",", testSecret), errPayloadJSON},
		{"payload with ; between members", a, forge(stdHeader, strings.Replace(payloadAt(""), ",", ";", 1), testSecret), errPayloadJSON},
		{"payload with trailing bytes", a, forge(stdHeader, payloadAt("")+"x", testSecret), ErrTokenInvalid},
		{"payload followed by a second object", a, forge(stdHeader, payloadAt("")+`{"user_id":"root"}`, testSecret), ErrTokenInvalid},
		{"payload with invalid UTF-8", a, forge(stdHeader, payloadAt(`"n":"`+"\xff"+`"`), testSecret), errStrictText},
		{"payload with invalid UTF-8 in a string with an escape", a, forge(stdHeader, payloadAt(`"n":"\n`+"\xff"+`"`), testSecret), errStrictText},
		{"payload with an unpaired surrogate", a, forge(stdHeader, payloadAt(`"n":"\ud800"`), testSecret), errStrictText},
		{"payload with a high surrogate before an escaped non-surrogate", a, forge(stdHeader, payloadAt(`"n":"\ud800\u0041"`), testSecret), errStrictText},
		{"payload with an unknown escape, \\x0041", a, forge(stdHeader, payloadAt(`"n":"\x0041"`), testSecret), errPayloadJSON},
		{"payload with a \\u escape of non-hex digits", a, forge(stdHeader, payloadAt(`"n":"\u00zz"`), testSecret), errPayloadJSON},
		{"payload with a raw control character in a string with an escape", a, forge(stdHeader, payloadAt(`"n":"\n`+"\x01"+`"`), testSecret), errPayloadJSON},
		{"payload ending inside a non-ASCII string", a, forge(stdHeader, `{"user_id":"é`, testSecret), errUserID},
		{"payload ending after an escaped quote", a, forge(stdHeader, `{"user_id":"\"`, testSecret), errUserID},
		{"payload ending with a backslash inside a string", a, forge(stdHeader, `{"user_id":"\"\`, testSecret), errUserID},
		{"custom number with a trailing dot", a, forge(stdHeader, payloadAt(`"n":1.`), testSecret), errPayloadJSON},
		{"custom number with an empty exponent", a, forge(stdHeader, payloadAt(`"n":1e`), testSecret), errPayloadJSON},
		{"duplicate custom claim", a, forge(stdHeader, payloadAt(`"x":1,"x":2`), testSecret), errDuplicateKey},
		{"duplicate custom claim after eight others", a, forge(stdHeader, payloadAt(`"a":1,"b":1,"c":1,"d":1,"e":1,"f":1,"g":1,"h":1,"i":1,"a":2`), testSecret), errDuplicateKey},
		{"payload with a raw control character", a, forge(stdHeader, payloadAt(`"n":"`+"\x01"+`"`), testSecret), ErrTokenInvalid},
		{"payload nested too deeply", a, forge(stdHeader, payloadAt(`"n":`+strings.Repeat("[", 100)+strings.Repeat("]", 100)), testSecret), ErrTokenInvalid},
		{"signature by another key", a, forge(stdHeader, payloadAt(""), otherKey), ErrTokenInvalid},
		{"signature truncated", a, valid[:len(valid)-1], ErrTokenInvalid},
		{"signature empty", a, hdr + "." + body + ".", ErrTokenInvalid},
		{"signature padded with =", a, valid + "=", ErrTokenInvalid},
		{"signature with a flipped unused bit", a, flipUnusedBit(valid), ErrTokenInvalid},
		{"signature with LF inside", a, valid[:len(valid)-10] + "\n" + valid[len(valid)-10:], ErrTokenInvalid},
		{"signature with CR inside", a, valid[:len(valid)-10] + "\r" + valid[len(valid)-10:], ErrTokenInvalid},
		{"signature with + and /", a, hdr + "." + body + "." + "+/" + sig[2:], ErrTokenInvalid},
		{"payload with LF inside", a, hdr + "." + body[:10] + "\n" + body[10:] + "." + sig, ErrTokenInvalid},
		{"CR inside the payload under a valid MAC", a, macOver(hdr+"."+body[:10]+"\r"+body[10:], testSecret), errAlphabet},
		{"LF inside the payload under a valid MAC", a, macOver(hdr+"."+body[:10]+"\n"+body[10:], testSecret), errAlphabet},
		{"CR LF inside the header under a valid MAC", a, macOver(hdr[:10]+"\r\n"+hdr[10:]+"."+body, testSecret), errAlphabet},
		{"+ and / for - and _ in the payload under a valid MAC", a, macOver(hdr+"."+stdAlphabet, testSecret), errAlphabet},
		{"+ in the header under a valid MAC", a, macOver(strings.Replace(hdr, "J", "+", 1)+"."+body, testSecret), errAlphabet},
		{"payload padded with = under a valid MAC", a, macOver(hdr+"."+odd+"==", testSecret), errAlphabet},
		{"header padded with = under a valid MAC", a, macOver(oddHdr+"==."+body, testSecret), errAlphabet},
		{"payload with a flipped unused bit under a valid MAC", a, macOver(hdr+"."+flipUnusedBit(odd), testSecret), errPayloadB64},
		{"header with a flipped unused bit under a valid MAC", a, macOver(flipUnusedBit(oddHdr)+"."+body, testSecret), errHdrEncoding},
		{"three dots", a, valid + ".", ErrTokenInvalid},
		{"four dots", a, valid + ".x.", ErrTokenInvalid},
		{"one dot", a, hdr + "." + body, ErrTokenInvalid},
		{"leading space", a, " " + valid, ErrTokenInvalid},
		{"trailing space", a, valid + " ", ErrTokenInvalid},
		{"empty token", a, "", ErrTokenInvalid},
		{"exp as a string", a, forge(stdHeader, payloadAt(`"exp":"9999999999"`), testSecret), ErrTokenInvalid},
		{"exp null", a, forge(stdHeader, payloadAt(`"exp":null`), testSecret), ErrTokenInvalid},
		{"exp 0", a, forge(stdHeader, payloadAt(`"exp":0`), testSecret), ErrTokenInvalid},
		{"exp -1", a, forge(stdHeader, payloadAt(`"exp":-1`), testSecret), ErrTokenInvalid},
		{"exp 1e400", a, forge(stdHeader, payloadAt(`"exp":1e400`), testSecret), ErrTokenInvalid},
		{"exp beyond year 9999", a, forge(stdHeader, payloadAt(`"exp":1e12`), testSecret), ErrTokenInvalid},
		{"exp with a leading zero", a, forge(stdHeader, payloadAt(`"exp":01700000000`), testSecret), ErrTokenInvalid},
		{"exp missing", a, forge(stdHeader, `{"user_id":"alice"}`, testSecret), ErrTokenInvalid},
		{"exp with a trailing dot", a, forge(stdHeader, payloadAt(fmt.Sprintf(`"exp":%d.`, testNow.Add(time.Hour).Unix())), testSecret), errExp},
		{"exp 2^64 s after a valid exp, which int64 wraps to it", a, forge(stdHeader, payloadAt(`"exp":`+wrapped.String()), testSecret), errExp},
		{"nbf as a string", a, forge(stdHeader, payloadAt(`"nbf":"1"`), testSecret), ErrTokenInvalid},
		{"iat negative", a, forge(stdHeader, payloadAt(`"iat":-5`), testSecret), ErrTokenInvalid},
		{"user id as a number", a, forge(stdHeader, fmt.Sprintf(`{"user_id":1,"exp":%d}`, testNow.Add(time.Hour).Unix()), testSecret), ErrTokenInvalid},
		{"scopes as a string", a, forge(stdHeader, payloadAt(`"scopes":"admin"`), testSecret), ErrTokenInvalid},
		{"scopes holding a number", a, forge(stdHeader, payloadAt(`"scopes":["admin",1]`), testSecret), ErrTokenInvalid},
		{"user id opened with a letter instead of a quote", a, forge(stdHeader, fmt.Sprintf(`{"user_id":xadmin","exp":%d}`, testNow.Add(time.Hour).Unix()), testSecret), errUserID},
		{"scopes holding a raw control character", a, forge(stdHeader, payloadAt(`"scopes":["a`+"\x01"+`,"b"]`), testSecret), errScopes},
		{"scopes as a lone ]", a, forge(stdHeader, payloadAt(`"scopes":]`), testSecret), errScopes},
		{"aud string holding a raw control character and an array", withAud, forge(stdHeader, payloadAt(`"aud":"x`+"\x01"+`["api"]`), testSecret), errAud},
		{"aud as a lone ]", a, forge(stdHeader, payloadAt(`"aud":]`), testSecret), errAud},
		{"scopes with ; between elements", a, forge(stdHeader, payloadAt(`"scopes":["read";"admin"]`), testSecret), errScopes},
		{"exp past beyond leeway", a, forge(stdHeader, payloadAt(fmt.Sprintf(`"exp":%d`, testNow.Add(-leeway-time.Second).Unix())), testSecret), ErrTokenExpired},
		{"nbf future beyond leeway", a, forge(stdHeader, payloadAt(fmt.Sprintf(`"nbf":%d`, testNow.Add(leeway+time.Second).Unix())), testSecret), ErrTokenNotYetValid},
		{"wrong iss", withIss, forge(stdHeader, payloadAt(`"iss":"https://evil.example"`), testSecret), ErrInvalidIssuer},
		{"iss missing when required", withIss, forge(stdHeader, payloadAt(""), testSecret), ErrInvalidIssuer},
		{"iss as a number", withIss, forge(stdHeader, payloadAt(`"iss":1`), testSecret), ErrTokenInvalid},
		{"aud missing when required", withAud, forge(stdHeader, payloadAt(""), testSecret), ErrInvalidAudience},
		{"aud another audience", withAud, forge(stdHeader, payloadAt(`"aud":"apix"`), testSecret), ErrInvalidAudience},
		{"aud empty array", withAud, forge(stdHeader, payloadAt(`"aud":[]`), testSecret), ErrInvalidAudience},
		{"aud a number", withAud, forge(stdHeader, payloadAt(`"aud":1`), testSecret), ErrTokenInvalid},
		{"aud null", withAud, forge(stdHeader, payloadAt(`"aud":null`), testSecret), ErrTokenInvalid},
		{"aud an object", withAud, forge(stdHeader, payloadAt(`"aud":{"api":true}`), testSecret), ErrTokenInvalid},
		{"aud an array holding a number", withAud, forge(stdHeader, payloadAt(`"aud":["api",1]`), testSecret), ErrTokenInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.a.Verify(tc.token)
			if c != nil || !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %+v, %v; want nil, %v", c, err, tc.want)
			}
		})
	}
}

func TestVerifyAcceptsLegalVariants(t *testing.T) {
	a := testAuth(t, nil)
	withAud := testAuth(t, func(c *Config) { c.Audience = "api" })
	leeway := defaultLeeway
	for _, tc := range []struct {
		name  string
		a     *Auth
		token string
	}{
		{"exp as a float 1e10", a, forge(stdHeader, payloadAt(`"exp":1e10`), testSecret)},
		{"exp with a fraction", a, forge(stdHeader, payloadAt(fmt.Sprintf(`"exp":%d.5`, testNow.Unix())), testSecret)},
		{"a benign kid", a, forge(`{"alg":"HS256","typ":"JWT","kid":"2026-11"}`, payloadAt(""), testSecret)},
		{"no typ", a, forge(`{"alg":"HS256"}`, payloadAt(""), testSecret)},
		{"members in another order", a, forge(`{"typ":"JWT","alg":"HS256"}`, payloadAt(""), testSecret)},
		{"whitespace inside the header JSON", a, forge(" {\r\n \"alg\" : \"HS256\" ,\t\"typ\":\"JWT\" }\n", payloadAt(""), testSecret)},
		{"whitespace inside the payload JSON", a, forge(stdHeader, " "+strings.ReplaceAll(payloadAt(""), ",", " ,\r\n ")+" ", testSecret)},
		{"exp exactly Leeway ago", a, forge(stdHeader, payloadAt(fmt.Sprintf(`"exp":%d`, testNow.Add(-leeway).Unix())), testSecret)},
		{"nbf exactly Leeway ahead", a, forge(stdHeader, payloadAt(fmt.Sprintf(`"nbf":%d`, testNow.Add(leeway).Unix())), testSecret)},
		{"aud as an array holding the audience", withAud, forge(stdHeader, payloadAt(`"aud":["other","api"]`), testSecret)},
		{"aud as a string", withAud, forge(stdHeader, payloadAt(`"aud":"api"`), testSecret)},
		{"escaped user id", a, forge(stdHeader, fmt.Sprintf(`{"user_id":"\u0061lice\ud83d\udd11","exp":%d}`, testNow.Add(time.Hour).Unix()), testSecret)},
		{"custom claims of every JSON type", a, forge(stdHeader, payloadAt(`"o":{"a":[1,-2.5e3,true,false,null,"s"]},"sub":"x","jti":"y"`), testSecret)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.a.Verify(tc.token)
			if err != nil || c == nil || !strings.HasPrefix(c.UserID, "alice") {
				t.Fatalf("Verify = %+v, %v", c, err)
			}
		})
	}
}

func TestLeewayBoundaries(t *testing.T) {
	for _, tc := range []struct {
		name   string
		leeway time.Duration
		none   bool
		exp    time.Duration // relative to now
		ok     bool
	}{
		{"default leeway, exp 180s ago", 0, false, -180 * time.Second, true},
		{"default leeway, exp 181s ago", 0, false, -181 * time.Second, false},
		{"10s leeway, exp 10s ago", 10 * time.Second, false, -10 * time.Second, true},
		{"10s leeway, exp 11s ago", 10 * time.Second, false, -11 * time.Second, false},
		{"no leeway, exp now", 0, true, 0, true},
		{"no leeway, exp 1s ago", 0, true, -time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testAuth(t, func(c *Config) {
				c.Leeway = tc.leeway
				if tc.none {
					c.Leeway = NoLeeway
				}
			})
			_, err := a.Verify(forge(stdHeader, payloadAt(fmt.Sprintf(`"exp":%d`, testNow.Add(tc.exp).Unix())), testSecret))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
