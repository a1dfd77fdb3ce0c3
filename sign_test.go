package jwtauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"runtime"
	"strings"
	"testing"
	"time"
)

var enc = base64.RawURLEncoding

// forge builds a token from raw header and payload JSON, MACed with HMAC-SHA256(key).
func forge(header, payload string, key []byte) string {
	return forgeWith(sha256.New, header, payload, key)
}

func forgeWith(h func() hash.Hash, header, payload string, key []byte) string {
	in := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	m := hmac.New(h, key)
	m.Write([]byte(in))
	return in + "." + enc.EncodeToString(m.Sum(nil))
}

// macOver returns input, a dot and the HS256 MAC of input under key: a valid MAC over
// exactly these bytes, whatever they hold (CR, LF, '+', '=', set unused bits).
func macOver(input string, key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return input + "." + enc.EncodeToString(m.Sum(nil))
}

// flipUnusedBit sets the lowest bit of the last character's 6-bit value: 43 characters
// carry 258 bits for a 256-bit MAC, so that bit is unused and a lax decoder ignores it.
func flipUnusedBit(tok string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, tok[len(tok)-1])
	return tok[:len(tok)-1] + string(alphabet[last^1])
}

const stdHeader = `{"alg":"HS256","typ":"JWT"}`

// validPayload expires an hour after testNow.
var validPayload = fmt.Sprintf(`{"user_id":"alice","exp":%d}`, testNow.Add(time.Hour).Unix())

func TestSignWritesCanonicalHeader(t *testing.T) {
	a := testAuth(t, nil)
	tok, err := a.Sign(&Claims{UserID: "alice", ExpiresAt: testNow.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	hdr, _, _ := strings.Cut(tok, ".")
	raw, err := enc.DecodeString(hdr)
	if err != nil || string(raw) != stdHeader {
		t.Fatalf("header = %q, %v; want %s", raw, err, stdHeader)
	}
	if tok != forge(stdHeader, validPayload, testSecret) {
		t.Errorf("Sign = %s, want the token of %s", tok, validPayload)
	}
}

// TestSignEscapesHostileStrings: names and values holding quotes, backslashes, control
// characters and non-ASCII come back as exactly one member with the same value.
func TestSignEscapesHostileStrings(t *testing.T) {
	a := testAuth(t, nil)
	hostile := []string{`"`, `\`, `a"b\c`, "\x00\x01\x1f", "\n\r\t\b\f", "é日本🔑", "\u2028\u2029", `","exp":1,"x":"`, "</script>"}
	for _, s := range hostile {
		c := &Claims{UserID: s, Issuer: s, Scopes: []string{s}, ExpiresAt: testNow.Add(time.Hour),
			Extra: map[string]any{s + "k": s}}
		tok, err := a.Sign(c)
		if err != nil {
			t.Fatalf("Sign(%q): %v", s, err)
		}
		got, err := a.Verify(tok)
		if err != nil {
			t.Fatalf("Verify(Sign(%q)): %v", s, err)
		}
		if got.UserID != s || got.Issuer != s || len(got.Scopes) != 1 || got.Scopes[0] != s {
			t.Errorf("round trip of %q gave %q %q %q", s, got.UserID, got.Issuer, got.Scopes)
		}
		var v string
		if err := got.Get(s+"k", &v); err != nil || v != s {
			t.Errorf("Get(%q) = %q, %v", s+"k", v, err)
		}
		// encoding/json agrees: one member per name, the same values.
		var m map[string]any
		if err := json.Unmarshal([]byte(got.raw), &m); err != nil {
			t.Fatal(err)
		}
		if len(m) != 5 || m["user_id"] != s || m[s+"k"] != s {
			t.Errorf("payload %s decodes to %v", got.raw, m)
		}
	}
}

func TestSignRejectsRegisteredClaimOverride(t *testing.T) {
	a := testAuth(t, nil)
	for _, name := range []string{"exp", "nbf", "iat", "iss", "aud", "user_id", "scopes"} {
		_, err := a.Sign(&Claims{UserID: "u", ExpiresAt: testNow.Add(time.Hour), Extra: map[string]any{name: 1}})
		if !errors.Is(err, ErrInvalidClaims) {
			t.Errorf("Extra[%q]: err = %v, want ErrInvalidClaims", name, err)
		}
	}
}

func TestSignRejectsUnencodableClaims(t *testing.T) {
	a := testAuth(t, nil)
	exp := testNow.Add(time.Hour)
	for name, c := range map[string]*Claims{
		"nil claims":                  nil,
		"invalid UTF-8 user id":       {UserID: "\xff", ExpiresAt: exp},
		"invalid UTF-8 custom name":   {Extra: map[string]any{"\xfe": 1}, ExpiresAt: exp},
		"invalid UTF-8 custom string": {Extra: map[string]any{"k": "\xfe"}, ExpiresAt: exp},
		"custom claim not JSON":       {Extra: map[string]any{"k": func() {}}, ExpiresAt: exp},
		"exp before 1970":             {ExpiresAt: time.Unix(-5, 0)},
		"exp after year 9999":         {ExpiresAt: time.Unix(maxNumericDate+1, 0)},
	} {
		if _, err := a.Sign(c); !errors.Is(err, ErrInvalidClaims) {
			t.Errorf("%s: err = %v, want ErrInvalidClaims", name, err)
		}
	}
	// A value encoding/json cannot write is refused with encoding/json's reason.
	_, err := a.Sign(&Claims{Extra: map[string]any{"k": make(chan int)}, ExpiresAt: exp})
	if !errors.Is(err, ErrInvalidClaims) || !strings.Contains(err.Error(), "json: unsupported type") {
		t.Errorf("custom claim of a channel: err = %v, want encoding/json's reason", err)
	}
}

// TestVerifyStepOrder: a token failing two steps reports the earlier one, in the order
// Verify documents.
func TestVerifyStepOrder(t *testing.T) {
	a := testAuth(t, func(c *Config) { c.Issuer = "iss"; c.MaxTokenSize = 200 })
	good := forge(stdHeader, validPayload, testSecret)
	badSig := good[:len(good)-2] + "AA"
	if badSig == good {
		t.Fatal("badSig unchanged")
	}
	expired := fmt.Sprintf(`{"user_id":"alice","iss":"other","exp":%d}`, testNow.Add(-time.Hour).Unix())
	for _, tc := range []struct {
		name  string
		token string
		want  error
	}{
		{"length cap before shape", strings.Repeat(".", 201), errTooLong},
		{"empty before shape", "", errEmpty},
		{"shape before alphabet", "a+b.c", errShape},
		{"a third dot before alphabet", "a+b.c.d.e", errShape},
		{"no dot: a signature alone", good[strings.LastIndexByte(good, '.')+1:], errShape},
		{"one dot: a header and a signature", good[:36] + good[strings.LastIndexByte(good, '.'):], errShape},
		{"a third dot under a valid MAC", macOver(good[:36]+".e30."+good[37:strings.LastIndexByte(good, '.')], testSecret), errShape},
		{"alphabet before signature length", "a+b.c.d", errAlphabet},
		{"signature length before header", forge(`{"alg":"none"}`, "{}", testSecret) + "A", errSigLen},
		{"canonical signature before header", flipUnusedBit(forge(`{"alg":"none"}`, "{}", testSecret)), errSigEncoding},
		{"header before MAC", strings.Replace(badSig, good[:36], enc.EncodeToString([]byte(`{"alg":"none"}`)), 1), errAlg},
		{"MAC before payload", forge(stdHeader, `not json`, []byte(strings.Repeat("y", 32))), errSignature},
		{"MAC before exp (CVE-2024-51744)", forge(stdHeader, expired, []byte(strings.Repeat("x", 32))), errSignature},
		{"payload before time", forge(stdHeader, `{"exp":"soon"}`, testSecret), errExp},
		{"exp before iss", forge(stdHeader, expired, testSecret), errExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := a.Verify(tc.token)
			if c != nil || err != tc.want {
				t.Fatalf("Verify = %v, %v; want nil, %v", c, err, tc.want)
			}
		})
	}
}

func TestVerifyExpiredWithBadSignatureIsInvalidNotExpired(t *testing.T) {
	a := testAuth(t, nil)
	expired := fmt.Sprintf(`{"user_id":"alice","exp":%d}`, testNow.Add(-time.Hour).Unix())
	_, err := a.Verify(forge(stdHeader, expired, []byte(strings.Repeat("z", 32))))
	if !errors.Is(err, ErrTokenInvalid) || errors.Is(err, ErrTokenExpired) {
		t.Fatalf("err = %v; want ErrTokenInvalid and not ErrTokenExpired", err)
	}
}

func TestVerifyRunsExtraVerificationsLast(t *testing.T) {
	calls := 0
	a := testAuth(t, func(c *Config) {
		c.Issuer = "iss"
		c.ExtraVerifications = []func(*Claims) error{func(c *Claims) error {
			calls++
			if c.UserID != "alice" {
				return errors.New("not alice")
			}
			return nil
		}}
	})
	if _, err := a.Verify(forge(stdHeader, `{"user_id":"alice","exp":1}`, testSecret)); !errors.Is(err, ErrTokenExpired) || calls != 0 {
		t.Fatalf("expired: err = %v, calls = %d", err, calls)
	}
	exp := testNow.Add(time.Hour).Unix()
	if _, err := a.Verify(forge(stdHeader, fmt.Sprintf(`{"user_id":"bob","iss":"x","exp":%d}`, exp), testSecret)); !errors.Is(err, ErrInvalidIssuer) || calls != 0 {
		t.Fatalf("wrong iss: err = %v, calls = %d", err, calls)
	}
	_, err := a.Verify(forge(stdHeader, fmt.Sprintf(`{"user_id":"bob","iss":"iss","exp":%d}`, exp), testSecret))
	if !errors.Is(err, ErrVerificationFailed) || calls != 1 {
		t.Fatalf("bob: err = %v, calls = %d", err, calls)
	}
	if _, err := a.Verify(forge(stdHeader, fmt.Sprintf(`{"user_id":"alice","iss":"iss","exp":%d}`, exp), testSecret)); err != nil {
		t.Fatalf("alice: %v", err)
	}
}

func TestVerifyPreviousSecrets(t *testing.T) {
	old := []byte(strings.Repeat("o", 32))
	a := testAuth(t, func(c *Config) { c.PreviousSecrets = [][]byte{old} })
	if _, err := a.Verify(forge(stdHeader, validPayload, old)); err != nil {
		t.Fatalf("token signed with a previous secret: %v", err)
	}
	tok, _ := a.Sign(&Claims{UserID: "u", ExpiresAt: testNow.Add(time.Hour)})
	if tok != forge(stdHeader, `{"user_id":"u","exp":`+fmt.Sprint(testNow.Add(time.Hour).Unix())+`}`, testSecret) {
		t.Error("Sign did not use Secret")
	}
	onlyOld := testAuth(t, func(c *Config) { c.Secret = old })
	if _, err := onlyOld.Verify(tok); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("new-secret token under the old secret alone: %v", err)
	}
}

func TestVerifyMaxTokenSizeIsConfigurable(t *testing.T) {
	tok := forge(stdHeader, validPayload, testSecret)
	if _, err := testAuth(t, func(c *Config) { c.MaxTokenSize = len(tok) - 1 }).Verify(tok); err != errTooLong {
		t.Errorf("one byte over the cap: %v", err)
	}
	if _, err := testAuth(t, func(c *Config) { c.MaxTokenSize = len(tok) }).Verify(tok); err != nil {
		t.Errorf("exactly at the cap: %v", err)
	}
}

func TestVerifyWithoutExpWhenInsecureNoExpiry(t *testing.T) {
	tok := forge(stdHeader, `{"user_id":"alice"}`, testSecret)
	if _, err := testAuth(t, nil).Verify(tok); err != errNoExp {
		t.Errorf("default config: %v, want exp required", err)
	}
	if _, err := testAuth(t, func(c *Config) { c.InsecureNoExpiry = true }).Verify(tok); err != nil {
		t.Errorf("InsecureNoExpiry: %v", err)
	}
}

// rfc7515A1 is the example of RFC 7515 Appendix A.1: its header and payload hold CR LF
// and spaces, so only the strict slow paths can take it.
var rfc7515A1 = struct {
	token string
	key   string // the JWK "k", base64url
	exp   int64
}{
	token: "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9" +
		".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ" +
		".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
	key: "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
	exp: 1300819380,
}

func TestVerifyRFC7515AppendixA1(t *testing.T) {
	key, err := enc.DecodeString(rfc7515A1.key)
	if err != nil {
		t.Fatal(err)
	}
	at := func(now time.Time) *Auth {
		return testAuth(t, func(c *Config) { c.Secret = key; c.Leeway = NoLeeway; c.Now = func() time.Time { return now } })
	}
	exp := time.Unix(rfc7515A1.exp, 0)
	c, err := at(exp.Add(-time.Second)).Verify(rfc7515A1.token)
	if err != nil {
		t.Fatalf("before exp: %v", err)
	}
	var root bool
	if c.Issuer != "joe" || !c.ExpiresAt.Equal(exp) || c.Get("http://example.com/is_root", &root) != nil || !root {
		t.Errorf("claims = %+v, is_root = %v", c, root)
	}
	if _, err := at(exp.Add(time.Second)).Verify(rfc7515A1.token); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("after exp: %v, want ErrTokenExpired", err)
	}
}

// TestVerifyHostileSizesDoNotAllocate is the CVE-2025-30204 class: a megabyte of dots
// must be rejected before anything is split or decoded.
func TestVerifyHostileSizesDoNotAllocate(t *testing.T) {
	dots := strings.Repeat(".", 1<<20)
	big := strings.Repeat("A", 5<<20)
	bigTok := big + "." + big + "." + big
	for _, tc := range []struct {
		name  string
		a     *Auth
		token string
	}{
		{"1 MiB of dots", testAuth(t, nil), dots},
		{"5 MiB token", testAuth(t, nil), big},
		{"15 MiB token of three segments", testAuth(t, nil), bigTok},
		{"1 MiB of dots under a 16 MiB cap", testAuth(t, func(c *Config) { c.MaxTokenSize = 16 << 20 }), dots},
		{"5 MiB without dots under a 16 MiB cap", testAuth(t, func(c *Config) { c.MaxTokenSize = 16 << 20 }), big},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			allocs := testing.AllocsPerRun(5, func() { _, err = tc.a.Verify(tc.token) })
			if !errors.Is(err, ErrTokenInvalid) {
				t.Fatalf("err = %v", err)
			}
			if allocs != 0 {
				t.Errorf("%v allocations per rejection", allocs)
			}
		})
	}
	// And the heap does not grow with the input.
	a := testAuth(t, nil)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < 100; i++ {
		a.Verify(bigTok)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
		t.Errorf("100 rejections of a 15 MiB token allocated %d bytes", grew)
	}
}

func TestVerifyAllocatesLittle(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	a := testAuth(t, func(c *Config) { c.Audience = "api"; c.Issuer = "iss" })
	tok, err := a.Sign(&Claims{UserID: "alice", Scopes: []string{"a", "b:c", "d"}, Issuer: "iss",
		Audience: []string{"api"}, ExpiresAt: testNow.Add(time.Hour), IssuedAt: testNow})
	if err != nil {
		t.Fatal(err)
	}
	a.Verify(tok) // warm the pools
	if n := testing.AllocsPerRun(100, func() { a.Verify(tok) }); n > 4 {
		t.Errorf("Verify allocates %v times, want at most 4", n)
	}
}

func TestVerifyHS512TokensFail(t *testing.T) {
	a := testAuth(t, nil)
	for _, tc := range []struct {
		alg string
		h   func() hash.Hash
	}{{"HS384", sha512.New384}, {"HS512", sha512.New}} {
		tok := forgeWith(tc.h, `{"alg":"`+tc.alg+`","typ":"JWT"}`, validPayload, testSecret)
		if _, err := a.Verify(tok); !errors.Is(err, ErrTokenInvalid) {
			t.Errorf("%s: %v", tc.alg, err)
		}
	}
}

// TestSignRefusesInvalidUTF8AtAnyDepth: encoding/json would write U+FFFD in place of
// invalid UTF-8 inside a custom claim, so the token would say something else than the
// claims Sign was given.
func TestSignRefusesInvalidUTF8AtAnyDepth(t *testing.T) {
	a := testAuth(t, nil)
	exp := testNow.Add(time.Hour)
	for name, v := range map[string]any{
		"string in a map":         map[string]any{"k": "\xff"},
		"map key":                 map[string]any{"\xff": 1},
		"string in a slice":       []string{"ok", "\xfe"},
		"string two levels down":  []any{map[string]string{"k": "a\xffb"}},
		"struct field":            struct{ S string }{"\xc3"},
		"truncated multibyte key": map[string]int{"\xe6\x97": 1},
		"raw replacement escape":  json.RawMessage(`["\ufffd"]`), // what encoding/json writes for invalid UTF-8
	} {
		tok, err := a.Sign(&Claims{UserID: "u", ExpiresAt: exp, Extra: map[string]any{"x": v}})
		if !errors.Is(err, ErrInvalidClaims) {
			t.Errorf("%s: Sign = %q, %v; want ErrInvalidClaims", name, tok, err)
		}
	}
	// U+FFFD itself, and the text \ufffd, are valid and read back as written.
	for _, s := range []string{"\uFFFD", `\ufffd`, `\\ufffd`} {
		tok, err := a.Sign(&Claims{UserID: "u", ExpiresAt: exp, Extra: map[string]any{"x": []string{s}}})
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		c, err := a.Verify(tok)
		var got []string
		if err != nil || c.Get("x", &got) != nil || len(got) != 1 || got[0] != s {
			t.Errorf("%q: read back %q, %v", s, got, err)
		}
	}
}

// TestSignRefusesTokensWithoutExp: Verify requires exp unless InsecureNoExpiry, so a
// token without one could never be used.
func TestSignRefusesTokensWithoutExp(t *testing.T) {
	if tok, err := testAuth(t, nil).Sign(&Claims{UserID: "u"}); !errors.Is(err, ErrInvalidClaims) {
		t.Errorf("Sign = %q, %v; want ErrInvalidClaims", tok, err)
	}
	a := testAuth(t, func(c *Config) { c.InsecureNoExpiry = true })
	tok, err := a.Sign(&Claims{UserID: "u"})
	if err != nil {
		t.Fatalf("InsecureNoExpiry: %v", err)
	}
	if _, err := a.Verify(tok); err != nil {
		t.Errorf("InsecureNoExpiry: Verify = %v", err)
	}
}
