package traffic

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/turnout/turnout"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func obs(method, path string, status int, d time.Duration, at time.Time) *turnout.Observation {
	return &turnout.Observation{Time: at, Method: method, Path: path, Status: status, Duration: d,
		Outcome: turnout.Served, Route: "/user/{id}/orders", Target: "origin:legacy", Bytes: 100, RequestBytes: -1}
}

func findRow(t *testing.T, r Report, host, tmpl string) Row {
	t.Helper()
	for _, row := range r.Rows {
		if row.Host == host && row.Template == tmpl {
			return row
		}
	}
	t.Fatalf("no row for %q %q in %+v", host, tmpl, r.Rows)
	return Row{}
}

func TestObserveCountsByHostAndTemplate(t *testing.T) {
	tb := NewTable(Options{})
	for i := range 10 {
		o := obs("GET", "/user/"+strconv.Itoa(i)+"/orders", 200, 10*time.Millisecond, t0.Add(time.Duration(i)*time.Second))
		o.Host = "api.example.com"
		tb.Observe(o)
	}
	tb.Observe(obs("POST", "/user/7/orders", 502, time.Millisecond, t0.Add(-time.Minute))) // no host
	o := obs("BREW", "/user/8/orders", 200, time.Millisecond, t0)
	o.Host = "api.example.com"
	o.Outcome, o.Target, o.Route = turnout.Fallback, "function:orders", "/user/{id}/orders"
	tb.Observe(o)
	tb.Observe(nil)

	rep := tb.Report(Query{Now: t0})
	if rep.Total != 12 || rep.Templates != 2 || rep.Overflow != 0 || len(rep.Rows) != 2 {
		t.Fatalf("report totals = %d obs, %d templates, %d overflow, %d rows; want 12, 2, 0, 2", rep.Total, rep.Templates, rep.Overflow, len(rep.Rows))
	}
	row := findRow(t, rep, "api.example.com", "/user/{id}/orders")
	if row.Calls != 11 || row.Errors != 0 || row.Fallbacks != 1 {
		t.Errorf("calls, errors, fallbacks = %d, %d, %d; want 11, 0, 1", row.Calls, row.Errors, row.Fallbacks)
	}
	if want := map[string]int64{"GET": 10, "OTHER": 1}; !mapsEqual(row.Methods, want) {
		t.Errorf("methods = %v, want %v", row.Methods, want)
	}
	if want := []string{"origin:legacy", "function:orders"}; !slices.Equal(row.Targets, want) {
		t.Errorf("targets = %v, want %v", row.Targets, want)
	}
	if !row.FirstSeen.Equal(t0) || !row.LastSeen.Equal(t0.Add(9*time.Second)) {
		t.Errorf("first, last seen = %v, %v; want %v, %v", row.FirstSeen, row.LastSeen, t0, t0.Add(9*time.Second))
	}
	bare := findRow(t, rep, "", "/user/{id}/orders")
	if bare.Calls != 1 || bare.Errors != 1 || bare.ErrorRate != 1 {
		t.Errorf("hostless row: calls %d errors %d rate %v; want 1, 1, 1", bare.Calls, bare.Errors, bare.ErrorRate)
	}
	if rep.Rows[0].Host != "api.example.com" {
		t.Errorf("first row by calls is %q, want api.example.com", rep.Rows[0].Host)
	}
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestObserveOutcomes(t *testing.T) {
	tb := NewTable(Options{})
	for _, c := range []struct {
		outcome turnout.Outcome
		status  int
	}{{turnout.Served, 200}, {turnout.Served, 503}, {turnout.Error, 0}, {turnout.Throttled, 429}, {turnout.Throttled, 429}, {turnout.Fallback, 200}, {turnout.BreakerOpen, 200}} {
		o := obs("GET", "/x", c.status, time.Millisecond, t0)
		o.Outcome = c.outcome
		tb.Observe(o)
	}
	row := findRow(t, tb.Report(Query{}), "", "/x")
	if row.Calls != 7 || row.Errors != 2 || row.Throttled != 2 || row.Fallbacks != 1 {
		t.Errorf("calls %d errors %d throttled %d fallbacks %d; want 7, 2, 2, 1", row.Calls, row.Errors, row.Throttled, row.Fallbacks)
	}
	if math.Abs(row.ErrorRate-2.0/7) > 1e-9 {
		t.Errorf("error rate = %v, want 2/7", row.ErrorRate)
	}
}

func TestRoutesAndTargetsAreBounded(t *testing.T) {
	tb := NewTable(Options{})
	for i := range 50 {
		o := obs("GET", "/x", 200, time.Millisecond, t0)
		o.Route, o.Target = "/r"+strconv.Itoa(i), "127.0.0.1:"+strconv.Itoa(8000+i)
		tb.Observe(o)
	}
	row := findRow(t, tb.Report(Query{}), "", "/x")
	if len(row.Routes) != maxRowStrings || len(row.Targets) != maxRowStrings || row.Routes[0] != "/r0" {
		t.Errorf("routes %v targets %v; want the first %d of each", row.Routes, row.Targets, maxRowStrings)
	}
}

// TestQuantiles checks p50/p99 against exact quantiles of known samples,
// within the histogram's stated 5 %.
func TestQuantiles(t *testing.T) {
	tb := NewTable(Options{})
	var durs []time.Duration
	var sizes []int64
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i*i) * time.Microsecond // 1µs … 1s, skewed
		size := int64(i * 37)
		durs, sizes = append(durs, d), append(sizes, size)
		o := obs("GET", "/q", 200, d, t0)
		o.Bytes = size
		tb.Observe(o)
	}
	row := findRow(t, tb.Report(Query{}), "", "/q")
	exact := func(q float64) int { return int(math.Ceil(q*1000)) - 1 }
	near := func(name string, got, want float64) {
		if math.Abs(got-want) > 0.05*want {
			t.Errorf("%s = %v, want %v ± 5%%", name, got, want)
		}
	}
	near("p50 ms", row.P50Ms, float64(durs[exact(0.5)])/1e6)
	near("p99 ms", row.P99Ms, float64(durs[exact(0.99)])/1e6)
	near("bytes p50", float64(row.BytesP50), float64(sizes[exact(0.5)]))
	near("bytes p99", float64(row.BytesP99), float64(sizes[exact(0.99)]))
	if row.BytesMax != 37000 {
		t.Errorf("bytes max = %d, want 37000", row.BytesMax)
	}
}

func TestHistogramRelativeError(t *testing.T) {
	for _, v := range []int64{1, 2, 3, 7, 10, 99, 1000, 12345, 6 << 20, 29e9, 1 << 40, math.MaxInt64} {
		var h hist
		h.add(v)
		h.add(v) // min and max clamp would hide the bucket error: widen them
		h.min, h.max = 0, math.MaxInt64
		got := h.quantile(0.5)
		if rel := math.Abs(got-float64(v)) / float64(v); rel > 0.05+1e-9 {
			t.Errorf("value %d reported as %v: relative error %.3f > 5%%", v, got, rel)
		}
	}
	var h hist
	if h.quantile(0.5) != 0 {
		t.Error("empty histogram quantile is not 0")
	}
	h.add(-5)
	if h.quantile(0.99) != 0 || h.max != 0 {
		t.Errorf("negative value not counted as 0: q %v max %d", h.quantile(0.99), h.max)
	}
}

func TestRisks(t *testing.T) {
	tb := NewTable(Options{})
	add := func(path, query string, bytes int64, d time.Duration, binary bool) {
		o := obs("POST", path, 200, d, t0)
		o.RawQuery, o.Bytes, o.BinaryBody = query, bytes, binary
		tb.Observe(o)
	}
	add("/big/1", "", MaxFunctionResponseBytes+1, time.Second, false)
	add("/big/2", "", MaxFunctionResponseBytes, time.Second, false) // at the limit: fits
	add("/slow/1", "", 10, MaxIntegrationDuration+time.Millisecond, false)
	add("/slow/2", "", 10, MaxIntegrationDuration, false)
	add("/q", "a=1;b=2", 10, time.Millisecond, false)
	add("/q", "id=1&id=2", 10, time.Millisecond, false)
	add("/q", "id=1&ids=2", 10, time.Millisecond, false)
	add("/q", "id=1&id=2&x=1;y", 10, time.Millisecond, true)
	add("/clean", "a=1&b=2&c", 10, time.Millisecond, false)

	rep := tb.Report(Query{Risky: true, Sort: SortTemplate})
	var got []string
	for _, r := range rep.Rows {
		for _, k := range r.Risks {
			got = append(got, fmt.Sprintf("%s %s×%d", r.Template, k.Kind, k.Count))
		}
	}
	want := []string{
		"/big/{id} response_over_6mb×1",
		"/q semicolon_in_query×2", "/q repeated_query_key×2", "/q binary_body×1",
		"/slow/{id} duration_over_29s×1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("risks:\n got %q\nwant %q", got, want)
	}
	big := findRow(t, rep, "", "/big/{id}")
	if ex := big.Risks[0].Example; ex != "POST /big/1 (6291457 bytes)" {
		t.Errorf("example = %q", ex)
	}
	if q := findRow(t, rep, "", "/q"); q.Risks[0].Example != "POST /q?a=1;b=2" {
		t.Errorf("example = %q", q.Risks[0].Example)
	}
}

func TestHasRepeatedKey(t *testing.T) {
	many := make([]string, 100)
	for i := range many {
		many[i] = "k" + strconv.Itoa(i) + "=v"
	}
	for _, c := range []struct {
		q    string
		want bool
	}{
		{"", false}, {"a", false}, {"a=1", false}, {"a=1&b=2", false},
		{"a=1&a=2", true}, {"a&a", true}, {"a=1&&b=1", false}, {"=1&=2", false},
		{"a[]=1&a[]=2", true}, {"a=1&A=2", false}, {"x=a&y=a", false},
		{strings.Join(many, "&"), false},
		{strings.Join(many, "&") + "&k5=again", true},
		{strings.Join(many[:31], "&") + "&k30=again", true},
	} {
		if got := hasRepeatedKey(c.q); got != c.want {
			t.Errorf("hasRepeatedKey(%.40q) = %v, want %v", c.q, got, c.want)
		}
	}
}

func TestReportSortAndFilters(t *testing.T) {
	tb := NewTable(Options{})
	type spec struct {
		path   string
		calls  int
		errs   int
		dur    time.Duration
		lastAt time.Time
	}
	specs := []spec{
		{"/a", 5, 0, 10 * time.Millisecond, t0.Add(-48 * time.Hour)},
		{"/b", 9, 1, 200 * time.Millisecond, t0.Add(-time.Hour)},
		{"/c", 2, 2, 50 * time.Millisecond, t0.Add(-10 * 24 * time.Hour)},
		{"/d", 9, 0, time.Millisecond, t0},
	}
	for _, s := range specs {
		for i := range s.calls {
			st := 200
			if i < s.errs {
				st = 500
			}
			tb.Observe(obs("GET", s.path, st, s.dur, s.lastAt.Add(-time.Duration(i)*time.Minute)))
		}
	}
	order := func(q Query) string {
		q.Now = t0
		var names []string
		for _, r := range tb.Report(q).Rows {
			names = append(names, r.Template)
		}
		return strings.Join(names, " ")
	}
	for _, c := range []struct {
		q    Query
		want string
	}{
		{Query{}, "/b /d /a /c"}, // calls, ties by template
		{Query{Sort: SortCalls, Limit: 2}, "/b /d"},
		{Query{Sort: SortErrors}, "/c /b /d /a"},
		{Query{Sort: SortP99}, "/b /c /a /d"},
		{Query{Sort: SortLastSeen}, "/c /a /b /d"},
		{Query{Sort: SortTemplate}, "/a /b /c /d"},
		{Query{Sort: "bogus"}, "/b /d /a /c"},
		{Query{UnusedFor: 24 * time.Hour}, "/a /c"},
		{Query{UnusedFor: 7 * 24 * time.Hour}, "/c"},
		{Query{UnusedFor: 30 * 24 * time.Hour}, ""},
		{Query{Risky: true}, ""},
	} {
		if got := order(c.q); got != c.want {
			t.Errorf("%+v: rows %q, want %q", c.q, got, c.want)
		}
	}
	rep := tb.Report(Query{UnusedFor: time.Hour, Now: t0, Limit: 1})
	if rep.Total != 25 || rep.Templates != 4 || len(rep.Rows) != 1 {
		t.Errorf("filtered report keeps totals: total %d templates %d rows %d; want 25, 4, 1", rep.Total, rep.Templates, len(rep.Rows))
	}
}

func TestQueryValidate(t *testing.T) {
	for _, q := range []Query{{}, {Sort: "p99", Limit: 5, UnusedFor: time.Hour}} {
		if err := q.Validate(); err != nil {
			t.Errorf("%+v: %v", q, err)
		}
	}
	for _, c := range []struct {
		q    Query
		want string
	}{
		{Query{Sort: "speed"}, `unknown sort order "speed": use one of calls, errors, p99, last_seen, template`},
		{Query{Limit: -1}, "limit -1 is negative"},
		{Query{UnusedFor: -time.Second}, "unused-for -1s is negative"},
	} {
		if err := c.q.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.q, err, c.want)
		}
	}
}

func TestOverflow(t *testing.T) {
	tb := NewTable(Options{MaxTemplates: 3})
	for _, p := range []string{"/a", "/b", "/c", "/d", "/e", "/a", "/d"} {
		tb.Observe(obs("GET", p, 200, time.Millisecond, t0))
	}
	long := obs("GET", "/"+strings.Repeat("word/", maxTemplateLen/5+1), 200, time.Millisecond, t0)
	tb.Observe(long)
	longHost := obs("GET", "/a", 200, time.Millisecond, t0)
	longHost.Host = strings.Repeat("h", maxHostLen+1)
	tb.Observe(longHost)

	rep := tb.Report(Query{Sort: SortTemplate})
	if rep.Templates != 3 || rep.Overflow != 5 || rep.Total != 9 {
		t.Fatalf("templates %d overflow %d total %d; want 3, 5, 9", rep.Templates, rep.Overflow, rep.Total)
	}
	of := findRow(t, rep, "", OverflowTemplate)
	if of.Calls != 5 || len(rep.Rows) != 4 {
		t.Errorf("overflow row calls %d, rows %d; want 5, 4", of.Calls, len(rep.Rows))
	}
	if a := findRow(t, rep, "", "/a"); a.Calls != 2 {
		t.Errorf("/a calls = %d, want 2 (a known template still counts past the limit)", a.Calls)
	}
}

// TestConcurrentObserveAndReport runs observers and reporters at once;
// under -race it checks the locking, and the totals check no count is lost.
func TestConcurrentObserveAndReport(t *testing.T) {
	tb := NewTable(Options{MaxTemplates: 50})
	const workers, perWorker = 8, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				o := obs("GET", "/w/"+strconv.Itoa(i)+"/p"+strconv.Itoa(i%80), 200, time.Duration(i)*time.Microsecond, t0.Add(time.Duration(i)))
				o.Route = "/r" + strconv.Itoa(w)
				o.RawQuery = "a=1&a=2"
				tb.Observe(o)
			}
		})
	}
	stop := make(chan struct{})
	var reports sync.WaitGroup
	reports.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				tb.Report(Query{Sort: SortP99, Risky: true})
			}
		}
	})
	wg.Wait()
	close(stop)
	reports.Wait()

	rep := tb.Report(Query{})
	var sum int64
	for _, r := range rep.Rows {
		sum += r.Calls
	}
	if rep.Total != workers*perWorker || sum != rep.Total {
		t.Errorf("total %d, sum of rows %d; want %d", rep.Total, sum, workers*perWorker)
	}
	if rep.Templates != 50 || rep.Overflow != workers*perWorker*30/80 {
		t.Errorf("templates %d overflow %d; want 50, %d", rep.Templates, rep.Overflow, workers*perWorker*30/80)
	}
}

func TestObserveAllocs(t *testing.T) {
	tb := NewTable(Options{})
	o := obs("GET", "/api/v1/users/42/orders/550e8400-e29b-41d4-a716-446655440000", 200, 3*time.Millisecond, t0)
	o.Host, o.RawQuery = "api.example.com", "page=2&sort=asc"
	tb.Observe(o)
	allocs := testing.AllocsPerRun(1000, func() {
		o.Path = "/api/v1/users/43/orders/550e8400-e29b-41d4-a716-446655440001"
		tb.Observe(o)
	})
	if allocs != 0 {
		t.Errorf("Observe of a known template allocates %.1f times, want 0", allocs)
	}
}
