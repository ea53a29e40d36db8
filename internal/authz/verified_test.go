package authz

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestVerifiedCache: a kept result answers only for the same token, only
// while the key set it was verified against is current, and not past the
// token's expiry (with the skew); a full cache stays at its bound.
func TestVerifiedCache(t *testing.T) {
	set1, set2 := &map[string]verifyKey{}, &map[string]verifyKey{}
	current := set1
	c := newVerifiedCache(3, func() *map[string]verifyKey { return current })
	now := time.Now()
	c.put("token-a", Result{Subject: "a"}, now.Add(time.Minute), set1)

	if res, err, ok := c.get("token-a", now); !ok || err != nil || res.Subject != "a" {
		t.Fatalf("kept token: %v %v %v", res.Subject, err, ok)
	}
	if _, _, ok := c.get("token-b", now); ok {
		t.Fatal("another token hit")
	}
	if _, err, ok := c.get("token-a", now.Add(time.Minute+Skew-time.Second)); !ok || err != nil {
		t.Fatalf("within the skew after exp: %v %v, want the kept result", err, ok)
	}
	if _, err, ok := c.get("token-a", now.Add(time.Minute+Skew+time.Second)); !ok || !errors.Is(err, ErrExpired) {
		t.Fatalf("past exp and skew: %v %v, want ErrExpired", err, ok)
	}
	if c.len() != 0 {
		t.Fatalf("an expired entry is kept: %d", c.len())
	}

	c.put("token-a", Result{Subject: "a"}, now.Add(time.Minute), set1)
	current = set2 // the keys were fetched again
	if _, _, ok := c.get("token-a", now); ok {
		t.Fatal("a result of the previous key set was used")
	}

	for i := range 10 {
		c.put(fmt.Sprintf("t-%d", i), Result{}, now.Add(time.Hour), set2)
	}
	if c.len() != 3 {
		t.Fatalf("cache holds %d tokens, bound 3", c.len())
	}
	if newVerifiedCache(-1, nil) != nil {
		t.Fatal("a negative size keeps tokens")
	}
}
