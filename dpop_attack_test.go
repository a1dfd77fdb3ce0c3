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

// TestScriptCannotGetCookieSessionTokensWithADPoPHeader: with Cookies and HeaderFallback,
// a script injected into the page refreshes the cookie session with a DPoP header added,
// hoping to be answered as an app, in the body. A DPoP header does not make a client an
// app: the answer is cookies, which the script cannot read.
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

// TestLoginsWithWrongPasswordsSpendNoReplayMemory: an attacker sends logins with wrong
// passwords, each with a proof by a key of its own, to fill the instance's memory of
// proofs, after which every DPoP request on the instance would be a 503. A login's proof
// is spent only once Authenticate has accepted it.
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
	victim503 := f.dpopDo(t, victim, "GET", "/orders", "", tok.AccessToken)
	victimRoute := victim503.Code
	// Full, the memory refuses rather than forgets: 503 with Retry-After, never a
	// replay let through.
	if victimRoute != 503 || victim503.Header().Get("Retry-After") != "1" {
		t.Errorf("a request when the replay memory is full: %d %q", victimRoute, victim503.Header().Get("Retry-After"))
	}
	if grown != 0 {
		t.Fatalf("3 logins with wrong passwords took %d slots of the replay memory; "+
			"once it is full the victim's own GET /orders is %d", grown, victimRoute)
	}
}

// TestOversizedProofIsRefusedBeforeItIsSplit: a DPoP header of a megabyte of dots, at a
// login, where no password is needed yet, would cost a string header per dot if it were
// split; it is refused on its length first.
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

// TestReplayAtTheWindowEdgeEndsNothing: a captured refresh request (tokens and proof, no
// key) is replayed to another instance at the last instant of the proof's window, and the
// store takes a millisecond to answer, so that the update's clock is past the window. The
// record refuses the proof as too late rather than forget it and take it for new; nothing
// ends.
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

// TestReplicaClockSkewLetsNoReplayEndASession: replica A's clock is 60 s ahead (within
// Leeway) and writes its time into the record at the victim's second refresh; a captured
// first refresh request, still inside its window by a correct clock, is replayed to
// replica C. The record's clock only moves forward, so C judges the proof by A's time: too
// late, refused, nothing ended.
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

// TestChainedMiddlewareTakesOneProofOnce: a group of routes behind Protected with
// ScopedWith per route checks a bound token twice in one request; the second check does
// not take the request's own proof for a replay (a Check after a Protected is the same
// case). Separate requests still spend their proofs: TestDPoPProofAttacksOnARoute.
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
