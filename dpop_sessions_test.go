package jwtauth

import (
	"crypto/tls"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// The DPoP tests of sessions and routes (SPEC §11 D1-D4): a login binds, a bound session
// and its tokens answer only to proofs by its key, and nothing a thief without the key
// sends ends anything.

// dpopOrigin is the origin of httptest.NewRequest's requests.
const dpopOrigin = "http://example.com"

// dpopDo sends method target with the access token under the DPoP scheme (none when
// access is empty) and, when k is set, a fresh proof by k for that request and token.
func (f *fixture) dpopDo(t testing.TB, k *proofKey, method, target, body, access string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	if access != "" {
		hdr = append(hdr, "Authorization", "DPoP "+access)
	}
	if k != nil {
		path, _, _ := strings.Cut(target, "?")
		hdr = append(hdr, "DPoP", k.proofFor(t, method, dpopOrigin+path, f.clock.now(), access))
	}
	return f.do(t, method, target, body, hdr...)
}

// dpopLogin logs user in bound to k.
func (f *fixture) dpopLogin(t testing.TB, k *proofKey, user string) *Tokens {
	t.Helper()
	rec := f.dpopDo(t, k, "POST", "/auth", loginBody(user), "")
	if rec.Code != 200 {
		t.Fatalf("DPoP login: %d %s", rec.Code, rec.Body)
	}
	return tokensOf(t, rec)
}

// dpopRefresh refreshes tok with a proof by k and returns the answer.
func (f *fixture) dpopRefresh(t testing.TB, k *proofKey, tok *Tokens) *httptest.ResponseRecorder {
	t.Helper()
	return f.dpopDo(t, k, "POST", "/auth/refresh", refreshBody(tok.RefreshToken), tok.AccessToken)
}

// wantDPoPRefusal checks a 401 with the DPoP challenge of error code.
func wantDPoPRefusal(t testing.TB, what string, rec *httptest.ResponseRecorder, code string) {
	t.Helper()
	if want := `DPoP error="` + code + `", algs="ES256"`; rec.Code != 401 || rec.Header().Get("WWW-Authenticate") != want {
		t.Fatalf("%s: %d %q %s; want 401 %q", what, rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body, want)
	}
}

// TestDPoPLoginBindsTheSession (D1): a login with a proof opens a session bound to the
// key's thumbprint, kept in the record (version 3), and its access token carries it as
// cnf.jkt; a login without a proof is unbound, as before.
func TestDPoPLoginBindsTheSession(t *testing.T) {
	f := newFixture(t, nil)
	k := newProofKey(t)
	tok := f.dpopLogin(t, k, "alice")
	c, err := f.a.Verify(tok.AccessToken)
	if err != nil || c.KeyThumbprint != thumbprint(t, k.jwk) {
		t.Fatalf("claims %+v, %v; want cnf.jkt %s", c, err, thumbprint(t, k.jwk))
	}
	if ss := f.storedSessions(t, "alice"); len(ss) != 1 || b64.EncodeToString(ss[0].jkt[:]) != c.KeyThumbprint {
		t.Fatalf("stored sessions %+v", ss)
	}
	if v := f.store.get("alice")[0]; v != 3 {
		t.Errorf("record version %d, want 3", v)
	}
	if rec := f.dpopDo(t, k, "GET", "/orders", "", tok.AccessToken); rec.Code != 200 {
		t.Fatalf("GET /orders with DPoP: %d %s", rec.Code, rec.Body)
	}
	plain := f.login(t, "bob")
	if c, err := f.a.Verify(plain.AccessToken); err != nil || c.KeyThumbprint != "" {
		t.Fatalf("unbound login: %+v, %v", c, err)
	}
	if rec := f.do(t, "GET", "/orders", "", bearer(plain.AccessToken)...); rec.Code != 200 || f.store.get("bob")[0] != 2 {
		t.Fatalf("unbound token as Bearer: %d, record version %d", rec.Code, f.store.get("bob")[0])
	}
}

// TestDPoPBearerDowngradeIsRefused (D3): a bound token is refused as Bearer, with or
// without a proof, on routes and endpoints; a bearer token is refused as DPoP.
func TestDPoPBearerDowngradeIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	k := newProofKey(t)
	tok := f.dpopLogin(t, k, "alice")
	for _, target := range []string{"/orders", "/auth/verify", "/auth/me", "/auth/sessions"} {
		rec := f.do(t, "GET", target, "", bearer(tok.AccessToken)...)
		wantDPoPRefusal(t, "Bearer on "+target, rec, "invalid_token")
		rec = f.do(t, "GET", target, "", "Authorization", "Bearer "+tok.AccessToken,
			"DPoP", k.proofFor(t, "GET", dpopOrigin+target, f.clock.now(), tok.AccessToken))
		wantDPoPRefusal(t, "Bearer with a proof on "+target, rec, "invalid_token")
	}
	plain := f.login(t, "bob")
	rec := f.dpopDo(t, k, "GET", "/orders", "", plain.AccessToken)
	wantDPoPRefusal(t, "a bearer token as DPoP", rec, "invalid_token")
	// From a cookie or the query string, where no scheme says DPoP, a bound token is
	// refused too, with a proof or without.
	g := newFixture(t, func(c *Config) { c.Cookies, c.InsecureQueryString, c.HeaderFallback = &Cookies{}, true, true })
	tok = g.dpopLogin(t, k, "alice")
	proof := func() string { return k.proofFor(t, "GET", dpopOrigin+"/orders", g.clock.now(), tok.AccessToken) }
	wantDPoPRefusal(t, "from a cookie", g.do(t, "GET", "/orders", "", "Cookie", "__Host-access_token="+tok.AccessToken, "DPoP", proof()), "invalid_token")
	wantDPoPRefusal(t, "from the query string", g.do(t, "GET", "/orders?access_token="+tok.AccessToken, "", "DPoP", proof()), "invalid_token")
}

// TestDPoPProofAttacksOnARoute (D2, D3): a bound token on a protected route needs a
// proof of this request by its key, for this token, used once.
func TestDPoPProofAttacksOnARoute(t *testing.T) {
	f := newFixture(t, nil)
	k, thief := newProofKey(t), newProofKey(t)
	tok := f.dpopLogin(t, k, "alice")
	other := f.dpopLogin(t, k, "alice").AccessToken // the same key, another session
	at := "DPoP " + tok.AccessToken
	now := f.clock.now()
	used := k.proofFor(t, "GET", dpopOrigin+"/orders", now, tok.AccessToken)
	if rec := f.do(t, "GET", "/orders", "", "Authorization", at, "DPoP", used); rec.Code != 200 {
		t.Fatalf("first use: %d %s", rec.Code, rec.Body)
	}
	for _, c := range []struct {
		name, code string
		hdr        []string
	}{
		{"no proof", "invalid_dpop_proof", []string{"Authorization", at}},
		{"a replayed proof", "invalid_dpop_proof", []string{"Authorization", at, "DPoP", used}},
		{"two proofs", "invalid_dpop_proof", []string{"Authorization", at,
			"DPoP", k.proofFor(t, "GET", dpopOrigin+"/orders", now, tok.AccessToken), "DPoP", k.proofFor(t, "GET", dpopOrigin+"/orders", now, tok.AccessToken)}},
		{"a proof by another key", "invalid_token", []string{"Authorization", at, "DPoP", thief.proofFor(t, "GET", dpopOrigin+"/orders", now, tok.AccessToken)}},
		{"a proof for another URI", "invalid_dpop_proof", []string{"Authorization", at, "DPoP", k.proofFor(t, "GET", dpopOrigin+"/auth/me", now, tok.AccessToken)}},
		{"a proof for another method", "invalid_dpop_proof", []string{"Authorization", at, "DPoP", k.proofFor(t, "POST", dpopOrigin+"/orders", now, tok.AccessToken)}},
		{"a proof without ath", "invalid_dpop_proof", []string{"Authorization", at, "DPoP", k.proofFor(t, "GET", dpopOrigin+"/orders", now, "")}},
		{"a proof for another token of the key", "invalid_dpop_proof", []string{"Authorization", at, "DPoP", k.proofFor(t, "GET", dpopOrigin+"/orders", now, other)}},
		{"a proof of 61 s + Leeway ago", "invalid_dpop_proof", []string{"Authorization", at,
			"DPoP", k.proofFor(t, "GET", dpopOrigin+"/orders", now.Add(-time.Minute-defaultLeeway-time.Second), tok.AccessToken)}},
	} {
		wantDPoPRefusal(t, c.name, f.do(t, "GET", "/orders", "", c.hdr...), c.code)
	}
	if rec := f.dpopDo(t, k, "GET", "/orders", "", tok.AccessToken); rec.Code != 200 {
		t.Fatalf("a fresh proof after the refusals: %d %s", rec.Code, rec.Body)
	}
}

// TestDPoPRefreshWithoutTheKeyEndsNothing (D2): a thief holding both tokens of a bound
// session, even the rotated-out refresh token that reuse detection would end the session
// for, but not the key, gets 401 for every try, and the session lives on: no reuse, no
// logout of the victim.
func TestDPoPRefreshWithoutTheKeyEndsNothing(t *testing.T) {
	f, log := eventFixture(t, func(c *Config) { c.Refresh.ReuseInterval = NoReuseInterval })
	k, thief := newProofKey(t), newProofKey(t)
	old := f.dpopLogin(t, k, "alice")
	rec := f.dpopRefresh(t, k, old)
	if rec.Code != 200 {
		t.Fatalf("refresh: %d %s", rec.Code, rec.Body)
	}
	cur := tokensOf(t, rec)
	log.take()
	for _, tok := range []*Tokens{cur, old, {AccessToken: cur.AccessToken, RefreshToken: old.RefreshToken}} {
		body := refreshBody(tok.RefreshToken)
		wantDPoPRefusal(t, "as Bearer", f.do(t, "POST", "/auth/refresh", body, bearer(tok.AccessToken)...), "invalid_token")
		wantDPoPRefusal(t, "no proof", f.dpopDo(t, nil, "POST", "/auth/refresh", body, tok.AccessToken), "invalid_dpop_proof")
		wantDPoPRefusal(t, "the thief's key", f.dpopDo(t, thief, "POST", "/auth/refresh", body, tok.AccessToken), "invalid_token")
		wantDPoPRefusal(t, "logout without the key", f.dpopDo(t, thief, "POST", "/auth/logout", "", tok.AccessToken), "invalid_token")
	}
	for _, e := range log.take() {
		if e.Kind != EventTokenRejected {
			t.Errorf("event %+v: a request without the key changed something", e)
		}
	}
	if ss := f.storedSessions(t, "alice"); len(ss) != 1 {
		t.Fatalf("sessions after the thief's tries: %+v", ss)
	}
	if rec := f.dpopRefresh(t, k, cur); rec.Code != 200 {
		t.Fatalf("the key holder's refresh after the thief's tries: %d %s", rec.Code, rec.Body)
	}
	// The key holder presenting the rotated-out token is reuse, as without DPoP.
	if rec := f.dpopRefresh(t, k, old); rec.Code != 401 || len(f.storedSessions(t, "alice")) != 0 {
		t.Fatalf("reuse by the key holder: %d, sessions %+v", rec.Code, f.storedSessions(t, "alice"))
	}
}

// TestDPoPReuseIntervalAnswersOnlyTheKeyHolder (D4): within the reuse interval the
// token just rotated out gets its successor again only with a proof by the key.
func TestDPoPReuseIntervalAnswersOnlyTheKeyHolder(t *testing.T) {
	f := newFixture(t, nil)
	k, thief := newProofKey(t), newProofKey(t)
	old := f.dpopLogin(t, k, "alice")
	rec := f.dpopRefresh(t, k, old)
	if rec.Code != 200 {
		t.Fatalf("refresh: %d %s", rec.Code, rec.Body)
	}
	next := tokensOf(t, rec)
	body := refreshBody(old.RefreshToken)
	wantDPoPRefusal(t, "the thief's key", f.dpopDo(t, thief, "POST", "/auth/refresh", body, old.AccessToken), "invalid_token")
	wantDPoPRefusal(t, "no proof", f.dpopDo(t, nil, "POST", "/auth/refresh", body, old.AccessToken), "invalid_dpop_proof")
	rec = f.dpopRefresh(t, k, old)
	if again := tokensOf(t, rec); rec.Code != 200 || again.RefreshToken != next.RefreshToken {
		t.Fatalf("the key holder's retry: %d %s; want the same successor", rec.Code, rec.Body)
	}
}

// TestDPoPReplayToAnotherInstanceIsRefusedAtRefresh (D2): the jti of a refresh proof is
// kept in the session record, so a refresh request replayed to another instance, whose
// own memory has not seen it, is refused there, and ends nothing; even inside the reuse
// interval, where its rotated-out token would be answered.
func TestDPoPReplayToAnotherInstanceIsRefusedAtRefresh(t *testing.T) {
	f := newFixture(t, nil)
	g := newFixture(t, func(c *Config) { c.Refresh.Store = f.store })
	k := newProofKey(t)
	tok := f.dpopLogin(t, k, "alice")
	hdr := []string{"Authorization", "DPoP " + tok.AccessToken,
		"DPoP", k.proofFor(t, "POST", dpopOrigin+"/auth/refresh", f.clock.now(), tok.AccessToken)}
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(tok.RefreshToken), hdr...)
	if rec.Code != 200 {
		t.Fatalf("refresh: %d %s", rec.Code, rec.Body)
	}
	next := tokensOf(t, rec)
	rec = g.do(t, "POST", "/auth/refresh", refreshBody(tok.RefreshToken), hdr...)
	wantDPoPRefusal(t, "the same request at another instance", rec, "invalid_dpop_proof")
	if ss := f.storedSessions(t, "alice"); len(ss) != 1 || len(ss[0].uses) != 1 {
		t.Fatalf("sessions %+v", ss)
	}
	if rec := g.dpopRefresh(t, k, next); rec.Code != 200 {
		t.Fatalf("a fresh proof at the other instance: %d %s", rec.Code, rec.Body)
	}
}

// TestDPoPSessionRemembersAFewProofs: a bound session keeps the proofs of its refreshes
// within their window, at most maxProofUses; one more within the window is refused
// (ending nothing), and the oldest ones are forgotten once a replay of them would be out
// of its window anyway.
func TestDPoPSessionRemembersAFewProofs(t *testing.T) {
	f := newFixture(t, nil)
	k := newProofKey(t)
	tok := f.dpopLogin(t, k, "alice")
	for i := 0; i < maxProofUses; i++ {
		rec := f.dpopRefresh(t, k, tok)
		if rec.Code != 200 {
			t.Fatalf("refresh %d: %d %s", i, rec.Code, rec.Body)
		}
		tok = tokensOf(t, rec)
	}
	rec := f.dpopRefresh(t, k, tok)
	wantDPoPRefusal(t, "one refresh too many within the window", rec, "invalid_dpop_proof")
	f.clock.add(f.a.proofWindow() + time.Second)
	if rec := f.dpopRefresh(t, k, tok); rec.Code != 200 {
		t.Fatalf("after the window: %d %s", rec.Code, rec.Body)
	}
	if ss := f.storedSessions(t, "alice"); len(ss) != 1 || len(ss[0].uses) != 1 {
		t.Fatalf("sessions %+v", ss)
	}
}

// TestDPoPReauthenticateNeedsTheKey: a bound session's step-up needs a proof by its key
// too, and keeps the binding.
func TestDPoPReauthenticateNeedsTheKey(t *testing.T) {
	f := newFixture(t, nil)
	k := newProofKey(t)
	tok := f.dpopLogin(t, k, "alice")
	wantDPoPRefusal(t, "as Bearer", f.do(t, "POST", "/auth/reauthenticate", loginBody("alice"), bearer(tok.AccessToken)...), "invalid_token")
	rec := f.dpopDo(t, k, "POST", "/auth/reauthenticate", loginBody("alice"), tok.AccessToken)
	if rec.Code != 200 {
		t.Fatalf("reauthenticate: %d %s", rec.Code, rec.Body)
	}
	if c, err := f.a.Verify(tokensOf(t, rec).AccessToken); err != nil || c.KeyThumbprint != thumbprint(t, k.jwk) {
		t.Fatalf("reauthenticated token %+v, %v", c, err)
	}
}

// TestDPoPRequiredAtLogin: with RequireDPoP a login without a proof opens nothing.
func TestDPoPRequiredAtLogin(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RequireDPoP = true })
	wantDPoPRefusal(t, "login without a proof", f.do(t, "POST", "/auth", loginBody("alice")), "invalid_dpop_proof")
	if raw := f.store.get("alice"); raw != nil {
		t.Fatal("a refused login stored a session")
	}
	f.dpopLogin(t, newProofKey(t), "alice")
}

// TestDPoPBehindAProxy: htu is compared with PublicOrigin when it is set, else with the
// request's Host and TLS state.
func TestDPoPBehindAProxy(t *testing.T) {
	k := newProofKey(t)
	f := newFixture(t, func(c *Config) { c.PublicOrigin = "https://api.example.org" })
	login := func(f *fixture, htu string, tlsOn bool) int {
		r := httptest.NewRequest("POST", "/auth", strings.NewReader(loginBody("alice")))
		r.Header.Set("DPoP", k.proofFor(t, "POST", htu, f.clock.now(), ""))
		if tlsOn {
			r.TLS = &tls.ConnectionState{}
		}
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, r)
		return rec.Code
	}
	for htu, want := range map[string]int{"https://api.example.org/auth": 200, "https://API.example.org:443/auth": 200,
		"http://example.com/auth": 401, "https://api.example.org/auth/": 401} {
		if got := login(f, htu, false); got != want {
			t.Errorf("PublicOrigin, htu %s: %d, want %d", htu, got, want)
		}
	}
	g := newFixture(t, nil)
	for _, c := range []struct {
		htu  string
		tls  bool
		want int
	}{{"http://example.com/auth", false, 200}, {"https://example.com/auth", false, 401},
		{"https://example.com/auth", true, 200}, {"http://example.com/auth", true, 401}} {
		if got := login(g, c.htu, c.tls); got != c.want {
			t.Errorf("no PublicOrigin, TLS %v, htu %s: %d, want %d", c.tls, c.htu, got, c.want)
		}
	}
}

// TestDPoPIsForAppsNotCookies: a login with a proof from a client that could not present
// a bound token is a 400 that opens nothing: in cookie mode, a browser's with
// HeaderFallback (its Origin says so), or where the header is read without a scheme.
// With HeaderFallback, an app's login is bound and answered in the body.
func TestDPoPIsForAppsNotCookies(t *testing.T) {
	k := newProofKey(t)
	for _, c := range []struct {
		name string
		mod  func(*Config)
		hdr  []string
	}{
		{"cookie mode", func(c *Config) { c.Cookies = &Cookies{} }, nil},
		{"a browser with HeaderFallback", func(c *Config) { c.Cookies, c.HeaderFallback = &Cookies{}, true }, []string{"Origin", dpopOrigin}},
		{"no scheme", func(c *Config) { c.AuthorizationHeaderNoPrefix = true }, nil},
		{"the query string only", func(c *Config) { c.InsecureQueryString = true }, nil},
	} {
		f := newFixture(t, c.mod)
		rec := f.dpopDo(t, k, "POST", "/auth", loginBody("alice"), "", c.hdr...)
		if rec.Code != 400 || decodeMap(t, rec)["exception"] != "InvalidRequest" || f.store.get("alice") != nil {
			t.Errorf("%s: DPoP login %d %s", c.name, rec.Code, rec.Body)
		}
	}
	g := newFixture(t, func(c *Config) { c.Cookies, c.HeaderFallback = &Cookies{}, true })
	rec := g.dpopDo(t, k, "POST", "/auth", loginBody("alice"), "")
	if tok := tokensOf(t, rec); rec.Code != 200 || len(rec.Result().Cookies()) != 0 || tok.AccessToken == "" {
		t.Fatalf("an app's DPoP login with HeaderFallback: %d %s, cookies %v", rec.Code, rec.Body, rec.Result().Cookies())
	}
	if rec := g.dpopDo(t, k, "GET", "/orders", "", tokensOf(t, rec).AccessToken); rec.Code != 200 {
		t.Fatalf("its token under the DPoP scheme: %d %s", rec.Code, rec.Body)
	}
}

// TestReplayMemoryOfAnInstance: the per-instance memory refuses a jti twice for at least
// span, forgets it after two spans, and past maxReplays refuses (503) rather than forget.
func TestReplayMemoryOfAnInstance(t *testing.T) {
	var c replays
	now, span := time.Unix(1_700_000_000, 0), 4*time.Minute
	if err := c.spend([16]byte{1}, now, span); err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{0, span - 1, span, span + time.Minute} {
		if err := c.spend([16]byte{1}, now.Add(d), span); !errors.Is(err, errProofReplay) {
			t.Fatalf("a replay %v later: %v", d, err)
		}
	}
	if err := c.spend([16]byte{1}, now.Add(3*span), span); err != nil {
		t.Fatalf("three spans later: %v", err)
	}
	var id [16]byte
	for i := 2; i <= maxReplays; i++ { // [16]byte{1} is the first
		id[0], id[1], id[2] = byte(i), byte(i>>8), byte(i>>16)
		if err := c.spend(id, now.Add(3*span), span); err != nil {
			t.Fatalf("proof %d: %v", i, err)
		}
	}
	if err := c.spend([16]byte{9, 9, 9, 9}, now.Add(3*span), span); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("past maxReplays: %v", err)
	}
}

// TestCnfClaim: cnf is a registered claim: Sign writes KeyThumbprint as {"jkt":...},
// Verify reads it back, refuses a cnf it cannot confirm, and Extra cannot write one.
func TestCnfClaim(t *testing.T) {
	a, err := New(Config{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.Sign(&Claims{UserID: "u", ExpiresAt: time.Now().Add(time.Hour), KeyThumbprint: "abc"})
	if c, verr := a.Verify(tok); err != nil || verr != nil || c.KeyThumbprint != "abc" {
		t.Fatalf("round trip: %v, %v", err, verr)
	}
	// Explicit typing: a verifier that takes typ JWT only (this package before DPoP)
	// refuses a bound token instead of taking it for a bearer token.
	if hdr, _, _ := strings.Cut(tok, "."); hdr != boundHeader {
		t.Fatalf("bound token header %s", hdr)
	}
	if h, _ := b64.DecodeString(boundHeader); string(h) != `{"alg":"HS256","typ":"dpop-bound+jwt"}` {
		t.Fatalf("boundHeader is %s", h)
	}
	slow := forge(`{"typ":"dpop-bound+jwt","alg":"HS256"}`, `{"user_id":"u","exp":9999999999}`, testSecret)
	if _, err := a.Verify(slow); err != nil {
		t.Fatalf("the bound typ outside the fast path: %v", err)
	}
	for _, cnf := range []string{`{}`, `{"jkt":""}`, `{"jkt":"a","jkt":"b"}`, `{"jkt":"a","jwk":{}}`, `{"x5t#S256":"a"}`, `"a"`, `{"jkt":1}`} {
		tok := forge(`{"alg":"HS256","typ":"JWT"}`, `{"user_id":"u","exp":9999999999,"cnf":`+cnf+`}`, testSecret)
		if _, err := a.Verify(tok); !errors.Is(err, ErrTokenInvalid) {
			t.Errorf("cnf %s: %v, want ErrTokenInvalid", cnf, err)
		}
	}
	if _, err := a.Sign(&Claims{UserID: "u", ExpiresAt: time.Now().Add(time.Hour), Extra: map[string]any{"cnf": map[string]string{"jkt": "x"}}}); !errors.Is(err, ErrInvalidClaims) {
		t.Fatalf("cnf in Extra: %v", err)
	}
}

// TestDPoPConfig: PublicOrigin must be an origin, and RequireDPoP needs the
// Authorization header read with a scheme, and no cookies.
func TestDPoPConfig(t *testing.T) {
	for _, o := range []string{"https://api.example.org/", "https://API.example.org", "https://api.example.org:443", "api.example.org", "https://*.example.org"} {
		mustReject(t, Config{Secret: testSecret, PublicOrigin: o}, "PublicOrigin")
	}
	for _, cfg := range []Config{{RequireDPoP: true, Cookies: &Cookies{}}, {RequireDPoP: true, Cookies: &Cookies{}, HeaderFallback: true},
		{RequireDPoP: true, AuthorizationHeaderNoPrefix: true}, {RequireDPoP: true, InsecureQueryString: true}} {
		cfg.Secret = testSecret
		mustReject(t, cfg, "RequireDPoP")
	}
	for _, cfg := range []Config{{PublicOrigin: "https://api.example.org:8443"}, {RequireDPoP: true, InsecureQueryString: true, HeaderFallback: true}} {
		cfg.Secret = testSecret
		if _, err := New(cfg); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
	if !slices.Contains(registeredClaims[:], "cnf") {
		t.Error("cnf is not a registered claim")
	}
}

// TestLoginProofIsSingleUse: a captured login request, proof and credentials, replayed
// to the same instance opens no second session.
func TestLoginProofIsSingleUse(t *testing.T) {
	f := newFixture(t, nil)
	proof := newProofKey(t).proofFor(t, "POST", dpopOrigin+"/auth", f.clock.now(), "")
	if rec := f.do(t, "POST", "/auth", loginBody("alice"), "DPoP", proof); rec.Code != 200 {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	wantDPoPRefusal(t, "the replayed login", f.do(t, "POST", "/auth", loginBody("alice"), "DPoP", proof), "invalid_dpop_proof")
	if n := len(f.storedSessions(t, "alice")); n != 1 {
		t.Fatalf("%d sessions after the replayed login, want 1", n)
	}
}

// TestBoundSessionNeedsItsKeyWhateverTheAccessToken: the app's own code signs access
// tokens for a bound session with Sign (an admin's impersonation tool, say): one without
// cnf, sent as Bearer, or one with another key's cnf and a proof by that key, refreshes
// nothing and ends nothing. The session's record, not the token, says which key it needs.
func TestBoundSessionNeedsItsKeyWhateverTheAccessToken(t *testing.T) {
	f := newFixture(t, nil)
	k, thief := newProofKey(t), newProofKey(t)
	tok := f.dpopLogin(t, k, "alice")
	c, err := f.a.Verify(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	body := refreshBody(tok.RefreshToken)
	minted := *c
	minted.KeyThumbprint = ""
	bearerTok, err := f.a.Sign(&minted)
	if err != nil {
		t.Fatal(err)
	}
	wantDPoPRefusal(t, "a minted bearer token", f.do(t, "POST", "/auth/refresh", body, bearer(bearerTok)...), "invalid_dpop_proof")
	minted.KeyThumbprint = thumbprint(t, thief.jwk)
	thiefTok, err := f.a.Sign(&minted)
	if err != nil {
		t.Fatal(err)
	}
	wantDPoPRefusal(t, "a minted token of another key", f.dpopDo(t, thief, "POST", "/auth/refresh", body, thiefTok), "invalid_dpop_proof")
	if rec := f.dpopRefresh(t, k, tok); rec.Code != 200 {
		t.Fatalf("the key holder's refresh: %d %s", rec.Code, rec.Body)
	}
}
