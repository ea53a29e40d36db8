// Command hello-v2 answers API Gateway HTTP API (payload format 2.0) events
// with a JSON document echoing the route's path parameters and query, and
// what the runtime told the function about itself (name, memory, region),
// and what the route's authorizer said (requestContext.authorizer).
package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type reply struct {
	Message     string            `json:"message"`
	RouteKey    string            `json:"routeKey"`
	Path        string            `json:"path"`
	PathParams  map[string]string `json:"pathParameters,omitempty"`
	Query       map[string]string `json:"query,omitempty"`
	RawQuery    string            `json:"rawQuery,omitempty"`
	Function    string            `json:"function"`
	MemoryMB    int               `json:"memoryMB"`
	Region      string            `json:"region"`
	Version     string            `json:"version"`
	RequestID   string            `json:"requestId"`
	FunctionARN string            `json:"functionArn"`
	TraceID     string            `json:"traceId,omitempty"`
	// Authorizer is requestContext.authorizer: who the route's
	// authorizer says called.
	Authorizer *events.APIGatewayV2HTTPRequestContextAuthorizerDescription `json:"authorizer,omitempty"`
	// Env reports variables a hosted function must not see, for tests.
	Leaked string `json:"leaked,omitempty"`
}

func handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	lc, _ := lambdacontext.FromContext(ctx)
	r := reply{
		Message:    "hello from a function",
		RouteKey:   req.RouteKey,
		Path:       req.RawPath,
		PathParams: req.PathParameters,
		Query:      req.QueryStringParameters,
		RawQuery:   req.RawQueryString,
		Function:   lambdacontext.FunctionName,
		MemoryMB:   lambdacontext.MemoryLimitInMB,
		Region:     os.Getenv("AWS_REGION"),
		Version:    lambdacontext.FunctionVersion,
		Leaked:     os.Getenv("TURNOUT_TEST_SECRET"),
		Authorizer: req.RequestContext.Authorizer,
	}
	if lc != nil {
		r.RequestID = lc.AwsRequestID
		r.FunctionARN = lc.InvokedFunctionArn
	}
	if v, ok := ctx.Value("x-amzn-trace-id").(string); ok {
		r.TraceID = v
	}
	b, err := json.Marshal(r)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: 200,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(b),
	}, nil
}

func main() { lambda.Start(handle) }
