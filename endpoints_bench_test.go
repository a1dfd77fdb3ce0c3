package jwtauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkProtected is one request through Protected to an empty handler, by outcome.
func BenchmarkProtected(b *testing.B) {
	f := newFixture(b, nil)
	tok := f.login(b, "alice").AccessToken
	h := f.a.Protected(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	scoped := f.a.Scoped([]string{"orders:write"}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	// The same token through Verify alone: Protected/valid minus this is what the
	// middleware adds (reading the header, the request context).
	b.Run("verify-only", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := f.a.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, bc := range []struct {
		name   string
		h      http.Handler
		header string
		want   int
	}{
		{"valid", h, "Bearer " + tok, 200},
		{"scoped", scoped, "Bearer " + tok, 200},
		{"forged", h, "Bearer " + tamper(b, tok), 401},
		{"missing", h, "", 401},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/orders", nil)
			if bc.header != "" {
				r.Header.Set("Authorization", bc.header)
			}
			// The handler writes nothing on success, so one recorder serves every
			// iteration and the loop measures Protected, not httptest.
			rec := httptest.NewRecorder()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if bc.want != 200 {
					rec = httptest.NewRecorder()
				}
				bc.h.ServeHTTP(rec, r)
				if rec.Code != bc.want {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}

// BenchmarkProtectedDPoP is BenchmarkProtected/valid for a session bound to a DPoP key:
// a GET through Protected with "Authorization: DPoP <token>" and a proof of that request
// for that token (ath). A proof is single-use (the instance's replay memory), so b.N
// proofs are made before the timer starts, the ECDSA signing being the client's cost, and
// iteration i carries the i-th; the clock stands still, so every proof stays in its
// window and the replay memory keeps all b.N of them (its cap is maxReplays).
func BenchmarkProtectedDPoP(b *testing.B) {
	if b.N > maxReplays {
		b.Fatalf("b.N %d is more proofs than one generation of the replay memory holds (%d)", b.N, maxReplays)
	}
	f := newFixture(b, nil)
	k := newProofKey(b)
	tok := f.dpopLogin(b, k, "alice").AccessToken
	h := f.a.Protected(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	proofs := make([]string, b.N)
	for i := range proofs {
		proofs[i] = k.proofFor(b, "GET", dpopOrigin+"/orders", f.clock.now(), tok)
	}
	r := httptest.NewRequest("GET", "/orders", nil)
	r.Header.Set("Authorization", "DPoP "+tok)
	rec := httptest.NewRecorder() // the handler writes nothing: see BenchmarkProtected
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Header["Dpop"] = proofs[i : i+1] // http.CanonicalHeaderKey("DPoP"), with no allocation
		h.ServeHTTP(rec, r)
		if rec.Code != 200 {
			b.Fatalf("status %d %s", rec.Code, rec.Header().Get("WWW-Authenticate"))
		}
	}
}

// BenchmarkRefresh is one POST /auth/refresh through Handler on a MemStore, each
// presenting the refresh token the previous one returned.
func BenchmarkRefresh(b *testing.B) {
	for _, bc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"rotation", nil},
		{"no-rotation", func(c *Config) { c.Refresh.InsecureNoRotation = true }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b, func(c *Config) {
				c.Refresh.Store = new(MemStore) // the fixture's store records every value
				if bc.mod != nil {
					bc.mod(c)
				}
			})
			h := f.a.Handler()
			tok := f.login(b, "alice")
			var body map[string]string
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				r := httptest.NewRequest("POST", "/auth/refresh", strings.NewReader(refreshBody(tok.RefreshToken)))
				r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if rec.Code != 200 {
					b.Fatalf("status %d %s", rec.Code, rec.Body)
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
					b.Fatal(err)
				}
				if rt := body["refresh_token"]; rt != "" {
					tok.RefreshToken = rt
				}
			}
		})
	}
}

// BenchmarkRefreshDPoP is BenchmarkRefresh/rotation (MemStore, rotation) for a session
// bound to a DPoP key: POST /auth/refresh with "Authorization: DPoP <access token>" and
// a proof for that request and token. A bound session accepts at most maxProofUses
// proofs within the proof window (60 s + Leeway), so the clock moves on by more than the
// window before each refresh: the record holds the one proof of the last refresh, as a
// client that refreshes every few minutes or more leaves it. Refresh.MaxLifetime is set
// far off, which costs nothing, so that the clock's run (b.N windows) ends no session.
//
//   - latest-token presents the access token the previous refresh returned, as a client
//     does; it is never expired. Its proof carries the hash of that token (ath), which no
//     one knows before that refresh, so each proof is signed with the timer stopped.
//   - login-token presents the login's access token every time, as BenchmarkRefresh
//     does, so that all b.N proofs are made before the timer starts. The token has
//     expired after ExpirationDelta / window refreshes, which /auth/refresh accepts
//     (Refresh.Window is 0): a check on the stop-and-start of the other one.
func BenchmarkRefreshDPoP(b *testing.B) {
	for _, latest := range []bool{true, false} {
		name := "login-token"
		if latest {
			name = "latest-token"
		}
		b.Run(name, func(b *testing.B) {
			f := newFixture(b, func(c *Config) {
				c.Refresh.Store = new(MemStore) // as BenchmarkRefresh
				c.Refresh.MaxLifetime = 100 * 365 * 24 * time.Hour
			})
			h := f.a.Handler()
			k := newProofKey(b)
			tok := f.dpopLogin(b, k, "alice")
			step := f.a.proofWindow() + time.Second
			const htu = dpopOrigin + "/auth/refresh"
			var proofs []string
			if !latest {
				proofs = make([]string, b.N)
				for i := range proofs {
					proofs[i] = k.proofFor(b, "POST", htu, f.clock.now().Add(time.Duration(i+1)*step), tok.AccessToken)
				}
			}
			var body map[string]string
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f.clock.add(step)
				var proof []string
				if latest {
					b.StopTimer()
					proof = []string{k.proofFor(b, "POST", htu, f.clock.now(), tok.AccessToken)}
					b.StartTimer()
				} else {
					proof = proofs[i : i+1]
				}
				r := httptest.NewRequest("POST", "/auth/refresh", strings.NewReader(refreshBody(tok.RefreshToken)))
				r.Header.Set("Authorization", "DPoP "+tok.AccessToken)
				r.Header["Dpop"] = proof
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if rec.Code != 200 {
					b.Fatalf("refresh %d: status %d %s", i, rec.Code, rec.Body)
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
					b.Fatal(err)
				}
				tok.RefreshToken = body["refresh_token"]
				if latest {
					tok.AccessToken = body["access_token"]
				}
			}
		})
	}
}

// BenchmarkOnEvent: a request through Protected with Config.OnEvent unset and set, for a
// valid token (no event) and a missing one (a token_rejected event), to show what the
// hook costs when it is unset.
func BenchmarkOnEvent(b *testing.B) {
	for _, hook := range []string{"unset", "set"} {
		f := newFixture(b, func(c *Config) {
			if hook == "set" {
				c.OnEvent = func(context.Context, Event) {}
			}
		})
		tok := f.login(b, "alice").AccessToken
		h := f.a.Protected(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		for _, bc := range []struct {
			name, header string
			want         int
		}{{"valid", "Bearer " + tok, 200}, {"missing", "", 401}} {
			b.Run(hook+"/"+bc.name, func(b *testing.B) {
				r := httptest.NewRequest("GET", "/orders", nil)
				if bc.header != "" {
					r.Header.Set("Authorization", bc.header)
				}
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, r)
					if rec.Code != bc.want {
						b.Fatalf("status %d", rec.Code)
					}
				}
			})
		}
	}
}
