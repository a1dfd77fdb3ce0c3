package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtauth/jwtauth"
)

// RunSessions checks jwtauth's sessions end to end, through the endpoints, with the
// store that newStore returns: the properties S1 to S14 of refresh tokens per login, A1
// to A6 of account security and D1 and D2 of DPoP, each in a subtest named after it (the
// attacks and incidents of S3, S9, S12 to S14 and D2 too). Run it next to Run for a
// store of your own; a store that passes Run passes RunSessions, so a failure here with
// a store that passes Run is a bug in jwtauth.
//
// Every subtest logs in users whose ids begin with "storetest:" and 16 random hexadecimal
// digits, so a shared store meets no other data. The concurrency properties run rounds
// rounds each (at least 200 is a good number for a store behind a network).
func RunSessions(t *testing.T, newStore func() jwtauth.Store, rounds int) {
	for _, tc := range []struct {
		name string
		f    func(*testing.T, *site)
	}{
		{"S1 devices are independent", testDevicesIndependent},
		{"S2 rotation kills the presented token", testRotation},
		{"S3 reuse ends only its own session", testReuseEndsSession},
		{"S3 a token that matches nothing ends nothing", testNoMatchEndsNothing},
		{"S4 reuse interval off: one of N concurrent refreshes wins", testReuseIntervalOff},
		{"S4 default reuse interval (10 s): N concurrent refreshes share one successor", testReuseInterval},
		{"S4 a client whose refresh answer was lost retries and gets the same successor", testLostAnswer},
		{"S4 only the previous token, only inside the interval", testReuseIntervalLimits},
		{"S5 idle timeout", testIdleTimeout},
		{"S5 max lifetime is not extended by rotation", testMaxLifetime},
		{"S5 an ended session fails inside the reuse interval", testEndedInsideInterval},
		{"S6 logout scopes", testLogoutScopes},
		{"S7 session list and revocation", testSessionList},
		{"S7 Go methods for admin tools", testAdminMethods},
		{"S8 logout racing a refresh is never undone", testLogoutVersusRefresh},
		{"S8 a login racing a refresh is never lost", testLoginVersusRefresh},
		{"S8 max sessions evicts the least recently used", testMaxSessions},
		{"S9 the store holds no refresh token", testNoTokenAtRest},
		{"S9 rotating the secret ends no session", testSecretRotation},
		{"S10 VerifySessions reaches access tokens at once", testVerifySessions},
		{"S3 reuse detection cannot be outrun by 40 rotations", testReuseNotOutrun},
		{"S12 an emergency Secret rotation locks no one out", testEmergencySecretRotation},
		{"S9 a restored backup: the rollback is seen or RevokeBefore ends it", testRestoredBackup},
		{"S13 a storm of 128 concurrent logins of one user all succeed", testLoginStorm},
		{"S14 an expired access token ends only its own session", testExpiredTokenEndsOnlyItsOwn},
		{"A1 sessions show their device and when the user last authenticated", testSessionDetails},
		{"A2 auth_time is in every access token and a refresh keeps it", testAuthTime},
		{"A3 a sensitive route needs a recent authentication", testRequireRecentAuth},
		{"A4 reauthentication", testReauthenticate},
		{"A5 EndOtherSessions keeps one session", testEndOtherSessions},
		{"A6 a login says whether its label is new", testNewLabelEvent},
		{"D1 a session bound to a DPoP key refreshes with proofs by it", testDPoPBinding},
		{"D2 a thief without the key ends nothing, even with a rotated-out token", testDPoPThiefEndsNothing},
		{"D2 one refresh proof sent to two replicas at once is answered once", testDPoPReplayAcrossReplicas},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.f(t, newSite(t, newStore(), rounds))
		})
	}
}

// site is an application: an Auth on a fake clock with the store under test, serving
// the endpoints and one protected route.
type site struct {
	t      *testing.T
	store  *recorder
	rounds int
	prefix string // of every user id

	mu     sync.Mutex
	now    time.Time
	events []jwtauth.Event

	auth *jwtauth.Auth
	h    http.Handler
}

var testSecret = []byte("storetest-secret-0123456789abcdef-0123")

func newSite(t *testing.T, st jwtauth.Store, rounds int) *site {
	s := &site{t: t, store: &recorder{Store: st}, rounds: rounds,
		prefix: userPrefix(t), now: time.Now().Truncate(time.Second)}
	s.configure(func(*jwtauth.Config) {})
	return s
}

// configure builds the site's Auth from the base Config changed by mod.
func (s *site) configure(mod func(*jwtauth.Config)) {
	s.t.Helper()
	cfg := jwtauth.Config{
		Secret: testSecret,
		Now:    s.clock,
		Endpoints: &jwtauth.Endpoints{Authenticate: func(r *http.Request) (*jwtauth.User, error) {
			var creds struct{ User, Password string }
			if err := json.NewDecoder(r.Body).Decode(&creds); err != nil || creds.User == "" {
				return nil, &jwtauth.Error{Status: 400, Reason: "send {\"user\": ...}"}
			}
			if creds.Password == "wrong" {
				return nil, jwtauth.ErrAuthenticationFailed
			}
			return &jwtauth.User{ID: creds.User}, nil
		}},
		OnEvent: func(_ context.Context, e jwtauth.Event) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.events = append(s.events, e)
		},
		RetrieveUser: func(_ context.Context, c *jwtauth.Claims) (*jwtauth.User, error) {
			return &jwtauth.User{ID: c.UserID}, nil
		},
		Refresh: &jwtauth.Refresh{Store: s.store},
	}
	mod(&cfg)
	a, err := jwtauth.New(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", a.Handler())
	mux.Handle("/orders", a.Protected(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	mux.Handle("/password", a.RequireRecentAuth(5*time.Minute, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	s.auth, s.h = a, mux
}

func (s *site) clock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

func (s *site) advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = s.now.Add(d)
}

// user returns a fresh user id.
func (s *site) user(name string) string { return s.prefix + name }

// device is one client: a browser or an app, with the tokens of its session.
type device struct {
	user, access, refresh string
}

// do sends one request, with the header fields hdr (name, value, ...), and returns the
// status and the decoded JSON body (nil if none).
func (s *site) do(method, path, access, body string, hdr ...string) (int, map[string]any) {
	w := s.send(method, path, access, body, hdr...)
	var m map[string]any
	json.Unmarshal(w.Body.Bytes(), &m)
	return w.Code, m
}

// send is do, returning the whole response.
func (s *site) send(method, path, access, body string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if access != "" {
		r.Header.Set("Authorization", "Bearer "+access)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, r)
	return w
}

// takeEvents returns the events since the last call.
func (s *site) takeEvents() []jwtauth.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.events
	s.events = nil
	return e
}

// login opens a session for user and returns the device that holds it.
func (s *site) login(user string) *device {
	s.t.Helper()
	return s.loginFrom(user)
}

// refreshWith presents refresh with d's access token; on 200 it returns the new tokens.
func (s *site) refreshWith(d *device, refresh string) (code int, access, next string) {
	code, m := s.do("POST", "/auth/refresh", d.access, fmt.Sprintf(`{"refresh_token":%q}`, refresh))
	access, _ = m["access_token"].(string)
	next, _ = m["refresh_token"].(string)
	return code, access, next
}

// refresh refreshes d and keeps its new tokens; it fails the test unless the answer is
// want.
func (s *site) refresh(d *device, want int) {
	s.t.Helper()
	code, access, next := s.refreshWith(d, d.refresh)
	if code != want {
		s.t.Fatalf("refresh of %s: %d, want %d", d.user, code, want)
	}
	if code == 200 {
		d.access, d.refresh = access, next
	}
}

// wantRefresh checks the answer to presenting refresh on d's session, without keeping
// anything.
func (s *site) wantRefresh(d *device, refresh string, want int, why string) {
	s.t.Helper()
	if code, _, _ := s.refreshWith(d, refresh); code != want {
		s.t.Fatalf("%s: refresh answered %d, want %d", why, code, want)
	}
}

func (s *site) sessions(d *device) []map[string]any {
	s.t.Helper()
	code, m := s.do("GET", "/auth/sessions", d.access, "")
	if code != 200 {
		s.t.Fatalf("GET /auth/sessions: %d %v", code, m)
	}
	var out []map[string]any
	list, _ := m["sessions"].([]any)
	for _, x := range list {
		out = append(out, x.(map[string]any))
	}
	return out
}

func testDevicesIndependent(t *testing.T, s *site) {
	u := s.user("alice")
	laptop := s.login(u)
	phone := s.login(u)
	s.refresh(laptop, 200)
	s.refresh(phone, 200)
	s.refresh(laptop, 200)
	tablet := s.login(u)
	s.refresh(phone, 200)
	s.refresh(laptop, 200)
	s.refresh(tablet, 200)
	if n := len(s.sessions(laptop)); n != 3 {
		t.Fatalf("%d sessions, want 3", n)
	}
}

// noReuseInterval turns S4 off, for the tests of what a rotated-out token does.
func noReuseInterval(c *jwtauth.Config) { c.Refresh.ReuseInterval = jwtauth.NoReuseInterval }

func testRotation(t *testing.T, s *site) {
	s.configure(noReuseInterval)
	d := s.login(s.user("alice"))
	old := d.refresh
	s.refresh(d, 200)
	if d.refresh == old {
		t.Fatal("a refresh returned the presented refresh token")
	}
	s.wantRefresh(d, old, 401, "the rotated-out token")
}

func testReuseEndsSession(t *testing.T, s *site) {
	s.configure(noReuseInterval)
	u := s.user("alice")
	victim, other := s.login(u), s.login(u)
	stolen := victim.refresh
	s.refresh(victim, 200)
	s.wantRefresh(victim, stolen, 401, "the thief presents the rotated-out token")
	s.wantRefresh(victim, victim.refresh, 401, "the session ended: its current token is dead too")
	s.refresh(other, 200) // the user's other device lives on
	if n := len(s.sessions(other)); n != 1 {
		t.Fatalf("%d sessions after the reuse, want 1", n)
	}
	// An ancestor older than the previous token ends its session too.
	d := s.login(u)
	first := d.refresh
	s.refresh(d, 200)
	s.refresh(d, 200)
	s.refresh(d, 200)
	s.wantRefresh(d, first, 401, "a token three rotations old")
	s.wantRefresh(d, d.refresh, 401, "after an ancestor's reuse, the current token")
}

func testNoMatchEndsNothing(t *testing.T, s *site) {
	u := s.user("alice")
	d := s.login(u)
	other := s.login(u)
	for _, garbage := range []string{"AAAAAAAAAAAAAAAAAAAAAAAA", other.refresh, d.refresh[:23] + "A", ""} {
		if garbage == d.refresh {
			continue
		}
		code, _, _ := s.refreshWith(d, garbage)
		if code != 401 && code != 400 {
			t.Fatalf("refresh token %q: %d, want 401", garbage, code)
		}
	}
	// An expired access token with garbage: still nothing ended.
	s.advance(24 * time.Hour)
	s.wantRefresh(d, "garbage-garbage-garbage!", 401, "garbage behind a day-old access token")
	s.refresh(d, 200)
	s.refresh(other, 200)
}

func testReuseIntervalOff(t *testing.T, s *site) {
	s.configure(noReuseInterval)
	const n = 8
	for round := 0; round < s.rounds; round++ {
		d := s.login(s.user(fmt.Sprint("tabs-", round)))
		codes := make([]int, n)
		race(n, func(i int) error { codes[i], _, _ = s.refreshWith(d, d.refresh); return nil })
		ok := 0
		for _, c := range codes {
			if c == 200 {
				ok++
			} else if c != 401 {
				t.Fatalf("round %d: a refresh answered %d", round, c)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of %d concurrent refreshes with one token won, want exactly 1", round, ok, n)
		}
	}
}

func testReuseInterval(t *testing.T, s *site) {
	const n = 8
	for round := 0; round < s.rounds; round++ {
		d := s.login(s.user(fmt.Sprint("tabs-", round)))
		codes, next := make([]int, n), make([]string, n)
		race(n, func(i int) error { codes[i], _, next[i] = s.refreshWith(d, d.refresh); return nil })
		for i := range codes {
			if codes[i] != 200 || next[i] != next[0] || next[i] == d.refresh {
				t.Fatalf("round %d: tab %d got %d %q, tab 0 %q: want 200 and one successor for all", round, i, codes[i], next[i], next[0])
			}
		}
		// The session still has exactly one current token: the shared successor.
		d.refresh = next[0]
		s.refresh(d, 200)
	}
}

// testLostAnswer: a mobile app's refresh reaches the server, which rotates, but the
// answer is lost on the network; the app retries with the tokens it still holds.
func testLostAnswer(t *testing.T, s *site) {
	d := s.login(s.user("alice"))
	held := *d
	s.refresh(d, 200) // the answer the app never saw
	s.advance(9 * time.Second)
	retry := held
	s.refresh(&retry, 200)
	if retry.refresh != d.refresh {
		t.Fatalf("the retry got %q, the lost answer %q: want the same successor", retry.refresh, d.refresh)
	}
	s.refresh(&retry, 200) // the session goes on with it
	if n := len(s.sessions(&retry)); n != 1 {
		t.Fatalf("%d sessions after the retry, want 1", n)
	}
}

func testReuseIntervalLimits(t *testing.T, s *site) {
	d := s.login(s.user("alice"))
	first := d.refresh
	s.refresh(d, 200)
	s.refresh(d, 200)
	s.wantRefresh(d, first, 401, "an ancestor two rotations old, inside the interval")
	s.wantRefresh(d, d.refresh, 401, "the ancestor's reuse ended the session")

	d = s.login(s.user("bob"))
	first = d.refresh
	s.refresh(d, 200)
	second := d.refresh
	s.advance(11 * time.Second)
	s.wantRefresh(d, first, 401, "the previous token after the interval")
	s.wantRefresh(d, second, 401, "its reuse ended the session")
}

func testIdleTimeout(t *testing.T, s *site) {
	s.configure(func(c *jwtauth.Config) { c.Refresh.IdleTimeout = time.Hour })
	d := s.login(s.user("alice"))
	s.advance(59 * time.Minute)
	s.refresh(d, 200)
	s.advance(59 * time.Minute)
	s.refresh(d, 200)
	s.advance(time.Hour)
	s.refresh(d, 401)
}

func testMaxLifetime(t *testing.T, s *site) {
	s.configure(func(c *jwtauth.Config) {
		c.Refresh.IdleTimeout, c.Refresh.MaxLifetime = 2*time.Hour, 10*time.Hour
	})
	d := s.login(s.user("alice"))
	for i := 0; i < 9; i++ {
		s.advance(time.Hour)
		s.refresh(d, 200)
	}
	s.advance(time.Hour)
	s.refresh(d, 401) // refreshed an hour ago, but ten hours after the login
}

func testEndedInsideInterval(t *testing.T, s *site) {
	s.configure(func(c *jwtauth.Config) {
		c.Refresh.IdleTimeout, c.Refresh.MaxLifetime = time.Minute, time.Hour
		c.Refresh.ReuseInterval = time.Hour
	})
	d := s.login(s.user("alice"))
	old := d.refresh
	s.refresh(d, 200)
	s.advance(2 * time.Minute) // idle past the timeout, inside the reuse interval
	s.wantRefresh(d, old, 401, "the previous token of an idle session")
	s.wantRefresh(d, d.refresh, 401, "the current token of an idle session")
}

func testLogoutScopes(t *testing.T, s *site) {
	u := s.user("alice")
	a, b, c := s.login(u), s.login(u), s.login(u)
	if code, m := s.do("POST", "/auth/logout", a.access, ""); code != 204 {
		t.Fatalf("logout: %d %v", code, m)
	}
	s.wantRefresh(a, a.refresh, 401, "the logged-out session")
	s.refresh(b, 200)
	d := s.login(u)
	if code, m := s.do("POST", "/auth/logout?scope=others", b.access, ""); code != 204 {
		t.Fatalf("logout others: %d %v", code, m)
	}
	s.wantRefresh(c, c.refresh, 401, "another session after scope=others")
	s.wantRefresh(d, d.refresh, 401, "another session after scope=others")
	s.refresh(b, 200)
	e := s.login(u)
	if code, m := s.do("POST", "/auth/logout?scope=all", e.access, ""); code != 204 {
		t.Fatalf("logout all: %d %v", code, m)
	}
	s.wantRefresh(b, b.refresh, 401, "a session after scope=all")
	s.wantRefresh(e, e.refresh, 401, "the caller's session after scope=all")
	if code, _ := s.do("POST", "/auth/logout?scope=everything", s.login(u).access, ""); code != 400 {
		t.Fatalf("logout with an unknown scope: %d, want 400", code)
	}
}

func testSessionList(t *testing.T, s *site) {
	u := s.user("alice")
	a := s.login(u)
	s.advance(time.Minute)
	b := s.login(u)
	list := s.sessions(b)
	if len(list) != 2 || list[0]["current"] != false || list[1]["current"] != true {
		t.Fatalf("sessions of b: %v", list)
	}
	for _, k := range []string{"id", "created_at", "last_used_at", "expires_at"} {
		if v, _ := list[1][k].(string); v == "" {
			t.Fatalf("session without %s: %v", k, list[1])
		}
	}
	if _, err := time.Parse(time.RFC3339, list[1]["expires_at"].(string)); err != nil {
		t.Fatalf("expires_at is not RFC 3339: %v", err)
	}
	aID := list[0]["id"].(string)
	mallory := s.login(s.user("mallory"))
	if code, _ := s.do("DELETE", "/auth/sessions/"+aID, mallory.access, ""); code != 404 {
		t.Fatalf("DELETE of another user's session: %d, want 404", code)
	}
	s.refresh(a, 200)
	if code, _ := s.do("DELETE", "/auth/sessions/"+aID, b.access, ""); code != 204 {
		t.Fatalf("DELETE of an own session: %d, want 204", code)
	}
	s.wantRefresh(a, a.refresh, 401, "the deleted session")
	if code, _ := s.do("DELETE", "/auth/sessions/"+aID, b.access, ""); code != 404 {
		t.Fatalf("DELETE of an ended session: %d, want 404", code)
	}
	if code, _ := s.do("DELETE", "/auth/sessions/AAAAAAAAAAAAAAAAAAAAAA", b.access, ""); code != 404 {
		t.Fatalf("DELETE of an unknown id: %d, want 404", code)
	}
	// A token of an ended session lists and ends nothing.
	if code, _ := s.do("GET", "/auth/sessions", a.access, ""); code != 401 {
		t.Fatalf("GET /auth/sessions with a token of an ended session: %d, want 401", code)
	}
	bID := list[1]["id"].(string)
	if code, _ := s.do("DELETE", "/auth/sessions/"+bID, a.access, ""); code != 401 {
		t.Fatalf("DELETE with a token of an ended session: %d, want 401", code)
	}
	for _, scope := range []string{"others", "all"} {
		if code, _ := s.do("POST", "/auth/logout?scope="+scope, a.access, ""); code != 401 {
			t.Fatalf("logout ?scope=%s with a token of an ended session: %d, want 401", scope, code)
		}
	}
	s.refresh(b, 200)
}

func testAdminMethods(t *testing.T, s *site) {
	ctx := context.Background()
	u := s.user("alice")
	a, b := s.login(u), s.login(u)
	list, err := s.auth.Sessions(ctx, u)
	if err != nil || len(list) != 2 || list[0].Current || list[1].Current {
		t.Fatalf("Sessions = %+v, %v", list, err)
	}
	if ok, err := s.auth.RevokeSession(ctx, u, list[0].ID); !ok || err != nil {
		t.Fatalf("RevokeSession = %v, %v", ok, err)
	}
	if ok, err := s.auth.RevokeSession(ctx, u, list[0].ID); ok || err != nil {
		t.Fatalf("RevokeSession of an ended session = %v, %v; want false", ok, err)
	}
	s.wantRefresh(a, a.refresh, 401, "the revoked session")
	s.refresh(b, 200)
	if err := s.auth.RevokeSessions(ctx, u); err != nil {
		t.Fatal(err)
	}
	s.wantRefresh(b, b.refresh, 401, "after RevokeSessions")
	if list, err := s.auth.Sessions(ctx, u); err != nil || len(list) != 0 {
		t.Fatalf("Sessions after RevokeSessions = %+v, %v", list, err)
	}
}

func testLogoutVersusRefresh(t *testing.T, s *site) {
	for round := 0; round < s.rounds; round++ {
		u := s.user(fmt.Sprint("race-", round))
		d, other := s.login(u), s.login(u)
		var next string
		race(2, func(i int) error {
			if i == 0 {
				s.do("POST", "/auth/logout", d.access, "")
			} else {
				_, _, next = s.refreshWith(d, d.refresh)
			}
			return nil
		})
		s.wantRefresh(d, d.refresh, 401, fmt.Sprintf("round %d: the logged-out session's old token", round))
		if next != "" {
			s.wantRefresh(d, next, 401, fmt.Sprintf("round %d: the token a racing refresh got", round))
		}
		s.refresh(other, 200)
	}
}

func testLoginVersusRefresh(t *testing.T, s *site) {
	for round := 0; round < s.rounds; round++ {
		u := s.user(fmt.Sprint("race-", round))
		d := s.login(u)
		var loginCode, code int
		var login map[string]any
		var access, next string
		race(2, func(i int) error {
			if i == 0 {
				loginCode, login = s.do("POST", "/auth/", "", fmt.Sprintf(`{"user":%q}`, u))
			} else {
				code, access, next = s.refreshWith(d, d.refresh)
			}
			return nil
		})
		if code != 200 || loginCode != 200 {
			t.Fatalf("round %d: the refresh racing a login answered %d, the login %d", round, code, loginCode)
		}
		d.access, d.refresh = access, next
		phone := &device{user: u}
		phone.access, _ = login["access_token"].(string)
		phone.refresh, _ = login["refresh_token"].(string)
		s.refresh(d, 200)
		s.refresh(phone, 200)
	}
}

func testMaxSessions(t *testing.T, s *site) {
	s.configure(func(c *jwtauth.Config) { c.Refresh.MaxSessions = 3 })
	u := s.user("alice")
	a := s.login(u)
	s.advance(time.Second)
	b := s.login(u)
	s.advance(time.Second)
	c := s.login(u)
	s.advance(time.Second)
	s.refresh(a, 200) // a is now more recently used than b
	s.advance(time.Second)
	d := s.login(u) // the fourth login ends b, the least recently used
	s.wantRefresh(b, b.refresh, 401, "the least recently used session")
	s.refresh(a, 200)
	s.refresh(c, 200)
	s.refresh(d, 200)
}

// recorder is a Store that remembers every key and value it was given.
type recorder struct {
	jwtauth.Store
	mu   sync.Mutex
	seen [][]byte
}

func (r *recorder) CompareAndSwap(ctx context.Context, key string, old, new []byte, ttl time.Duration) (bool, error) {
	r.mu.Lock()
	r.seen = append(r.seen, []byte(key), bytes.Clone(old), bytes.Clone(new))
	r.mu.Unlock()
	return r.Store.CompareAndSwap(ctx, key, old, new, ttl)
}

func testNoTokenAtRest(t *testing.T, s *site) {
	u := s.user("alice")
	var issued []string
	for i := 0; i < 3; i++ {
		d := s.login(u)
		issued = append(issued, d.refresh)
		for j := 0; j < 3; j++ {
			s.refresh(d, 200)
			issued = append(issued, d.refresh)
		}
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	for _, tok := range issued {
		raw, _ := base64.RawURLEncoding.DecodeString(tok)
		sum := sha256.Sum256([]byte(tok))
		for _, v := range s.store.seen {
			for _, secret := range [][]byte{[]byte(tok), raw, sum[:], []byte(hex.EncodeToString(sum[:])),
				[]byte(base64.RawURLEncoding.EncodeToString(sum[:]))} {
				if bytes.Contains(v, secret) {
					t.Fatalf("the store was given a value holding refresh token %q (or its digest)", tok)
				}
			}
		}
	}
}

func testSecretRotation(t *testing.T, s *site) {
	u := s.user("alice")
	d := s.login(u)
	s.refresh(d, 200)
	s.configure(func(c *jwtauth.Config) {
		c.Secret, c.PreviousSecrets = []byte("storetest-new-secret-0123456789abcdef"), [][]byte{testSecret}
	})
	s.refresh(d, 200) // the old secret's access token and refresh token
	s.refresh(d, 200) // and the new secret's
	s.configure(func(c *jwtauth.Config) { c.Secret = []byte("storetest-new-secret-0123456789abcdef") })
	s.refresh(d, 200) // no longer needs the old secret at all
}

func testVerifySessions(t *testing.T, s *site) {
	u := s.user("alice")
	d := s.login(u)
	if code, _ := s.do("POST", "/auth/logout", d.access, ""); code != 204 {
		t.Fatalf("logout: %d", code)
	}
	if code, _ := s.do("GET", "/orders", d.access, ""); code != 200 {
		t.Fatalf("without VerifySessions, an access token lives until exp: %d", code)
	}
	s.configure(func(c *jwtauth.Config) { c.Refresh.VerifySessions = true })
	e := s.login(u)
	if code, _ := s.do("GET", "/orders", e.access, ""); code != 200 {
		t.Fatalf("VerifySessions, a live session: %d", code)
	}
	if code, _ := s.do("GET", "/orders", d.access, ""); code != 401 {
		t.Fatalf("VerifySessions, an ended session: %d, want 401", code)
	}
	if ok, err := s.auth.RevokeSession(context.Background(), u, s.sessions(e)[0]["id"].(string)); !ok || err != nil {
		t.Fatalf("RevokeSession = %v, %v", ok, err)
	}
	if code, _ := s.do("GET", "/orders", e.access, ""); code != 401 {
		t.Fatalf("VerifySessions, a revoked session: %d, want 401", code)
	}
}

// testReuseNotOutrun: a thief with a stolen pair refreshes 40 times; the victim comes
// back with its pair, whose access token names the generation its refresh token was
// issued at, and the session ends: the thief's current token with it.
func testReuseNotOutrun(t *testing.T, s *site) {
	u := s.user("alice")
	victim, other := s.login(u), s.login(u)
	thief := *victim
	for i := 0; i < 40; i++ {
		s.refresh(&thief, 200)
	}
	s.wantRefresh(victim, victim.refresh, 401, "the victim's pair after 40 rotations by the thief")
	s.wantRefresh(&thief, thief.refresh, 401, "the thief's current token after the reuse")
	s.refresh(other, 200)
}

// testEmergencySecretRotation: the Secret leaked and is replaced without keeping it in
// PreviousSecrets. Every record it sealed is unreadable now: the old tokens are 401s
// (never 500s), and a login opens a fresh session at once.
func testEmergencySecretRotation(t *testing.T, s *site) {
	u := s.user("alice")
	d, e := s.login(u), s.login(u)
	s.configure(func(c *jwtauth.Config) { c.Secret = []byte("storetest-emergency-secret-0123456789") })
	s.wantRefresh(d, d.refresh, 401, "a refresh token of the dropped Secret")
	if code, m := s.do("POST", "/auth/logout", e.access, ""); code != 401 {
		t.Fatalf("logout with an access token of the dropped Secret: %d %v, want 401", code, m)
	}
	f := s.login(u)
	if list := s.sessions(f); len(list) != 1 || list[0]["current"] != true {
		t.Fatalf("after the login, sessions %v; want only the new one", list)
	}
	s.refresh(f, 200)
	g := s.login(s.user("bob")) // a user with no record at all
	s.refresh(g, 200)
	if err := s.auth.RevokeSessions(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	s.wantRefresh(f, f.refresh, 401, "after RevokeSessions")
}

// testRestoredBackup: an older record of the user is written back, as restoring a
// backup of the store does. An access token issued after the backup meets a record
// older than itself: the session ends. A session ended since the backup (a logout) is
// revived by the restore, which no store-only scheme can see; Refresh.RevokeBefore,
// set to the time of the restore, ends it and every other session opened before, and
// the user logs in again.
func testRestoredBackup(t *testing.T, s *site) {
	ctx := context.Background()
	u := s.user("alice")
	d := s.login(u)
	backup, err := s.store.Load(ctx, u)
	if err != nil || backup == nil {
		t.Fatalf("Load = %x, %v", backup, err)
	}
	s.refresh(d, 200)
	restore := func() {
		t.Helper()
		now, err := s.store.Load(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := s.store.CompareAndSwap(ctx, u, now, backup, time.Hour); !ok || err != nil {
			t.Fatalf("restoring the backup: %v, %v", ok, err)
		}
	}
	restore()
	s.wantRefresh(d, d.refresh, 401, "an access token newer than the restored record")
	s.wantRefresh(d, d.refresh, 401, "the session the rollback ended")

	e := s.login(u)
	backup, _ = s.store.Load(ctx, u)
	if code, _ := s.do("POST", "/auth/logout", e.access, ""); code != 204 {
		t.Fatalf("logout: %d", code)
	}
	restore() // the logout is undone: the package cannot tell
	s.advance(time.Second)
	s.configure(func(c *jwtauth.Config) { c.Refresh.RevokeBefore = s.clock() })
	s.wantRefresh(e, e.refresh, 401, "a session opened before RevokeBefore")
	f := s.login(u)
	s.refresh(f, 200)
	if list := s.sessions(f); len(list) != 1 {
		t.Fatalf("sessions after RevokeBefore and a login: %v, want one", list)
	}
}

// testLoginStorm: 128 logins of one user at once (a fleet sharing a service account, a
// retry storm), half of them on a second replica sharing the store, all succeed: the
// compare-and-swap retries are bounded by time, not by a small count. The wall time is
// logged.
func testLoginStorm(t *testing.T, s *site) {
	const n = 128
	replica := newSite(t, s.store.Store, s.rounds)
	for _, r := range []*site{s, replica} {
		r.configure(func(c *jwtauth.Config) { c.Refresh.MaxSessions = 255 })
	}
	for round := 0; round < min(s.rounds, 3); round++ {
		u := s.user(fmt.Sprint("fleet-", round))
		codes := make([]int, n)
		start := time.Now()
		race(n, func(i int) error {
			codes[i], _ = []*site{s, replica}[i%2].do("POST", "/auth/", "", fmt.Sprintf(`{"user":%q}`, u))
			return nil
		})
		took := time.Since(start)
		for i, c := range codes {
			if c != 200 {
				t.Fatalf("round %d: login %d of %d answered %d", round, i, n, c)
			}
		}
		t.Logf("round %d: %d concurrent logins of one user on two replicas, all 200, in %v", round, n, took.Round(time.Millisecond))
		if list := s.sessions(s.login(u)); len(list) != n+1 {
			t.Fatalf("round %d: %d sessions, want %d: a login was lost", round, len(list), n+1)
		}
	}
}

// testExpiredTokenEndsOnlyItsOwn: an access token past its exp (months old, found in a
// log or a backup) manages no other session: ?scope=others and ?scope=all, the list and
// DELETE /auth/sessions/{id} are 401s. A plain logout with it ends its own session.
func testExpiredTokenEndsOnlyItsOwn(t *testing.T, s *site) {
	u := s.user("alice")
	old, phone := s.login(u), s.login(u)
	id := s.sessions(phone)[1]["id"].(string)
	s.advance(2 * time.Hour)
	s.refresh(phone, 200)
	for _, req := range [][2]string{{"POST", "/auth/logout?scope=all"}, {"POST", "/auth/logout?scope=others"},
		{"GET", "/auth/sessions"}, {"DELETE", "/auth/sessions/" + id}} {
		if code, m := s.do(req[0], req[1], old.access, ""); code != 401 {
			t.Fatalf("%s %s with an expired access token: %d %v, want 401", req[0], req[1], code, m)
		}
	}
	s.refresh(phone, 200)
	if code, m := s.do("POST", "/auth/logout", old.access, ""); code != 204 {
		t.Fatalf("logout with an expired access token: %d %v, want 204", code, m)
	}
	s.wantRefresh(old, old.refresh, 401, "the session its own expired token logged out")
	s.refresh(phone, 200)
}
