package jwtauth

import (
	"encoding/json"
	"errors"
	"testing"
)

// TestClaimsGet: Get reads Extra first, then the verified payload; a missing claim and
// a value encoding/json cannot write are errors, never a zero value.
func TestClaimsGet(t *testing.T) {
	a := testAuth(t, nil)
	c, err := a.Verify(forge(stdHeader, payloadAt(`"tier":"gold","n":[1,2]`), testSecret))
	if err != nil {
		t.Fatal(err)
	}
	var tier string
	var n []int
	if err := c.Get("tier", &tier); err != nil || tier != "gold" {
		t.Errorf("Get(tier) = %q, %v", tier, err)
	}
	if err := c.Get("n", &n); err != nil || len(n) != 2 || n[1] != 2 {
		t.Errorf("Get(n) = %v, %v", n, err)
	}
	if err := c.Get("absent", &tier); !errors.Is(err, ErrClaimNotFound) {
		t.Errorf("Get(absent) = %v, want ErrClaimNotFound", err)
	}
	c.Extra = map[string]any{"tier": "silver", "ch": make(chan int)}
	if err := c.Get("tier", &tier); err != nil || tier != "silver" {
		t.Errorf("Get(tier) with Extra = %q, %v; want Extra's value", tier, err)
	}
	var unsupported *json.UnsupportedTypeError
	if err := c.Get("ch", &tier); !errors.As(err, &unsupported) {
		t.Errorf("Get(ch) = %v, want encoding/json's UnsupportedTypeError", err)
	}
}
