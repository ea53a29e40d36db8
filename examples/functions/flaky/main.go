// Command flaky answers API Gateway 2.0 events with 200, or fails with a
// handler error while the file named by FLAG_FILE exists: a function that
// can be broken and mended from outside, for chaos tests.
package main

import (
	"errors"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	if f := os.Getenv("FLAG_FILE"); f != "" {
		if _, err := os.Stat(f); err == nil {
			return events.APIGatewayV2HTTPResponse{}, errors.New("flaky: flag file present")
		}
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "flaky ok"}, nil
}

func main() { lambda.Start(handle) }
