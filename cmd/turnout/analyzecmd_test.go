package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/turnout/turnout/internal/testkit"
	"github.com/turnout/turnout/internal/traffic"
)

const analyzeTestdata = "../../internal/foreignlog/testdata/"

func runAnalyze(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"analyze"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

func findRow(rep traffic.Report, host, template string) *traffic.Row {
	for i := range rep.Rows {
		if rep.Rows[i].Host == host && rep.Rows[i].Template == template {
			return &rep.Rows[i]
		}
	}
	return nil
}

func riskCount(r *traffic.Row, kind string) int64 {
	for _, k := range r.Risks {
		if k.Kind == kind {
			return k.Count
		}
	}
	return 0
}

func TestAnalyzeOutputs(t *testing.T) {
	cf := analyzeTestdata + "cloudfront.log"

	// JSON: the ranking and the risks, checked field by field.
	out, errOut, code := runAnalyze(t, "--output", "json", cf)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	var rep traffic.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	if rep.Total != 12 || len(rep.Rows) == 0 {
		t.Fatalf("total %d, %d rows; want 12 observations", rep.Total, len(rep.Rows))
	}
	top := rep.Rows[0]
	if top.Host != "api.example.com" || top.Template != "/user/{id}" || top.Calls != 6 || top.Errors != 2 || top.Throttled != 1 {
		t.Errorf("top row %+v; want api.example.com/user/{id}, 6 calls, 2 errors, 1 throttled", top)
	}
	if r := findRow(rep, "api.example.com", "/reports/{id}/export"); r == nil || riskCount(r, traffic.RiskResponseOver6MB) != 1 || riskCount(r, traffic.RiskDurationOver29s) != 1 {
		t.Errorf("export row %+v; want the 6 MB and 29 s risks", r)
	}
	if r := findRow(rep, "api.example.com", "/search"); r == nil || riskCount(r, traffic.RiskSemicolonInQuery) != 1 || riskCount(r, traffic.RiskRepeatedQueryKey) != 1 {
		t.Errorf("search row %+v; want the ';' and repeated-key risks", r)
	}
	testkit.ContainsAll(t, "stderr", errOut,
		"cloudfront.log:14: malformed cloudfront line: sc-status: not an HTTP status",
		"cloudfront.log:15: malformed cloudfront line: 5 tab-separated fields",
		"1 of 1 files read: 16 lines, 12 parsed, 2 malformed, 2 skipped",
		"lines/s)")

	// Table: the top row comes first, after the header.
	out, _, code = runAnalyze(t, cf)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) < 3 || !strings.HasPrefix(lines[0], "CALLS") ||
		!regexp.MustCompile(`^6\s+api\.example\.com/user/\{id\}\s+GET\s`).MatchString(lines[1]) {
		t.Errorf("table output (exit %d):\n%s", code, out)
	}
	if !strings.Contains(lines[len(lines)-1], "12 observations") {
		t.Errorf("table summary: %q", lines[len(lines)-1])
	}

	// CSV: header, then the same first row; --limit 2 keeps two rows.
	out, _, code = runAnalyze(t, "--output", "csv", "--limit", "2", cf)
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(recs) != 3 {
		t.Fatalf("csv output (exit %d, %v):\n%s", code, err, out)
	}
	if recs[0][0] != "host" || recs[0][1] != "template" || recs[0][2] != "calls" ||
		recs[1][0] != "api.example.com" || recs[1][1] != "/user/{id}" || recs[1][2] != "6" {
		t.Errorf("csv rows: %q", recs[:2])
	}

	// --risky keeps only rows with a risk; --sort p99 puts the slowest first.
	out, _, _ = runAnalyze(t, "--output", "json", "--risky", "--sort", "p99", cf)
	rep = traffic.Report{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Rows) != 2 || rep.Rows[0].Template != "/reports/{id}/export" {
		t.Errorf("--risky --sort p99: %v\n%s", err, out)
	}

	// --unused-for is measured from the last logged request (2026-11-03
	// 23:59:59), not from today: /user/{id} was seen then; /search a day
	// and a half earlier.
	out, _, _ = runAnalyze(t, "--output", "json", "--unused-for", "24h", cf)
	rep = traffic.Report{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if findRow(rep, "api.example.com", "/user/{id}") != nil || findRow(rep, "api.example.com", "/search") == nil {
		t.Errorf("--unused-for 24h rows: %+v", rep.Rows)
	}
}

// TestAnalyzeFormats reads the three formats at once, auto-detected per
// file, with gzip told by content (a gzip file named .log) and stdin.
func TestAnalyzeFormats(t *testing.T) {
	dir := t.TempDir()
	gz, err := os.ReadFile(analyzeTestdata + "alb.log.gz")
	if err != nil {
		t.Fatal(err)
	}
	albCopy := filepath.Join(dir, "alb-without-extension.log")
	if err := os.WriteFile(albCopy, gz, 0o644); err != nil {
		t.Fatal(err)
	}
	nginx, err := os.ReadFile(analyzeTestdata + "nginx.log")
	if err != nil {
		t.Fatal(err)
	}
	analyzeStdin = bytes.NewReader(nginx)
	defer func() { analyzeStdin = os.Stdin }()

	out, errOut, code := runAnalyze(t, "--output", "json", analyzeTestdata+"cloudfront.log", albCopy, "-")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	var rep traffic.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	// 12 CloudFront + 8 ALB + 11 nginx observations.
	if rep.Total != 31 {
		t.Errorf("total %d, want 31; stderr:\n%s", rep.Total, errOut)
	}
	// nginx combined logs no host: its /user/{id} row has Host "".
	if r := findRow(rep, "", "/user/{id}"); r == nil || r.Calls != 4 {
		t.Errorf("nginx /user/{id}: %+v", r)
	}
	// Rows are per host without the port: ALB's :80, :443 and :8443
	// requests join CloudFront's.
	if r := findRow(rep, "api.example.com", "/user/{id}"); r == nil || r.Calls != 6+4 {
		t.Errorf("CloudFront+ALB api.example.com/user/{id}: %+v", r)
	}
	testkit.ContainsAll(t, "stderr", errOut, "alb-without-extension.log:8: malformed alb line", "-:8: malformed nginx line", "3 of 3 files read: 39 lines, 31 parsed, 6 malformed, 2 skipped")

	// --format overrides detection: nginx lines read as ALB are all malformed.
	out, errOut, code = runAnalyze(t, "--format", "alb", "--output", "json", analyzeTestdata+"nginx.log")
	if code != 0 || !strings.Contains(errOut, "13 malformed") || !strings.Contains(out, `"total": 0`) {
		t.Errorf("--format alb on nginx (exit %d):\n%s\n%s", code, out, errOut)
	}
}

func TestAnalyzeMalformedAndErrors(t *testing.T) {
	dir := t.TempDir()
	// Eight malformed lines among good ones: five are shown, all counted.
	var b strings.Builder
	for range 8 {
		b.WriteString(`1.2.3.4 - - [02/Nov/2026:09:00:01 +0100] "GET /ok HTTP/1.1" 200 1 "-" "ua"` + "\n")
		b.WriteString(`1.2.3.4 - - [02/Nov/2026:09:00:01 +0100] "GET /bad HTTP/1.1" 2x0 1 "-" "ua"` + "\n")
	}
	bad := filepath.Join(dir, "bad.log")
	os.WriteFile(bad, []byte(b.String()), 0o644)
	out, errOut, code := runAnalyze(t, "--output", "csv", bad)
	if code != 0 || strings.Count(errOut, "malformed nginx line") != 5 || !strings.Contains(errOut, "8 malformed lines in all (first 5 shown)") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
	if !strings.Contains(out, ",/ok,8,") {
		t.Errorf("csv:\n%s", out)
	}

	// A missing or undetectable file is reported; the others still count.
	junk := filepath.Join(dir, "junk.txt")
	os.WriteFile(junk, []byte("hello\nworld\n"), 0o644)
	out, errOut, code = runAnalyze(t, "--output", "json", filepath.Join(dir, "missing.log"), junk, bad)
	if code != 0 || !strings.Contains(errOut, "missing.log: open") || !strings.Contains(errOut, "junk.txt: cannot detect the log format") ||
		!strings.Contains(errOut, "1 of 3 files read") || !strings.Contains(out, `"total": 8`) {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}
	// No file readable at all: exit 1.
	_, errOut, code = runAnalyze(t, filepath.Join(dir, "missing.log"), junk)
	if code != 1 || !strings.Contains(errOut, "no file could be read") {
		t.Errorf("exit %d:\n%s", code, errOut)
	}

	// Bad flags change nothing and say what to use.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--output", "xml", bad}, "use table, json or csv"},
		{[]string{"--sort", "size", bad}, "unknown sort order"},
		{[]string{"--format", "apache", bad}, "use auto, cloudfront, alb or nginx"},
		{[]string{"--limit", "-1", bad}, "negative"},
		{[]string{"--max-templates", "0", bad}, "positive"},
	} {
		out, errOut, code := runAnalyze(t, tc.args...)
		if code != 1 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", tc.args, code, out, errOut, tc.want)
		}
	}
	if _, _, code := runAnalyze(t); code != 2 {
		t.Errorf("no files: exit %d, want 2", code)
	}
}

// TestQuickstartAnalyze runs the README tour's `turnout analyze` lines as
// written, from the repository root: the file they name must be in the repo
// and read without a malformed line.
func TestQuickstartAnalyze(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := regexp.MustCompile(`(?m)^\./bin/turnout analyze ([^#\n]+)`).FindAllStringSubmatch(string(readme), -1)
	if len(lines) == 0 {
		t.Fatal("the README's tour has no turnout analyze line")
	}
	t.Chdir("../..")
	for _, l := range lines {
		args := strings.Fields(l[1])
		out, errOut, code := runAnalyze(t, args...)
		if code != 0 || !strings.Contains(errOut, " 0 malformed") || !strings.Contains(out, "/user/{id}") {
			t.Errorf("turnout analyze %s: exit %d\n%s\n%s", l[1], code, out, errOut)
		}
	}
}
