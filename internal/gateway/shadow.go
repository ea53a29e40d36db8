package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"hash"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/shadow"
	"github.com/turnout/turnout/internal/shadow/diff"
)

// ShadowSink receives what routes' shadows got: internal/shadow's Report.
// Its methods run on the mirror's worker goroutines, never on a client's.
type ShadowSink interface {
	Mirrored(m *shadow.Mirrored)
	Dropped(route, target string)
}

// mirror is a route's shadow: the requests it copies, and the bounded queue
// and workers that send the copies. The primary answers the client as if
// there were no shadow: a request is copied only after the primary's
// answer went out whole, the copy is sent by a worker, never retried, under
// its own timeout, and a copy that finds the queue full is dropped and
// counted. Mirrors outlive tables, as breakers do (keyed by route, target
// and settings), so a deployment that leaves the route alone keeps its
// queue and workers; one that changes it starts new ones and stops these.
type mirror struct {
	route, target string
	cfg           config.Shadow // defaults filled in
	methods       []string
	sample, noise uint32 // per 10,000 requests
	sink          ShadowSink

	queue chan *mirrorJob
	done  chan struct{}
	refs  int // tables holding it; g.mu guards it
}

// mirrorSlot is a plan's mirror with the table's backends it sends to.
type mirrorSlot struct {
	m       *mirror
	shadow  backend // the shadow target
	primary backend // the route's primary, probed for noise
}

// mirrorJob is one copied request on its way to the shadow.
type mirrorJob struct {
	slot    *mirrorSlot
	r       *http.Request // a clone, its body in body
	body    []byte
	id      string
	start   time.Time
	path    string
	values  []string
	primary diff.Answer
	probe   bool
}

func newMirror(route, target string, cfg config.Shadow, sink ShadowSink) *mirror {
	m := &mirror{route: route, target: target, cfg: cfg, sink: sink,
		methods: cfg.Methods,
		sample:  uint32(cfg.Sample * 100), noise: uint32(cfg.Noise * 100),
		queue: make(chan *mirrorJob, cfg.Queue), done: make(chan struct{})}
	for range max(cfg.Concurrency, 1) {
		go m.run()
	}
	return m
}

// stop ends m's workers; copies still queued are dropped unsent, and
// counted.
func (m *mirror) stop() {
	close(m.done)
	// No table that could queue more holds m any more (it is stopped when
	// the last one retires, once its requests are done): what is queued
	// now is all there will be, and it is counted as dropped.
	for {
		select {
		case <-m.queue:
			if m.sink != nil {
				m.sink.Dropped(m.route, m.target)
			}
		default:
			return
		}
	}
}

// mirrorKey identifies a mirror: its route, target and settings.
func mirrorKey(route, target string, cfg config.Shadow) string {
	b, _ := json.Marshal(cfg)
	return route + "|" + target + "|" + string(b)
}

// mirrorLocked returns the mirror of route pattern to target with cfg,
// creating it on first use; t holds it until released. g.mu is held.
func (g *Gateway) mirrorLocked(t *Table, pattern, target string, cfg config.Shadow) *mirror {
	k := mirrorKey(pattern, target, cfg)
	m := g.mirrors[k]
	if m == nil {
		m = newMirror(pattern, target, cfg, g.opts.Shadow)
		g.mirrors[k] = m
	}
	m.refs++
	t.mirrorKeys = append(t.mirrorKeys, k)
	return m
}

// release lets go of one table's hold on m, stopping it when it was the
// last (releaseKeys).
func (m *mirror) release() bool {
	if m.refs--; m.refs > 0 {
		return false
	}
	m.stop()
	return true
}

// wants reports whether r is to be copied: a method the shadow mirrors, not
// an upgrade, within the sample.
func (s *mirrorSlot) wants(r *http.Request) bool {
	m := s.m
	if !slices.Contains(m.methods, r.Method) || r.Header.Get("Upgrade") != "" {
		return false
	}
	return m.sample >= 10000 || rand.Uint32N(10000) < m.sample
}

// keepBody reads x's request body into x.body, up to the shadow's limit,
// when it is not buffered yet. A longer body is put back to stream to the
// primary, and the request is not copied (false).
func (s *mirrorSlot) keepBody(x *exchange) bool {
	if x.buffered || x.r.Body == nil || x.r.Body == http.NoBody {
		return true
	}
	limit := s.m.cfg.MaxBodyBytes
	if x.r.ContentLength > limit {
		return false
	}
	buf, err := io.ReadAll(io.LimitReader(x.r.Body, limit+1))
	if err != nil || int64(len(buf)) > limit {
		x.r.Body = readCloser{io.MultiReader(bytes.NewReader(buf), x.r.Body), x.r.Body}
		return false
	}
	x.body, x.buffered = buf, true
	x.r.Body = io.NopCloser(bytes.NewReader(buf))
	return true
}

// copyOf queues a copy of x, whose primary answered whole (captured in c),
// for the shadow; a full queue drops it.
func (s *mirrorSlot) copyOf(x *exchange, c *capture) {
	j := &mirrorJob{slot: s, r: x.r.Clone(context.Background()), body: x.body, id: x.id, start: x.start,
		path: x.path, values: slices.Clone(x.values), primary: c.answer()}
	j.probe = idempotent(x.r.Method) && (s.m.noise >= 10000 || rand.Uint32N(10000) < s.m.noise)
	select {
	case s.m.queue <- j:
	default:
		if s.m.sink != nil {
			s.m.sink.Dropped(s.m.route, s.m.target)
		}
	}
}

// idempotent reports whether a second request with method has no effect a
// first one did not: the methods probed for noise.
func idempotent(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

func (m *mirror) run() {
	for {
		select {
		case <-m.done:
			return
		case j := <-m.queue:
			// The job's backends are the table's it was copied under; an
			// origin pool that table alone held may close once the table
			// retires, and a copy still queued then fails as a
			// shadow_error. Unchanged origins keep their pools.
			m.send(j)
		}
	}
}

// send sends job j to the shadow (and, probing, to the primary again) and
// hands the answers to the sink.
func (m *mirror) send(j *mirrorJob) {
	out := &shadow.Mirrored{Route: m.route, Target: m.target, Settings: &m.cfg, Time: j.start, RequestID: j.id,
		Method: j.r.Method, Path: j.path, RawQuery: j.r.URL.RawQuery, Header: j.r.Header.Clone(), Body: j.body,
		Primary: j.primary}
	t0 := time.Now()
	a, err := m.call(j, j.slot.shadow)
	out.Took = time.Since(t0)
	if err != nil {
		out.Err = err
	} else {
		out.Shadow = a
	}
	if j.probe {
		if a, err := m.call(j, j.slot.primary); err == nil {
			out.Probe = a
		}
	}
	if m.sink != nil {
		m.sink.Mirrored(out)
	}
}

// call sends a copy of j's request, marked, to b under the shadow's
// timeout and reads its answer.
func (m *mirror) call(j *mirrorJob, b backend) (*diff.Answer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.Timeout.D())
	defer cancel()
	r := j.r.WithContext(ctx)
	r.Header = j.r.Header.Clone()
	r.Header.Set(m.cfg.Marker, "1")
	// The body is whole: it goes with its length, however the client sent it.
	r.TransferEncoding = nil
	r.Body, r.ContentLength = http.NoBody, 0
	if len(j.body) > 0 {
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(j.body)), int64(len(j.body))
	}
	rec := &recorder{h: http.Header{}}
	rec.limit = m.cfg.MaxBodyBytes
	x := &exchange{w: rec, r: r, id: j.id, start: j.start, path: j.path, values: j.values, body: j.body, buffered: j.body != nil}
	rep, f := b.roundTrip(x, r)
	if f != nil {
		return nil, f.asError()
	}
	if _, err := rep.Send(rec); err != nil {
		return nil, err
	}
	a := rec.answer()
	return &a, nil
}

// tee keeps the first limit bytes of a body and hashes all of it.
type tee struct {
	limit     int64
	code      int
	header    http.Header
	buf       []byte
	n         int64
	sum       hash.Hash
	truncated bool
}

func (t *tee) write(b []byte) {
	if t.sum == nil {
		t.sum = sha256.New()
	}
	t.sum.Write(b)
	t.n += int64(len(b))
	if room := t.limit - int64(len(t.buf)); room > 0 {
		t.buf = append(t.buf, b[:min(int64(len(b)), room)]...)
	}
	if t.n > t.limit {
		t.truncated = true
	}
}

func (t *tee) answer() diff.Answer {
	a := diff.Answer{Status: t.code, Header: t.header, Body: t.buf, Truncated: t.truncated}
	if t.sum == nil {
		t.sum = sha256.New()
	}
	t.sum.Sum(a.Hash[:0])
	return a
}

// capture is the client's ResponseWriter with the primary's answer kept on
// the way through, for a request being copied to the shadow.
type capture struct {
	http.ResponseWriter
	tee
	wrote bool
}

func (c *capture) WriteHeader(code int) {
	if !c.wrote && (code >= 200 || code == http.StatusSwitchingProtocols) {
		c.wrote, c.code, c.header = true, code, c.ResponseWriter.Header().Clone()
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *capture) Write(b []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	n, err := c.ResponseWriter.Write(b)
	c.write(b[:n])
	return n, err
}

// Unwrap lets http.ResponseController reach the Flusher underneath.
func (c *capture) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// recorder is where a shadow's (or a probe's) answer is written: kept, not
// sent anywhere.
type recorder struct {
	h http.Header
	tee
	wrote bool
}

func (r *recorder) Header() http.Header { return r.h }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote && code >= 200 {
		r.wrote, r.code, r.header = true, code, r.h.Clone()
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.WriteHeader(http.StatusOK)
	}
	r.write(b)
	return len(b), nil
}

func (r *recorder) Flush() {}
