// Command hello-v1 answers API Gateway REST API (payload format 1.0) events
// with a JSON document echoing path parameters, both query maps and what
// the route's authorizer said (requestContext.authorizer).
package main

import (
	"encoding/json"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	b, err := json.Marshal(map[string]any{
		"message":         "hello from a function",
		"resource":        req.Resource,
		"path":            req.Path,
		"method":          req.HTTPMethod,
		"pathParameters":  req.PathParameters,
		"query":           req.QueryStringParameters,
		"multiValueQuery": req.MultiValueQueryStringParameters,
		"authorizer":      req.RequestContext.Authorizer,
	})
	if err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	return events.APIGatewayProxyResponse{
		StatusCode: 200,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(b),
	}, nil
}

func main() { lambda.Start(handle) }
