package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// TestFailedAuthLockout: after failBurst wrong tokens a client address gets
// 429 with Retry-After for every request, its right token included, while
// other addresses and requests without a token are not affected.
func TestFailedAuthLockout(t *testing.T) {
	f := newFixture(t, nil)
	for i := 0; i < failBurst; i++ {
		if resp, _ := f.request(t, "GET", "/api/v1/status", wrongToken, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: status %d, want 401", i+1, resp.StatusCode)
		}
	}
	resp, body := f.request(t, "GET", "/api/v1/status", adminToken, nil)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("right token after %d failures: status %d, want 429: %s", failBurst, resp.StatusCode, body)
	}
	if s, _ := strconv.Atoi(resp.Header.Get("Retry-After")); s < 1 || s > int(failEvery/time.Second) {
		t.Errorf("Retry-After %q, want 1..%d", resp.Header.Get("Retry-After"), int(failEvery/time.Second))
	}
	if resp, _ := f.request(t, "POST", "/api/v1/rollback", adminToken, RollbackRequest{}); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("rollback while locked out: %d, want 429", resp.StatusCode)
	}
	if f.activeID(t) != 1 {
		t.Fatal("a locked-out request changed the active deployment")
	}

	// Another address is not affected.
	req := httptest.NewRequest("GET", "http://127.0.0.1/api/v1/status", nil)
	req.RemoteAddr = "192.0.2.7:4321"
	req.Header.Set("Authorization", "Bearer "+adminToken)
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("another address: %d, want 200: %s", w.Code, w.Body)
	}

	evs, _ := f.store.AuditLog(context.Background(), 1)
	if len(evs) != 1 || evs[0].Result != "denied" || evs[0].Detail != "too many failed authentications from this address" {
		t.Fatalf("last audit event %+v, want the lockout refusal", evs)
	}
}

// TestLockoutRefills: the bucket refills one attempt per failEvery, and no
// token (a missing header) never counts.
func TestLockoutRefills(t *testing.T) {
	var l lockout
	now := time.Unix(1_000_000, 0)
	for i := 0; i < failBurst; i++ {
		if d := l.wait("203.0.113.5:1", now); d != 0 {
			t.Fatalf("attempt %d: wait %v before the burst is spent", i+1, d)
		}
		l.fail("203.0.113.5:1", now)
	}
	if d := l.wait("203.0.113.5:2", now); d <= 0 || d > failEvery {
		t.Fatalf("after the burst: wait %v, want (0, %v]", d, failEvery)
	}
	if d := l.wait("203.0.113.5:2", now.Add(failEvery)); d != 0 {
		t.Fatalf("after %v: wait %v, want 0", failEvery, d)
	}
	if d := l.wait("[::ffff:203.0.113.5]:9", now); d <= 0 {
		t.Fatal("an IPv4-mapped address escaped the lockout")
	}
	if d := l.wait("198.51.100.1:1", now); d != 0 {
		t.Fatalf("an address that never failed waits %v", d)
	}
}

// TestLockoutSurvivesAddressCycling: a client that cycles through more
// source addresses than the table tracks cannot wipe another address's
// lockout, whether the locked-out address keeps knocking meanwhile or
// stays silent.
func TestLockoutSurvivesAddressCycling(t *testing.T) {
	for _, knocking := range []bool{true, false} {
		var l lockout
		now := time.Unix(1_000_000, 0)
		const locked = "203.0.113.5:1"
		for range failBurst {
			l.fail(locked, now)
		}
		if d := l.wait(locked, now); d <= 0 {
			t.Fatalf("not locked out after %d failures", failBurst)
		}
		// 2.5× the table's size of other addresses, each failing once,
		// all within a second (the lockout lasts failEvery).
		for i := range failClients * 5 / 2 {
			other := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			l.fail(netip.AddrPortFrom(other, 1).String(), now)
			if knocking && i%100 == 0 {
				l.wait(locked, now)
			}
		}
		if d := l.wait(locked, now); d <= 0 {
			t.Errorf("knocking %v: the lockout was wiped by %d other addresses", knocking, failClients*5/2)
		}
		if n := l.len(); n > failClients {
			t.Errorf("knocking %v: %d addresses tracked, want at most %d", knocking, n, failClients)
		}
	}
}
