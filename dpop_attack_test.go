package jwtauth

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// DPoP attacks found by a review of the first DPoP commit, each fixed: the test states
// the attack and the property that defeats it.

// TestScriptCannotGetCookieSessionTokensWithADPoPHeader. With Cookies and
// HeaderFallback, cookieClient answers every request carrying a DPoP header in the JSON
// body. A refresh of an unbound cookie session never looks at the DPoP header (binding
// returns nil for an unbound token read from a cookie), so a script injected into the
// page (same-origin fetch, credentials sent by the browser, Sec-Fetch-Site same-origin)
// that adds "DPoP: x" to POST /auth/refresh reads the session's new access and refresh
// tokens from the body: the HttpOnly protection of cookie mode is gone, and before this
// commit the same request was answered with cookies only.
func TestScriptCannotGetCookieSessionTokensWithADPoPHeader(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Cookies, c.HeaderFallback = &Cookies{}, true })
	browser := f.do(t, "POST", "/auth", loginBody("alice"), "Sec-Fetch-Site", "same-origin", "Origin", dpopOrigin)
	if browser.Code != 200 || len(browser.Result().Cookies()) == 0 {
		t.Fatalf("browser login: %d %s", browser.Code, browser.Body)
	}
	jar := cookieHeader(browser)
	// What fetch('/auth/refresh', {method: 'POST', headers: {DPoP: 'x'}}) sends from the page.
	rec := f.do(t, "POST", "/auth/refresh", "", "Cookie", jar, "Sec-Fetch-Site", "same-origin", "Origin", dpopOrigin, "DPoP", "x")
	m := decodeMap(t, rec)
	if m["access_token"] != nil || m["refresh_token"] != nil {
		t.Fatalf("a script's refresh of a cookie session got the tokens in the body: %d %s (cookies set: %d)",
			rec.Code, rec.Body, len(rec.Result().Cookies()))
	}
}

// TestLoginsWithWrongPasswordsSpendNoReplayMemory. serveLogin
// verifies and spends the proof in the instance's replay memory before Authenticate, so
// a login with a wrong password (any self-made key) takes a slot of the 262,144 an
// instance has per 2 x (60 s + Leeway) = 8 min by default (about 546 requests/s).
// Past that, every DPoP request of every user on the instance, refreshes and protected
// routes included, is a 503 until the generation rotates.
func TestLoginsWithWrongPasswordsSpendNoReplayMemory(t *testing.T) {
	f := newFixture(t, nil)
	victim := newProofKey(t)
	tok := f.dpopLogin(t, victim, "alice")
	before := len(f.a.replays.cur)
	attacker := newProofKey(t)
	for i := 0; i < 3; i++ {
		rec := f.dpopDo(t, attacker, "POST", "/auth", `{"username":"alice","password":"wrong"}`, "")
		if rec.Code != 401 {
			t.Fatalf("wrong password: %d %s", rec.Code, rec.Body)
		}
	}
	grown := len(f.a.replays.cur) - before
	// The consequence, at scale (filled directly: 2^18 HTTP logins are too slow for a test).
	f.a.replays.mu.Lock()
	var id [16]byte
	for i := 0; len(f.a.replays.cur) < maxReplays; i++ {
		id[0], id[1], id[2], id[3] = 0xEE, byte(i), byte(i>>8), byte(i>>16)
		f.a.replays.cur[id] = struct{}{}
	}
	f.a.replays.mu.Unlock()
	victimRoute := f.dpopDo(t, victim, "GET", "/orders", "", tok.AccessToken).Code
	if grown != 0 {
		t.Fatalf("3 logins with wrong passwords took %d slots of the replay memory; "+
			"once it is full the victim's own GET /orders is %d", grown, victimRoute)
	}
}

// TestOversizedProofIsRefusedBeforeItIsSplit. verifyProof calls strings.Split on the DPoP header before checking
// maxProofSize: a header of dots (up to net/http's 1 MiB MaxHeaderBytes) allocates a
// string header per dot, 16 bytes each, 16 MiB per request, at the login, before any
// password is checked.
func TestOversizedProofIsRefusedBeforeItIsSplit(t *testing.T) {
	r := httptest.NewRequest("POST", "/auth", nil)
	r.Header.Set("DPoP", strings.Repeat(".", 1<<20))
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	_, err := verifyProof(r, "http://example.com/auth", "", time.Now(), time.Minute)
	runtime.ReadMemStats(&ms)
	if err == nil {
		t.Fatal("accepted")
	}
	if got := ms.TotalAlloc - before; got > 64<<10 {
		t.Fatalf("refusing a 1 MiB proof allocated %d bytes (the cap is %d bytes, checked after the split)", got, maxProofSize)
	}
}

// TestReplayAtTheWindowEdgeEndsNothing. prove drops the
// session's remembered proofs with until < now before it looks for the jti, and now is
// the store update's clock, read after Store.Load (and raised to the record's newest
// used/rotated time), later than the clock verifyProof checked iat against. A captured
// refresh request (tokens and proof, no key) replayed to another instance so that its
// iat check runs at the last millisecond of the window and the update a millisecond
// later is accepted as a fresh proof; its rotated-out refresh token is then reuse, and
// the victim's session ends. The same happens without a race when one replica's clock
// is ahead of the others (its s.used raises every replica's now).
func TestReplayAtTheWindowEdgeEndsNothing(t *testing.T) {
	f, log := eventFixture(t, nil)
	g := newFixture(t, func(c *Config) { c.Refresh.Store = f.store; c.Now = f.clock.now; c.OnEvent = log.record })
	k := newProofKey(t)
	tok := f.dpopLogin(t, k, "alice")
	captured := []string{"Authorization", "DPoP " + tok.AccessToken,
		"DPoP", k.proofFor(t, "POST", dpopOrigin+"/auth/refresh", f.clock.now(), tok.AccessToken)}
	if rec := f.do(t, "POST", "/auth/refresh", refreshBody(tok.RefreshToken), captured...); rec.Code != 200 {
		t.Fatalf("the victim's refresh: %d %s", rec.Code, rec.Body)
	}
	log.take()
	// The last instant at which the captured proof's iat is in the window; the store
	// takes a millisecond to answer.
	f.clock.add(f.a.proofWindow())
	var once atomic.Bool
	f.store.setAfter(func(method string) {
		if method == "load" && once.CompareAndSwap(false, true) {
			f.clock.add(time.Millisecond)
		}
	})
	rec := g.do(t, "POST", "/auth/refresh", refreshBody(tok.RefreshToken), captured...)
	f.store.setAfter(nil)
	if ss := f.storedSessions(t, "alice"); len(ss) != 1 {
		t.Fatalf("a replayed proof (no key) ended the bound session: %d %s, events %+v", rec.Code, rec.Body, log.take())
	}
	wantDPoPRefusal(t, "the replay", rec, "invalid_dpop_proof")
}

// TestReplicaClockSkewLetsNoReplayEndASession: the same hole without a
// race. Replica A's clock is 60 s ahead (well inside the 180 s default Leeway); the
// victim's second refresh lands there and writes used = A's time into the record.
// A captured proof P1 (first refresh, at replica B) is then replayed to replica C
// (correct clock) while still inside its iat window: C's update clock is raised to the
// record's used time, P1's record entry is dropped as expired, and the replayed
// rotated-out refresh token ends the session as reuse.
func TestReplicaClockSkewLetsNoReplayEndASession(t *testing.T) {
	b := newFixture(t, nil) // replica B, correct clock; its clock is the client's too
	ahead := &clock{t: b.clock.now().Add(time.Minute)}
	a := newFixture(t, func(c *Config) { c.Refresh.Store = b.store; c.Now = ahead.now })
	log := &eventLog{}
	c := newFixture(t, func(c *Config) { c.Refresh.Store = b.store; c.Now = b.clock.now; c.OnEvent = log.record })
	k := newProofKey(t)
	tok0 := b.dpopLogin(t, k, "alice")
	captured := []string{"Authorization", "DPoP " + tok0.AccessToken,
		"DPoP", k.proofFor(t, "POST", dpopOrigin+"/auth/refresh", b.clock.now(), tok0.AccessToken)}
	rec := b.do(t, "POST", "/auth/refresh", refreshBody(tok0.RefreshToken), captured...)
	if rec.Code != 200 {
		t.Fatalf("refresh 1 at B: %d %s", rec.Code, rec.Body)
	}
	tok1 := tokensOf(t, rec)
	w := b.a.proofWindow()
	b.clock.add(w - 30*time.Second)
	ahead.add(w - 30*time.Second)
	rec = a.do(t, "POST", "/auth/refresh", refreshBody(tok1.RefreshToken), "Authorization", "DPoP "+tok1.AccessToken,
		"DPoP", k.proofFor(t, "POST", dpopOrigin+"/auth/refresh", b.clock.now(), tok1.AccessToken))
	if rec.Code != 200 {
		t.Fatalf("refresh 2 at A (clock 60 s ahead): %d %s", rec.Code, rec.Body)
	}
	b.clock.add(time.Second) // C's clock: P1's iat is 211 s old, inside the 240 s window
	rec = c.do(t, "POST", "/auth/refresh", refreshBody(tok0.RefreshToken), captured...)
	if ss := b.storedSessions(t, "alice"); len(ss) != 1 {
		t.Fatalf("a replayed proof (no key) ended the bound session: %d %s, events %+v", rec.Code, rec.Body, log.take())
	}
	wantDPoPRefusal(t, "the replay", rec, "invalid_dpop_proof")
}

// TestChainedMiddlewareTakesOneProofOnce. docs/http.md
// recommends chains ("auth.Protected as a method value" for a group, ScopedWith per
// route), and an app may call Check inside a protected handler. Each layer runs
// requestClaims, which spends the proof's jti in the instance's memory: the second layer
// refuses the request as a replay. A bearer token passes the same chain.
func TestChainedMiddlewareTakesOneProofOnce(t *testing.T) {
	f := newFixture(t, nil)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	chain := f.a.Protected(f.a.ScopedWith(ScopeRule{Scopes: []string{"orders:read"}}, ok))
	send := func(hdr ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/group/orders", nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Add(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		chain.ServeHTTP(rec, r)
		return rec
	}
	if rec := send(bearer(f.login(t, "alice").AccessToken)...); rec.Code != 204 {
		t.Fatalf("bearer token through Protected(ScopedWith(...)): %d %s", rec.Code, rec.Body)
	}
	k := newProofKey(t)
	tok := f.dpopLogin(t, k, "alice")
	rec := send("Authorization", "DPoP "+tok.AccessToken,
		"DPoP", k.proofFor(t, "GET", dpopOrigin+"/group/orders", f.clock.now(), tok.AccessToken))
	if rec.Code != 204 {
		t.Fatalf("bound token with a fresh proof through Protected(ScopedWith(...)): %d %s %q",
			rec.Code, rec.Body, rec.Header().Get("WWW-Authenticate"))
	}
}
