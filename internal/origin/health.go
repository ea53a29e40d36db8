package origin

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/turnout/turnout/internal/config"
)

// Active health checks: one goroutine per instance sends GET Path every
// Interval on a fresh connection (so a check also proves the origin accepts
// connections) and flips the instance unhealthy after UnhealthyThreshold
// consecutive failures, healthy again after HealthyThreshold consecutive
// successes. Instances start healthy, so a gateway that starts (or a
// deployment that rebuilds the pool) serves at once instead of waiting
// Interval × HealthyThreshold.
//
// The check path goes through the same path prefix as forwarded requests:
// with url http://10.0.0.5/legacy and path /healthz the probe is
// GET /legacy/healthz. The Host header follows host_header ("client" has no
// client, so it sends the instance host).

func (p *Pool) provisionHealth() error {
	hc := &p.health
	if !strings.HasPrefix(hc.Path, "/") {
		hc.Path = "/" + hc.Path
	}
	if hc.Interval <= 0 {
		hc.Interval = config.Duration(defaultHealthInterval)
	}
	if hc.Timeout <= 0 {
		hc.Timeout = config.Duration(defaultHealthTimeout)
	}
	if hc.HealthyThreshold <= 0 {
		hc.HealthyThreshold = defaultHealthyThreshold
	}
	if hc.UnhealthyThreshold <= 0 {
		hc.UnhealthyThreshold = defaultUnhealthyThreshold
	}
	lo, hi, err := parseStatusRange(hc.ExpectStatus)
	if err != nil {
		return err
	}
	p.expectLo, p.expectHi = lo, hi
	p.healthTrans = &http.Transport{
		Proxy:              nil,
		DialContext:        (&net.Dialer{Timeout: p.dialTimeout, Resolver: p.resolver}).DialContext,
		TLSClientConfig:    p.tlsConfig,
		DisableKeepAlives:  true,
		DisableCompression: true,
	}
	return nil
}

// parseStatusRange parses expect_status: "200-399" (the default when
// empty) or a single code "204".
func parseStatusRange(s string) (lo, hi int, err error) {
	if s == "" {
		return 200, 399, nil
	}
	a, b, isRange := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := lo, error(nil)
	if isRange {
		hi, err2 = strconv.Atoi(strings.TrimSpace(b))
	}
	if err1 != nil || err2 != nil || lo < 100 || hi > 999 || lo > hi {
		return 0, 0, fmt.Errorf("expect_status %q: want a status or a range like 200-399", s)
	}
	return lo, hi, nil
}

func (p *Pool) startHealth() {
	ctx, cancel := context.WithCancel(context.Background())
	p.healthStop = cancel
	for _, in := range p.instances {
		p.healthWG.Add(1)
		go func() {
			defer p.healthWG.Done()
			p.healthLoop(ctx, in)
		}()
	}
}

func (p *Pool) healthLoop(ctx context.Context, in *instance) {
	t := time.NewTicker(p.health.Interval.D())
	defer t.Stop()
	var ok, bad int // consecutive successes and failures
	for {
		err := p.probe(ctx, in)
		if ctx.Err() != nil {
			return
		}
		in.mu.Lock()
		in.lastCheck = time.Now()
		if err != nil {
			in.lastErr = err.Error()
		}
		in.mu.Unlock()
		if err == nil {
			ok, bad = ok+1, 0
			if !in.healthy.Load() && ok >= p.health.HealthyThreshold {
				in.healthy.Store(true)
				p.log.Info("origin instance healthy", "instance", in.url, "successes", ok)
			}
		} else {
			ok, bad = 0, bad+1
			if in.healthy.Load() && bad >= p.health.UnhealthyThreshold {
				in.healthy.Store(false)
				p.log.Warn("origin instance unhealthy", "instance", in.url, "failures", bad, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe sends one health check and reports why it failed, nil on success.
func (p *Pool) probe(ctx context.Context, in *instance) error {
	ctx, cancel := context.WithTimeout(ctx, p.health.Timeout.D())
	defer cancel()
	scheme := "http://"
	if in.tls {
		scheme = "https://"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+in.host+in.prefix+p.health.Path, nil)
	if err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	req.Header.Set("User-Agent", "turnout-health-check")
	resp, err := p.healthTrans.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < p.expectLo || resp.StatusCode > p.expectHi {
		return fmt.Errorf("health check: GET %s: status %d, want %d-%d", req.URL.Path, resp.StatusCode, p.expectLo, p.expectHi)
	}
	return nil
}
