package jwtauth

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// DPoP attacks and regressions found by a second review, each fixed: the test states
// the attack and the property that defeats it.

// stallReader is a request body that a client trickles: before its first byte reaches
// the handler, before runs (what happens elsewhere meanwhile).
type stallReader struct {
	r      io.Reader
	before func()
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.before != nil {
		s.before()
		s.before = nil
	}
	return s.r.Read(p)
}

// TestStalledReplayOfARefreshEndsNothing: a thief sends a captured refresh request (the
// victim's access token, a rotated-out refresh token, a proof already used) to another
// replica inside the proof's window and holds the body back; meanwhile the victim
// refreshes after the window, and the record forgets the old proof. When the body comes,
// the update's clock is past the proof's window: refused as too late, and the rotated-out
// token ends nothing.
func TestStalledReplayOfARefreshEndsNothing(t *testing.T) {
	f, log := eventFixture(t, nil)
	g := newFixture(t, func(c *Config) { c.Refresh.Store = f.store; c.Now = f.clock.now; c.OnEvent = log.record })
	k := newProofKey(t)
	tok0 := f.dpopLogin(t, k, "alice")
	captured := k.proofFor(t, "POST", dpopOrigin+"/auth/refresh", f.clock.now(), tok0.AccessToken)
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(tok0.RefreshToken), "Authorization", "DPoP "+tok0.AccessToken, "DPoP", captured)
	if rec.Code != 200 {
		t.Fatalf("the victim's refresh: %d %s", rec.Code, rec.Body)
	}
	tok1 := tokensOf(t, rec)
	log.take()

	// The replay to replica g: headers at once, inside the proof's window; the body
	// only once the victim has refreshed again, after the captured proof's until.
	body := &stallReader{r: strings.NewReader(refreshBody(tok0.RefreshToken)), before: func() {
		f.clock.add(f.a.proofWindow() + f.a.tok.leeway + time.Second)
		if rec := f.dpopRefresh(t, k, tok1); rec.Code != 200 {
			t.Errorf("the victim's second refresh: %d %s", rec.Code, rec.Body)
		}
	}}
	r := httptest.NewRequest("POST", "/auth/refresh", body)
	r.Header.Set("Authorization", "DPoP "+tok0.AccessToken)
	r.Header.Set("DPoP", captured)
	rec = httptest.NewRecorder()
	g.h.ServeHTTP(rec, r)
	if ss := f.storedSessions(t, "alice"); len(ss) != 1 {
		t.Fatalf("a replayed proof (no key) with a stalled body ended the bound session: %d %s, events %+v",
			rec.Code, rec.Body, log.take())
	}
	wantDPoPRefusal(t, "the stalled replay", rec, "invalid_dpop_proof")
}

// TestProofThumbprintIsTheKeysWhateverItsSpelling: the strict base64url decoder skips CR
// and LF, so a jwk whose x holds an escaped line feed decodes to the same key; hashed as
// written, it would give the key a second thumbprint (a second identity, with its own jti
// namespace). x and y must be exactly 43 characters.
func TestProofThumbprintIsTheKeysWhateverItsSpelling(t *testing.T) {
	k := newProofKey(t)
	x := k.jwk["x"].(string)
	jwk := map[string]any{"kty": "EC", "crv": "P-256", "x": x[:20] + "\n" + x[20:], "y": k.jwk["y"]}
	now := time.Unix(1_700_000_000, 0)
	proof := k.sign(t, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk},
		map[string]any{"jti": "j-1", "htm": "POST", "htu": "https://a.example/auth", "iat": now.Unix()})
	hdr, _, _ := strings.Cut(proof, ".")
	if h, _ := b64.DecodeString(hdr); !strings.Contains(string(h), `\n`) {
		t.Fatalf("the header does not hold the escaped line feed: %s", h)
	}
	r := httptest.NewRequest("POST", "/auth", nil)
	r.Header.Set("DPoP", proof)
	p, err := verifyProof(r, "https://a.example/auth", "", now, time.Minute)
	if err == nil && b64.EncodeToString(p.jkt[:]) != thumbprint(t, k.jwk) {
		t.Fatalf("accepted a jwk x with a line feed, with jkt %s; the key's RFC 7638 thumbprint is %s",
			b64.EncodeToString(p.jkt[:]), thumbprint(t, k.jwk))
	}
}

// TestBoundClientRefreshingEvery45sKeepsItsSession: a bound client whose access tokens
// live a minute refreshes every 45 s; its session, which remembers at most 8 proofs within
// their window (60 s + Leeway), keeps working.
func TestBoundClientRefreshingEvery45sKeepsItsSession(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.ExpirationDelta = time.Minute })
	k := newProofKey(t)
	tok := f.dpopLogin(t, k, "alice")
	for i := 1; i <= 12; i++ {
		f.clock.add(45 * time.Second)
		rec := f.dpopRefresh(t, k, tok)
		if rec.Code != 200 {
			t.Fatalf("refresh %d, %v after the login: %d %q %s", i, time.Duration(i)*45*time.Second,
				rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body)
		}
		tok = tokensOf(t, rec)
	}
}

// TestReplayedLogoutOfOthersEndsNothing: a thief replays a captured POST
// /auth/logout?scope=others of a bound session to another replica within the proof's
// window, to end the sessions the user opened since (a new device, a login after the user
// suspected a theft). The proof is spent in the caller's session record too: the replica
// refuses it, and nothing ends.
func TestReplayedLogoutOfOthersEndsNothing(t *testing.T) {
	f := newFixture(t, nil)
	g := newFixture(t, func(c *Config) { c.Refresh.Store = f.store; c.Now = f.clock.now })
	k, k2 := newProofKey(t), newProofKey(t)
	tokA := f.dpopLogin(t, k, "alice")
	f.login(t, "alice") // device B
	captured := []string{"Authorization", "DPoP " + tokA.AccessToken,
		"DPoP", k.proofFor(t, "POST", dpopOrigin+"/auth/logout", f.clock.now(), tokA.AccessToken)}
	if rec := f.do(t, "POST", "/auth/logout?scope=others", "", captured...); rec.Code != 204 {
		t.Fatalf("the victim's logout of the others: %d %s", rec.Code, rec.Body)
	}
	f.clock.add(30 * time.Second)
	f.dpopLogin(t, k2, "alice") // device C, a minute later at most
	if n := len(f.storedSessions(t, "alice")); n != 2 {
		t.Fatalf("%d sessions before the replay, want A and C", n)
	}
	rec := g.do(t, "POST", "/auth/logout?scope=others", "", captured...)
	if n := len(f.storedSessions(t, "alice")); n != 2 {
		t.Fatalf("a replayed logout (no key) at another replica ended %d session(s): %d %s", 2-n, rec.Code, rec.Body)
	}
}
