// Command gen writes the sample CloudFront access log the quickstart analyses
// (examples/access-logs/cloudfront.log.gz): a week of traffic to the example
// monolith (examples/legacy) behind a CloudFront distribution, as `turnout
// analyze` would read it from the distribution's log bucket.
//
//	go generate ./examples/access-logs/gen
//	./bin/turnout analyze examples/access-logs/cloudfront.log.gz
//
// The log tells a migration story: GET /user/{id} is most of the traffic and
// the first to move; GET /products takes ";"-separated ids and repeated
// keys, which API Gateway mangles; report exports answer more than 6 MB and
// take longer than 29 s, Lambda's and API Gateway's limits; and the old
// /v1/user/{id} API was last called on the first day (`--unused-for 120h`).
// The output is deterministic: the same seed gives the same lines.
//
//go:generate go run . -o ../cloudfront.log.gz
package main

import (
	"bufio"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"strings"
	"time"
)

// Lines is how many requests the sample holds.
const Lines = 1000

// The standard log's header, fields in their documented order.
const header = "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end\n"

func main() {
	out := flag.String("o", "-", "output `file` (gzipped when it ends in .gz; - for stdout)")
	flag.Parse()
	var w io.Writer = os.Stdout
	var closeOut func() error = func() error { return nil }
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			log.Fatal(err)
		}
		w, closeOut = f, f.Close
		if strings.HasSuffix(*out, ".gz") {
			zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
			zw.ModTime = time.Time{} // the same bytes every run
			w = zw
			closeOut = func() error {
				if err := zw.Close(); err != nil {
					return err
				}
				return f.Close()
			}
		}
	}
	bw := bufio.NewWriter(w)
	if err := Write(bw); err != nil {
		log.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		log.Fatal(err)
	}
	if err := closeOut(); err != nil {
		log.Fatal(err)
	}
}

// Write writes the sample log.
func Write(w io.Writer) error {
	rng := rand.New(rand.NewPCG(13, 2026))
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	week := 7 * 24 * time.Hour
	if _, err := io.WriteString(w, header); err != nil {
		return err
	}
	for i := range Lines {
		// Spread over the week, in time order.
		t := start.Add(week * time.Duration(i) / Lines).Add(time.Duration(rng.IntN(60)) * time.Second)
		r := request(rng, t.Sub(start) < 24*time.Hour)
		query := r.query
		if query == "" {
			query = "-"
		}
		result := "Miss"
		if r.cached {
			result = "Hit"
		}
		if r.status >= 500 {
			result = "Error"
		}
		_, err := fmt.Fprintf(w, "%s\t%s\tFRA56-P%d\t%d\t198.51.100.%d\t%s\td111111abcdef8.cloudfront.net\t%s\t%d\t-\t%s\t%s\t-\t%s\t%s\tapi.example.com\thttps\t%d\t%.3f\t-\tTLSv1.3\tTLS_AES_128_GCM_SHA256\t%s\tHTTP/2.0\t-\t-\t%d\t%.3f\t%s\t%s\t%d\t-\t-\n",
			t.Format("2006-01-02"), t.Format("15:04:05"), 1+rng.IntN(3), r.bytes+180, rng.IntN(256),
			r.method, r.path, r.status, userAgents[rng.IntN(len(userAgents))], query, result, requestID(i),
			r.reqBytes, r.took.Seconds(), result, 40000+rng.IntN(20000), r.took.Seconds(), result, r.contentType, r.bytes)
		if err != nil {
			return err
		}
	}
	return nil
}

type logged struct {
	method, path, query string
	status              int
	bytes, reqBytes     int
	took                time.Duration
	cached              bool
	contentType         string
}

var userAgents = []string{
	"Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36",
	"Mozilla/5.0%20(iPhone;%20CPU%20iPhone%20OS%2018_1%20like%20Mac%20OS%20X)%20AppleWebKit/605.1.15",
	"okhttp/4.12.0",
	"ExampleApp/3.4.1%20(Android%2015)",
}

// request picks one request of the story; firstDay is true during the
// log's first 24 hours, when the old v1 API was still called.
func request(rng *rand.Rand, firstDay bool) logged {
	ms := func(lo, hi int) time.Duration { return time.Duration(lo+rng.IntN(hi-lo)) * time.Millisecond }
	r := logged{method: "GET", status: 200, reqBytes: 250 + rng.IntN(200), contentType: "application/json"}
	switch k := rng.IntN(100); {
	case firstDay && k < 6:
		r.path = fmt.Sprintf("/v1/user/%d", 1+rng.IntN(5000))
		r.bytes, r.took = 140+rng.IntN(40), ms(20, 90)
	case k < 45:
		r.path = fmt.Sprintf("/user/%d", 1+rng.IntN(5000))
		r.bytes, r.took = 70+rng.IntN(20), ms(15, 80)
		if rng.IntN(100) == 0 {
			r.status, r.bytes, r.took = 502, 120, ms(2000, 5000)
		}
	case k < 65:
		r.path = fmt.Sprintf("/user/%d/orders", 1+rng.IntN(5000))
		r.query = fmt.Sprintf("page=%d&limit=50", 1+rng.IntN(5))
		r.bytes, r.took = 110+rng.IntN(4000), ms(30, 250)
	case k < 77:
		r.path = "/products"
		ids := []string{"1;2;3", "4;5", "7", "12;14;15;16"}
		r.query = "ids=" + ids[rng.IntN(len(ids))]
		if rng.IntN(4) == 0 {
			r.query += "&ids=" + fmt.Sprint(20+rng.IntN(10))
		}
		r.bytes, r.took = 300+rng.IntN(2000), ms(20, 120)
	case k < 85:
		r.method, r.path = "POST", "/orders"
		r.status, r.reqBytes = 201, 600+rng.IntN(900)
		r.bytes, r.took = 90+rng.IntN(30), ms(60, 400)
		if rng.IntN(40) == 0 {
			r.status, r.bytes = 503, 95
		}
	case k < 88:
		r.path = fmt.Sprintf("/reports/%08x-%04x-4%03x-a%03x-%012x/export", rng.Uint32(), rng.IntN(0x10000), rng.IntN(0x1000), rng.IntN(0x1000), rng.Uint64()&(1<<48-1))
		r.bytes, r.took, r.contentType = 1_000_000+rng.IntN(9_000_000), ms(8000, 41000), "text/csv"
	default:
		r.path = fmt.Sprintf("/static/app.%08x.js", 0x3f9a1c2b+rng.IntN(3))
		r.bytes, r.took, r.cached, r.contentType = 180_000+rng.IntN(1000), ms(1, 20), true, "application/javascript"
	}
	return r
}

// requestID is a CloudFront-style request id: 56 characters and "==". The
// sample's are numbered rather than random, so that the file stays small.
func requestID(i int) string {
	return fmt.Sprintf("SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLi%05d==", i)
}
