package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/turnout/turnout/internal/glob"
)

// lambdaAnswer is what an authorizer function answered, read once and
// decided on per request: a policy is matched against each request's ARN,
// so one cached policy serves every route it names.
type lambdaAnswer struct {
	simple    bool
	allowed   bool        // a simple response's isAuthorized
	policy    []statement // a policy response's statements
	principal string
	// context is shared by every request the answer serves: read only.
	context map[string]any
	size    int // the answer's bytes, for the cache's bound
}

// statement is one statement of a policy response.
type statement struct {
	allow     bool
	actions   []string
	resources []string
}

// decide is the answer for the request whose ARN is arn: allowed, or
// ErrDenied.
func (a *lambdaAnswer) decide(arn string, took time.Duration, cached bool) (Result, error) {
	res := Result{Lambda: true, Subject: a.principal, Context: a.context, Latency: took, Cached: cached}
	ok := a.allowed
	if !a.simple {
		ok = policyAllows(a.policy, arn)
	}
	if !ok {
		return res, ErrDenied
	}
	return res, nil
}

// invokeAction is the action a policy must allow.
const invokeAction = "execute-api:Invoke"

// policyAllows applies IAM's evaluation to the request arn: allowed when
// some statement allows execute-api:Invoke on it and none denies it (an
// explicit Deny wins); nothing allowed is denied.
func policyAllows(policy []statement, arn string) bool {
	allowed := false
	for _, s := range policy {
		if !anyMatch(s.actions, invokeAction, true) || !anyMatch(s.resources, arn, false) {
			continue
		}
		if !s.allow {
			return false
		}
		allowed = true
	}
	return allowed
}

// anyMatch reports whether s matches one of patterns as IAM matches
// actions (fold: without case) and resource ARNs (with case).
func anyMatch(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if glob.Match(p, s, fold) {
			return true
		}
	}
	return false
}

// parseLambdaAnswer reads a function's answer: a simple response
// {"isAuthorized": bool, "context": {...}} when simple, else an IAM policy
// response {"principalId", "policyDocument": {"Statement": [...]},
// "context"}. flat is set for REST-style authorizers (TOKEN and payload
// 1.0), whose context values must be strings, numbers or booleans, as API
// Gateway requires of them. Anything else is an error: the request is
// answered 500, never let through.
func parseLambdaAnswer(b []byte, simple, flat bool) (*lambdaAnswer, error) {
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, errors.New("something that is not a JSON object")
	}
	a := &lambdaAnswer{simple: simple, size: len(b)}
	if simple {
		var r struct {
			IsAuthorized *bool          `json:"isAuthorized"`
			Context      map[string]any `json:"context"`
		}
		if err := decodeJSON(b, &r); err != nil {
			return nil, err
		}
		if r.IsAuthorized == nil {
			return nil, errors.New("a simple response without isAuthorized")
		}
		a.allowed, a.context = *r.IsAuthorized, r.Context
		return a, nil
	}
	var r struct {
		PrincipalID    *string `json:"principalId"`
		PolicyDocument *struct {
			Statement json.RawMessage `json:"Statement"`
		} `json:"policyDocument"`
		Context map[string]any `json:"context"`
	}
	if err := decodeJSON(b, &r); err != nil {
		return nil, err
	}
	if r.PolicyDocument == nil {
		return nil, errors.New("a policy response without policyDocument")
	}
	var err error
	if a.policy, err = parseStatements(r.PolicyDocument.Statement); err != nil {
		return nil, err
	}
	if r.PrincipalID != nil {
		a.principal = *r.PrincipalID
	}
	if flat {
		for k, v := range r.Context {
			switch v.(type) {
			case string, json.Number, bool:
			default:
				return nil, fmt.Errorf("context key %q holding %s: a REST-style authorizer's context holds strings, numbers and booleans only", k, jsonKind(v))
			}
		}
	}
	a.context = r.Context
	return a, nil
}

// parseStatements reads a policy's Statement: one statement or a list.
func parseStatements(raw json.RawMessage) ([]statement, error) {
	type rawStatement struct {
		Effect      string          `json:"Effect"`
		Action      json.RawMessage `json:"Action"`
		Resource    json.RawMessage `json:"Resource"`
		NotAction   json.RawMessage `json:"NotAction"`
		NotResource json.RawMessage `json:"NotResource"`
		Condition   json.RawMessage `json:"Condition"`
	}
	var list []rawStatement
	switch t := bytes.TrimLeft(raw, " \t\r\n"); {
	case len(t) == 0 || string(t) == "null":
		return nil, errors.New("a policyDocument without Statement")
	case t[0] == '[':
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("policyDocument.Statement: %w", err)
		}
	default:
		var one rawStatement
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, fmt.Errorf("policyDocument.Statement: %w", err)
		}
		list = []rawStatement{one}
	}
	out := make([]statement, 0, len(list))
	for i, rs := range list {
		// What turnout does not evaluate is refused rather than ignored:
		// an ignored Condition on an Allow would allow too much.
		if rs.NotAction != nil || rs.NotResource != nil || rs.Condition != nil {
			return nil, fmt.Errorf("policyDocument.Statement[%d] has NotAction, NotResource or Condition, which turnout does not evaluate", i)
		}
		var s statement
		switch rs.Effect {
		case "Allow":
			s.allow = true
		case "Deny":
		default:
			return nil, fmt.Errorf("policyDocument.Statement[%d].Effect %q: want Allow or Deny", i, rs.Effect)
		}
		var err error
		if s.actions, err = stringOrList(rs.Action); err != nil {
			return nil, fmt.Errorf("policyDocument.Statement[%d].Action: %w", i, err)
		}
		if s.resources, err = stringOrList(rs.Resource); err != nil {
			return nil, fmt.Errorf("policyDocument.Statement[%d].Resource: %w", i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// stringOrList reads an IAM element that is a string or a list of them.
func stringOrList(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 {
		return nil, errors.New("missing")
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil || len(list) == 0 {
		return nil, errors.New("want a string or a list of strings")
	}
	return list, nil
}

// decodeJSON decodes exactly one JSON value from b into v, numbers as
// json.Number (a context's numbers reach the function as written).
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// errorMessage is the errorMessage of Lambda's error document b, "" when b
// is not one.
func errorMessage(b []byte) string {
	var e struct {
		ErrorMessage string `json:"errorMessage"`
	}
	_ = json.Unmarshal(b, &e)
	return e.ErrorMessage
}
