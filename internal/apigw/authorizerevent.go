package apigw

import (
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// region is the region part of the ARNs a Lambda authorizer sees: turnout
// runs in none, so it names none of AWS's (see accountID and apiID).
const region = "local"

// MethodARN is the ARN API Gateway names a request by in a Lambda
// authorizer's event (routeArn in 2.0, methodArn in 1.0 and TOKEN) and
// that its policy's Resource is matched against:
// arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH, the path as the
// client sent it (normalised, escaped). turnout's are
// arn:aws:execute-api:local:anonymous:turnout/$default/GET/orders/1.
func MethodARN(r *http.Request, in Info) string {
	stage, path := in.Stage, in.Path
	if stage == "" {
		stage = defaultStage
	}
	if path == "" {
		path = r.URL.EscapedPath()
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return "arn:aws:execute-api:" + region + ":" + accountID + ":" + apiID + "/" + stage + "/" + r.Method + path
}

// authorizerV2 is events.APIGatewayV2CustomAuthorizerV2Request without the
// empty authentication block (see eventV2).
type authorizerV2 struct {
	events.APIGatewayV2CustomAuthorizerV2Request
	RequestContext contextV2 `json:"requestContext"`
}

// AuthorizerEventV2 returns the JSON of a Lambda authorizer's payload
// format 2.0 REQUEST event for r (events.APIGatewayV2CustomAuthorizerV2Request):
// the route's 2.0 event without its body, with type, routeArn and the
// identity sources' values.
func AuthorizerEventV2(r *http.Request, in Info, identity []string) ([]byte, error) {
	in.Authorizer = nil
	ev := buildV2(r, nil, in)
	e := &ev.APIGatewayV2HTTPRequest
	var a authorizerV2
	a.Version = "2.0"
	a.Type = "REQUEST"
	a.RouteArn = MethodARN(r, in)
	a.IdentitySource = identity
	a.RouteKey = e.RouteKey
	a.RawPath = e.RawPath
	a.RawQueryString = e.RawQueryString
	a.Cookies = e.Cookies
	a.Headers = e.Headers
	a.QueryStringParameters = e.QueryStringParameters
	a.PathParameters = e.PathParameters
	a.RequestContext = ev.RequestContext
	return marshal(&a)
}

// authorizerV1 is a Lambda authorizer's payload format 1.0 REQUEST event:
// REST's events.APIGatewayCustomAuthorizerRequestTypeRequest with the
// fields HTTP APIs add (events.APIGatewayV2CustomAuthorizerV1Request:
// version, identitySource, authorizationToken), so an authorizer written
// for either finds its fields. requestContext is the route's 1.0 one, a
// superset of both types'.
type authorizerV1 struct {
	Version                         string                               `json:"version"`
	Type                            string                               `json:"type"`
	MethodArn                       string                               `json:"methodArn"` //nolint: staticcheck
	IdentitySource                  string                               `json:"identitySource"`
	AuthorizationToken              string                               `json:"authorizationToken"`
	Resource                        string                               `json:"resource"`
	Path                            string                               `json:"path"`
	HTTPMethod                      string                               `json:"httpMethod"`
	Headers                         map[string]string                    `json:"headers"`
	MultiValueHeaders               map[string][]string                  `json:"multiValueHeaders"`
	QueryStringParameters           map[string]string                    `json:"queryStringParameters"`
	MultiValueQueryStringParameters map[string][]string                  `json:"multiValueQueryStringParameters"`
	PathParameters                  map[string]string                    `json:"pathParameters"`
	StageVariables                  map[string]string                    `json:"stageVariables"`
	RequestContext                  events.APIGatewayProxyRequestContext `json:"requestContext"`
}

// AuthorizerEventV1 returns the JSON of a Lambda authorizer's payload
// format 1.0 REQUEST event for r: the route's 1.0 event without its body,
// with type, methodArn, and the identity sources' values joined by commas
// in identitySource and authorizationToken, as HTTP APIs send them.
func AuthorizerEventV1(r *http.Request, in Info, identity []string) ([]byte, error) {
	in.Authorizer = nil
	ev := buildV1(r, nil, in)
	e := &ev.APIGatewayProxyRequest
	joined := strings.Join(identity, ",")
	a := authorizerV1{
		Version: "1.0", Type: "REQUEST", MethodArn: MethodARN(r, in), IdentitySource: joined, AuthorizationToken: joined,
		Resource: e.Resource, Path: e.Path, HTTPMethod: e.HTTPMethod,
		Headers: e.Headers, MultiValueHeaders: e.MultiValueHeaders,
		QueryStringParameters: e.QueryStringParameters, MultiValueQueryStringParameters: e.MultiValueQueryStringParameters,
		PathParameters: e.PathParameters, RequestContext: e.RequestContext,
	}
	if a.PathParameters == nil {
		a.PathParameters = map[string]string{}
	}
	a.RequestContext.Authorizer = nil
	return marshal(&a)
}

// TokenEvent returns the JSON of a REST API TOKEN authorizer's event
// (events.APIGatewayCustomAuthorizerRequest): the identity source's value
// as it came, and the request's ARN.
func TokenEvent(r *http.Request, in Info, token string) ([]byte, error) {
	return marshal(&events.APIGatewayCustomAuthorizerRequest{Type: "TOKEN", AuthorizationToken: token, MethodArn: MethodARN(r, in)})
}
