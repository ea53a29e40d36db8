package foreignlog

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/traffic"
)

// genLine appends the i-th line of a realistic generated log: a mix of
// templates with ids, UUIDs and queries, user agents, and the odd error,
// in time order.
func genLine(dst []byte, format Format, i int, rng *rand.Rand) []byte {
	t := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC).Add(time.Duration(i) * 37 * time.Millisecond)
	var method, path, query string
	switch k := rng.IntN(10); {
	case k < 4:
		method, path = "GET", fmt.Sprintf("/user/%d", rng.IntN(1_000_000))
	case k < 6:
		method, path, query = "GET", fmt.Sprintf("/user/%d/orders", rng.IntN(1_000_000)), fmt.Sprintf("page=%d&limit=50", rng.IntN(20))
	case k < 7:
		method, path = "PUT", fmt.Sprintf("/orders/%08x-5b4a-4321-9abc-def0%08x", rng.Uint32(), rng.Uint32())
	case k < 8:
		method, path, query = "GET", "/search", "q=shoes&sort=price;asc"
	case k < 9:
		method, path = "POST", "/api/v2/carts"
	default:
		method, path = "GET", fmt.Sprintf("/static/app.%x.js", rng.IntN(16))
	}
	status := 200
	if rng.IntN(50) == 0 {
		status = 502
	}
	size := 200 + rng.IntN(20000)
	dur := time.Duration(1+rng.IntN(400)) * time.Millisecond
	switch format {
	case CloudFront:
		q := query
		if q == "" {
			q = "-"
		}
		return fmt.Appendf(dst, "%s\t%s\tFRA56-P1\t%d\t192.0.2.%d\t%s\td111111abcdef8.cloudfront.net\t%s\t%d\t-\tMozilla/5.0%%20(Windows%%20NT%%2010.0;%%20Win64;%%20x64)%%20AppleWebKit/537.36\t%s\t-\tMiss\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\tapi.example.com\thttps\t%d\t%.3f\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tMiss\tHTTP/2.0\t-\t-\t%d\t%.3f\tMiss\tapplication/json\t%d\t-\t-\n",
			t.Format("2006-01-02"), t.Format("15:04:05"), size, rng.IntN(256), method, path, status, q, 300+rng.IntN(400), dur.Seconds(), 40000+rng.IntN(20000), dur.Seconds(), size-180)
	case ALB:
		u := path
		if query != "" {
			u += "?" + query
		}
		return fmt.Appendf(dst, "https %s app/my-loadbalancer/50dc6c495c0c9188 192.168.131.%d:%d 10.0.0.%d:80 0.000 %.3f 0.000 %d %d %d %d \"%s https://api.example.com:443%s HTTP/1.1\" \"Mozilla/5.0 (X11; Linux x86_64)\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 \"Root=1-58337262-36d228ad5d99923122bbe354\" \"api.example.com\" \"-\" 1 %s \"forward\" \"-\" \"-\" \"10.0.0.1:80\" \"200\" \"-\" \"-\" TID_1234abcd5678ef90\n",
			t.Format("2006-01-02T15:04:05.000000Z"), rng.IntN(256), 1024+rng.IntN(60000), 1+rng.IntN(4), dur.Seconds(), status, status, 300+rng.IntN(400), size, method, u, t.Add(-dur).Format("2006-01-02T15:04:05.000000Z"))
	default:
		u := path
		if query != "" {
			u += "?" + query
		}
		return fmt.Appendf(dst, "192.0.2.%d - - [%s] \"%s %s HTTP/1.1\" %d %d \"https://app.example.com/\" \"Mozilla/5.0 (X11; Linux x86_64)\" %.3f\n",
			rng.IntN(256), t.Format("02/Jan/2006:15:04:05 -0700"), method, u, status, size, dur.Seconds())
	}
}

// genLog returns n generated lines, with the CloudFront header when due.
func genLog(format Format, n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var b []byte
	if format == CloudFront {
		b = append(b, "#Version: 1.0\n#Fields: "+cfLegacyFields+"\n"...)
	}
	for i := range n {
		b = genLine(b, format, i, rng)
	}
	return b
}

// benchFormat measures parse + traffic.Observe per line, the work of
// `turnout analyze`, over an in-memory log of 10,000 lines.
func benchFormat(b *testing.B, format Format) {
	const lines = 10_000
	data := genLog(format, lines)
	table := traffic.NewTable(traffic.Options{})
	var o turnout.Observation
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(data), Options{Format: format})
		if err != nil {
			b.Fatal(err)
		}
		// The loop is written out, not eachLine, so that no call through
		// a func value is timed with the parser.
		n := 0
		for {
			err := r.Next(&o)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			table.Observe(&o)
			n++
		}
		if n != lines {
			b.Fatalf("parsed %d lines, want %d", n, lines)
		}
	}
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

func BenchmarkCloudFront(b *testing.B) { benchFormat(b, CloudFront) }
func BenchmarkALB(b *testing.B)        { benchFormat(b, ALB) }
func BenchmarkNginx(b *testing.B)      { benchFormat(b, Nginx) }

// lineSource is an io.Reader that streams a log of n lines by cycling
// through one generated block of blockLines lines, so a test can read a
// log far larger than it ever holds.
type lineSource struct {
	block []byte
	skip  int // bytes of header the second and later blocks leave out
	off   int
	left  int // blocks still to send
	Bytes int64
}

const blockLines = 10_000

func newLineSource(format Format, n int) *lineSource {
	s := &lineSource{block: genLog(format, blockLines), left: n / blockLines}
	if format == CloudFront {
		s.skip = len("#Version: 1.0\n#Fields: " + cfLegacyFields + "\n")
	}
	return s
}

func (s *lineSource) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.block[s.off:])
	s.off += n
	s.Bytes += int64(n)
	if s.off == len(s.block) {
		s.off = s.skip
		s.left--
	}
	return n, nil
}

// TestMemoryBounded streams a generated 1,000,000-line CloudFront log
// (about 356 MiB) through a Reader into a traffic.Table without ever
// holding it, and checks the heap stays small throughout.
func TestMemoryBounded(t *testing.T) {
	const lines = 1_000_000
	const maxHeap = 64 << 20
	src := newLineSource(CloudFront, lines)
	r, err := NewReader(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	table := traffic.NewTable(traffic.Options{MaxTemplates: 1000})
	var ms runtime.MemStats
	var peak uint64
	n := 0
	eachLine(t, r, func(o *turnout.Observation, le *LineError) {
		if le != nil {
			t.Fatal(le)
		}
		table.Observe(o)
		if n++; n%100_000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	})
	if n != lines {
		t.Fatalf("parsed %d lines, want %d", n, lines)
	}
	if src.Bytes < 4*maxHeap {
		t.Fatalf("generated only %d bytes; the test needs a log far larger than the heap bound", src.Bytes)
	}
	if peak > maxHeap {
		t.Errorf("heap reached %d MiB streaming a %d MiB log; want under %d MiB", peak>>20, src.Bytes>>20, maxHeap>>20)
	}
	rep := table.Report(traffic.Query{Limit: 1})
	if rep.Total != lines || len(rep.Rows) != 1 || rep.Rows[0].Template != "/user/{id}" {
		t.Errorf("report: total %d, top %+v", rep.Total, rep.Rows)
	}
	t.Logf("streamed %d MiB, %d lines; peak heap %d MiB", src.Bytes>>20, n, peak>>20)
}

// TestMalformed: malformed and overlong lines are counted, reported with
// their line numbers, and never stop the lines after them.
func TestMalformed(t *testing.T) {
	good := genLog(Nginx, 3)
	var in bytes.Buffer
	in.Write(good)
	in.WriteString("this is not a log line\n")
	in.WriteString("1.2.3.4 - - [02/Nov/2026:09:00:01 +0100] \"GET /" + string(bytes.Repeat([]byte("a"), 300)) + " HTTP/1.1\" 200 1 \"-\" \"ua\"\n")
	in.WriteString("\n")
	in.Write(good)
	in.WriteString("1.2.3.4 - - [02/Nov/2026:09:00:01 +0100] \"GET / HTTP/1.1\" 200 1 \"-\" \"ua") // truncated, no newline

	r, err := NewReader(&in, Options{MaxLineBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	var bad []int64
	parsed := 0
	eachLine(t, r, func(_ *turnout.Observation, le *LineError) {
		if le != nil {
			bad = append(bad, le.Line)
			return
		}
		parsed++
	})
	if fmt.Sprint(bad) != "[4 5 10]" || parsed != 6 {
		t.Errorf("malformed lines %v, parsed %d; want [4 5 10] and 6", bad, parsed)
	}
	want := Stats{Lines: 10, Parsed: 6, Malformed: 3, Skipped: 1}
	if r.Stats() != want {
		t.Errorf("stats %+v, want %+v", r.Stats(), want)
	}
}
