package jwtauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// eventLog records the events of a fixture.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) record(_ context.Context, e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// take returns the events recorded since the last take.
func (l *eventLog) take() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.events
	l.events = nil
	return e
}

// wantEvents checks that the events since the last take are exactly want.
func (l *eventLog) wantEvents(t *testing.T, what string, want ...Event) {
	t.Helper()
	got := l.take()
	if len(got) != len(want) {
		t.Fatalf("%s: events %+v, want %+v", what, got, want)
	}
	for i := range got {
		w := want[i]
		if w.SessionID == "*" { // any session id, but one
			if got[i].SessionID == "" {
				t.Errorf("%s: event %d has no session id", what, i)
			}
			w.SessionID = got[i].SessionID
		}
		if got[i] != w {
			t.Errorf("%s: event %d is %+v, want %+v", what, i, got[i], w)
		}
	}
}

func eventFixture(t *testing.T, mod func(*Config)) (*fixture, *eventLog) {
	log := &eventLog{}
	f := newFixture(t, func(c *Config) {
		c.OnEvent = log.record
		if mod != nil {
			mod(c)
		}
	})
	return f, log
}

// TestEventsOfASessionsLife: every transition of a session is an event with the user
// and the session, and reuse says how many rotations old the token was.
func TestEventsOfASessionsLife(t *testing.T) {
	f, log := eventFixture(t, func(c *Config) { c.Refresh.MaxSessions = 2 })
	first := f.login(t, "alice")
	sid := claimsOf(t, f, first).SessionID
	log.wantEvents(t, "login", Event{Kind: EventLogin, UserID: "alice", SessionID: sid, NewLabel: true})

	if rec := f.do(t, "POST", "/auth", `{"username":"alice","password":"nope"}`); rec.Code != 401 {
		t.Fatalf("wrong password: %d", rec.Code)
	}
	log.wantEvents(t, "wrong password", Event{Kind: EventLoginFailed, Reason: "401"})

	second := f.refresh(t, first)
	log.wantEvents(t, "refresh", Event{Kind: EventRefresh, UserID: "alice", SessionID: sid})
	third := f.refresh(t, second)
	f.refresh(t, third)
	log.take()
	// The login token, three rotations old, is presented again.
	if rec := f.do(t, "POST", "/auth/refresh", refreshBody(first.RefreshToken), bearer(first.AccessToken)...); rec.Code != 401 {
		t.Fatalf("reuse: %d", rec.Code)
	}
	log.wantEvents(t, "reuse", Event{Kind: EventReuseDetected, UserID: "alice", SessionID: sid, GenerationsBehind: 3})

	a, b := f.login(t, "alice"), f.login(t, "alice")
	f.clock.add(time.Second)
	f.login(t, "alice") // MaxSessions 2: the least recently used, a, is evicted
	aSID := claimsOf(t, f, a).SessionID
	got := log.take()
	if len(got) != 4 || got[3] != (Event{Kind: EventSessionEnded, UserID: "alice", SessionID: aSID, Reason: "evicted"}) {
		t.Fatalf("eviction: %+v", got)
	}

	if rec := f.do(t, "POST", "/auth/logout", "", bearer(b.AccessToken)...); rec.Code != 204 {
		t.Fatalf("logout: %d", rec.Code)
	}
	log.wantEvents(t, "logout", Event{Kind: EventSessionEnded, UserID: "alice", SessionID: claimsOf(t, f, b).SessionID, Reason: "logout"})

	c := f.login(t, "alice")
	log.take()
	if err := f.a.RevokeSessions(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	got = log.take()
	if len(got) != 2 || got[0].Reason != "revoked" || got[1].Reason != "revoked" || got[0].Kind != EventSessionEnded {
		t.Fatalf("RevokeSessions: %+v", got)
	}

	d := f.login(t, "alice")
	f.clock.add(20 * 24 * time.Hour)
	f.login(t, "alice") // keeps the record, and d's ended session in it, in the store
	log.take()
	f.clock.add(11 * 24 * time.Hour) // d is past the idle timeout
	if rec := f.do(t, "POST", "/auth/refresh", refreshBody(d.RefreshToken), bearer(d.AccessToken)...); rec.Code != 401 {
		t.Fatalf("idle session: %d", rec.Code)
	}
	log.wantEvents(t, "idle session", Event{Kind: EventSessionEnded, UserID: "alice", SessionID: claimsOf(t, f, d).SessionID, Reason: "expired"})
	_ = c
}

// TestEventsOfRefusedRequests: a refused token is an event with its cause class only,
// and so is a cross-origin request in cookie mode.
func TestEventsOfRefusedRequests(t *testing.T) {
	f, log := eventFixture(t, nil)
	tok := f.login(t, "bob").AccessToken
	log.take()
	for _, tc := range []struct {
		name, class string
		hdr         []string
	}{
		{"no token", "missing", nil},
		{"not Bearer", "malformed_header", []string{"Authorization", "Basic " + tok}},
		{"forged", "invalid", bearer(tamper(t, tok))},
	} {
		f.do(t, "GET", "/orders", "", tc.hdr...)
		log.wantEvents(t, tc.name, Event{Kind: EventTokenRejected, Reason: tc.class})
	}
	f.do(t, "POST", "/orders", "", bearer(tok)...) // bob lacks orders:write
	log.wantEvents(t, "scope", Event{Kind: EventTokenRejected, Reason: "insufficient_scope"})
	f.clock.add(time.Hour)
	f.do(t, "GET", "/orders", "", bearer(tok)...)
	log.wantEvents(t, "expired", Event{Kind: EventTokenRejected, Reason: "expired"})

	g, glog := eventFixture(t, func(c *Config) { c.Cookies = &Cookies{} })
	jar := cookieHeader(g.do(t, "POST", "/auth", loginBody("alice")))
	glog.take()
	g.do(t, "POST", "/orders", "", "Cookie", jar, "Sec-Fetch-Site", "cross-site")
	glog.wantEvents(t, "cross-site POST", Event{Kind: EventCrossOriginRefused})
}

// TestEventsNeverCarrySecrets: no event of any kind holds a token, a digest of one, the
// secret, a password, or a hook's error text.
func TestEventsNeverCarrySecrets(t *testing.T) {
	var secrets []string
	add := func(tok string) {
		sum := sha256.Sum256([]byte(tok))
		secrets = append(secrets, tok, hex.EncodeToString(sum[:]), base64.RawURLEncoding.EncodeToString(sum[:]))
		if i := strings.LastIndexByte(tok, '.'); i >= 0 {
			secrets = append(secrets, tok[i+1:]) // a signature alone
		}
	}
	f, log := eventFixture(t, func(c *Config) { c.Refresh.MaxSessions = 1; noReuseInterval(c) })
	f.dir.failWith(nil)
	first := f.login(t, "alice")
	add(first.AccessToken)
	add(first.RefreshToken)
	next := f.refresh(t, first)
	add(next.AccessToken)
	add(next.RefreshToken)
	f.do(t, "POST", "/auth/refresh", refreshBody(first.RefreshToken), bearer(first.AccessToken)...) // reuse
	f.do(t, "POST", "/auth", `{"username":"alice","password":"wrong-password-xyz"}`)
	other := f.login(t, "alice")
	add(other.AccessToken)
	add(other.RefreshToken)
	f.login(t, "alice") // evicts
	f.do(t, "GET", "/orders", "", bearer(tamper(t, other.AccessToken))...)
	f.do(t, "POST", "/auth/logout", "", bearer(other.AccessToken)...)
	secrets = append(secrets, string(httpSecret), "alice-pw", "wrong-password-xyz")

	kinds := map[EventKind]bool{}
	for _, e := range log.take() {
		kinds[e.Kind] = true
		b, _ := json.Marshal(e)
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("event %s holds a secret (%.12q…)", b, s)
			}
		}
	}
	for _, k := range []EventKind{EventLogin, EventLoginFailed, EventRefresh, EventReuseDetected, EventSessionEnded, EventTokenRejected} {
		if !kinds[k] {
			t.Errorf("no %s event was checked", k)
		}
	}
}

// TestLogEventsAttributes: LogEvents writes one record per event with stable attribute
// names, at Warn for reuse and cross-origin refusals.
func TestLogEventsAttributes(t *testing.T) {
	var buf bytes.Buffer
	log := LogEvents(slog.New(slog.NewJSONHandler(&buf, nil)))
	log(context.Background(), Event{Kind: EventReuseDetected, UserID: "alice", SessionID: "s1", GenerationsBehind: 2})
	log(context.Background(), Event{Kind: EventTokenRejected, Reason: "expired"})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d records: %s", len(lines), buf.String())
	}
	var reuse, rejected map[string]any
	json.Unmarshal([]byte(lines[0]), &reuse)
	json.Unmarshal([]byte(lines[1]), &rejected)
	if reuse["level"] != "WARN" || reuse["msg"] != "jwtauth: reuse_detected" || reuse["event"] != "reuse_detected" ||
		reuse["user_id"] != "alice" || reuse["session_id"] != "s1" || reuse["generations_behind"] != 2.0 {
		t.Errorf("reuse record %v", reuse)
	}
	if rejected["level"] != "INFO" || rejected["reason"] != "expired" || rejected["user_id"] != nil {
		t.Errorf("rejected record %v", rejected)
	}
}

// claimsOf verifies the access token of t (expired or not).
func claimsOf(t *testing.T, f *fixture, tok *Tokens) *Claims {
	t.Helper()
	c, err := f.a.tok.verify(tok.AccessToken, true, newClaims)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// refresh trades tok for new tokens, failing the test unless the answer is 200.
func (f *fixture) refresh(t *testing.T, tok *Tokens) *Tokens {
	t.Helper()
	rec := f.do(t, "POST", "/auth/refresh", refreshBody(tok.RefreshToken), bearer(tok.AccessToken)...)
	if rec.Code != 200 {
		t.Fatalf("refresh: %d %s", rec.Code, rec.Body)
	}
	return tokensOf(t, rec)
}
