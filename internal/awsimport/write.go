package awsimport

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/turnout/turnout/internal/config"
)

// Write returns s as a turnout config: origins and routes in source order,
// each with a comment naming where it came from, a header listing the
// defaults used and every MUST-WARN and WARN finding, and a comment in
// place of each source route that has no turnout pattern. The result is
// parsed with config.Parse before it is returned, so what Write returns
// validates; the parsed config is returned too.
func Write(s *Setup) ([]byte, *config.Config, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# turnout config imported from %s (%s) by `turnout import`.\n", s.File, s.Kind)
	b.WriteString("# Routes keep the source's order; turnout picks the most specific pattern\n")
	b.WriteString("# whatever the order (docs/import.md says where that differs).\n")
	if len(s.Defaults) > 0 {
		b.WriteString("#\n# Template parameter defaults used (--use-defaults):\n")
		for _, p := range s.Defaults {
			fmt.Fprintf(&b, "#   %s = %q, at %s\n", p.Name, p.Default, p.Loc)
		}
	}
	var risky []Finding
	for _, f := range s.Findings {
		if f.Level >= Warn {
			risky = append(risky, f)
		}
	}
	if len(risky) > 0 {
		b.WriteString("#\n# Not carried over, or routed differently (docs/import.md):\n")
		if len(s.MustWarns()) > 0 {
			b.WriteString("# (the MUST-WARN findings were accepted with --accept-risk)\n")
		}
		for _, f := range risky {
			comment(&b, "", fmt.Sprintf("%s %s: %s", f.Level, f.Loc, f.Msg))
		}
	}
	if s.Legacy != "" {
		b.WriteString("\n# Where `turnout route off` sends a route without a fallback: the origin\n# the source sends everything else to.\n")
		fmt.Fprintf(&b, "legacy: %s\n", s.Legacy)
	}
	b.WriteString("\norigins:\n")
	for _, o := range s.Origins {
		comment(&b, "  ", "from "+o.From)
		fmt.Fprintf(&b, "  %s:\n    url: %s\n    host_header: %s\n", o.Name, quote(o.URL), o.HostHeader)
		if o.Dial > 0 || o.ResponseHeader > 0 {
			var ts []string
			if o.Dial > 0 {
				ts = append(ts, fmt.Sprintf("dial: %ds", o.Dial))
			}
			if o.ResponseHeader > 0 {
				ts = append(ts, fmt.Sprintf("response_header: %ds", o.ResponseHeader))
			}
			fmt.Fprintf(&b, "    timeouts: {%s}\n", strings.Join(ts, ", "))
		}
	}
	if len(s.Functions) > 0 {
		b.WriteString("\nfunctions:\n")
		for _, f := range s.Functions {
			comment(&b, "  ", "from "+f.From)
			if f.Handler == "" {
				fmt.Fprintf(&b, "  %s:\n    aws: {function: %s, region: %s}\n", f.Name, quote(f.ARN), quote(f.Region))
				continue
			}
			fmt.Fprintf(&b, "  %s:\n    handler: %s\n", f.Name, quote(f.Handler))
			if f.Timeout > 0 {
				fmt.Fprintf(&b, "    timeout: %ds\n", f.Timeout)
			}
			if f.MemoryMB > 0 {
				fmt.Fprintf(&b, "    memory_mb: %d\n", f.MemoryMB)
			}
			if len(f.Env) > 0 {
				b.WriteString("    env:\n")
				keys := slices.Sorted(maps.Keys(f.Env))
				for _, k := range keys {
					fmt.Fprintf(&b, "      %s: %s\n", k, quote(f.Env[k]))
				}
			}
		}
	}
	b.WriteString("\nroutes:\n")
	for _, r := range s.Routes {
		if len(r.Patterns) == 0 || r.Origin == "" && r.Function == "" {
			comment(&b, "  ", "from "+r.From+": not carried over; "+r.Note)
			continue
		}
		for _, p := range r.Patterns {
			comment(&b, "  ", "from "+r.From)
			if r.Note != "" {
				comment(&b, "  ", "  differs: "+r.Note)
			}
			fmt.Fprintf(&b, "  - match: %s\n", quote(p))
			if r.Function != "" {
				fmt.Fprintf(&b, "    function: %s\n", r.Function)
				if r.Payload != "" {
					fmt.Fprintf(&b, "    payload: %s\n", quote(r.Payload))
				}
			} else {
				fmt.Fprintf(&b, "    origin: %s\n", r.Origin)
			}
			if r.TimeoutMS > 0 {
				fmt.Fprintf(&b, "    timeout: %s\n", time.Duration(r.TimeoutMS)*time.Millisecond)
			}
			if r.Fallback != "" {
				fmt.Fprintf(&b, "    fallback: %s\n", r.Fallback)
				if len(r.FallbackOn) > 0 {
					st := make([]string, len(r.FallbackOn))
					for i, c := range r.FallbackOn {
						st[i] = strconv.Itoa(c)
					}
					fmt.Fprintf(&b, "    fallback_on_status: [%s]\n", strings.Join(st, ", "))
				}
			}
		}
	}
	out := b.Bytes()
	c, err := config.Parse("imported.yaml", out)
	if err != nil {
		return out, nil, fmt.Errorf("the imported config does not validate:\n%w", err)
	}
	return out, c, nil
}

// comment writes text as YAML comment lines, one per line of text.
func comment(b *bytes.Buffer, indent, text string) {
	for _, line := range strings.Split(text, "\n") {
		fmt.Fprintf(b, "%s# %s\n", indent, line)
	}
}

// quote writes s as a YAML double-quoted scalar (a JSON string is one).
func quote(s string) string { return strconv.Quote(s) }
