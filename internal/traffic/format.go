package traffic

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable writes r as an aligned table for people, one row per
// template in the report's order, then a summary line. Columns: calls,
// template (host first when there is one), methods by calls, error
// percentage, p50 and p99 duration, largest response, last seen (UTC),
// backends, and risks with their counts.
func WriteTable(w io.Writer, r Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CALLS\tTEMPLATE\tMETHODS\tERR%\tP50\tP99\tMAX SIZE\tLAST SEEN\tBACKEND\tSTAGE\tRISKS")
	for _, row := range r.Rows {
		tmpl := row.Host + row.Template
		risks := make([]string, 0, len(row.Risks))
		for _, k := range row.Risks {
			risks = append(risks, k.Kind+"×"+strconv.FormatInt(k.Count, 10))
		}
		cells := []string{
			strconv.FormatInt(row.Calls, 10),
			tmpl,
			methodsByCalls(row.Methods),
			strconv.FormatFloat(100*row.ErrorRate, 'f', 1, 64),
			formatMs(row.P50Ms),
			formatMs(row.P99Ms),
			formatBytes(row.BytesMax),
			row.LastSeen.UTC().Format(time.DateTime),
			orDash(strings.Join(row.Targets, ",")),
			orDash(row.Stage),
			orDash(strings.Join(risks, ",")),
		}
		for i, c := range cells {
			cells[i] = printable(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d rows shown; %d observations in %d templates, %d in %s\n",
		len(r.Rows), r.Total, r.Templates, r.Overflow, OverflowTemplate)
	return err
}

// WriteJSON writes r as one indented JSON document with snake_case names.
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// csvHeader names WriteCSV's columns. Lists are joined with '|', methods
// and risks as name=count.
var csvHeader = []string{
	"host", "template", "calls", "errors", "error_rate", "fallbacks", "throttled",
	"p50_ms", "p99_ms", "bytes_p50", "bytes_p99", "bytes_max",
	"first_seen", "last_seen", "methods", "routes", "targets", "risks", "stage",
}

// WriteCSV writes r's rows as CSV with a header line; times are RFC 3339
// in UTC.
func WriteCSV(w io.Writer, r Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, row := range r.Rows {
		risks := make([]string, 0, len(row.Risks))
		for _, k := range row.Risks {
			risks = append(risks, k.Kind+"="+strconv.FormatInt(k.Count, 10))
		}
		methods := make([]string, 0, len(row.Methods))
		for _, m := range sortedMethods(row.Methods) {
			methods = append(methods, m+"="+strconv.FormatInt(row.Methods[m], 10))
		}
		rec := []string{
			row.Host, row.Template,
			strconv.FormatInt(row.Calls, 10),
			strconv.FormatInt(row.Errors, 10),
			strconv.FormatFloat(row.ErrorRate, 'f', -1, 64),
			strconv.FormatInt(row.Fallbacks, 10),
			strconv.FormatInt(row.Throttled, 10),
			strconv.FormatFloat(row.P50Ms, 'f', 3, 64),
			strconv.FormatFloat(row.P99Ms, 'f', 3, 64),
			strconv.FormatInt(row.BytesP50, 10),
			strconv.FormatInt(row.BytesP99, 10),
			strconv.FormatInt(row.BytesMax, 10),
			row.FirstSeen.UTC().Format(time.RFC3339Nano),
			row.LastSeen.UTC().Format(time.RFC3339Nano),
			strings.Join(methods, "|"),
			strings.Join(row.Routes, "|"),
			strings.Join(row.Targets, "|"),
			strings.Join(risks, "|"),
			row.Stage,
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// sortedMethods returns the methods of m, most calls first.
func sortedMethods(m map[string]int64) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int {
		if c := compareInt(m[b], m[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return names
}

func methodsByCalls(m map[string]int64) string {
	return orDash(strings.Join(sortedMethods(m), ","))
}

func formatMs(ms float64) string {
	switch {
	case ms == 0:
		return "0"
	case ms < 10:
		return strconv.FormatFloat(ms, 'f', 2, 64) + "ms"
	case ms < 10000:
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	default:
		return strconv.FormatFloat(ms/1000, 'f', 1, 64) + "s"
	}
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + "B"
	}
	v, suffix := float64(n), "B"
	for _, s := range []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"} {
		if v < unit {
			break
		}
		v, suffix = v/unit, s
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + suffix
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printable escapes control bytes (a tab would break the columns, an
// escape sequence would drive the terminal) as %XX, the way a path would
// have carried them.
func printable(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, c := range s {
		if isControl(c) {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func isControl(c rune) bool { return c < 0x20 || c == 0x7f || c >= 0x80 && c < 0xa0 }
