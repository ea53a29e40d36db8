// Command authorizer is a Lambda authorizer for API Gateway's three event
// shapes (TOKEN, REQUEST payload 1.0 and 2.0), deciding by the token it is
// given (the first identity source, without "Bearer "):
//
//	allow-USER    allows every route, with USER as principalId and in the context
//	get-USER      allows GET requests only (a policy naming .../GET/*)
//	deny-USER     denies
//	unauthorized  fails with "Unauthorized" (REST's way to answer 401)
//	crash         panics; exit exits the process with status 2
//	sleep-MS      sleeps MS milliseconds, then allows
//	garbage       answers something that is not an authorizer response
//
// It answers with a simple response ({"isAuthorized", "context"}) when
// AUTHORIZER_RESPONSE is "simple", else with an IAM policy. When COUNT_FILE
// is set it appends the token to that file on every invocation, so tests
// can count invocations (the cache's hits and misses).
package main

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

// event holds the fields of the three shapes that name the token and the
// request's ARN.
type event struct {
	Type               string `json:"type"`
	AuthorizationToken string `json:"authorizationToken"` // TOKEN, REQUEST 1.0
	MethodArn          string `json:"methodArn"`          // TOKEN, REQUEST 1.0
	IdentitySource     any    `json:"identitySource"`     // REQUEST 2.0: a list
	RouteArn           string `json:"routeArn"`           // REQUEST 2.0
	Version            string `json:"version"`
}

func token(e event) string {
	t := e.AuthorizationToken
	if list, ok := e.IdentitySource.([]any); ok && len(list) > 0 {
		t, _ = list[0].(string)
	}
	if strings.HasPrefix(strings.ToLower(t), "bearer ") {
		t = t[len("bearer "):]
	}
	return t
}

func handle(e event) (any, error) {
	tok := token(e)
	if f := os.Getenv("COUNT_FILE"); f != "" {
		fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, err
		}
		fh.WriteString(tok + "\n")
		fh.Close()
	}
	verb, user, _ := strings.Cut(tok, "-")
	switch verb {
	case "crash":
		panic("the authorizer crashed on purpose")
	case "exit":
		os.Exit(2)
	case "unauthorized":
		return nil, errors.New("Unauthorized")
	case "garbage":
		return "not a response", nil
	case "sleep":
		ms, _ := strconv.Atoi(user)
		time.Sleep(time.Duration(ms) * time.Millisecond)
		verb, user = "allow", "sleeper"
	}
	allow := verb == "allow" || verb == "get"
	ctx := map[string]any{"user": user, "level": 3, "admin": verb == "allow"}
	if os.Getenv("AUTHORIZER_RESPONSE") == "simple" {
		return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: allow, Context: ctx}, nil
	}
	arn := e.MethodArn
	if arn == "" {
		arn = e.RouteArn
	}
	// arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH: the policy
	// names every method and path of the stage, or GET only.
	parts := strings.SplitN(arn, "/", 3)
	if len(parts) < 3 {
		return nil, errors.New("no ARN in the event: " + arn)
	}
	resource := parts[0] + "/" + parts[1] + "/*"
	if verb == "get" {
		resource = parts[0] + "/" + parts[1] + "/GET/*"
	}
	effect := "Deny"
	if allow {
		effect = "Allow"
	}
	return map[string]any{
		"principalId": user,
		"policyDocument": map[string]any{
			"Version":   "2012-10-17",
			"Statement": []map[string]any{{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}},
		},
		"context": ctx,
	}, nil
}

func main() { lambda.Start(handle) }
