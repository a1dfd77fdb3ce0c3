package jwtauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// proofKey is a client's DPoP key in tests.
type proofKey struct {
	priv *ecdsa.PrivateKey
	jwk  map[string]any
}

func newProofKey(t testing.TB) *proofKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var x, y [32]byte
	priv.X.FillBytes(x[:])
	priv.Y.FillBytes(y[:])
	return &proofKey{priv, map[string]any{"kty": "EC", "crv": "P-256", "x": b64.EncodeToString(x[:]), "y": b64.EncodeToString(y[:])}}
}

// sign makes a compact JWS of header and claims (JSON text, or values to marshal) with
// k, as a DPoP client does.
func (k *proofKey) sign(t testing.TB, header, claims any) string {
	t.Helper()
	enc := func(v any) string {
		if s, ok := v.(string); ok {
			return b64.EncodeToString([]byte(s))
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b64.EncodeToString(b)
	}
	input := enc(header) + "." + enc(claims)
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k.priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64.EncodeToString(sig[:])
}

// proofFor makes a valid proof by k for method at htu, issued at iat, with ath for access
// (none when empty).
func (k *proofKey) proofFor(t testing.TB, method, htu string, iat time.Time, access string) string {
	var jti [12]byte
	rand.Read(jti[:])
	claims := map[string]any{"jti": b64.EncodeToString(jti[:]), "htm": method, "htu": htu, "iat": iat.Unix()}
	if access != "" {
		claims["ath"] = accessTokenHash(access)
	}
	return k.sign(t, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": k.jwk}, claims)
}

// TestDPoPProofAttacks: every proof that RFC 9449 §4.3 (and the known failures of JWS
// verifiers) says to refuse is refused with errDPoPProof; the valid ones pass, with the
// key's RFC 7638 thumbprint.
func TestDPoPProofAttacks(t *testing.T) {
	const htu = "https://api.example.com/auth/refresh"
	now := time.Unix(1_700_000_000, 0)
	k, other := newProofKey(t), newProofKey(t)
	hdr := func(mod func(h map[string]any)) map[string]any {
		jwk := map[string]any{}
		for n, v := range k.jwk {
			jwk[n] = v
		}
		h := map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}
		if mod != nil {
			mod(h)
		}
		return h
	}
	claims := func(mod func(c map[string]any)) map[string]any {
		c := map[string]any{"jti": "j-1", "htm": "POST", "htu": htu, "iat": now.Unix(), "ath": accessTokenHash("the access token")}
		if mod != nil {
			mod(c)
		}
		return c
	}
	valid := k.sign(t, hdr(nil), claims(nil))
	parts := strings.Split(valid, ".")
	zeroSig := parts[0] + "." + parts[1] + "." + b64.EncodeToString(make([]byte, 64))
	// An HMAC under the public key's x as the secret: alg confusion.
	hsInput := b64.EncodeToString([]byte(`{"typ":"dpop+jwt","alg":"HS256","jwk":{"kty":"EC","crv":"P-256","x":"`+k.jwk["x"].(string)+`","y":"`+k.jwk["y"].(string)+`"}}`)) + "." + parts[1]
	mac := hmac.New(sha256.New, []byte(k.jwk["x"].(string)))
	mac.Write([]byte(hsInput))
	hs := hsInput + "." + b64.EncodeToString(mac.Sum(nil))
	// A DER signature (the encoding ecdsa.SignASN1 gives), not R || S.
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	der, _ := ecdsa.SignASN1(rand.Reader, k.priv, digest[:])
	// The same signature with S replaced by N - S, which ECDSA also accepts: the proof
	// is still the client's (the payload and its jti are unchanged).
	sig, _ := b64.DecodeString(parts[2])
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(elliptic.P256().Params().N, s)
	var highS [64]byte
	copy(highS[:32], sig[:32])
	s.FillBytes(highS[32:])

	for _, tc := range []struct {
		name    string
		headers []string // DPoP header values
		ok      bool
	}{
		{"a valid proof", []string{valid}, true},
		{"the same signature with S negated (malleable, still the key holder's)", []string{parts[0] + "." + parts[1] + "." + b64.EncodeToString(highS[:])}, true},
		{"a valid proof from a WebCrypto export (ext, key_ops)", []string{k.sign(t, hdr(func(h map[string]any) {
			h["jwk"].(map[string]any)["ext"], h["jwk"].(map[string]any)["key_ops"] = true, []string{"verify"}
		}), claims(nil))}, true},
		{"no DPoP header", nil, false},
		{"two DPoP headers", []string{valid, valid}, false},
		{"an empty header", []string{""}, false},
		{"four parts", []string{valid + ".x"}, false},
		{"over 2048 bytes", []string{k.sign(t, hdr(func(h map[string]any) { h["pad"] = strings.Repeat("p", 2048) }), claims(nil))}, false},
		{"CVE-2022-21449: the all-zero signature", []string{zeroSig}, false},
		{"alg none", []string{k.sign(t, hdr(func(h map[string]any) { h["alg"] = "none" }), claims(nil))}, false},
		{"alg HS256 keyed with the public key (alg confusion)", []string{hs}, false},
		{"alg ES384", []string{k.sign(t, hdr(func(h map[string]any) { h["alg"] = "ES384" }), claims(nil))}, false},
		{"typ JWT", []string{k.sign(t, hdr(func(h map[string]any) { h["typ"] = "JWT" }), claims(nil))}, false},
		{"no typ", []string{k.sign(t, hdr(func(h map[string]any) { delete(h, "typ") }), claims(nil))}, false},
		{"no jwk", []string{k.sign(t, hdr(func(h map[string]any) { delete(h, "jwk") }), claims(nil))}, false},
		{"a jwk with the private key d", []string{k.sign(t, hdr(func(h map[string]any) {
			h["jwk"].(map[string]any)["d"] = b64.EncodeToString(k.priv.D.Bytes())
		}), claims(nil))}, false},
		{"a jwk of another key: the signature does not verify", []string{k.sign(t, hdr(func(h map[string]any) { h["jwk"] = other.jwk }), claims(nil))}, false},
		{"a jwk off the curve", []string{k.sign(t, hdr(func(h map[string]any) {
			h["jwk"].(map[string]any)["y"] = b64.EncodeToString(make([]byte, 32))
		}), claims(nil))}, false},
		{"a jwk of P-384", []string{k.sign(t, hdr(func(h map[string]any) { h["jwk"].(map[string]any)["crv"] = "P-384" }), claims(nil))}, false},
		{"a jwk x of 33 bytes", []string{k.sign(t, hdr(func(h map[string]any) {
			h["jwk"].(map[string]any)["x"] = b64.EncodeToString(append([]byte{0}, make([]byte, 32)...))
		}), claims(nil))}, false},
		{"crit", []string{k.sign(t, hdr(func(h map[string]any) { h["crit"] = []string{"exp"} }), claims(nil))}, false},
		{"a duplicate alg in the header", []string{k.sign(t, `{"typ":"dpop+jwt","alg":"none","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"`+k.jwk["x"].(string)+`","y":"`+k.jwk["y"].(string)+`"}}`, claims(nil))}, false},
		{"a duplicate htu in the payload", []string{k.sign(t, hdr(nil), `{"jti":"j","htm":"POST","htu":"https://evil.example/","htu":"`+htu+`","iat":1700000000,"ath":"`+accessTokenHash("the access token")+`"}`)}, false},
		{"a DER signature", []string{parts[0] + "." + parts[1] + "." + b64.EncodeToString(der)}, false},
		{"another key's signature", []string{other.sign(t, hdr(nil), claims(nil))}, false},
		{"htm GET", []string{k.sign(t, hdr(nil), claims(func(c map[string]any) { c["htm"] = "GET" }))}, false},
		{"htu of another path", []string{k.sign(t, hdr(nil), claims(func(c map[string]any) { c["htu"] = "https://api.example.com/auth/logout" }))}, false},
		{"htu with a trailing slash", []string{k.sign(t, hdr(nil), claims(func(c map[string]any) { c["htu"] = htu + "/" }))}, false},
		{"a duplicate x in the jwk", []string{k.sign(t, `{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"`+other.jwk["x"].(string)+`","x":"`+k.jwk["x"].(string)+`","y":"`+k.jwk["y"].(string)+`"}}`, claims(nil))}, false},
		{"htu of another host", []string{k.sign(t, hdr(nil), claims(func(c map[string]any) { c["htu"] = "https://evil.example/auth/refresh" }))}, false},
		{"htu over http", []string{k.sign(t, hdr(nil), claims(func(c map[string]any) { c["htu"] = "http://api.example.com/auth/refresh" }))}, false},
		{"htu with a query and a fragment (ignored)", []string{k.sign(t, hdr(nil), claims(func(c map[string]any) { c["htu"] = htu + "?a=1#f" }))}, true},
		{"htu in upper case with the default port (normalised)", []string{k.sign(t, hdr(nil), claims(func(c map[string]any) { c["htu"] = "HTTPS://API.EXAMPLE.COM:443/auth/refresh" }))}, true},
		{"no htu", []string{k.sign(t, hdr(nil), claims(func(c map[string]any) { delete(c, "htu") }))}, false},
		{"no jti", []string{k.sign(t, hdr(nil), claims(func(c map[string]any) { delete(c, "jti") }))}, false},
		{"a jti of 257 bytes", []string{k.sign(t, hdr(nil), claims(func(c map[string]any) { c["jti"] = strings.Repeat("j", 257) }))}, false},
		{"no iat", []string{k.sign(t, hdr(nil), claims(func(c map[string]any) { delete(c, "iat") }))}, false},
		{"iat as a string", []string{k.sign(t, hdr(nil), claims(func(c map[string]any) { c["iat"] = "1700000000" }))}, false},
		{"iat 61 s old", []string{k.sign(t, hdr(nil), claims(func(c map[string]any) { c["iat"] = now.Unix() - 61 }))}, false},
		{"iat 61 s ahead", []string{k.sign(t, hdr(nil), claims(func(c map[string]any) { c["iat"] = now.Unix() + 61 }))}, false},
		{"iat 60 s old", []string{k.sign(t, hdr(nil), claims(func(c map[string]any) { c["iat"] = now.Unix() - 60 }))}, true},
		{"no ath with an access token", []string{k.sign(t, hdr(nil), claims(func(c map[string]any) { delete(c, "ath") }))}, false},
		{"the ath of another token", []string{k.sign(t, hdr(nil), claims(func(c map[string]any) { c["ath"] = accessTokenHash("another token") }))}, false},
		{"a payload that is not an object", []string{k.sign(t, hdr(nil), `["jti"]`)}, false},
		{"a payload with trailing bytes", []string{k.sign(t, hdr(nil), `{"jti":"j","htm":"POST","htu":"`+htu+`","iat":1700000000,"ath":"`+accessTokenHash("the access token")+`"} x`)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/auth/refresh", nil)
			for _, v := range tc.headers {
				r.Header.Add("DPoP", v)
			}
			p, err := verifyProof(r, htu, "the access token", now, time.Minute)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !tc.ok && (err == nil || !errors.Is(err, errDPoPProof)):
				t.Fatalf("verifyProof = %+v, %v; want errDPoPProof", p, err)
			case tc.ok && b64.EncodeToString(p.jkt[:]) != thumbprint(t, k.jwk):
				t.Fatalf("jkt %x, want the key's thumbprint", p.jkt)
			}
		})
	}
}

// thumbprint is the RFC 7638 thumbprint of an EC jwk, computed with encoding/json as an
// independent oracle: a map marshals with its keys sorted and no whitespace.
func thumbprint(t testing.TB, jwk map[string]any) string {
	b, err := json.Marshal(map[string]any{"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return b64.EncodeToString(sum[:])
}

// TestJWKThumbprintIsOfTheRequiredMembersInOrder: a proof's jkt is the RFC 7638 §3.2
// thumbprint of its EC key: SHA-256 of crv, kty, x and y, in that order, no whitespace.
func TestJWKThumbprintIsOfTheRequiredMembersInOrder(t *testing.T) {
	k := newProofKey(t)
	r := httptest.NewRequest("POST", "/x", nil)
	now := time.Now()
	r.Header.Set("DPoP", k.proofFor(t, "POST", "https://a.example/x", now, ""))
	p, err := verifyProof(r, "https://a.example/x", "", now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + k.jwk["x"].(string) + `","y":"` + k.jwk["y"].(string) + `"}`))
	if p.jkt != want || b64.EncodeToString(p.jkt[:]) != thumbprint(t, k.jwk) {
		t.Fatalf("jkt %x", p.jkt)
	}
}

// FuzzDPoPProof: no DPoP header makes the verifier panic, and one it accepts carries a
// signature by the key it names over what it says (checked here with crypto/ecdsa's
// ASN.1-free path on the parts as sent).
func FuzzDPoPProof(f *testing.F) {
	k := newProofKey(f)
	now := time.Unix(1_700_000_000, 0)
	f.Add(k.proofFor(f, "POST", "https://a.example/auth/refresh", now, "tok"))
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.AA")
	f.Add("..")
	f.Fuzz(func(t *testing.T, header string) {
		r := httptest.NewRequest("POST", "/auth/refresh", nil)
		r.Header.Set("DPoP", header)
		p, err := verifyProof(r, "https://a.example/auth/refresh", "tok", now, time.Minute)
		if err != nil {
			if !errors.Is(err, errDPoPProof) || p != nil {
				t.Fatalf("verifyProof = %v, %v", p, err)
			}
			return
		}
		parts := strings.Split(header, ".")
		hdr, _ := b64.DecodeString(parts[0])
		var h struct {
			JWK struct{ X, Y string } `json:"jwk"`
		}
		if json.Unmarshal(hdr, &h) != nil {
			t.Fatal("accepted a header encoding/json cannot read")
		}
		x, _ := b64.DecodeString(h.JWK.X)
		y, _ := b64.DecodeString(h.JWK.Y)
		sig, _ := b64.DecodeString(parts[2])
		digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		key := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}
		if len(sig) != 64 || !ecdsa.Verify(key, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			t.Fatal("accepted a proof whose signature does not verify")
		}
	})
}
