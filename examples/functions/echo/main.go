// Command echo answers any API Gateway proxy event (payload 1.0 or 2.0)
// with the event itself as a JSON body, so a test can see exactly what the
// function was given: requestContext.authorizer above all.
package main

import (
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

type response struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
}

func handle(event json.RawMessage) (response, error) {
	return response{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(event)}, nil
}

func main() { lambda.Start(handle) }
