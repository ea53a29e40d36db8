package awsimport

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/turnout/turnout/internal/route"
)

// resolve makes s's patterns a valid turnout route table. ServeMux refuses
// two patterns where one is more specific by method and the other by path
// ("GET /api/" and "/api/admin/"): the one without a method is written once
// per CloudFront method instead, which matches the same requests. A pattern
// written for an earlier source route is not written again for a later
// one: in the source the earlier route wins where both match (the shape
// list says where the later one's requests go instead).
func (s *Setup) resolve() {
	for range 8 {
		s.dedupe()
		type at struct{ r, p int }
		var flat []string
		var where []at
		for i, r := range s.Routes {
			for j, p := range r.Patterns {
				flat = append(flat, p)
				where = append(where, at{i, j})
			}
		}
		errs := route.Check(flat)
		if len(errs) == 0 {
			return
		}
		expand := map[at]bool{}
		for _, e := range errs {
			for _, k := range []int{e.Index, e.Other} {
				if k >= 0 && !strings.Contains(route.Canonical(flat[k]), " ") {
					expand[where[k]] = true
				}
			}
		}
		if len(expand) == 0 {
			// Not a method conflict: drop the later pattern and say so.
			for _, e := range errs {
				w := where[e.Index]
				r := &s.Routes[w.r]
				s.add(MustWarn, r.Loc, "%s: pattern %q cannot be written: %s", r.From, flat[e.Index], e.Msg)
				r.Patterns[w.p] = ""
			}
		}
		for i := range s.Routes {
			r := &s.Routes[i]
			var out []string
			for j, p := range r.Patterns {
				switch {
				case p == "":
				case expand[at{i, j}]:
					for _, m := range cfMethods {
						if m != "HEAD" {
							out = append(out, m+" "+p)
						}
					}
				default:
					out = append(out, p)
				}
			}
			r.Patterns = out
		}
	}
	s.add(MustWarn, Loc{File: s.File}, "%s", fmt.Sprintf("route patterns still conflict after resolving: %v", route.Check(s.allPatterns())))
}

// dedupe drops each pattern already written for an earlier source route.
func (s *Setup) dedupe() {
	seen := map[string]int{} // canonical pattern → source route
	for i := range s.Routes {
		r := &s.Routes[i]
		var keep []string
		for _, p := range r.Patterns {
			c := route.Canonical(p)
			if j, dup := seen[c]; dup {
				s.add(Warn, r.Loc, "%s: pattern %q is already the route of %s, which the source tries first; not written again", r.From, p, s.Routes[j].From)
				if r.Note == "" {
					r.Note = fmt.Sprintf("its pattern %q is already the route of %s", p, s.Routes[j].From)
				}
				continue
			}
			seen[c] = i
			keep = append(keep, p)
		}
		r.Patterns = keep
	}
}

func (s *Setup) allPatterns() []string {
	var out []string
	for _, r := range s.Routes {
		out = append(out, r.Patterns...)
	}
	return out
}

// finish ends a reader's work on s, read from d: the reader's errors as one,
// or s with its names resolved and d's placeholders listed.
func (s *Setup) finish(d *doc, errs []string) (*Setup, error) {
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	s.resolve()
	s.Placeholders, s.Defaults = d.placeholders()
	return s, nil
}

// checkFunctionOptions checks the options the SAM and Serverless readers
// share: --api rest|http (or none) and --functions hosted|aws, which
// defaults to hosted.
func checkFunctionOptions(api string, functions *string) error {
	if api != "" && api != "rest" && api != "http" {
		return fmt.Errorf("--api %q: use rest or http", api)
	}
	switch *functions {
	case "":
		*functions = FunctionsHosted
	case FunctionsHosted, FunctionsAWS:
	default:
		return fmt.Errorf("--functions %q: use hosted or aws", *functions)
	}
	return nil
}

// basePath checks --base-path and returns it without a trailing slash;
// example is the path the error shows.
func basePath(p, example string) (string, error) {
	base := strings.TrimSuffix(p, "/")
	if base != "" && (!strings.HasPrefix(base, "/") || strings.ContainsAny(base, "{}*? ")) {
		return "", fmt.Errorf("--base-path %q: a path like %s", p, example)
	}
	return base, nil
}

// useRouter makes router the source's router for the shape search, with
// each of its routes' matchers (a route without a path is $default's
// catch-all).
func (s *Setup) useRouter(router *apiRouter) {
	for _, rt := range router.routes {
		m := matcher{{kind: '*'}}
		if rt.path != "" {
			m, _ = apiMatcher(rt.path)
		}
		router.ms = append(router.ms, m)
		s.srcMatchers = append(s.srcMatchers, m)
	}
	s.Source = router
}

// legacyFromSet declares the legacy origin from `--set legacy=URL`, for a
// source (what: "a SAM template") that has none; it returns where and why
// the value is not a URL, "" when it is (or is still a placeholder).
func (s *Setup) legacyFromSet(d *doc, what string) (Loc, string) {
	v := val{d: d, n: d.root}
	u, ok := v.fill("legacy", false)
	s.Legacy = "legacy"
	s.Origins = append(s.Origins, Origin{Name: "legacy", URL: u, HostHeader: "client", From: "--set legacy (" + what + " has no legacy origin; turnout needs one)", Loc: v.loc()})
	if ok {
		if pu, err := url.Parse(u); err != nil || pu.Host == "" || pu.Scheme != "http" && pu.Scheme != "https" {
			return v.loc(), fmt.Sprintf("--set legacy=%q: want the URL of the legacy service, like http://10.0.0.5:8080", u)
		}
	}
	return Loc{}, ""
}
