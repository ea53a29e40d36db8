package bench

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/turnout/turnout/internal/authz/authztest"
)

// BenchmarkAuthorizedPath measures what a JWT authorizer adds to a warm
// function route: GET /user/{id} on the example aws-lambda-go function
// without auth, and behind a JWT authorizer with an RS256 and an ES256
// token (keys cached, claims in the event) — the same token again
// (verified before: the verified-token cache) and a new token each time
// ("-new": the signature checked) — one request at a time, all
// interleaved so that drift on a shared machine hits them alike. Reports
// p50 and p99 of each and the added p50/p99 over no auth.
func BenchmarkAuthorizedPath(b *testing.B) {
	dir := b.TempDir()
	fnBin := buildExample(b, dir, "functions/user")
	rsa, ec := authztest.NewKey(b, jose.RS256, "rsa"), authztest.NewKey(b, jose.ES256, "ec")
	iss := authztest.NewIssuer(b, rsa, ec)
	n := startGateway(b, fmt.Sprintf(`origins: {legacy: {url: http://%s}}
functions:
  user: {handler: %s, concurrency: 1, min_instances: 1}
authorizers:
  idp: {jwt: {issuer: %q, audience: [api]}}
routes:
  - {match: "GET fn.test/user/{id}", function: user}
  - {match: "GET auth.test/user/{id}", function: user, auth: {authorizer: idp, scopes: ["users:read"]}}
  - {match: /, origin: legacy}
`, startLegacy(b, dir), fnBin, iss.URL))
	claims := iss.Claims("api")
	claims["exp"] = time.Now().Add(24 * time.Hour).Unix()
	claims["scope"] = "users:read profile"
	kinds := []struct {
		name, host, token string
		fresh             authztest.Key // sign a new token for each request
	}{
		{"none", "fn.test", "", authztest.Key{}},
		{"RS256", "auth.test", authztest.Sign(b, rsa, claims), authztest.Key{}},
		{"ES256", "auth.test", authztest.Sign(b, ec, claims), authztest.Key{}},
		{"RS256-new", "auth.test", "", rsa},
		{"ES256-new", "auth.test", "", ec},
	}
	seq := 0
	token := func(i int) string {
		k := kinds[i]
		if k.fresh.Private == nil {
			return k.token
		}
		seq++
		claims["jti"] = fmt.Sprint(seq)
		return authztest.Sign(b, k.fresh, claims)
	}
	get := func(host, token string) time.Duration {
		req, _ := http.NewRequest("GET", n.public+"/user/42", nil)
		req.Host = host
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		start := time.Now()
		resp, err := n.client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s/user/42: %d", host, resp.StatusCode)
		}
		return d
	}
	for i := 0; i < 50; i++ { // warm the instance, the keys and the connections
		for i, k := range kinds {
			get(k.host, token(i))
		}
	}
	ds := make([][]time.Duration, len(kinds))
	b.ResetTimer()
	for b.Loop() {
		for i, k := range kinds {
			ds[i] = append(ds[i], get(k.host, token(i)))
		}
	}
	b.StopTimer()
	p50, p99 := percentile(ds[0], 0.5), percentile(ds[0], 0.99)
	b.ReportMetric(float64(p50.Microseconds()), "µs-p50-none")
	b.ReportMetric(float64(p99.Microseconds()), "µs-p99-none")
	for i, k := range kinds[1:] {
		a50, a99 := percentile(ds[i+1], 0.5), percentile(ds[i+1], 0.99)
		b.ReportMetric(float64(a50.Microseconds()), "µs-p50-"+k.name)
		b.ReportMetric(float64(a99.Microseconds()), "µs-p99-"+k.name)
		b.ReportMetric(float64((a50 - p50).Microseconds()), "µs-added-p50-"+k.name)
		b.ReportMetric(float64((a99 - p99).Microseconds()), "µs-added-p99-"+k.name)
	}
}
