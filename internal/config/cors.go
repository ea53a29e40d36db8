package config

import (
	"fmt"
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/turnout/turnout/internal/cors"
)

// CORS is a CORS policy (docs/cors.md): the top-level `cors:`, which every
// route has, or a route's own, which replaces it for that route. Its keys
// are API Gateway HTTP API's corsConfiguration's.
type CORS struct {
	// Off, on a route (`cors: off`), takes the top-level policy off it.
	Off bool `yaml:"-" json:"off,omitempty"`
	// AllowOrigins: "*", "scheme://host[:port]" or "scheme://*.domain[:port]"
	// (allowOrigins), kept as a browser sends them (lower case, no default port).
	AllowOrigins []string `yaml:"allow_origins" json:"allow_origins,omitempty"`
	// AllowMethods: methods a preflight may ask for, or "*" (allowMethods).
	AllowMethods []string `yaml:"allow_methods" json:"allow_methods,omitempty"`
	// AllowHeaders: request headers a preflight may ask for, or "*" (allowHeaders).
	AllowHeaders []string `yaml:"allow_headers" json:"allow_headers,omitempty"`
	// ExposeHeaders: response headers pages may read, or "*" (exposeHeaders).
	ExposeHeaders []string `yaml:"expose_headers" json:"expose_headers,omitempty"`
	// MaxAge: seconds a browser may keep a preflight's answer, at most
	// 86400; 0 sends none (maxAge).
	MaxAge int `yaml:"max_age" json:"max_age,omitempty"`
	// AllowCredentials lets pages send cookies and read the answers
	// (allowCredentials); not with "*" origins.
	AllowCredentials bool `yaml:"allow_credentials" json:"allow_credentials,omitempty"`
}

// Policy returns c as the cors package takes it.
func (c *CORS) Policy() cors.Config {
	return cors.Config{AllowOrigins: c.AllowOrigins, AllowMethods: c.AllowMethods, AllowHeaders: c.AllowHeaders,
		ExposeHeaders: c.ExposeHeaders, MaxAge: c.MaxAge, AllowCredentials: c.AllowCredentials}
}

// RouteCORS returns the CORS policy route i has: its own, else the
// top-level one; nil for none (or `cors: off`).
func (c *Config) RouteCORS(i int) *CORS {
	p := c.CORS
	if r := c.Routes[i].CORS; r != nil {
		p = r
	}
	if p == nil || p.Off {
		return nil
	}
	return p
}

var corsKeys = []string{"allow_origins", "allow_methods", "allow_headers", "expose_headers", "max_age", "allow_credentials"}

const corsExample = `cors: {allow_origins: [https://app.example.com], allow_methods: [GET, PUT], allow_headers: [Authorization]}`

// cors decodes a `cors:` mapping (what); on a route (route), `off` too.
func (d *decoder) cors(v *yaml.Node, what string, route bool) *CORS {
	if n := deref(v); route && n.Kind == yaml.ScalarNode {
		if n.Value != "off" {
			d.errorf(v, "%s must be off (no CORS on this route) or a mapping like %s, got %s", what, corsExample, describe(n))
		}
		return &CORS{Off: true}
	}
	c := &CORS{}
	var star, credentials *yaml.Node
	ok := d.fields(v, what, corsKeys, func(key string, _, v *yaml.Node) {
		w := what + "." + key
		switch key {
		case "allow_origins":
			items, _ := d.list(v, w, "[https://app.example.com]")
			for i, it := range items {
				wi := w + "[" + strconv.Itoa(i) + "]"
				s, ok := d.name(it, wi)
				switch {
				case !ok:
				case s == "*":
					star = it
					c.AllowOrigins = append(c.AllowOrigins, s)
				default:
					norm, _, err := cors.ParseOrigin(s)
					if err != nil {
						d.errorf(it, "%s: %v", wi, err)
						continue
					}
					c.AllowOrigins = append(c.AllowOrigins, norm)
				}
			}
			if len(items) == 0 {
				d.errorf(v, "%s is empty: list the origins pages may call from, like [https://app.example.com]", w)
			}
		case "allow_methods":
			c.AllowMethods = d.corsList(v, w, "[GET, PUT, DELETE]", func(it *yaml.Node, wi string) (string, bool) {
				if it := deref(it); it.Kind == yaml.ScalarNode && it.Value == "*" {
					return "*", true
				}
				return d.method(it, wi)
			})
		case "allow_headers", "expose_headers":
			h := d.corsList(v, w, "[Authorization, X-Request-Id]", func(it *yaml.Node, wi string) (string, bool) {
				if it := deref(it); it.Kind == yaml.ScalarNode && it.Value == "*" {
					return "*", true
				}
				return d.headerName(it, wi)
			})
			if key == "allow_headers" {
				c.AllowHeaders = h
			} else {
				c.ExposeHeaders = h
			}
		case "max_age":
			d.intField(v, w, &c.MaxAge, 0, "0 sends none (the browser's default)")
			if c.MaxAge > cors.MaxAgeLimit {
				d.errorf(v, "%s %d is over a day: use at most %d seconds (browsers cap it lower still)", w, c.MaxAge, cors.MaxAgeLimit)
				c.MaxAge = 0
			}
		case "allow_credentials":
			credentials = v
			d.boolean(v, w, &c.AllowCredentials)
		}
	})
	if !ok {
		return c
	}
	if c.AllowOrigins == nil && mapIndexNode(deref(v), "allow_origins") == nil {
		d.errorf(v, "%s has no allow_origins: list the origins pages may call from, like %s", what, corsExample)
	}
	if star != nil && len(c.AllowOrigins) > 1 {
		d.errorf(star, `%s.allow_origins has "*" and other origins: "*" allows every origin; keep it alone, or list the origins`, what)
	}
	if star != nil && c.AllowCredentials {
		d.errorf(credentials, `%s.allow_credentials is true with "*" in allow_origins: browsers refuse credentials from "*" (and API Gateway refuses the configuration); list the origins instead`, what)
	}
	return c
}

// corsList decodes a list whose items one decodes, dropping duplicates.
func (d *decoder) corsList(v *yaml.Node, what, example string, one func(it *yaml.Node, what string) (string, bool)) []string {
	items, ok := d.list(v, what, example)
	if !ok {
		return nil
	}
	out := []string{}
	for i, it := range items {
		s, ok := one(it, fmt.Sprintf("%s[%d]", what, i))
		if ok && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
