package benchmarks

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"hash"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The attack matrix: crafted tokens, each run against every library's verifier
// (configured as in peers_test.go, and expecting iss "https://auth.example.com" and aud
// "api"). Only jwtauth's results are asserted: every attack rejected, every control
// accepted. The peers' results are shown, not judged: some accept tokens that are
// merely non-canonical (a second encoding of a genuine signature), others accept
// ambiguous or oversized ones.
//
// go test -run TestAttackMatrix -v prints the table; with JWTAUTH_WRITE_MATRIX=file the
// markdown table is also written to file.

const (
	hdrHS256       = `{"alg":"HS256","typ":"JWT"}`
	attackIssuer   = "https://auth.example.com"
	attackAudience = "api"
	urlAlphabet    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// signedWith returns header.payload.MAC with the MAC computed as HMAC-newHash(key).
func signedWith(newHash func() hash.Hash, key []byte, hdr, payload string) string {
	in := b64(hdr) + "." + b64(payload)
	m := hmac.New(newHash, key)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// signed returns a token properly MACed with HS256 and the shared secret, whatever its
// header and payload say.
func signed(hdr, payload string) string { return signedWith(sha256.New, secret, hdr, payload) }

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

var (
	mIss = `"iss":"` + attackIssuer + `"`
	mAud = `"aud":"` + attackAudience + `"`
	mExp = `"exp":` + unix(fixedNow.Add(30*time.Minute))
	mIat = `"iat":` + unix(fixedNow)
)

// payload returns a claims object: user_id and scopes, then members in order.
func payload(members ...string) string {
	return "{" + strings.Join(append([]string{`"user_id":"user-1"`, `"scopes":["orders:read"]`}, members...), ",") + "}"
}

// validPayload is accepted by every verifier of the matrix.
var validPayload = payload(mIss, mAud, mExp, mIat)

// withStdChar returns a valid token whose signature contains urlChar, with that
// character replaced by its standard-alphabet twin ("-" by "+", "_" by "/").
func withStdChar(urlChar, stdChar string) string {
	for n := 0; ; n++ {
		tok := signed(hdrHS256, payload(mIss, mAud, mExp, mIat, `"jti":"`+strconv.Itoa(n)+`"`))
		d := strings.LastIndexByte(tok, '.')
		if strings.Contains(tok[d+1:], urlChar) {
			return tok[:d+1] + strings.ReplaceAll(tok[d+1:], urlChar, stdChar)
		}
	}
}

type attack struct {
	name    string
	token   string
	control bool // a valid token jwtauth must accept
}

func attacks() []attack {
	valid := signed(hdrHS256, validPayload)
	dot := strings.LastIndexByte(valid, '.')
	body, sig := valid[:dot+1], valid[dot+1:]
	withoutSig := func(hdr string) string { return b64(hdr) + "." + b64(validPayload) + "." }
	last := strings.IndexByte(urlAlphabet, sig[len(sig)-1])
	// The last of 43 characters carries 4 signature bits and 2 unused low bits.
	flipped := body + sig[:len(sig)-1] + string(urlAlphabet[last^1])

	// About 5 MiB once encoded, and properly MACed.
	pad := `"pad":"` + strings.Repeat("A", 5<<20*3/4) + `"`

	var as []attack
	add := func(name, token string) { as = append(as, attack{name: name, token: token}) }
	for _, alg := range []string{"none", "None", "NONE"} {
		h := `{"alg":"` + alg + `","typ":"JWT"}`
		add(`alg "`+alg+`", empty signature`, withoutSig(h))
		add(`alg "`+alg+`", HS256 signature`, signed(h, validPayload))
	}
	add(`alg "HS384", MACed with the same secret`, signedWith(sha512.New384, secret, `{"alg":"HS384","typ":"JWT"}`, validPayload))
	add(`alg "HS512", MACed with the same secret`, signedWith(sha512.New, secret, `{"alg":"HS512","typ":"JWT"}`, validPayload))
	add(`alg "RS256" over an HS256 MAC`, signed(`{"alg":"RS256","typ":"JWT"}`, validPayload))
	add(`alg "ES256" over an HS256 MAC`, signed(`{"alg":"ES256","typ":"JWT"}`, validPayload))
	add(`no alg`, signed(`{"typ":"JWT"}`, validPayload))
	add(`crit ["exp"], exp in header`, signed(`{"alg":"HS256","typ":"JWT","crit":["exp"],`+mExp+`}`, validPayload))
	add(`duplicate alg ("none" then "HS256")`, signed(`{"alg":"none","alg":"HS256","typ":"JWT"}`, validPayload))
	add(`duplicate exp (past then future)`, signed(hdrHS256, payload(mIss, mAud, `"exp":`+unix(fixedNow.Add(-time.Hour)), mExp)))
	for _, v := range []string{`[]`, `"x"`, `null`} {
		add(`header is `+v, signed(v, validPayload))
		add(`payload is `+v, signed(hdrHS256, v))
	}
	add(`header {...}x`, signed(hdrHS256+"x", validPayload))
	add(`header {...}{}`, signed(hdrHS256+"{}", validPayload))
	add(`payload {...}x`, signed(hdrHS256, validPayload+"x"))
	add(`payload {...}{}`, signed(hdrHS256, validPayload+"{}"))
	add(`signature by another key`, signedWith(sha256.New, otherSecret, hdrHS256, validPayload))
	add(`signature truncated to 42 chars`, body+sig[:42])
	add(`signature empty`, body)
	add(`signature padded with "="`, valid+"=")
	add(`signature with a flipped unused bit`, flipped)
	add(`signature with \n inside`, body+sig[:20]+"\n"+sig[20:])
	add(`signature with \r inside`, body+sig[:20]+"\r"+sig[20:])
	add(`signature with "+" (std alphabet)`, withStdChar("-", "+"))
	add(`signature with "/" (std alphabet)`, withStdChar("_", "/"))
	add(`three dots (token + ".")`, valid+".")
	add(`four dots (token + ".x.")`, valid+".x.")
	add(`leading space`, " "+valid)
	add(`trailing space`, valid+" ")
	add(`exp as a string`, signed(hdrHS256, payload(mIss, mAud, `"exp":"`+unix(fixedNow.Add(30*time.Minute))+`"`)))
	add(`exp null`, signed(hdrHS256, payload(mIss, mAud, `"exp":null`)))
	add(`exp 0`, signed(hdrHS256, payload(mIss, mAud, `"exp":0`)))
	add(`exp -1`, signed(hdrHS256, payload(mIss, mAud, `"exp":-1`)))
	add(`no exp`, signed(hdrHS256, payload(mIss, mAud, mIat)))
	add(`exp past beyond leeway (now-1h)`, signed(hdrHS256, payload(mIss, mAud, `"exp":`+unix(fixedNow.Add(-time.Hour)))))
	add(`nbf future beyond leeway (now+1h)`, signed(hdrHS256, payload(mIss, mAud, mExp, `"nbf":`+unix(fixedNow.Add(time.Hour)))))
	add(`wrong iss`, signed(hdrHS256, payload(`"iss":"https://evil.example.com"`, mAud, mExp)))
	add(`aud []`, signed(hdrHS256, payload(mIss, `"aud":[]`, mExp)))
	add(`aud 1`, signed(hdrHS256, payload(mIss, `"aud":1`, mExp)))
	add(`aud null`, signed(hdrHS256, payload(mIss, `"aud":null`, mExp)))
	add(`aud {"aud":"api"}`, signed(hdrHS256, payload(mIss, `"aud":{"aud":"api"}`, mExp)))
	add(`aud ["api",1]`, signed(hdrHS256, payload(mIss, `"aud":["api",1]`, mExp)))
	add(`1 MiB of dots`, strings.Repeat(".", 1<<20))
	add(`5 MiB token, properly MACed`, signed(hdrHS256, payload(mIss, mAud, mExp, pad)))

	ctl := func(name, token string) {
		as = append(as, attack{name: "control: " + name, token: token, control: true})
	}
	ctl(`valid token`, valid)
	ctl(`exp 1e10 (float)`, signed(hdrHS256, payload(mIss, mAud, `"exp":1e10`)))
	ctl(`kid in header`, signed(`{"alg":"HS256","typ":"JWT","kid":"key-1"}`, validPayload))
	ctl(`whitespace inside header JSON`, signed("{ \"alg\" : \"HS256\" ,\n \"typ\" : \"JWT\" }", validPayload))
	ctl(`header {"alg":"HS256"}`, signed(`{"alg":"HS256"}`, validPayload))
	ctl(`header {"typ":"JWT","alg":"HS256"}`, signed(`{"typ":"JWT","alg":"HS256"}`, validPayload))
	return as
}

// try runs one verifier on one token: "accept", "reject" or "panic", and why.
func try(v verifyFunc, tok string) (result, why string) {
	defer func() {
		if r := recover(); r != nil {
			result, why = "panic", fmt.Sprint(r)
		}
	}()
	if _, err := v(tok, []byte(tok)); err != nil {
		return "reject", err.Error()
	}
	return "accept", ""
}

func TestAttackMatrix(t *testing.T) {
	vc := verifyConfig{Issuer: attackIssuer, Audience: attackAudience}
	verifiers := make([]verifyFunc, len(libraries))
	var md strings.Builder
	md.WriteString("| token |")
	for i, lib := range libraries {
		verifiers[i] = lib.verify(vc)
		md.WriteString(" " + lib.name + " |")
	}
	md.WriteString(" jwtauth error |\n|---|")
	md.WriteString(strings.Repeat("---|", len(libraries)+1) + "\n")

	for _, a := range attacks() {
		md.WriteString("| " + a.name + " |")
		jwtauthWhy := ""
		for i, lib := range libraries {
			result, why := try(verifiers[i], a.token)
			md.WriteString(" " + result + " |")
			if lib.name != "jwtauth" {
				continue
			}
			jwtauthWhy = strings.TrimPrefix(why, "jwtauth: ")
			switch {
			case a.control && result != "accept":
				t.Errorf("jwtauth: %s: %s (%s), want accept; token %.200q", a.name, result, why, a.token)
			case !a.control && result != "reject":
				t.Errorf("jwtauth: %s: %s, want reject; token %.200q", a.name, result, a.token)
			}
		}
		md.WriteString(" " + jwtauthWhy + " |\n")
	}
	t.Log("attack matrix (iss " + attackIssuer + ", aud " + attackAudience + "):\n" + md.String())
	if path := os.Getenv("JWTAUTH_WRITE_MATRIX"); path != "" {
		if err := os.WriteFile(path, []byte(md.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
