package jwtauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
