package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jwtauth/jwtauth"
)

// Account security (A1 to A6): device labels, auth_time, step-up, reauthentication,
// ending the other sessions, and the login event's new-label hint.

// User-Agent headers of real browsers.
const (
	chromeOnLinux = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	safariOnIOS   = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)

// loginFrom logs user in with the header fields hdr (name, value, ...) and returns the
// device that holds the session.
func (s *site) loginFrom(user string, hdr ...string) *device {
	s.t.Helper()
	code, m := s.do("POST", "/auth/", "", fmt.Sprintf(`{"user":%q}`, user), hdr...)
	if code != 200 {
		s.t.Fatalf("login %s: %d %v", user, code, m)
	}
	d := &device{user: user}
	d.access, _ = m["access_token"].(string)
	d.refresh, _ = m["refresh_token"].(string)
	if d.access == "" || len(d.refresh) != 24 {
		s.t.Fatalf("login %s: tokens %v", user, m)
	}
	return d
}

// claims verifies an access token the site issued.
func (s *site) claims(access string) *jwtauth.Claims {
	s.t.Helper()
	c, err := s.auth.Verify(access)
	if err != nil {
		s.t.Fatalf("Verify: %v", err)
	}
	return c
}

func testSessionDetails(t *testing.T, s *site) {
	u := s.user("alice")
	hostile := "Evil\x00\x01/1.0\r\n" + strings.Repeat("\x7fA", 5000) // 10 kB, control bytes, no space
	want := []string{"Chrome on Linux", "Safari on iOS", "curl/8.5.0", "Evil/1.0" + strings.Repeat("A", 56), ""}
	var d *device
	for _, ua := range []string{chromeOnLinux, safariOnIOS, "curl/8.5.0", hostile, ""} {
		s.advance(time.Second)
		d = s.loginFrom(u, "User-Agent", ua)
	}
	list := s.sessions(d)
	if len(list) != len(want) {
		t.Fatalf("%d sessions, want %d", len(list), len(want))
	}
	for i, x := range list {
		if x["label"] != want[i] {
			t.Errorf("session %d: label %q, want %q", i, x["label"], want[i])
		}
		if x["authenticated_at"] != x["created_at"] {
			t.Errorf("session %d: authenticated_at %v, want the login %v", i, x["authenticated_at"], x["created_at"])
		}
		if _, err := time.Parse(time.RFC3339, fmt.Sprint(x["authenticated_at"])); err != nil {
			t.Errorf("session %d: authenticated_at: %v", i, err)
		}
	}
	// The app's hook names the device; what it says is cut to 64 printable bytes.
	s.configure(func(c *jwtauth.Config) {
		c.SessionLabel = func(r *http.Request) string {
			return "Work laptop\n" + r.Header.Get("X-Forwarded-For") + strings.Repeat("!", 100)
		}
	})
	s.loginFrom(u, "X-Forwarded-For", "203.0.113.7", "User-Agent", chromeOnLinux)
	got, err := s.auth.Sessions(context.Background(), u)
	if err != nil || len(got) != len(want)+1 {
		t.Fatalf("Sessions = %d, %v", len(got), err)
	}
	if l := got[len(got)-1].Label; l != ("Work laptop203.0.113.7" + strings.Repeat("!", 64))[:64] {
		t.Fatalf("the hook's label: %q", l)
	}
}

func testAuthTime(t *testing.T, s *site) {
	d := s.login(s.user("alice"))
	login := s.clock().Truncate(time.Second)
	if at := s.claims(d.access).AuthTime; !at.Equal(login) {
		t.Fatalf("the login's auth_time %v, want %v", at, login)
	}
	s.advance(time.Hour)
	s.refresh(d, 200)
	if at := s.claims(d.access).AuthTime; !at.Equal(login) {
		t.Fatalf("after a refresh an hour later, auth_time %v, want the login's %v", at, login)
	}
}

func testRequireRecentAuth(t *testing.T, s *site) {
	d := s.login(s.user("alice"))
	if w := s.send("POST", "/password", d.access, ""); w.Code != 200 {
		t.Fatalf("just after the login: %d %s", w.Code, w.Body)
	}
	s.advance(6 * time.Minute)
	s.refresh(d, 200) // a fresh access token, of the same old authentication
	w := s.send("POST", "/password", d.access, "")
	ch := w.Header().Get("WWW-Authenticate")
	if w.Code != 401 || !strings.Contains(w.Body.String(), `"InsufficientUserAuthentication"`) ||
		!strings.HasPrefix(ch, `Bearer error="insufficient_user_authentication"`) || !strings.HasSuffix(ch, ", max_age=300") {
		t.Fatalf("six minutes after the login: %d %s, WWW-Authenticate %q", w.Code, w.Body, ch)
	}
	if w := s.send("POST", "/password", "", ""); w.Code != 401 {
		t.Fatalf("without a token: %d", w.Code)
	}
	// A fresh token of a session that has ended since (a password change elsewhere ended
	// it) passes no step-up, with or without VerifySessions.
	e := s.login(s.user("alice"))
	if code, _ := s.do("POST", "/auth/logout", e.access, ""); code != 204 {
		t.Fatalf("logout: %d", code)
	}
	if w := s.send("POST", "/password", e.access, ""); w.Code != 401 || strings.Contains(w.Body.String(), "InsufficientUserAuthentication") {
		t.Fatalf("a fresh token of an ended session: %d %s, want 401 Unauthorized", w.Code, w.Body)
	}
}

func testReauthenticate(t *testing.T, s *site) {
	u := s.user("alice")
	d := s.login(u)
	sid := s.claims(d.access).SessionID
	s.advance(10 * time.Minute)
	reauth := func(access, user, password string) (int, map[string]any) {
		return s.do("POST", "/auth/reauthenticate", access, fmt.Sprintf(`{"user":%q,"password":%q}`, user, password))
	}
	if code, m := reauth(d.access, u, "wrong"); code != 401 {
		t.Fatalf("wrong credentials: %d %v", code, m)
	}
	s.takeEvents()
	if code, m := reauth(d.access, s.user("mallory"), ""); code != 403 || m["exception"] != "WrongUser" {
		t.Fatalf("another user's credentials: %d %v", code, m)
	}
	if ev := s.takeEvents(); len(ev) != 1 || ev[0].Kind != jwtauth.EventLoginFailed || ev[0].Reason != "wrong_user" || ev[0].UserID != u {
		t.Fatalf("events of another user's credentials: %+v", ev)
	}
	if code, _ := reauth("", u, ""); code != 401 {
		t.Fatalf("without an access token: %d", code)
	}
	s.refresh(d, 200) // the refusals left the session as it was
	code, m := reauth(d.access, u, "")
	access, _ := m["access_token"].(string)
	next, _ := m["refresh_token"].(string)
	if code != 200 || access == "" || len(next) != 24 || next == d.refresh {
		t.Fatalf("reauthentication: %d %v", code, m)
	}
	c := s.claims(access)
	if c.SessionID != sid || !c.AuthTime.Equal(s.clock().Truncate(time.Second)) {
		t.Fatalf("after reauthentication: sid %q (want %q), auth_time %v (want now)", c.SessionID, sid, c.AuthTime)
	}
	if w := s.send("POST", "/password", access, ""); w.Code != 200 {
		t.Fatalf("the sensitive route after reauthentication: %d", w.Code)
	}
	d.access, d.refresh = access, next
	s.refresh(d, 200)
	if c := s.claims(d.access); !c.AuthTime.Equal(s.clock().Truncate(time.Second)) {
		t.Fatalf("a refresh after reauthentication: auth_time %v", c.AuthTime)
	}
	// An expired access token, or one of an ended session, reauthenticates nothing.
	s.advance(34 * time.Minute) // past exp and the default leeway of 3 minutes
	if code, _ := reauth(d.access, u, ""); code != 401 {
		t.Fatalf("with an expired access token: %d", code)
	}
	s.refresh(d, 200)
	if code, _ := s.do("POST", "/auth/logout", d.access, ""); code != 204 {
		t.Fatalf("logout: %d", code)
	}
	if code, _ := reauth(d.access, u, ""); code != 401 {
		t.Fatalf("with the token of an ended session: %d", code)
	}
}

func testEndOtherSessions(t *testing.T, s *site) {
	u := s.user("alice")
	a, b, c := s.login(u), s.login(u), s.login(u)
	s.store.mu.Lock()
	before := len(s.store.seen)
	s.store.mu.Unlock()
	if err := s.auth.EndOtherSessions(context.Background(), u, s.claims(b.access).SessionID); err != nil {
		t.Fatal(err)
	}
	s.store.mu.Lock()
	swaps := (len(s.store.seen) - before) / 3
	s.store.mu.Unlock()
	if swaps != 1 {
		t.Errorf("%d compare-and-swaps, want 1", swaps)
	}
	s.refresh(a, 401)
	s.refresh(c, 401)
	s.refresh(b, 200)
	if n := len(s.sessions(b)); n != 1 {
		t.Fatalf("%d sessions, want the kept one", n)
	}
	// A session id that names no live session (one ended by a password change on another
	// device, whose access token still verifies) ends nothing.
	if err := s.auth.EndOtherSessions(context.Background(), u, s.claims(a.access).SessionID); !errors.Is(err, jwtauth.ErrTokenInvalid) {
		t.Fatalf("EndOtherSessions keeping an ended session: %v, want ErrTokenInvalid", err)
	}
	if err := s.auth.EndOtherSessions(context.Background(), u, "not a session"); !errors.Is(err, jwtauth.ErrTokenInvalid) {
		t.Fatalf("EndOtherSessions keeping no session: %v, want ErrTokenInvalid", err)
	}
	s.refresh(b, 200)
}

func testNewLabelEvent(t *testing.T, s *site) {
	u := s.user("alice")
	logins := func() []bool {
		var out []bool
		for _, e := range s.takeEvents() {
			if e.Kind == jwtauth.EventLogin {
				out = append(out, e.NewLabel)
			}
		}
		return out
	}
	s.takeEvents()
	s.loginFrom(u, "User-Agent", chromeOnLinux)
	d := s.loginFrom(u, "User-Agent", chromeOnLinux)
	s.loginFrom(u, "User-Agent", safariOnIOS)
	if got := fmt.Sprint(logins()); got != "[true false true]" {
		t.Fatalf("new labels of three logins: %s, want [true false true]", got)
	}
	if code, _ := s.do("POST", "/auth/reauthenticate", d.access, fmt.Sprintf(`{"user":%q}`, u)); code != 200 {
		t.Fatalf("reauthenticate: %d", code)
	}
	ev := s.takeEvents()
	if len(ev) != 1 || ev[0].Kind != jwtauth.EventReauthenticated || ev[0].Label != "Chrome on Linux" || ev[0].SessionID != s.claims(d.access).SessionID {
		t.Fatalf("reauthentication events: %+v", ev)
	}
}
