package jwtauth

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testSessions is a record of two sessions as the package writes them.
func testSessions() []session {
	a := session{created: 1_700_000_000_000, used: 1_700_000_100_000, rotated: 1_700_000_050_000, gen: 7,
		authed: 1_700_000_090_000, label: "Firefox on Linux"}
	b := session{created: 1_700_000_200_000, used: 1_700_000_200_000, rotated: 1_700_000_200_000, authed: 1_700_000_200_000}
	for i := range a.id {
		a.id[i], b.id[i] = byte(i), byte(255-i)
	}
	for i := range a.key {
		a.key[i], b.key[i] = byte(3*i), byte(5*i)
	}
	return []session{a, b}
}

// boundSessions is testSessions with the first bound to a DPoP key and holding two
// proofs, as version 3 writes it.
func boundSessions() []session {
	ss := testSessions()
	for i := range ss[0].jkt {
		ss[0].jkt[i] = byte(7 * i)
	}
	ss[0].uses = []proofUse{{jti: [16]byte{1}, until: 1_700_000_100_000}, {jti: [16]byte{2}, until: 1_700_000_200_000}}
	return ss
}

// TestRecordOfABoundSession: a record with a bound session is version 3 and reads back
// the same; one without is version 2, which the replicas of before DPoP read. The DPoP
// fields decode strictly.
func TestRecordOfABoundSession(t *testing.T) {
	a, _, _ := sessionAuth(t, nil)
	ss := boundSessions()
	b := sealRecord(a.tok.keys[0], "alice", ss)
	if b[0] != 3 || len(b) != 2+2*(sessionSize+9+2)+len("Firefox on Linux")+32+2*24+recordMACSize {
		t.Fatalf("record of %d bytes, version %d", len(b), b[0])
	}
	if got, err := openRecord(a.tok.keys, "alice", b); err != nil || !reflect.DeepEqual(got, ss) {
		t.Fatalf("openRecord = %+v, %v; want %+v", got, err, ss)
	}
	body := b[:len(b)-recordMACSize]
	flag := 2 + sessionSize + 9 + len("Firefox on Linux") // the first session's bound byte
	for _, c := range []struct {
		name string
		mod  func(b []byte) []byte
	}{
		{"bound flag 2", func(b []byte) []byte { b[flag] = 2; return b }},
		{"a zero thumbprint", func(b []byte) []byte { clear(b[flag+1 : flag+33]); return b }},
		{"more proofs than fit", func(b []byte) []byte { b[flag+33] = 3; return b }},
		{"more proofs than maxProofUses", func(b []byte) []byte { b[flag+33] = maxProofUses + 1; return b }},
		{"proofs of an unbound session", func(b []byte) []byte {
			return slices.Concat(b[:flag], []byte{0}, b[flag+33:]) // unbound, with its two proofs
		}},
		{"cut in the thumbprint", func(b []byte) []byte { return b[:flag+20] }},
		// The last session's fields: nothing after them would catch a lenient read.
		{"bound flag 2 in the last session", func(b []byte) []byte { b[len(b)-2] = 2; return b }},
	} {
		if _, err := decodeRecord(c.mod(bytes.Clone(body))); err != errCorruptRecord {
			t.Errorf("%s: %v, want errCorruptRecord", c.name, err)
		}
	}
	ss[0].uses = nil // a bound session without proofs, last in its record
	ss = ss[:1]
	b = sealRecord(a.tok.keys[0], "alice", ss)
	body = b[:len(b)-recordMACSize]
	clear(body[flag+1 : flag+33])
	if _, err := decodeRecord(body); err != errCorruptRecord {
		t.Errorf("a bound session of a zero thumbprint: %v, want errCorruptRecord", err)
	}
	ss[0].jkt = [32]byte{}
	if b := sealRecord(a.tok.keys[0], "alice", ss); b[0] != 2 {
		t.Errorf("a record without a bound session is version %d, want 2", b[0])
	}
}

// sessionAuth is an Auth with refresh tokens on a MemStore and a settable clock.
// noReuseInterval turns S4 off, for the tests of what a rotated-out token does.
func noReuseInterval(c *Config) { c.Refresh.ReuseInterval = NoReuseInterval }

func sessionAuth(t testing.TB, mod func(*Config)) (*Auth, *MemStore, *clock) {
	t.Helper()
	clk := &clock{t: time.UnixMilli(1_700_000_000_000)}
	st := &MemStore{now: clk.now}
	cfg := Config{Secret: testSecret, Now: clk.now, RetrieveUser: userFromClaims, Refresh: &Refresh{Store: st}}
	if mod != nil {
		mod(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a, st, clk
}

func TestRecordRoundTrip(t *testing.T) {
	a, _, _ := sessionAuth(t, nil)
	ss := testSessions()
	b := sealRecord(a.tok.keys[0], "alice", ss)
	if len(b) != 2+2*(sessionSize+9)+len("Firefox on Linux")+recordMACSize || b[0] != 2 || b[1] != 2 {
		t.Fatalf("record of %d bytes, header % x", len(b), b[:2])
	}
	got, err := openRecord(a.tok.keys, "alice", b)
	if err != nil || !reflect.DeepEqual(got, ss) {
		t.Fatalf("openRecord = %+v, %v; want %+v", got, err, ss)
	}
	if sealRecord(a.tok.keys[0], "alice", nil) != nil {
		t.Error("no sessions must seal as nil: the record is deleted")
	}
	if got, err := openRecord(a.tok.keys, "alice", nil); got != nil || err != nil {
		t.Errorf("openRecord(nil) = %v, %v; want no sessions", got, err)
	}
}

// TestRecordMAC: a record is bound to its user and to the Secret; every flipped bit,
// another user's key, or another secret is errUnreadable. A previous secret still
// opens it, so that rotating the Secret ends no session.
func TestRecordMAC(t *testing.T) {
	a, _, _ := sessionAuth(t, nil)
	b := sealRecord(a.tok.keys[0], "alice", testSessions())
	if _, err := openRecord(a.tok.keys, "mallory", b); !errors.Is(err, errUnreadable) {
		t.Errorf("alice's record under mallory's key: %v, want errUnreadable", err)
	}
	if _, err := openRecord(a.tok.keys, "alic", b); !errors.Is(err, errUnreadable) {
		t.Errorf("alice's record under the key alic: %v", err)
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 1
		if _, err := openRecord(a.tok.keys, "alice", c); !errors.Is(err, errUnreadable) {
			t.Fatalf("bit 0 of byte %d flipped: %v, want errUnreadable", i, err)
		}
	}
	other, _, _ := sessionAuth(t, func(c *Config) { c.Secret = []byte(strings.Repeat("o", 32)) })
	if _, err := openRecord(other.tok.keys, "alice", b); !errors.Is(err, errUnreadable) {
		t.Errorf("a record sealed under another secret: %v", err)
	}
	rotated, _, _ := sessionAuth(t, func(c *Config) {
		c.Secret, c.PreviousSecrets = []byte(strings.Repeat("n", 32)), [][]byte{testSecret}
	})
	if ss, err := openRecord(rotated.tok.keys, "alice", b); err != nil || len(ss) != 2 {
		t.Errorf("a record sealed under a previous secret: %v, %v", ss, err)
	}
}

// TestRecordDecodeIsStrict: every structural corruption of an authentic body is
// errCorruptRecord, never a panic or a session read from garbage.
func TestRecordDecodeIsStrict(t *testing.T) {
	a, _, _ := sessionAuth(t, nil)
	sealed := sealRecord(a.tok.keys[0], "alice", testSessions())
	good := sealed[:len(sealed)-recordMACSize]
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	dup := testSessions()
	dup[1].id = dup[0].id
	dupBody := sealRecord(a.tok.keys[0], "alice", dup)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", []byte{}},
		{"one byte", []byte{recordVersion}},
		{"version 0", mod(func(b []byte) []byte { b[0] = 0; return b })},
		{"count 0", []byte{recordVersion, 0}},
		{"count larger than the data", mod(func(b []byte) []byte { b[1] = 3; return b })},
		{"count smaller than the data", mod(func(b []byte) []byte { b[1] = 1; return b })},
		{"one byte short", good[:len(good)-1]},
		{"one byte more", append(bytes.Clone(good), 0)},
		{"duplicate session id", dupBody[:len(dupBody)-recordMACSize]},
		{"created 0", mod(func(b []byte) []byte { copy(b[2+48:], make([]byte, 8)); return b })},
		{"created negative", mod(func(b []byte) []byte { b[2+48] = 0x80; return b })},
		{"used before created", mod(func(b []byte) []byte { copy(b[2+56:], make([]byte, 8)); return b })},
		{"rotated before created", mod(func(b []byte) []byte { copy(b[2+64:], make([]byte, 8)); return b })},
		{"authenticated before created", mod(func(b []byte) []byte { copy(b[2+76:], make([]byte, 8)); return b })},
		{"a label byte that is not printable", mod(func(b []byte) []byte { b[2+85] = '\n'; return b })},
		{"a label longer than 64 bytes", func() []byte {
			ss := testSessions()
			ss[0].label = strings.Repeat("x", 65)
			b := sealRecord(a.tok.keys[0], "alice", ss)
			return b[:len(b)-recordMACSize]
		}()},
		{"a label running past the end", mod(func(b []byte) []byte { b[2+84] = 200; return b })},
		{"version 1 of the wrong length", append([]byte{1}, good[1:]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ss, err := decodeRecord(tc.b)
			if !errors.Is(err, errCorruptRecord) || ss != nil {
				t.Fatalf("decodeRecord = %v, %v; want errCorruptRecord", ss, err)
			}
		})
	}
	// A newer version is not corrupt: newer replicas wrote it during a rolling deploy.
	for _, b := range [][]byte{mod(func(b []byte) []byte { b[0] = recordVersion + 1; return b }), {255}} {
		if ss, err := decodeRecord(b); !errors.Is(err, errNewerRecord) || ss != nil {
			t.Errorf("version %d: decodeRecord = %v, %v; want errNewerRecord", b[0], ss, err)
		}
	}
}

// TestRecordOfVersion1StillReads: a record written before sessions had details (version
// 1: no auth time, no label) opens, each session authenticated at its login and without
// a label, and is written back as the current version.
func TestRecordOfVersion1StillReads(t *testing.T) {
	a, _, _ := sessionAuth(t, nil)
	ss := testSessions()
	body := []byte{1, byte(len(ss))}
	for _, s := range ss {
		body = append(body, s.id[:]...)
		body = append(body, s.key[:]...)
		for _, v := range []int64{s.created, s.used, s.rotated} {
			body = binary.BigEndian.AppendUint64(body, uint64(v))
		}
		body = binary.BigEndian.AppendUint32(body, s.gen)
	}
	mac := recordMAC(a.tok.keys[0], "alice", body)
	got, err := openRecord(a.tok.keys, "alice", append(body, mac[:]...))
	if err != nil || len(got) != 2 {
		t.Fatalf("openRecord of version 1 = %v, %v", got, err)
	}
	for i, s := range ss {
		s.authed, s.label = s.created, ""
		if !reflect.DeepEqual(got[i], s) {
			t.Errorf("session %d: %+v, want %+v", i, got[i], s)
		}
	}
	if b := sealRecord(a.tok.keys[0], "alice", got); b[0] != 2 { // 3 only with a bound session
		t.Errorf("written back as version %d", b[0])
	}
}

// FuzzRecordDecode: decoding any bytes never panics; what decodes is a valid record
// that seals back to the same body (one encoding per record), and what fails is
// errCorruptRecord with no sessions. openRecord on the same bytes (no valid MAC) fails.
func FuzzRecordDecode(f *testing.F) {
	a, _, _ := sessionAuth(f, nil)
	for _, ss := range [][]session{testSessions(), testSessions()[:1], boundSessions()} {
		b := sealRecord(a.tok.keys[0], "alice", ss)
		f.Add(b[:len(b)-recordMACSize])
	}
	f.Add([]byte{recordVersion, 1})
	f.Add(append([]byte{1, 1}, make([]byte, sessionSize)...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if ss, err := openRecord(a.tok.keys, "alice", b); err == nil && b != nil {
			t.Fatalf("openRecord accepted bytes without a MAC: %v", ss)
		}
		ss, err := decodeRecord(b)
		if err != nil {
			want := errCorruptRecord
			if len(b) > 0 && b[0] > recordVersion {
				want = errNewerRecord // a newer replica's record: left alone, never corrupt
			}
			if err != want || ss != nil {
				t.Fatalf("decodeRecord = %v, %v; want %v", ss, err, want)
			}
			return
		}
		if len(ss) == 0 || len(ss) > 255 {
			t.Fatalf("%d sessions decoded", len(ss))
		}
		again := sealRecord(a.tok.keys[0], "alice", ss)
		if again[0] == b[0] && !bytes.Equal(again[:len(again)-recordMACSize], b) {
			t.Fatalf("re-encoded record differs:\n% x\n% x", again, b)
		}
		// A version 1 record is written back as the current version, saying the same.
		if back, err := decodeRecord(again[:len(again)-recordMACSize]); err != nil || !reflect.DeepEqual(back, ss) {
			t.Fatalf("re-encoded record reads as %v, %v; want %v", back, err, ss)
		}
	})
}

// TestParseSID: only the 22 base64url characters of 16 bytes are a session id; a sid
// claim of any other length or alphabet is refused, never a panic.
func TestParseSID(t *testing.T) {
	s := testSessions()[0]
	if id, ok := parseSessionID(s.id.String()); !ok || id != s.id {
		t.Fatalf("parseSessionID(%q) = %x, %v", s.id.String(), id, ok)
	}
	for _, bad := range []string{"", "A", s.id.String()[:21], s.id.String() + "A", strings.Repeat("A", 40),
		"123e4567-e89b-12d3-a456-426614174000", s.id.String()[:21] + "=", s.id.String()[:21] + "\n", s.id.String()[:21] + "B"} {
		if _, ok := parseSessionID(bad); ok {
			t.Errorf("parseSessionID(%q) accepted", bad)
		}
	}
}

// TestLongSIDClaimIsRefusedNotAPanic: a validly signed token whose sid is not one of
// ours (an application's own UUID, say) is refused at refresh, logout and with
// VerifySessions.
func TestLongSIDClaimIsRefusedNotAPanic(t *testing.T) {
	a, _, clk := sessionAuth(t, func(c *Config) { c.Refresh.VerifySessions = true })
	tok, err := a.Sign(&Claims{UserID: "alice", SessionID: strings.Repeat("A", 40), ExpiresAt: clk.now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	r := requestWithBearer(tok)
	if _, err := a.Check(r); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("Check: %v, want ErrTokenInvalid", err)
	}
	if _, err := a.refresh(requestWithBearer(tok)); !errors.Is(err, ErrAuthenticationFailed) {
		t.Errorf("refresh: %v, want ErrAuthenticationFailed", err)
	}
}

// TestClockGoingBackwardsKeepsTheRecordValid: a refresh on a server whose clock is
// behind the one that logged in never writes a session used before it was created
// (which every later read would refuse), and reopens no reuse interval.
func TestClockGoingBackwardsKeepsTheRecordValid(t *testing.T) {
	a, _, clk := sessionAuth(t, noReuseInterval)
	ctx := context.Background()
	tok, err := a.IssueTokens(ctx, &User{ID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	clk.add(-time.Minute)
	next, err := a.refresh(requestWithTokens(tok))
	if err != nil {
		t.Fatal(err)
	}
	if list, err := a.Sessions(ctx, "alice"); err != nil || len(list) != 1 {
		t.Fatalf("Sessions after a refresh on a clock a minute behind = %v, %v", list, err)
	}
	// With no reuse interval, the token just rotated out is reuse even though the clock
	// now reads a minute before the rotation.
	if _, err := a.refresh(requestWithTokens(&Tokens{AccessToken: next.AccessToken, RefreshToken: tok.RefreshToken})); !errors.Is(err, errRefreshReused) {
		t.Fatalf("the previous token on a clock behind the rotation: %v, want errRefreshReused", err)
	}
}

// TestEvictionCountsLiveSessionsOnly: sessions that have ended do not count towards
// MaxSessions, so a login never ends a live session to make room beside dead ones, even
// one that ended by MaxLifetime after a recent refresh.
func TestEvictionCountsLiveSessionsOnly(t *testing.T) {
	a, _, clk := sessionAuth(t, func(c *Config) {
		c.Refresh.MaxSessions, c.Refresh.IdleTimeout, c.Refresh.MaxLifetime = 2, 90*time.Minute, 2*time.Hour
	})
	ctx := context.Background()
	login := func() *Tokens {
		tok, err := a.IssueTokens(ctx, &User{ID: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	refresh := func(tok *Tokens) *Tokens {
		next, err := a.refresh(requestWithTokens(tok))
		if err != nil {
			t.Fatal(err)
		}
		return next
	}
	old := login()            // t0
	clk.add(50 * time.Minute) //
	live := login()           // t0+50m
	clk.add(30 * time.Minute) //
	old = refresh(old)        // t0+80m
	clk.add(20 * time.Minute) //
	live = refresh(live)      // t0+100m: live used at 100m
	clk.add(10 * time.Minute) //
	old = refresh(old)        // t0+110m: old used at 110m, ends at 120m (MaxLifetime)
	clk.add(15 * time.Minute) // t0+125m: old has ended, live has not
	login()                   // the third login: only one live session besides it
	if _, err := a.refresh(requestWithTokens(live)); err != nil {
		t.Fatalf("a live session was evicted to make room beside an ended one: %v", err)
	}
	if _, err := a.refresh(requestWithTokens(old)); err == nil {
		t.Fatal("the session past its MaxLifetime refreshed")
	}
}

// plantRecord replaces alice's record with body sealed under a's Secret (an authentic
// record the package did not write), or with body as it is when seal is false.
func plantRecord(t *testing.T, a *Auth, st *MemStore, body []byte, seal bool) []byte {
	t.Helper()
	ctx := context.Background()
	if seal {
		mac := recordMAC(a.tok.keys[0], "alice", body)
		body = append(bytes.Clone(body), mac[:]...)
	}
	raw, _ := st.Load(ctx, "alice")
	if ok, _ := st.CompareAndSwap(ctx, "alice", raw, body, 0); !ok {
		t.Fatal("could not plant the record")
	}
	return body
}

// TestCorruptRecordIs500AndEndsNothing: an authentic record that does not decode (a
// bug, not an attack: its MAC is good) answers 500 at every operation and is left as it
// is; only RevokeSessions, the admin's way out, deletes it.
func TestCorruptRecordIs500AndEndsNothing(t *testing.T) {
	a, st, _ := sessionAuth(t, nil)
	ctx := context.Background()
	tok, err := a.IssueTokens(ctx, &User{ID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := st.Load(ctx, "alice")
	body := bytes.Clone(raw[:len(raw)-recordMACSize])
	copy(body[2+48:], make([]byte, 8)) // created 0
	corrupt := plantRecord(t, a, st, body, true)
	for name, err := range map[string]error{
		"refresh": func() error { _, err := a.refresh(requestWithTokens(tok)); return err }(),
		"login":   func() error { _, err := a.IssueTokens(ctx, &User{ID: "alice"}); return err }(),
		"list":    func() error { _, err := a.Sessions(ctx, "alice"); return err }(),
	} {
		if e := a.httpError(err); e.Status != 500 || !errors.Is(err, errCorruptRecord) {
			t.Errorf("%s on a corrupt record: %v (%d), want a 500", name, err, e.Status)
		}
	}
	if v, _ := st.Load(ctx, "alice"); !bytes.Equal(v, corrupt) {
		t.Fatal("a failed operation changed the corrupt record")
	}
	if err := a.RevokeSessions(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if v, _ := st.Load(ctx, "alice"); v != nil {
		t.Fatalf("RevokeSessions left the corrupt record: %x", v)
	}
	if _, err := a.IssueTokens(ctx, &User{ID: "alice"}); err != nil {
		t.Fatalf("login after RevokeSessions: %v", err)
	}
}

// TestRecordOfANewerVersionIsLeftAlone: during a rolling deploy, a replica that meets a
// record written by a newer one answers 503 with Retry-After (the client retries, and
// reaches a newer replica or waits for the deploy) and neither replaces nor reads it as
// empty, so the deploy logs no one out. RevokeSessions still deletes it.
func TestRecordOfANewerVersionIsLeftAlone(t *testing.T) {
	a, st, _ := sessionAuth(t, nil)
	ctx := context.Background()
	tok, err := a.IssueTokens(ctx, &User{ID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := st.Load(ctx, "alice")
	body := append(bytes.Clone(raw[:len(raw)-recordMACSize]), "a field of version 2"...)
	body[0] = recordVersion + 1
	newer := plantRecord(t, a, st, body, true)
	for name, err := range map[string]error{
		"refresh": func() error { _, err := a.refresh(requestWithTokens(tok)); return err }(),
		"login":   func() error { _, err := a.IssueTokens(ctx, &User{ID: "alice"}); return err }(),
		"list":    func() error { _, err := a.Sessions(ctx, "alice"); return err }(),
		"revoke":  func() error { _, err := a.RevokeSession(ctx, "alice", sidOf(t, a, tok.AccessToken)); return err }(),
	} {
		if e := a.httpError(err); e.Status != 503 || !errors.Is(err, errNewerRecord) {
			t.Errorf("%s on a newer record: %v (%d), want a 503", name, err, e.Status)
		}
	}
	if v, _ := st.Load(ctx, "alice"); !bytes.Equal(v, newer) {
		t.Fatal("an operation changed the newer record")
	}
	if err := a.RevokeSessions(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if v, _ := st.Load(ctx, "alice"); v != nil {
		t.Fatalf("RevokeSessions left the newer record: %x", v)
	}
}

// TestUnreadableRecordLocksNoOneOut (S12): a record no key opens (its Secret was
// dropped in an emergency rotation, or something else wrote it) holds no live session.
// A refresh against it is a 401, the list is empty, an event reports it, and a login
// replaces it by a compare-and-swap from that exact value.
func TestUnreadableRecordLocksNoOneOut(t *testing.T) {
	var events []Event
	a, st, _ := sessionAuth(t, func(c *Config) { c.OnEvent = func(_ context.Context, e Event) { events = append(events, e) } })
	ctx := context.Background()
	tok, err := a.IssueTokens(ctx, &User{ID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := st.Load(ctx, "alice")
	garbage := plantRecord(t, a, st, append(bytes.Clone(raw[:len(raw)-1]), raw[len(raw)-1]^1), false)
	events = nil
	if _, err := a.refresh(requestWithTokens(tok)); a.httpError(err).Status != 401 {
		t.Errorf("refresh on an unreadable record: %v, want a 401", err)
	}
	if ss, err := a.Sessions(ctx, "alice"); err != nil || len(ss) != 0 {
		t.Errorf("sessions of an unreadable record: %v, %v; want none", ss, err)
	}
	if len(events) == 0 || events[0].Kind != EventRecordUnreadable || events[0].UserID != "alice" {
		t.Errorf("events %+v, want record_unreadable for alice first", events)
	}
	if v, _ := st.Load(ctx, "alice"); !bytes.Equal(v, garbage) {
		t.Fatal("a refresh or a list changed the unreadable record")
	}
	next, err := a.IssueTokens(ctx, &User{ID: "alice"})
	if err != nil {
		t.Fatalf("login on an unreadable record: %v", err)
	}
	if ss, err := a.Sessions(ctx, "alice"); err != nil || len(ss) != 1 || ss[0].ID != sidOf(t, a, next.AccessToken) {
		t.Fatalf("after the login: %+v, %v; want its one session", ss, err)
	}
	// RevokeSessions deletes an unreadable record too.
	plantRecord(t, a, st, garbage, false)
	if err := a.RevokeSessions(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if v, _ := st.Load(ctx, "alice"); v != nil {
		t.Fatalf("RevokeSessions left the unreadable record: %x", v)
	}
}

// requestWithBearer is a refresh request carrying tok as its access token and no
// refresh token.
func requestWithBearer(tok string) *http.Request {
	r := httptest.NewRequest("POST", "/auth/refresh", strings.NewReader(`{}`))
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

// requestWithTokens is a refresh request presenting both of t's tokens.
func requestWithTokens(t *Tokens) *http.Request {
	r := httptest.NewRequest("POST", "/auth/refresh", strings.NewReader(`{"refresh_token":"`+t.RefreshToken+`"}`))
	r.Header.Set("Authorization", "Bearer "+t.AccessToken)
	return r
}

// TestOnEventMayChangeTheRecordItReportsOn: the record_unreadable event is sent after
// the operation that met the record has let go of the user's turn, so that a hook may
// clear the record with RevokeSessions without waiting for itself.
func TestOnEventMayChangeTheRecordItReportsOn(t *testing.T) {
	var a *Auth
	var hookErr error
	a, st, _ := sessionAuth(t, func(c *Config) {
		c.OnEvent = func(ctx context.Context, e Event) {
			if e.Kind == EventRecordUnreadable {
				hookErr = a.RevokeSessions(ctx, e.UserID)
			}
		}
	})
	tok, err := a.IssueTokens(context.Background(), &User{ID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	plantRecord(t, a, st, []byte("not a record of this Secret, nor of any other, at all"), false)
	if _, err := a.refresh(requestWithTokens(tok)); a.httpError(err).Status != 401 {
		t.Fatalf("refresh: %v, want a 401", err)
	}
	if hookErr != nil { // errBusy, after waiting out the bound, if the hook ran in the turn
		t.Fatalf("the hook's RevokeSessions: %v", hookErr)
	}
	if v, _ := st.Load(context.Background(), "alice"); v != nil {
		t.Fatalf("the hook did not clear the record: %q", v)
	}
}

// TestRollbackOfTheRecordEndsTheSession (S9): an older record of the user is written
// back (a restored backup, a store writer). The client's access token was issued at a
// later generation than the record now holds: the refresh ends that session, with a
// rollback_detected event, rather than let the rotated-out tokens the record revives
// refresh again. The user's other session, which the rollback did not touch, lives on.
func TestRollbackOfTheRecordEndsTheSession(t *testing.T) {
	var events []Event
	a, st, _ := sessionAuth(t, func(c *Config) { c.OnEvent = func(_ context.Context, e Event) { events = append(events, e) } })
	ctx := context.Background()
	tok, err := a.IssueTokens(ctx, &User{ID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	phone, err := a.IssueTokens(ctx, &User{ID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	backup, _ := st.Load(ctx, "alice")
	if tok, err = a.refresh(requestWithTokens(tok)); err != nil {
		t.Fatal(err)
	}
	plantRecord(t, a, st, backup, false)
	events = nil
	if _, err := a.refresh(requestWithTokens(tok)); !errors.Is(err, errRolledBack) {
		t.Fatalf("refresh with an access token newer than the record: %v, want errRolledBack", err)
	}
	if len(events) != 1 || events[0].Kind != EventRollbackDetected || events[0].SessionID != sidOf(t, a, tok.AccessToken) {
		t.Fatalf("events %+v, want one rollback_detected for the session", events)
	}
	if ss, _ := a.Sessions(ctx, "alice"); len(ss) != 1 || ss[0].ID != sidOf(t, a, phone.AccessToken) {
		t.Fatalf("sessions after the rollback: %+v, want only the phone's", ss)
	}
	if _, err := a.refresh(requestWithTokens(phone)); err != nil {
		t.Fatalf("the phone's refresh: %v", err)
	}
}

// TestRevokeBeforeEndsTheSessionsOpenedBefore (S9): Refresh.RevokeBefore, set after a
// restore, ends every session opened before it (a refresh of one is a 401 with a
// session_ended event, reason revoked) and none opened at or after it.
func TestRevokeBeforeEndsTheSessionsOpenedBefore(t *testing.T) {
	var events []Event
	clk := &clock{t: time.UnixMilli(1_700_000_000_000)}
	st := &MemStore{now: clk.now}
	mk := func(before time.Time) *Auth {
		a, err := New(Config{Secret: testSecret, Now: clk.now, RetrieveUser: userFromClaims,
			OnEvent: func(_ context.Context, e Event) { events = append(events, e) },
			Refresh: &Refresh{Store: st, RevokeBefore: before}})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	ctx := context.Background()
	old, err := mk(time.Time{}).IssueTokens(ctx, &User{ID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	clk.add(time.Second)
	a := mk(clk.now())
	events = nil
	if _, err := a.refresh(requestWithTokens(old)); !errors.Is(err, errSessionRevoked) {
		t.Fatalf("a session opened before RevokeBefore: %v, want errSessionRevoked", err)
	}
	if len(events) != 1 || events[0].Kind != EventSessionEnded || events[0].Reason != "revoked" {
		t.Fatalf("events %+v, want session_ended revoked", events)
	}
	fresh, err := a.IssueTokens(ctx, &User{ID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.refresh(requestWithTokens(fresh)); err != nil {
		t.Fatalf("a session opened at RevokeBefore: %v", err)
	}
	if ss, _ := a.Sessions(ctx, "alice"); len(ss) != 1 {
		t.Fatalf("sessions %+v, want only the one opened at RevokeBefore", ss)
	}
}

// TestAnEndedSessionSaysWhy: a refresh of an ended session is a 401 whose cause (shown
// with InsecureDebug) says which limit ended it: the idle timeout, or the maximum
// lifetime however often it was refreshed. The
// record lives on through the user's other sessions, and no write has swept the ended
// one out yet.
func TestAnEndedSessionSaysWhy(t *testing.T) {
	a, _, clk := sessionAuth(t, func(c *Config) { c.Refresh.IdleTimeout, c.Refresh.MaxLifetime = time.Hour, 3*time.Hour })
	ctx := context.Background()
	login := func() *Tokens {
		tok, err := a.IssueTokens(ctx, &User{ID: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	refresh := func(tok *Tokens) *Tokens {
		next, err := a.refresh(requestWithTokens(tok))
		if err != nil {
			t.Fatal(err)
		}
		return next
	}
	idle, busy := login(), login()
	clk.add(50 * time.Minute)
	busy = refresh(busy)
	clk.add(20 * time.Minute) // 70 minutes: idle ended at 60
	if _, err := a.refresh(requestWithTokens(idle)); !errors.Is(err, errSessionIdle) {
		t.Errorf("idle for 70 minutes: %v, want errSessionIdle", err)
	}
	clk.add(30 * time.Minute)
	busy = refresh(busy)
	clk.add(50 * time.Minute)
	busy = refresh(busy) // 150 minutes: busy ends at 180, its lifetime
	login()
	clk.add(35 * time.Minute)
	if _, err := a.refresh(requestWithTokens(busy)); !errors.Is(err, errSessionTooOld) {
		t.Errorf("refreshed every 50 minutes, 185 minutes after its login: %v, want errSessionTooOld", err)
	}
}

// writerStore is a Store through which a test acts as another writer: meddle runs
// when the n-th Load (counting from 1) is made, before it reads the store or, with
// after, once it has.
type writerStore struct {
	Store
	loads  atomic.Int32
	n      int32
	after  bool
	meddle func()
}

func (s *writerStore) Load(ctx context.Context, key string) ([]byte, error) {
	nth := s.loads.Add(1) == s.n
	if nth && !s.after {
		s.meddle()
	}
	v, err := s.Store.Load(ctx, key)
	if nth && s.after {
		s.meddle()
	}
	return v, err
}

// CompareAndSwap refuses what the Store contract forbids, as pgstore does.
func (s *writerStore) CompareAndSwap(ctx context.Context, key string, old, new []byte, ttl time.Duration) (bool, error) {
	if old == nil && new == nil {
		return false, errors.New("old and new both nil")
	}
	return s.Store.CompareAndSwap(ctx, key, old, new, ttl)
}

// TestRevokeSessionsOfAnUnreadableRecordRacingAWriter: RevokeSessions deletes a corrupt
// record by a compare-and-swap from the value it loaded. When another writer (a replica
// of a newer version, say) replaces the record in between, the delete fails and
// RevokeSessions is a 503 that leaves the writer's record; when another request deleted
// the record in between, there is nothing left to revoke, and it succeeds.
func TestRevokeSessionsOfAnUnreadableRecordRacingAWriter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replace bool
	}{{"replaced meanwhile", true}, {"deleted meanwhile", false}} {
		t.Run(tc.name, func(t *testing.T) {
			st := &writerStore{n: 2, after: tc.replace} // end's load, then the delete's
			a, mem, _ := sessionAuth(t, func(c *Config) { c.Refresh.Store = st })
			st.Store = mem
			ctx := context.Background()
			if _, err := a.IssueTokens(ctx, &User{ID: "alice"}); err != nil {
				t.Fatal(err)
			}
			raw, _ := mem.Load(ctx, "alice")
			body := bytes.Clone(raw[:len(raw)-recordMACSize])
			copy(body[2+48:], make([]byte, 8)) // created 0: authentic, but corrupt
			corrupt := plantRecord(t, a, mem, body, true)
			other := append(bytes.Clone(corrupt), 0)
			st.loads.Store(0)
			st.meddle = func() {
				next := []byte(nil)
				if tc.replace {
					next = other
				}
				if ok, err := mem.CompareAndSwap(ctx, "alice", corrupt, next, 0); !ok || err != nil {
					t.Errorf("the other writer's swap: %v, %v", ok, err)
				}
			}
			err := a.RevokeSessions(ctx, "alice")
			v, _ := mem.Load(ctx, "alice")
			switch {
			case tc.replace && (!errors.Is(err, ErrUnavailable) || a.httpError(err).Status != 503 || !bytes.Equal(v, other)):
				t.Fatalf("RevokeSessions = %v, record %x; want a 503 that leaves the writer's record", err, v)
			case !tc.replace && (err != nil || v != nil):
				t.Fatalf("RevokeSessions = %v, record %x; want nil and no record", err, v)
			}
		})
	}
}
