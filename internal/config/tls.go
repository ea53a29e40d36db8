package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// TLS configures HTTPS on the public edge (node setting). Certificates come
// from an ACME CA for Domains (obtained at start, renewed automatically and
// kept in the deployment store, so a restart does not order them again)
// and/or from static Certificates files.
//
// Domains are a node setting, not taken from route hosts: a deployment is
// applied in milliseconds and must not wait on (or be rate-limited by) a CA,
// and a typo in a route's host must not place a certificate order. A TLS
// handshake for a name that is neither listed nor covered by a static
// certificate fails at once and orders nothing (no on-demand TLS).
type TLS struct {
	// Listen is the HTTPS address. Default ":8443". The plain `listen`
	// address keeps serving HTTP: redirects and ACME HTTP-01 challenges
	// (see RedirectHTTP). For a public CA, HTTP-01 reaches port 80 and
	// TLS-ALPN-01 port 443: run with listen ":80" and tls.listen ":443".
	Listen string `yaml:"listen" json:"listen,omitempty"`
	// Domains are the host names to obtain certificates for from the ACME
	// CA. Exact names only: a wildcard needs the DNS-01 challenge, which
	// turnout does not do (give a static certificate for it instead).
	Domains []string `yaml:"domains" json:"domains,omitempty"`
	// Email is the ACME account contact (expiry notices). Optional.
	Email string `yaml:"email" json:"email,omitempty"`
	// CA is the ACME directory URL. Default Let's Encrypt's production
	// directory, https://acme-v02.api.letsencrypt.org/directory.
	CA string `yaml:"ca" json:"ca,omitempty"`
	// CARoot is a PEM file of root certificates trusted when talking to the
	// CA, for a private CA or Pebble. Default: the system roots.
	CARoot string `yaml:"ca_root" json:"ca_root,omitempty"`
	// RedirectHTTP makes the plain listener answer every request with a 308
	// to the same URL on HTTPS, except ACME HTTP-01 challenges
	// (/.well-known/acme-challenge/). Parse sets it to true unless the file
	// says redirect_http: false, in which case the plain listener serves
	// the gateway as well (still answering challenges).
	RedirectHTTP bool `yaml:"redirect_http" json:"redirect_http"`
	// Challenges are the ACME challenge types turnout may answer:
	// "http-01" (on the plain listener, port 80 for a public CA) and
	// "tls-alpn-01" (on the HTTPS listener, port 443). Default both; list
	// one when the other port is not reachable from the CA.
	Challenges []string `yaml:"challenges" json:"challenges,omitempty"`
	// Certificates are static certificate/key PEM file pairs, served for
	// the names in each certificate (wildcards included). They take
	// precedence over ACME certificates for the same name.
	Certificates []CertificateFiles `yaml:"certificates" json:"certificates,omitempty"`

	Pos       Pos `yaml:"-" json:"-"`
	ListenPos Pos `yaml:"-" json:"-"`
}

// CertificateFiles is a PEM certificate chain and its private key.
type CertificateFiles struct {
	Cert string `yaml:"cert" json:"cert"`
	Key  string `yaml:"key" json:"key"`
}

// AdminTLS is the admin listener's certificate.
type AdminTLS struct {
	Cert string `yaml:"cert" json:"cert"`
	Key  string `yaml:"key" json:"key"`
}

// The ACME challenge types turnout answers.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

const (
	defaultTLSListen           = ":8443"
	defaultBodyTimeout         = Duration(30e9)
	defaultMaxConnections      = 10000
	defaultMaxConcurrentStream = 250
	// DefaultACMEDirectory is Let's Encrypt's production directory.
	DefaultACMEDirectory = "https://acme-v02.api.letsencrypt.org/directory"
)

var (
	tlsKeys      = []string{"listen", "domains", "email", "ca", "ca_root", "challenges", "redirect_http", "certificates"}
	certFileKeys = []string{"cert", "key"}
)

func (d *decoder) tls(v *yaml.Node) *TLS {
	t := &TLS{Pos: d.pos(v), RedirectHTTP: true}
	seen := map[string]Pos{}
	ok := d.fields(v, "tls", tlsKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "listen":
			if s, ok := d.address(v, "tls.listen"); ok {
				t.Listen, t.ListenPos = s, d.pos(v)
			}
		case "domains":
			items, _ := d.list(v, "tls.domains", "[api.example.com, www.example.com]")
			for i, it := range items {
				what := fmt.Sprintf("tls.domains[%d]", i)
				s, ok := d.str(it, what)
				if !ok {
					continue
				}
				if why := badDomain(s); why != "" {
					d.errorf(it, "%s %q %s", what, s, why)
					continue
				}
				s = strings.ToLower(s)
				if p, dup := seen[s]; dup {
					d.errorf(it, "%s %q is listed twice (also at %s): remove one", what, s, p)
					continue
				}
				seen[s] = d.pos(it)
				t.Domains = append(t.Domains, s)
			}
		case "email":
			if s, ok := d.name(v, "tls.email"); ok {
				if at := strings.IndexByte(s, '@'); at < 1 || at == len(s)-1 || strings.IndexFunc(s, isSpaceOrControl) >= 0 {
					d.errorf(v, "tls.email %q is not an email address: write it like ops@example.com, or remove it", s)
					return
				}
				t.Email = s
			}
		case "ca":
			if s, ok := d.name(v, "tls.ca"); ok {
				u, err := url.Parse(s)
				if err != nil || u.Scheme != "https" || u.Host == "" {
					d.errorf(v, "tls.ca %q is not an https URL of an ACME directory: write it like https://acme-staging-v02.api.letsencrypt.org/directory, or remove it for Let's Encrypt", s)
					return
				}
				t.CA = s
			}
		case "ca_root":
			t.CARoot, _ = d.name(v, "tls.ca_root")
		case "redirect_http":
			d.boolean(v, "tls.redirect_http", &t.RedirectHTTP)
		case "challenges":
			items, ok := d.list(v, "tls.challenges", "[http-01, tls-alpn-01]")
			if ok && len(items) == 0 {
				d.errorf(v, "tls.challenges is empty: list http-01, tls-alpn-01 or both, or remove it for both")
			}
			for i, it := range items {
				what := fmt.Sprintf("tls.challenges[%d]", i)
				s, ok := d.str(it, what)
				switch {
				case !ok:
				case s != ChallengeHTTP01 && s != ChallengeTLSALPN01:
					d.errorf(it, "%s %q is not a challenge turnout answers: use http-01 (on the plain listener) or tls-alpn-01 (on the HTTPS listener); dns-01 is not supported", what, s)
				case slices.Contains(t.Challenges, s):
					d.errorf(it, "%s %q is listed twice: remove one", what, s)
				default:
					t.Challenges = append(t.Challenges, s)
				}
			}
		case "certificates":
			items, _ := d.list(v, "tls.certificates", "[{cert: /etc/turnout/site.crt, key: /etc/turnout/site.key}]")
			for i, it := range items {
				cert, key := d.certFiles(it, fmt.Sprintf("tls.certificates[%d]", i))
				t.Certificates = append(t.Certificates, CertificateFiles{Cert: cert, Key: key})
			}
		}
	})
	if ok && len(t.Domains) == 0 && len(t.Certificates) == 0 {
		d.errorAt(t.Pos, "tls has neither domains nor certificates, so HTTPS would have nothing to serve: add domains: [api.example.com] (certificates from the ACME CA) or certificates: [{cert: file, key: file}]")
	}
	return t
}

// certFiles decodes {cert: file, key: file}, both required.
func (d *decoder) certFiles(n *yaml.Node, what string) (cert, key string) {
	var certGiven, keyGiven bool
	ok := d.fields(n, what, certFileKeys, func(k string, _, v *yaml.Node) {
		switch k {
		case "cert":
			certGiven = true
			cert, _ = d.name(v, what+".cert")
		case "key":
			keyGiven = true
			key, _ = d.name(v, what+".key")
		}
	})
	if ok && !certGiven {
		d.errorf(n, "%s has no cert: add cert: with the PEM certificate chain file", what)
	}
	if ok && !keyGiven {
		d.errorf(n, "%s has no key: add key: with the PEM private key file", what)
	}
	return cert, key
}

// badDomain says why s cannot be a domain to obtain an ACME certificate
// for, or returns "".
func badDomain(s string) string {
	switch {
	case strings.Contains(s, "://") || strings.ContainsAny(s, "/:"):
		return "must be a bare host name, without scheme, port or path, like api.example.com"
	case strings.HasPrefix(s, "*."):
		return "is a wildcard: ACME wildcards need the DNS-01 challenge, which turnout does not do; list each name, or give a static certificate under tls.certificates"
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return "is an IP address: list host names here; serve an IP with a static certificate under tls.certificates"
	}
	if len(s) > 253 || !strings.Contains(s, ".") {
		return "is not a fully qualified host name: write it like api.example.com"
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "is not a valid host name: labels are 1-63 letters, digits or '-', not starting or ending with '-'"
		}
		for _, c := range label {
			if !(c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				return "is not a valid host name: use letters, digits, '-' and '.' (write internationalized names in punycode, xn--...)"
			}
		}
	}
	return ""
}

// adminTLS decodes admin.tls.
func (d *decoder) adminTLS(v *yaml.Node) *AdminTLS {
	cert, key := d.certFiles(v, "admin.tls")
	return &AdminTLS{Cert: cert, Key: key}
}

// IsLoopback reports whether listen address addr binds loopback only
// ("127.0.0.1:8081", "[::1]:8081", "localhost:8081"). ":8081" binds every
// interface and is not.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// validateEdge checks the relations between tls, admin.tls and listeners.
func (d *decoder) validateEdge(c *Config) {
	if a := c.Admin; a.Listen != "" && !IsLoopback(a.Listen) && a.TLS == nil && !a.InsecureNoTLS {
		d.errorAt(d.adminPos, fmt.Sprintf("admin.listen %q is not a loopback address, so admin tokens would cross the network in clear: add admin.tls: {cert: file, key: file}, or bind it to 127.0.0.1; if a TLS-terminating proxy or private network protects it, say so with admin.insecure_no_tls: true", a.Listen))
	}
	if c.Admin.TLS != nil && c.Admin.InsecureNoTLS {
		d.errorAt(d.adminPos, "admin sets both tls and insecure_no_tls: true; remove insecure_no_tls")
	}
	if c.TLS == nil {
		return
	}
	// Report at tls.listen, or at the tls section when the default clashes.
	tlsListen, at, what := c.TLS.Listen, c.TLS.ListenPos, "tls.listen"
	if tlsListen == "" {
		tlsListen, at, what = defaultTLSListen, c.TLS.Pos, "tls.listen (default)"
	}
	listen := orDefault(c.Listen, defaultListen)
	if sameListener(tlsListen, listen) {
		d.errorAt(at, fmt.Sprintf("%s %q is the plain HTTP listener (listen %q): HTTPS needs its own port; set tls.listen, like \":443\"", what, tlsListen, listen))
	}
	if sameListener(tlsListen, orDefault(c.Admin.Listen, defaultAdminListen)) {
		d.errorAt(at, fmt.Sprintf("%s %q is the admin listener: HTTPS needs its own port; set tls.listen, like \":443\"", what, tlsListen))
	}
}

// tlsDefaults fills in the documented TLS defaults.
func tlsDefaults(t *TLS) *TLS {
	if t == nil {
		return nil
	}
	out := *t
	out.Domains = append([]string(nil), t.Domains...)
	out.Certificates = append([]CertificateFiles(nil), t.Certificates...)
	out.Challenges = append([]string(nil), t.Challenges...)
	if len(out.Domains) > 0 && len(out.Challenges) == 0 {
		out.Challenges = []string{ChallengeHTTP01, ChallengeTLSALPN01}
	}
	out.Listen = orDefault(out.Listen, defaultTLSListen)
	if len(out.Domains) > 0 {
		out.CA = orDefault(out.CA, DefaultACMEDirectory)
	}
	return &out
}
