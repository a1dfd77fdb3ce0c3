package jwtauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// fuzzSeeds are tokens worth mutating: our own, the RFC example and attack shapes.
func fuzzSeeds(a *Auth) []string {
	own, _ := a.Sign(&Claims{UserID: "alice", Scopes: []string{"a:b", "c"}, Issuer: "iss",
		Audience: []string{"api", "web"}, ExpiresAt: testNow.Add(time.Hour), IssuedAt: testNow,
		Extra: map[string]any{"n": 1.5, "o": map[string]any{"k": []any{true, nil, "s"}}}})
	return []string{
		own,
		forge(stdHeader, payloadAt(""), testSecret),
		forge(`{"alg":"HS256","kid":"k"}`, payloadAt(`"aud":"api"`), testSecret),
		forge(`{"alg":"none"}`, payloadAt(""), testSecret),
		rfc7515A1.token,
		"a.b.c", "..", "", strings.Repeat(".", 64),
	}
}

// FuzzVerify: any input, never a panic; on error no claims; an accepted token is either
// byte for byte what Sign writes for its claims, or carries a non-canonical header that
// passed the strict header parse.
func FuzzVerify(f *testing.F) {
	a := testAuth(f, func(c *Config) { c.InsecureNoExpiry = true })
	for _, s := range fuzzSeeds(a) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := a.Verify(token)
		if err != nil {
			if c != nil {
				t.Fatalf("claims %+v returned with error %v", c, err)
			}
			if !strings.HasPrefix(err.Error(), "jwtauth: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		hdr, _, _ := strings.Cut(token, ".")
		if hdr != canonicalHeader {
			raw, err := enc.DecodeString(hdr)
			if err != nil || checkHeader(raw) != nil {
				t.Fatalf("accepted header %q", raw)
			}
			return
		}
		again, err := a.Sign(resignable(t, c))
		if err != nil || again != token {
			t.Fatalf("accepted %q but Sign of its claims gives %q, %v", token, again, err)
		}
	})
}

// resignable turns verified claims back into claims for Sign: custom claims from the
// payload, with numbers kept as written.
func resignable(t *testing.T, c *Claims) *Claims {
	d := json.NewDecoder(strings.NewReader(c.raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"exp", "nbf", "iat", "iss", "aud", "user_id", "scopes", "sid"} {
		delete(m, k)
	}
	out := *c
	out.Extra = m
	return &out
}

// FuzzSignVerify: random claims, hostile strings included, survive Sign then Verify
// unchanged; Sign refuses only what it documents.
func FuzzSignVerify(f *testing.F) {
	a := testAuth(f, func(c *Config) { c.InsecureNoExpiry = true })
	f.Add("alice", "orders:read", "iss", "api", int64(1_700_000_000), "name", "Alice")
	f.Add(`"\`, "\x00", "é", "日本", int64(1), "\n", "\u2028")
	f.Add("", "", "", "", int64(0), "exp", "x")
	f.Add("\xff", "a", "b", "c", int64(-1), "k", "\xfe")
	f.Fuzz(func(t *testing.T, user, scope, iss, aud string, exp int64, key, val string) {
		in := &Claims{UserID: user, Scopes: []string{scope, user}, Issuer: iss, Extra: map[string]any{key: val}}
		if aud != "" {
			in.Audience = []string{aud}
		}
		if exp != 0 {
			in.ExpiresAt = time.Unix(exp, 0)
		}
		tok, err := a.Sign(in)
		if err != nil {
			valid := true
			for _, s := range []string{user, scope, iss, aud, key, val} {
				valid = valid && utf8.ValidString(s)
			}
			registered := isRegisteredName(key) || key == "user_id" || key == "scopes"
			if !errors.Is(err, ErrInvalidClaims) || (valid && !registered && exp > 0 && exp <= maxNumericDate && err != errSignTooLong) {
				t.Fatalf("Sign(%+v): %v", in, err)
			}
			return
		}
		out, err := a.Verify(tok)
		if err != nil {
			t.Fatalf("Verify(Sign(%+v)) = %v", in, err)
		}
		var got string
		if out.UserID != user || out.Issuer != iss || !reflect.DeepEqual(out.Scopes, in.Scopes) ||
			len(out.Audience) != len(in.Audience) || (aud != "" && out.Audience[0] != aud) ||
			!out.ExpiresAt.Equal(in.ExpiresAt) || out.Get(key, &got) != nil || got != val {
			t.Fatalf("round trip changed the claims:\n in  %+v\n out %+v (%q = %q)", in, out, key, got)
		}
	})
}

// FuzzClaimsDifferential checks the hand-written claims scanner against encoding/json on
// MACed payloads: where the scanner accepts, encoding/json reads the same registered
// values and custom claims; where encoding/json accepts and the scanner does not, the
// payload has one of the ambiguities the scanner refuses on purpose (duplicate names,
// invalid UTF-8 or unpaired surrogates, nesting deeper than maxDepth).
func FuzzClaimsDifferential(f *testing.F) {
	a := testAuth(f, func(c *Config) { c.InsecureNoExpiry = true })
	for _, s := range []string{
		payloadAt(""), `{}`, `{"exp":1e10,"nbf":1.5,"iat":2}`, `{"aud":["a","b"],"scopes":[]}`,
		`{"user_id":"\u00e9\ud83d\udd11","iss":"x\"y"}`, `{"a":{"b":[1,{"c":null}]},"a2":-0.0e+1}`,
		`{"exp":1,"exp":2}`, `{"x":"` + "\xff" + `"}`, `{"aud":null}`, `[]`, ` {"k" : true } `,
		`{"sid":"s","sgen":0}`, `{"sgen":4294967295}`, `{"sgen":4294967296}`, `{"sgen":-1}`, `{"sgen":1.0}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		tok := forge(stdHeader, string(payload), testSecret)
		if len(tok) > a.cfg.MaxTokenSize {
			return
		}
		c, err := a.tok.decode(tok, newClaims)
		ref, refErr := referenceClaims(payload)
		if err == nil {
			if refErr != nil {
				t.Fatalf("scanner accepts %q, encoding/json says %v", payload, refErr)
			}
			if c.UserID != ref.UserID || c.Issuer != ref.Issuer || c.SessionID != ref.SessionID || c.Generation != ref.Generation ||
				!sameStrings(c.Scopes, ref.Scopes) ||
				!sameStrings(c.Audience, ref.Audience) || !c.ExpiresAt.Equal(ref.ExpiresAt) ||
				!c.NotBefore.Equal(ref.NotBefore) || !c.IssuedAt.Equal(ref.IssuedAt) {
				t.Fatalf("%q:\n scanner       %+v\n encoding/json %+v", payload, c, ref)
			}
			for name, raw := range ref.members {
				// Get decodes with encoding/json too, so both fail alike on a value
				// that is valid JSON but no float64 ({"x":1e999}).
				var want, got any
				wantErr := json.Unmarshal(raw, &want)
				if err := c.Get(name, &got); (err != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
					t.Fatalf("Get(%q) = %v, %v; encoding/json reads %v, %v", name, got, err, want, wantErr)
				}
			}
			return
		}
		if c != nil {
			t.Fatalf("claims returned with error %v", err)
		}
		if refErr != nil {
			return
		}
		switch {
		case hasDuplicateNames(payload):
			// encoding/json keeps the last of two equal names; the scanner refuses the
			// payload, and may stop at an earlier value that only the first occurrence
			// makes invalid ({"exp":0,"exp":1}), so any cause is right here.
		case errors.Is(err, errStrictText) && (!utf8.Valid(payload) || bytes.Contains(payload, []byte(`\u`))):
		case errors.Is(err, errDepth) && bytes.Count(payload, []byte("["))+bytes.Count(payload, []byte("{")) > maxDepth:
		default:
			t.Fatalf("scanner rejects %q (%v), encoding/json accepts it", payload, err)
		}
	})
}

func sameStrings(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || reflect.DeepEqual(a, b))
}

type refClaims struct {
	Claims
	members map[string]json.RawMessage
}

// referenceClaims applies the package's claim rules with encoding/json.
func referenceClaims(payload []byte) (*refClaims, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not an object")
	}
	r := &refClaims{members: m}
	str := func(raw json.RawMessage, dst *string) error {
		if len(raw) == 0 || raw[0] != '"' {
			return errors.New("not a string")
		}
		return json.Unmarshal(raw, dst)
	}
	strs := func(raw json.RawMessage) ([]string, error) {
		var elems []json.RawMessage
		if len(raw) == 0 || raw[0] != '[' {
			return nil, errors.New("not an array")
		}
		if err := json.Unmarshal(raw, &elems); err != nil {
			return nil, err
		}
		out := make([]string, len(elems))
		for i, e := range elems {
			if err := str(e, &out[i]); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	date := func(raw json.RawMessage, dst *time.Time) error {
		var f float64
		if len(raw) == 0 || !(raw[0] == '-' || '0' <= raw[0] && raw[0] <= '9') {
			return errors.New("not a number")
		}
		if err := json.Unmarshal(raw, &f); err != nil {
			return err
		}
		if !(f > 0) || f > maxNumericDate {
			return errors.New("out of range")
		}
		sec, frac := math.Modf(f)
		*dst = time.Unix(int64(sec), int64(frac*1e9))
		return nil
	}
	var err error
	for name, raw := range m {
		switch name {
		case "exp":
			err = date(raw, &r.ExpiresAt)
		case "nbf":
			err = date(raw, &r.NotBefore)
		case "iat":
			err = date(raw, &r.IssuedAt)
		case "iss":
			err = str(raw, &r.Issuer)
		case "sid":
			err = str(raw, &r.SessionID)
		case "sgen":
			// A whole number without sign, fraction or exponent, within 32 bits.
			var g uint64
			if len(raw) == 0 || raw[0] < '0' || raw[0] > '9' || bytes.ContainsAny(raw, ".eE") {
				err = errors.New("not a whole number")
			} else if g, err = strconv.ParseUint(string(raw), 10, 32); err == nil {
				r.Generation = uint32(g)
			}
		case "user_id":
			err = str(raw, &r.UserID)
		case "scopes":
			r.Scopes, err = strs(raw)
		case "aud":
			if len(raw) > 0 && raw[0] == '"' {
				r.Audience = []string{""}
				err = str(raw, &r.Audience[0])
			} else {
				r.Audience, err = strs(raw)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return r, nil
}

// hasDuplicateNames walks the JSON with encoding/json's tokenizer and reports whether
// any object repeats a member name.
func hasDuplicateNames(payload []byte) bool {
	d := json.NewDecoder(bytes.NewReader(payload))
	type frame struct {
		obj   bool
		names map[string]bool
		key   bool // the next string token is a member name
	}
	var stack []*frame
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.key {
			if s, ok := tok.(string); ok {
				if top.names[s] {
					return true
				}
				top.names[s] = true
				top.key = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, names: map[string]bool{}, key: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].obj {
			stack[len(stack)-1].key = true
		}
	}
}
