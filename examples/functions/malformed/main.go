// Command malformed returns a document that is valid JSON but not a valid
// API Gateway proxy response (statusCode is a string), for the gateway's
// malformed-response handling.
package main

import (
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

func handle(event json.RawMessage) (json.RawMessage, error) {
	return json.RawMessage(`{"statusCode": "abc"}`), nil
}

func main() { lambda.Start(handle) }
