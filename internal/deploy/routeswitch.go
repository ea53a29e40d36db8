package deploy

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/turnout/turnout/internal/config"
	"github.com/turnout/turnout/internal/route"
)

// RouteSwitch stores a new deployment of the active config with the route
// whose match is match switched off (off: true, so it is served by its
// fallback or the legacy origin) or back on (the off key removed), with cause
// "route off GET /user/{id}" or "route on …", and activates it.
//
// match is compared after canonicalisation (route.Canonical: the spacing
// after the method, "{x+}" spelled "{x...}", host case). An unknown match
// returns an error wrapping ErrUnknownRoute that lists the routes there are;
// a route already in the requested state, or one to switch off that has
// nowhere else to go (config.Route.CanSwitchOff), one wrapping ErrConflict.
//
// The edit keeps the file as the operator wrote it: the one line holding
// `off:` is changed, inserted after the route's match or deleted, so the
// diff between the two deployments is that line and comments, blank lines
// and quoting stay. When the route is written in a way a line edit cannot
// handle safely (flow style, `off` on the item's first line), the YAML node
// tree is edited and re-encoded with yaml.v3 instead, which keeps comments
// but not blank lines. Either way the result is parsed again and must equal
// the active config with only that route's off flag changed.
func (s *Service) RouteSwitch(ctx context.Context, match string, off bool, author, message string) (Deployment, error) {
	return s.routeSwitch(ctx, match, off, author, message, "")
}

// AutoRollback switches a route off on turnout's own authority, as a
// deployment whose cause is "auto-rollback: " + reason, so that the route
// stays on its fallback across restarts and the history says why.
// `turnout route on` (or a rollback) brings it back. The attempt, made or
// failed, is recorded in the audit trail (no admin request records it).
//
// In a fleet, every node judging the route may raise it at once: the first
// to store its deployment wins, and the others — refused as a conflict, or
// finding the route already off — return the deployment that switched it
// off, so the fleet makes one deployment, not N, and logs no error.
func (s *Service) AutoRollback(ctx context.Context, match, reason string) (Deployment, error) {
	d, err := s.routeSwitch(ctx, match, true, "turnout", reason, "auto-rollback: "+reason)
	if errors.Is(err, ErrConflict) {
		if active, aerr := s.Store.Active(ctx); aerr == nil && routeOff(active, match) {
			return active, nil // another node was first
		}
	}
	s.Store.Audit(ctx, autoRollbackEvent(d, match, reason, err))
	return d, err
}

// routeOff reports whether route match is switched off in d.
func routeOff(d Deployment, match string) bool {
	cfg, err := config.Parse(configName(d.ID), []byte(d.Config))
	if err != nil {
		return false
	}
	want := route.Canonical(match)
	for _, r := range cfg.Routes {
		if route.Canonical(r.Match) == want {
			return r.Off
		}
	}
	return false
}

func (s *Service) routeSwitch(ctx context.Context, match string, off bool, author, message, cause string) (Deployment, error) {
	if route.Canonical(match) == "" {
		return Deployment{}, errorf(ErrInvalid, "route switch: empty match; give the route's match as written in the config, e.g. \"GET /user/{id}\"")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.routeSwitchLocked(ctx, match, off, author, message, cause)
}

// routeSwitchLocked is routeSwitch with s.mu held.
func (s *Service) routeSwitchLocked(ctx context.Context, match string, off bool, author, message, cause string) (Deployment, error) {
	want := route.Canonical(match)
	state := map[bool]string{true: "off", false: "on"}
	active, err := s.Store.Active(ctx)
	if err != nil {
		return Deployment{}, fmt.Errorf("route %s: %w", state[off], err)
	}
	name := configName(active.ID)
	cfg, err := config.Parse(name, []byte(active.Config))
	if err != nil {
		return Deployment{}, fmt.Errorf("route %s: the active deployment %d does not validate any more; apply a fixed config: %w", state[off], active.ID, err)
	}
	// A rollout on the route is aborted first, in a deployment of its own,
	// so that switching the route on again does not resume it. When that
	// leaves nothing to switch (a route on the legacy origin: the abort put
	// the canary's share back there), the abort is the answer.
	if i, err := routeIndex(cfg, active.ID, match); err == nil && off {
		if r := cfg.Routes[i]; r.Rollout != nil && r.Canary != nil && r.Rollout.State != config.RolloutAborted {
			why := cmp.Or(cause, "route off by "+cmp.Or(author, "turnout"))
			abort, err := s.rolloutLocked(ctx, RolloutChange{Action: RolloutAbort, Match: match, Author: author, Reason: why})
			if err != nil {
				return Deployment{}, fmt.Errorf("route off: aborting the route's rollout first: %w", err)
			}
			d, err := s.routeSwitchLocked(ctx, match, off, author, message, cause)
			if errors.Is(err, ErrConflict) && !r.Off {
				return abort, nil
			}
			return d, err
		}
	}
	idx, err := switchable(cfg, active.ID, match, off)
	if err != nil {
		return Deployment{}, err
	}

	// What the edited file must parse to: the same config, one flag flipped.
	cfg.Routes[idx].Off = off
	expect, err := json.Marshal(cfg)
	if err != nil {
		return Deployment{}, err
	}
	check := func(src []byte) (*config.Config, bool) {
		c, err := config.Parse(name, src)
		if err != nil {
			return nil, false
		}
		got, err := json.Marshal(c)
		return c, err == nil && bytes.Equal(got, expect)
	}

	src := []byte(active.Config)
	var newSrc []byte
	var newCfg *config.Config
	if out, ok := editLines(src, want, off); ok {
		if c, ok := check(out); ok {
			newSrc, newCfg = out, c
		}
	}
	if newCfg == nil {
		out, err := editTree(src, want, off)
		if err != nil {
			return Deployment{}, fmt.Errorf("route %s %s: %w", state[off], want, err)
		}
		c, ok := check(out)
		if !ok {
			return Deployment{}, fmt.Errorf("route %s %s: editing the config changed more than the route's off flag; edit the file and apply it instead", state[off], want)
		}
		newSrc, newCfg = out, c
	}
	if cause == "" {
		cause = "route " + state[off] + " " + route.Canonical(cfg.Routes[idx].Match)
	}
	return s.create(ctx, active.ID, string(newSrc), author, message, cause, newCfg)
}

// switchable returns the index of the route of cfg (deployment id) whose
// match is match, after route.Canonical, or why it cannot be switched off
// (off) or on: an error wrapping ErrUnknownRoute that lists the routes
// there are, or ErrConflict for a route already in that state or one with
// nowhere else to go. Both route off|on and its --local form check with it.
func switchable(cfg *config.Config, id uint64, match string, off bool) (int, error) {
	state := map[bool]string{true: "off", false: "on"}
	idx, err := routeIndex(cfg, id, match)
	if err != nil {
		return -1, err
	}
	if cfg.Routes[idx].Off == off {
		return -1, errorf(ErrConflict, "route %q is already %s in deployment %d", cfg.Routes[idx].Match, state[off], id)
	}
	if r, legacy := cfg.Routes[idx], cfg.LegacyOrigin(); off && !r.CanSwitchOff(legacy) {
		if to := r.OffTarget(legacy); to != "" {
			return -1, errorf(ErrConflict, "route %q already goes to %q, where switching it off would send it: it has nowhere else to go; give it a fallback: <origin> to switch it to", r.Match, to)
		}
		return -1, errorf(ErrConflict, "route %q has nowhere else to go: it has no fallback and no legacy origin is known; give it a fallback: <origin>, or set legacy: <origin>", r.Match)
	}
	return idx, nil
}

// routeIndex returns the index of the route of cfg (deployment id) whose
// match is match, after route.Canonical, or an error wrapping
// ErrUnknownRoute that lists the routes there are.
func routeIndex(cfg *config.Config, id uint64, match string) (int, error) {
	want := route.Canonical(match)
	var matches []string
	for i, r := range cfg.Routes {
		if route.Canonical(r.Match) == want {
			return i, nil
		}
		matches = append(matches, fmt.Sprintf("%q", r.Match))
	}
	return -1, errorf(ErrUnknownRoute, "no route matches %q in deployment %d; the routes are: %s", match, id, strings.Join(matches, ", "))
}

// findRoute returns the mapping node of the route whose match is want.
// Routes reached through a YAML alias are refused: editing the anchor would
// change every place that uses it.
func findRoute(doc *yaml.Node, want string) (*yaml.Node, error) {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, fmt.Errorf("config is not a YAML document")
	}
	root := doc.Content[0]
	routes := mapValue(root, "routes")
	if routes == nil || routes.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("config has no routes list")
	}
	for _, item := range routes.Content {
		m := item
		if m.Kind == yaml.AliasNode {
			m = m.Alias
		}
		if m == nil || m.Kind != yaml.MappingNode {
			continue
		}
		v := mapValue(m, "match")
		if v == nil || v.Kind != yaml.ScalarNode || route.Canonical(v.Value) != want {
			continue
		}
		if item.Kind == yaml.AliasNode || m.Anchor != "" {
			return nil, fmt.Errorf("the route is a YAML anchor or alias, so switching it would change other routes too; edit the file and apply it instead")
		}
		return m, nil
	}
	return nil, fmt.Errorf("route not found in the YAML tree")
}

// mapValue returns the value of key in mapping m (not following merges).
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if i := mapIndex(m, key); i >= 0 {
		return m.Content[i+1]
	}
	return nil
}

func mapIndex(m *yaml.Node, key string) int {
	if m == nil || m.Kind != yaml.MappingNode {
		return -1
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return i
		}
	}
	return -1
}

// editLines switches the route by editing src as text, or reports false
// when the route's layout is not one it handles. The caller verifies the
// result.
func editLines(src []byte, want string, off bool) ([]byte, bool) {
	_, m, err := parseRoute(src, want)
	if err != nil || m.Style&yaml.FlowStyle != 0 {
		return nil, false
	}
	t := newTextDoc(src)
	// insertAfterMatch puts text on a line of its own after the match (a
	// route's first key is on its item's "- " line, so setKey cannot).
	insertAfterMatch := func(text string) ([]byte, bool) {
		k, v := m.Content[mapIndex(m, "match")], m.Content[mapIndex(m, "match")+1]
		if v.Kind != yaml.ScalarNode || v.Line != k.Line {
			return nil, false
		}
		return t.insertLineAfter(k.Line, k.Column, text)
	}
	i := mapIndex(m, "off")
	switch {
	case i >= 0 && off:
		return t.replaceScalar(m.Content[i+1], "true")
	case i >= 0 && !off:
		if out, ok := t.deleteKey(m, "off"); ok {
			return out, true
		}
		return t.replaceScalar(m.Content[i+1], "false")
	case off:
		return insertAfterMatch("off: true")
	default:
		// Off through a merge key ("<<: *defaults"): override it here.
		return insertAfterMatch("off: false")
	}
}

// editTree switches the route by editing the YAML node tree and encoding it
// again, keeping the file's indentation where it can tell it.
func editTree(src []byte, want string, off bool) ([]byte, error) {
	doc, m, err := parseRoute(src, want)
	if err != nil {
		return nil, err
	}
	i := mapIndex(m, "off")
	switch {
	case off && i >= 0:
		m.Content[i+1] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true", LineComment: m.Content[i+1].LineComment}
	case off:
		m.Content = append(m.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "off"},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
	case i >= 0:
		m.Content = append(m.Content[:i], m.Content[i+2:]...)
		// The caller's check catches an off still inherited through a merge
		// key; override it explicitly then.
		if mergedOff(m) {
			m.Content = append(m.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "off"},
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false"})
		}
	default:
		m.Content = append(m.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "off"},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false"})
	}
	return encodeTree(doc)
}

// mergedOff reports whether mapping m inherits a true off through "<<".
func mergedOff(m *yaml.Node) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != "<<" {
			continue
		}
		var v struct {
			Off bool `yaml:"off"`
		}
		if m.Content[i+1].Decode(&v) == nil && v.Off {
			return true
		}
	}
	return false
}
