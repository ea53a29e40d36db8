// Package edge builds turnout's public servers from node config: plain HTTP
// and HTTPS (certificates from an ACME CA through certmagic, or static
// files) with HTTP/2, the HTTP→HTTPS redirect, and the limits that bound
// what one client can hold (timeouts, header and connection caps, streams).
package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/h1"
	"github.com/turnout/turnout/internal/h1loop"
)

// HTTP/2 settings other than the stream limit, set deliberately rather than
// left to whatever the Go release defaults to. Go's server also bounds
// RST_STREAM floods (CVE-2023-44487, "rapid reset") and CONTINUATION floods
// by itself; the stream cap below is what keeps one connection's handlers
// bounded.
const (
	// h2MaxReadFrameSize is the largest frame a client may send: 16 KiB,
	// the RFC 9113 initial value (Go's default is 1 MiB). The read buffer
	// of every connection grows to this size, so a small one bounds what a
	// client can make the server hold; an upload pays one 9-byte frame
	// header per 16 KiB (0.06 %); the window below is what paces it.
	h2MaxReadFrameSize = 16 << 10
	// h2HeaderTableSize bounds the HPACK tables both ways: 4 KiB, the
	// RFC 9113 initial value, so a client cannot make the server keep
	// more header state than that per connection.
	h2HeaderTableSize = 4096
	// h2ReceiveBuffer is the flow-control window per connection and per
	// stream: 1 MiB, so one connection buffers at most 1 MiB of uploads.
	h2ReceiveBuffer = 1 << 20
	// h2WriteByteTimeout closes a connection whose client stopped reading
	// for this long while the server has data to send.
	h2WriteByteTimeout = 30 * time.Second
)

// Options configure an Edge.
type Options struct {
	// Handler serves the traffic: the gateway.
	Handler http.Handler
	// Limits bound each client, with config.WithDefaults applied.
	Limits config.Limits
	// HTTP1Server is config.Config.HTTP1Server: which server speaks
	// HTTP/1.1 on the plain listener ("" is turnout's own).
	HTTP1Server string
	// Loop, with HTTP1Server config.HTTP1ServerTurnout (or ""), lets the
	// plain listener's event loops serve a request themselves (the
	// gateway's BeginLoop); nil leaves the goroutine server alone; the edge first keeps ACME's HTTP-01 challenges and,
	// with tls.redirect_http, every request for the goroutine server.
	Loop h1loop.Router
	// TLS, with WithDefaults applied, turns on HTTPS; nil serves plain
	// HTTP only.
	TLS *config.TLS
	// Storage keeps the ACME account and certificates (the bbolt store's
	// CertStorage). Required when TLS lists domains.
	Storage certmagic.Storage
	// Logger receives certificate events; ErrorLog receives net/http's
	// connection errors (bad requests, failed handshakes).
	Logger   *slog.Logger
	ErrorLog *log.Logger
}

// Edge is the public side of one node: a plain HTTP server and, with TLS
// configured, an HTTPS server.
type Edge struct {
	opts   Options
	plain  server
	secure *http.Server // nil without TLS

	static  map[string]*tls.Certificate // by name; "*.example.com" for wildcards
	domains map[string]bool             // names certificates are obtained for

	// Set once by Serve, before any connection is accepted.
	magic     *certmagic.Config
	cache     *certmagic.Cache
	issuer    *certmagic.ACMEIssuer
	httpsPort string
	stop      context.CancelFunc
	stopOnce  sync.Once

	refused refusals // handshakes refused for want of a certificate

	// plainConns and secureConns cap and track each listener's
	// connections (secureConns is nil without TLS); with event loops on
	// the plain listener, loops does.
	plainConns, secureConns *connLimit
	loops                   *h1loop.Server
}

// acmeCache is the certificate cache, nil without ACME domains. Serve sets
// it before the servers start, and the admin listener (Prometheus) starts
// after Serve returns.
func (e *Edge) acmeCache() *certmagic.Cache { return e.cache }

// New checks opts and builds the servers. Static certificates and the CA
// root file are read here, so a bad path fails before anything listens.
func New(opts Options) (*Edge, error) {
	if opts.Handler == nil {
		return nil, errors.New("edge: no handler")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Edge{opts: opts, static: map[string]*tls.Certificate{}, domains: map[string]bool{}}
	l := opts.Limits
	e.plainConns = newConnLimit(listenerHTTP, l.MaxConnections)
	traffic := BodyTimeout(opts.Handler, l.BodyTimeout.D())

	var plainHandler http.Handler = traffic
	if t := opts.TLS; t != nil {
		for i, cf := range t.Certificates {
			if err := e.loadStatic(cf); err != nil {
				return nil, fmt.Errorf("tls.certificates[%d]: %w", i, err)
			}
		}
		for _, d := range t.Domains {
			e.domains[strings.ToLower(d)] = true
		}
		if len(t.Domains) > 0 && opts.Storage == nil {
			return nil, errors.New("edge: tls.domains needs a certificate storage")
		}
		if t.RedirectHTTP {
			plainHandler = http.HandlerFunc(e.redirect)
		}
		plainHandler = e.challenges(plainHandler)

		e.secure = e.server(traffic)
		e.secureConns = newConnLimit(listenerHTTPS, l.MaxConnections)
		e.secure.TLSConfig = &tls.Config{
			GetCertificate: e.getCertificate,
			// acme-tls/1 answers TLS-ALPN-01 challenges on this listener.
			NextProtos: []string{"h2", "http/1.1", acmez.ACMETLS1Protocol},
			MinVersion: tls.VersionTLS12,
		}
		e.secure.Protocols = new(http.Protocols)
		e.secure.Protocols.SetHTTP1(true)
		e.secure.Protocols.SetHTTP2(true)
		e.secure.HTTP2 = &http.HTTP2Config{
			MaxConcurrentStreams:          l.MaxConcurrentStreams,
			MaxReadFrameSize:              h2MaxReadFrameSize,
			MaxDecoderHeaderTableSize:     h2HeaderTableSize,
			MaxEncoderHeaderTableSize:     h2HeaderTableSize,
			MaxReceiveBufferPerConnection: h2ReceiveBuffer,
			MaxReceiveBufferPerStream:     h2ReceiveBuffer,
			WriteByteTimeout:              h2WriteByteTimeout,
		}
	}
	// Plain HTTP is HTTP/1.1 only: no cleartext HTTP/2 (h2c), which would
	// bypass the limits that HTTP/2 gets on TLS and is a known request
	// smuggling vector through proxies.
	switch {
	case opts.HTTP1Server == config.HTTP1ServerNetHTTP:
		plain := e.server(plainHandler)
		plain.Protocols = new(http.Protocols)
		plain.Protocols.SetHTTP1(true)
		e.plain = plain
	case (opts.HTTP1Server == config.HTTP1ServerTurnout || opts.HTTP1Server == "") && opts.Loop != nil && h1loop.Supported:
		// The loops cap and track the listener's connections themselves.
		e.loops = &h1loop.Server{
			Route:             e.loopRoute(opts.Loop, opts.TLS != nil && opts.TLS.RedirectHTTP),
			Fallback:          e.h1Server(plainHandler),
			ReadHeaderTimeout: l.ReadHeaderTimeout.D(),
			IdleTimeout:       l.IdleTimeout.D(),
			MaxHeaderBytes:    l.MaxHeaderBytes,
			MaxConns:          l.MaxConnections,
		}
		if el := e.opts.ErrorLog; el != nil {
			e.loops.Logf = el.Printf
		}
		e.plain = e.loops
	default:
		e.plain = e.h1Server(plainHandler)
	}
	return e, nil
}

func (e *Edge) h1Server(h http.Handler) *h1.Server {
	l := e.opts.Limits
	return &h1.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout.D(),
		IdleTimeout:       l.IdleTimeout.D(),
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          e.opts.ErrorLog,
		ConnState:         trackState,
	}
}

// loopRoute is the loops' router: route's, but ACME's HTTP-01 challenges
// (answered by the edge) and, when the plain listener redirects to
// HTTPS, every request go to the goroutine server.
func (e *Edge) loopRoute(route h1loop.Router, redirect bool) h1loop.Router {
	if redirect {
		return func(*h1.Request, string) (h1loop.Exchange, bool) { return nil, false }
	}
	const challenge = "/.well-known/acme-challenge/"
	return func(r *h1.Request, remote string) (h1loop.Exchange, bool) {
		if e.issuer != nil && bytes.Contains(r.Target, []byte(challenge)) {
			return nil, false
		}
		return route(r, remote)
	}
}

// server is what the edge needs of an HTTP server: net/http's, or
// turnout's own HTTP/1.1 server on the plain listener.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

func (e *Edge) server(h http.Handler) *http.Server {
	l := e.opts.Limits
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout.D(),
		IdleTimeout:       l.IdleTimeout.D(),
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          e.opts.ErrorLog,
		ConnState:         trackState,
	}
}

// loadStatic reads one certificate/key pair and indexes it by its names.
func (e *Edge) loadStatic(cf config.CertificateFiles) error {
	cert, err := tls.LoadX509KeyPair(cf.Cert, cf.Key)
	if err != nil {
		return fmt.Errorf("load certificate %s with key %s: %w", cf.Cert, cf.Key, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("certificate %s: %w", cf.Cert, err)
		}
	}
	names := slices.Clone(leaf.DNSNames)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return fmt.Errorf("certificate %s names no host (no DNS or IP subject alternative names): clients would reject it", cf.Cert)
	}
	if time.Now().After(leaf.NotAfter) {
		e.opts.Logger.Warn("static certificate has expired: clients will reject it", "cert", cf.Cert, "not_after", leaf.NotAfter)
	}
	for _, n := range names {
		n = strings.ToLower(n)
		if _, dup := e.static[n]; !dup { // the first listed wins
			e.static[n] = &cert
		}
	}
	return nil
}

// staticFor returns the static certificate for name, exact or wildcard.
func (e *Edge) staticFor(name string) *tls.Certificate {
	if c := e.static[name]; c != nil {
		return c
	}
	if _, rest, ok := strings.Cut(name, "."); ok && rest != "" {
		return e.static["*."+rest]
	}
	return nil
}

// getCertificate picks the certificate for a handshake. A name that is
// neither listed in tls.domains nor covered by a static certificate fails
// the handshake, and no certificate is ordered for it: turnout never does
// on-demand issuance, so a scanner sending random SNI cannot spend the
// ACME account's rate limits.
func (e *Edge) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name == "" {
		// No SNI: a client that dialled an IP. Serve a static certificate
		// for the address it dialled, if there is one.
		if hello.Conn != nil {
			if host, _, err := net.SplitHostPort(hello.Conn.LocalAddr().String()); err == nil {
				if c := e.static[host]; c != nil {
					return c, nil
				}
			}
		}
		e.refused.noSNI.Add(1)
		return nil, errors.New("no certificate: the client sent no server name (SNI)")
	}
	acmeChallenge := slices.Contains(hello.SupportedProtos, acmez.ACMETLS1Protocol)
	if !acmeChallenge {
		if c := e.staticFor(name); c != nil {
			return c, nil
		}
	}
	if e.domains[name] && e.magic != nil {
		return e.magic.GetCertificate(hello)
	}
	e.refused.unknownName.Add(1)
	return nil, fmt.Errorf("no certificate for %q: it is not in tls.domains and no static certificate covers it", name)
}

// serves reports whether HTTPS has a certificate for host.
func (e *Edge) serves(host string) bool {
	return e.domains[host] || e.staticFor(host) != nil
}

// challenges answers ACME HTTP-01 challenges before h sees the request.
func (e *Edge) challenges(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.issuer != nil && e.issuer.HandleHTTPChallenge(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	})
}

// redirect sends a plain HTTP request to the same URL on HTTPS with 308,
// which keeps the method and body (unlike 301). Hosts HTTPS has no
// certificate for get 421 instead of a redirect to a failing handshake.
func (e *Edge) redirect(w http.ResponseWriter, r *http.Request) {
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if !e.serves(host) {
		http.Error(w, fmt.Sprintf("421 misdirected request: this server has no certificate for %q", host), http.StatusMisdirectedRequest)
		return
	}
	uri := r.URL.RequestURI()
	if !strings.HasPrefix(uri, "/") { // "OPTIONS *" and absolute forms
		uri = "/"
	}
	target := "https://" + host
	if strings.Contains(host, ":") {
		target = "https://[" + host + "]"
	}
	if e.httpsPort != "" && e.httpsPort != "443" {
		target += ":" + e.httpsPort
	}
	w.Header().Set("Location", target+uri)
	w.WriteHeader(http.StatusPermanentRedirect)
}

// Serve serves plain, and secure when TLS is configured, each in its own
// goroutine whose return value is sent to errc (http.ErrServerClosed after
// Shutdown). Each listener is capped at limits.max_connections concurrent
// connections, the longest idle closed to make room for a new client (see
// connLimit). With tls.domains, Serve then starts certificate management
// in the background: certificates in storage are loaded, missing or
// expiring ones are obtained, and renewal runs until Shutdown.
func (e *Edge) Serve(plain, secure net.Listener, errc chan<- error) error {
	if e.secure != nil && secure == nil {
		return errors.New("edge: TLS is configured but no HTTPS listener was given")
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	if e.secure != nil {
		_, e.httpsPort, _ = net.SplitHostPort(secure.Addr().String())
		if len(e.domains) > 0 {
			if err := e.setupACME(plain, secure); err != nil {
				cancel()
				return err
			}
			// Certificates already in the store are loaded before the
			// HTTPS listener serves, so a restart never fails a handshake
			// (ManageAsync would load them in the background).
			for d := range e.domains {
				if _, err := e.magic.CacheManagedCertificate(ctx, d); err != nil && !errors.Is(err, fs.ErrNotExist) {
					e.opts.Logger.Warn("tls: could not load the stored certificate; obtaining one", "domain", d, "error", err)
				}
			}
		}
		sl := e.secureConns.listener(secure)
		go func() { errc <- e.secure.ServeTLS(sl, "", "") }()
	}
	pl := plain
	if e.loops == nil {
		pl = e.plainConns.listener(plain)
	}
	go func() { errc <- e.plain.Serve(pl) }()
	if e.magic != nil {
		domains := slices.Sorted(func(yield func(string) bool) {
			for d := range e.domains {
				if !yield(d) {
					return
				}
			}
		})
		if err := e.magic.ManageAsync(ctx, domains); err != nil {
			return fmt.Errorf("manage certificates for %s: %w", strings.Join(domains, ", "), err)
		}
	}
	return nil
}

// setupACME configures certmagic for the listed domains. Challenges are
// answered by turnout's own listeners: HTTP-01 on the plain one,
// TLS-ALPN-01 on the HTTPS one; certmagic is told their ports so it never
// opens listeners of its own.
func (e *Edge) setupACME(plain, secure net.Listener) error {
	t := e.opts.TLS
	var roots *x509.CertPool
	if t.CARoot != "" {
		pem, err := os.ReadFile(t.CARoot)
		if err != nil {
			return fmt.Errorf("tls.ca_root: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls.ca_root %s holds no PEM certificate", t.CARoot)
		}
	}
	zl := zapToSlog(e.opts.Logger)
	var magic *certmagic.Config
	e.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Logger:           zl,
	})
	magic = certmagic.New(e.cache, certmagic.Config{
		Storage: e.opts.Storage,
		Logger:  zl,
		// OCSP stapling is off: Let's Encrypt ended its OCSP service in
		// 2025, and a staple fetch is an outbound request per certificate.
		OCSP: certmagic.OCSPConfig{DisableStapling: true},
	})
	host, httpPort, _ := net.SplitHostPort(plain.Addr().String())
	_, tlsPort, _ := net.SplitHostPort(secure.Addr().String())
	e.issuer = certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
		CA:           orDefault(t.CA, config.DefaultACMEDirectory),
		Email:        t.Email,
		Agreed:       true,
		TrustedRoots: roots,
		// Challenges default to both (config.WithDefaults); an edge built
		// without it gets both too.
		DisableHTTPChallenge:    len(t.Challenges) > 0 && !slices.Contains(t.Challenges, config.ChallengeHTTP01),
		DisableTLSALPNChallenge: len(t.Challenges) > 0 && !slices.Contains(t.Challenges, config.ChallengeTLSALPN01),
		ListenHost:              host,
		AltHTTPPort:             atoi(httpPort),
		AltTLSALPNPort:          atoi(tlsPort),
		Logger:                  zl,
	})
	magic.Issuers = []certmagic.Issuer{e.issuer}
	e.magic = magic
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// Shutdown stops certificate management and gracefully shuts down both
// servers: listeners close at once, in-flight requests finish until ctx
// ends. It returns the first error.
func (e *Edge) Shutdown(ctx context.Context) error {
	e.stopOnce.Do(func() {
		if e.stop != nil {
			e.stop()
		}
		if e.cache != nil {
			e.cache.Stop()
		}
	})
	var wg sync.WaitGroup
	var secureErr error
	if e.secure != nil {
		wg.Add(1)
		go func() { defer wg.Done(); secureErr = e.secure.Shutdown(ctx) }()
	}
	err := e.plain.Shutdown(ctx)
	wg.Wait()
	return errors.Join(err, secureErr)
}

// Close closes both servers and their connections at once.
func (e *Edge) Close() error {
	err := e.plain.Close()
	if e.secure != nil {
		err = errors.Join(err, e.secure.Close())
	}
	return err
}

// HTTPS reports whether the edge serves HTTPS.
func (e *Edge) HTTPS() bool { return e.secure != nil }

// LoadCertificate reads a PEM certificate chain and key, for listeners
// other than the public one (the admin API).
func LoadCertificate(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
