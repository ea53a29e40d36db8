package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/foreignlog"
	"github.com/turnout/turnout/internal/traffic"
)

// analyzeStdin is what "turnout analyze -" reads.
var analyzeStdin io.Reader = os.Stdin

// malformedShown is how many malformed lines per file are printed.
const malformedShown = 5

// cmdAnalyze ranks path templates from existing access logs, offline.
func cmdAnalyze(args []string, stdout, stderr io.Writer) error {
	const synopsis = "analyze [--format auto|cloudfront|alb|nginx] [--output table|json|csv] [--sort calls|errors|p99|last_seen|template] [--limit N] [--unused-for DURATION] [--risky] [--max-templates N] FILE..."
	fs := flag.NewFlagSet("analyze", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "auto", "log `format`: auto, cloudfront, alb or nginx (auto detects each file)")
	output := fs.String("output", "table", "output `format`: table, json or csv")
	sort := fs.String("sort", traffic.SortCalls, "row `order`: calls, errors, p99, last_seen or template")
	limit := fs.Int("limit", 0, "show the first `N` rows only (0: all)")
	unusedFor := fs.Duration("unused-for", 0, "only templates not seen for `DURATION` before the last logged request (e.g. 720h)")
	risky := fs.Bool("risky", false, "only templates with a function-readiness risk")
	maxTemplates := fs.Int("max-templates", traffic.DefaultMaxTemplates, "templates kept; past `N`, new ones count in one {other} row")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: turnout %s\n\nFILE is a CloudFront standard log, an ALB access log or an nginx combined log,\nplain or gzip ('-' reads stdin).\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	files, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		fs.Usage()
		return errUsage
	}
	f, err := foreignlog.ParseFormat(*format)
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	write := map[string]func(io.Writer, traffic.Report) error{
		"table": traffic.WriteTable, "json": traffic.WriteJSON, "csv": traffic.WriteCSV,
	}[*output]
	if write == nil {
		return fmt.Errorf("--output %q: use table, json or csv", *output)
	}
	q := traffic.Query{Sort: *sort, Limit: *limit, UnusedFor: *unusedFor, Risky: *risky}
	if err := q.Validate(); err != nil {
		return err
	}
	if *maxTemplates <= 0 {
		return fmt.Errorf("--max-templates %d: use a positive number", *maxTemplates)
	}

	start := time.Now()
	table := traffic.NewTable(traffic.Options{MaxTemplates: *maxTemplates})
	var total foreignlog.Stats
	var latest time.Time
	read := 0
	for _, name := range files {
		st, last, err := analyzeFile(name, f, table, stderr)
		total.Lines += st.Lines
		total.Parsed += st.Parsed
		total.Malformed += st.Malformed
		total.Skipped += st.Skipped
		if last.After(latest) {
			latest = last
		}
		if err != nil {
			fmt.Fprintf(stderr, "turnout analyze: %s: %v\n", name, err)
		}
		if err == nil || st.Lines > 0 {
			read++
		}
	}
	elapsed := time.Since(start)
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(total.Lines) / s
	}
	fmt.Fprintf(stderr, "turnout analyze: %d of %d files read: %d lines, %d parsed, %d malformed, %d skipped in %s (%.0f lines/s)\n",
		read, len(files), total.Lines, total.Parsed, total.Malformed, total.Skipped, elapsed.Round(time.Millisecond), rate)
	if read == 0 {
		return errors.New("no file could be read")
	}

	// "Unused" is relative to the end of the logs, not to today: logs
	// analysed a month after they were written would otherwise make every
	// template look unused.
	q.Now = latest
	if latest.IsZero() {
		q.Now = time.Now()
	}
	return write(stdout, table.Report(q))
}

// analyzeFile feeds one log into table, printing its first malformed
// lines. It returns the file's counts, its latest request time, and an
// error when the file could not be opened or read to the end.
func analyzeFile(name string, format foreignlog.Format, table *traffic.Table, stderr io.Writer) (foreignlog.Stats, time.Time, error) {
	var in io.Reader
	if name == "-" {
		in = analyzeStdin
	} else {
		file, err := os.Open(name)
		if err != nil {
			return foreignlog.Stats{}, time.Time{}, err
		}
		defer file.Close()
		in = file
	}
	r, err := foreignlog.NewReader(in, foreignlog.Options{Format: format})
	if err != nil {
		return foreignlog.Stats{}, time.Time{}, err
	}
	defer r.Close()

	var o turnout.Observation // reused: Observe does not retain it
	var latest time.Time
	for {
		err := r.Next(&o)
		if err == nil {
			table.Observe(&o)
			if o.Time.After(latest) {
				latest = o.Time
			}
			continue
		}
		if err == io.EOF {
			break
		}
		var le *foreignlog.LineError
		if errors.As(err, &le) {
			if r.Stats().Malformed <= malformedShown {
				fmt.Fprintf(stderr, "%s:%d: malformed %s line: %s: %s\n", name, le.Line, r.Format(), le.Reason, le.Text)
			}
			continue
		}
		return r.Stats(), latest, err
	}
	st := r.Stats()
	if st.Malformed > malformedShown {
		fmt.Fprintf(stderr, "%s: %d malformed lines in all (first %d shown)\n", name, st.Malformed, malformedShown)
	}
	return st, latest, nil
}
