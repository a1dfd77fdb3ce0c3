package storetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// DPoP (D1 to D4): sessions bound to a client's key, through the store: the binding and
// the proofs a session accepted live in its record, so that every replica refuses a
// replayed refresh, and nothing without the key ends a session.

// dpopKey is a client's ES256 key.
type dpopKey struct {
	priv *ecdsa.PrivateKey
	jwk  map[string]string
}

func newDPoPKey(t *testing.T) *dpopKey {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var x, y [32]byte
	priv.X.FillBytes(x[:])
	priv.Y.FillBytes(y[:])
	b64 := base64.RawURLEncoding.EncodeToString
	return &dpopKey{priv, map[string]string{"kty": "EC", "crv": "P-256", "x": b64(x[:]), "y": b64(y[:])}}
}

// proof is a DPoP proof by k for method at the path of httptest's origin, made at iat,
// for the access token access (none when empty).
func (k *dpopKey) proof(t *testing.T, method, path, access string, iat time.Time) string {
	b64 := base64.RawURLEncoding.EncodeToString
	var jti [16]byte
	rand.Read(jti[:])
	claims := map[string]any{"jti": b64(jti[:]), "htm": method, "htu": "http://example.com" + path, "iat": iat.Unix()}
	if access != "" {
		sum := sha256.Sum256([]byte(access))
		claims["ath"] = b64(sum[:])
	}
	hdr, _ := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": k.jwk})
	body, _ := json.Marshal(claims)
	input := b64(hdr) + "." + b64(body)
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k.priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64(sig[:])
}

// dpopHeaders are the header fields of a request with d's access token under the DPoP
// scheme and a proof by k (none when k is nil).
func (s *site) dpopHeaders(k *dpopKey, method, path string, d *device) []string {
	hdr := []string{"Authorization", "DPoP " + d.access}
	if k != nil {
		hdr = append(hdr, "DPoP", k.proof(s.t, method, path, d.access, s.clock()))
	}
	return hdr
}

// dpopLogin logs user in bound to k.
func (s *site) dpopLogin(k *dpopKey, user string) *device {
	s.t.Helper()
	return s.loginFrom(user, "DPoP", k.proof(s.t, "POST", "/auth/", "", s.clock()))
}

// dpopRefresh presents d's tokens at /auth/refresh with the header fields hdr.
func (s *site) dpopRefresh(d *device, hdr []string) (code int, next *device) {
	code, m := s.do("POST", "/auth/refresh", "", fmt.Sprintf(`{"refresh_token":%q}`, d.refresh), hdr...)
	next = &device{user: d.user}
	next.access, _ = m["access_token"].(string)
	next.refresh, _ = m["refresh_token"].(string)
	return code, next
}

func testDPoPBinding(t *testing.T, s *site) {
	k := newDPoPKey(t)
	d := s.dpopLogin(k, s.user("alice"))
	if c := s.claims(d.access); c.KeyThumbprint == "" {
		t.Fatal("a login with a proof gave an unbound access token")
	}
	for i := 0; i < 3; i++ {
		code, next := s.dpopRefresh(d, s.dpopHeaders(k, "POST", "/auth/refresh", d))
		if code != 200 {
			t.Fatalf("refresh %d of the bound session: %d", i, code)
		}
		d = next
		s.advance(time.Second)
	}
	if code, _ := s.do("GET", "/orders", "", "", s.dpopHeaders(k, "GET", "/orders", d)...); code != 200 {
		t.Fatalf("GET /orders with a proof: %d", code)
	}
	if code, _ := s.do("GET", "/orders", d.access, ""); code != 401 {
		t.Fatalf("GET /orders as Bearer: %d, want 401", code)
	}
}

func testDPoPThiefEndsNothing(t *testing.T, s *site) {
	s.configure(noReuseInterval)
	k, thief := newDPoPKey(t), newDPoPKey(t)
	old := s.dpopLogin(k, s.user("alice"))
	code, d := s.dpopRefresh(old, s.dpopHeaders(k, "POST", "/auth/refresh", old))
	if code != 200 {
		t.Fatalf("refresh: %d", code)
	}
	for _, tok := range []*device{d, old} { // the rotated-out token would be reuse
		for _, hdr := range [][]string{nil, s.dpopHeaders(nil, "", "", tok), s.dpopHeaders(thief, "POST", "/auth/refresh", tok)} {
			if code, _ := s.dpopRefresh(tok, hdr); code != 401 {
				t.Fatalf("a refresh without the key: %d, want 401", code)
			}
		}
	}
	for _, e := range s.takeEvents() {
		if e.Kind == "reuse_detected" || e.Kind == "session_ended" {
			t.Fatalf("a request without the key: %+v", e)
		}
	}
	if code, _ := s.dpopRefresh(d, s.dpopHeaders(k, "POST", "/auth/refresh", d)); code != 200 {
		t.Fatalf("the key holder's refresh after the thief's: %d", code)
	}
}

// testDPoPReplayAcrossReplicas: one refresh request, proof and all, sent at once to two
// replicas (two Auths on the store), inside the reuse interval that would answer its
// rotated-out token: the proof's jti is single-use through the record, so exactly one
// is answered, and the session goes on.
func testDPoPReplayAcrossReplicas(t *testing.T, s *site) {
	replica := newSite(t, s.store.Store, s.rounds)
	k := newDPoPKey(t)
	for round := 0; round < s.rounds; round++ {
		d := s.dpopLogin(k, s.user(fmt.Sprint("replay-", round)))
		hdr := s.dpopHeaders(k, "POST", "/auth/refresh", d)
		codes := make([]int, 2)
		var won *device
		race(2, func(i int) error {
			site := []*site{s, replica}[i]
			code, next := site.dpopRefresh(d, hdr)
			if codes[i] = code; code == 200 {
				won = next
			}
			return nil
		})
		if codes[0]+codes[1] != 200+401 {
			t.Fatalf("round %d: the replayed refresh answered %v, want one 200 and one 401", round, codes)
		}
		if code, _ := replica.dpopRefresh(won, replica.dpopHeaders(k, "POST", "/auth/refresh", won)); code != 200 {
			t.Fatalf("round %d: the winner's next refresh: %d", round, code)
		}
	}
}
