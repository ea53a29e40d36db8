package traffic

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/turnout/turnout"
)

func sampleReport() Report {
	tb := NewTable(Options{MaxTemplates: 2})
	for i, p := range []string{"/user/1/orders", "/user/2/orders", "/user/3/orders", "/health", "/gone\x1b[31m", "/more"} {
		o := obs("GET", p, 200, time.Duration(i+1)*time.Millisecond, t0.Add(time.Duration(i)*time.Second))
		o.Host = "api.example.com"
		if i == 0 {
			o.Method, o.Status, o.RawQuery, o.Bytes = "POST", 500, "id=1&id=2", 7<<20
		}
		tb.Observe(o)
	}
	return tb.Report(Query{Now: t0})
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	rep := sampleReport()
	rep.Rows[0].Stage, rep.Rows[2].Stage = "canary 5%", "legacy"
	if err := WriteTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	want := []string{
		// Quantiles come from 5 % histogram buckets: 1.96ms stands for 2ms.
		"CALLS  TEMPLATE                          METHODS   ERR%  P50     P99     MAX SIZE  LAST SEEN            BACKEND        STAGE      RISKS",
		"3      api.example.com/user/{id}/orders  GET,POST  33.3  1.96ms  2.90ms  7.0MiB    2026-11-01 12:00:02  origin:legacy  canary 5%  response_over_6mb×1,repeated_query_key×1",
		"2      {other}                           GET       0.0   5.21ms  5.75ms  100B      2026-11-01 12:00:05  origin:legacy  -          -",
		"1      api.example.com/health            GET       0.0   4.00ms  4.00ms  100B      2026-11-01 12:00:03  origin:legacy  legacy     -",
		"3 rows shown; 6 observations in 2 templates, 2 in {other}",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), strings.Join(want, "\n"))
	}
}

func TestWriteTableEscapesControlBytes(t *testing.T) {
	tb := NewTable(Options{})
	tb.Observe(obs("GET", "/a\tb/\x1b[2J", 200, time.Millisecond, t0))
	var b bytes.Buffer
	if err := WriteTable(&b, tb.Report(Query{})); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(b.String(), "\x1b\t") || !strings.Contains(b.String(), "/a%09b/%1B[2J") {
		t.Errorf("control bytes not escaped:\n%q", b.String())
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, b.String())
	}
	for _, k := range []string{"rows", "total", "templates", "overflow"} {
		if _, ok := got[k]; !ok {
			t.Errorf("report has no %q", k)
		}
	}
	row := got["rows"].([]any)[0].(map[string]any)
	for _, k := range []string{"host", "template", "routes", "targets", "methods", "calls", "errors", "error_rate",
		"fallbacks", "throttled", "p50_ms", "p99_ms", "bytes_p50", "bytes_p99", "bytes_max", "first_seen", "last_seen", "risks"} {
		if _, ok := row[k]; !ok {
			t.Errorf("row has no %q: %v", k, row)
		}
	}
	risk := row["risks"].([]any)[0].(map[string]any)
	if risk["kind"] != RiskResponseOver6MB || risk["count"] != 1.0 || !strings.HasPrefix(risk["example"].(string), "POST /user/1/orders?id=1&id=2") {
		t.Errorf("risk = %v", risk)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back.Total != 6 || back.Rows[0].Template != "/user/{id}/orders" {
		t.Errorf("round trip: %v %+v", err, back)
	}
}

func TestWriteCSV(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCSV(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || strings.Join(recs[0], ",") != strings.Join(csvHeader, ",") {
		t.Fatalf("records = %q", recs)
	}
	got := strings.Join(recs[1], ",")
	want := "api.example.com,/user/{id}/orders,3,1,0.3333333333333333,0,0,1.964,2.902,103,7340032,7340032," +
		"2026-11-01T12:00:00Z,2026-11-01T12:00:02Z,GET=2|POST=1,/user/{id}/orders,origin:legacy,response_over_6mb=1|repeated_query_key=1,"
	if got != want {
		t.Errorf("row:\n got %s\nwant %s", got, want)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWritersReportErrors(t *testing.T) {
	r := sampleReport()
	for name, write := range map[string]func() error{
		"table": func() error { return WriteTable(failingWriter{}, r) },
		"json":  func() error { return WriteJSON(failingWriter{}, r) },
		"csv":   func() error { return WriteCSV(failingWriter{}, r) },
	} {
		if err := write(); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("%s: error %v, want disk full", name, err)
		}
	}
}

// FuzzObserve feeds arbitrary request fields through a table and every
// writer: nothing may panic, the JSON must parse, the CSV must read back,
// and the allocation-free repeated-key check must agree with the map one.
func FuzzObserve(f *testing.F) {
	f.Add("api.example.com", "GET", "/user/42/orders", "id=1&id=2;x", int64(7<<20))
	f.Add("", "BREW", "/a\tb/\x1b[2J", "&&=&a", int64(-1))
	f.Add("h\x00st", "", "", strings.Repeat("k=v&", 40), int64(0))
	f.Fuzz(func(t *testing.T, host, method, path, query string, size int64) {
		if got, want := hasRepeatedKey(query), hasRepeatedKeyMap(query); got != want {
			t.Fatalf("hasRepeatedKey(%q) = %v, map check says %v", query, got, want)
		}
		tb := NewTable(Options{MaxTemplates: 2})
		for i := range 3 {
			tb.Observe(&turnout.Observation{Time: t0, Host: host, Method: method, Path: path + strings.Repeat("/x", i),
				RawQuery: query, Bytes: size, Duration: time.Duration(size), Status: int(size % 600)})
		}
		rep := tb.Report(Query{Risky: size%2 == 0})
		var b bytes.Buffer
		if err := WriteTable(&b, rep); err != nil {
			t.Fatal(err)
		}
		b.Reset()
		if err := WriteJSON(&b, rep); err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b.Bytes()) {
			t.Fatalf("invalid JSON: %s", b.String())
		}
		b.Reset()
		if err := WriteCSV(&b, rep); err != nil {
			t.Fatal(err)
		}
		if recs, err := csv.NewReader(&b).ReadAll(); err != nil || len(recs) != len(rep.Rows)+1 {
			t.Fatalf("CSV reads back as %d records, %v; want %d", len(recs), err, len(rep.Rows)+1)
		}
	})
}
