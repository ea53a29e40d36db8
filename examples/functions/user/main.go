// Command user serves GET /user/{id} as a function (payload format 2.0),
// answering like the legacy monolith's endpoint (examples/legacy) so a route
// can move between the two without clients noticing.
package main

import (
	"encoding/json"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

type user struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
	Plan  string `json:"plan"`
}

func handle(req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	id := req.PathParameters["id"]
	if id == "" {
		return jsonResponse(400, map[string]string{"error": "missing user id"})
	}
	return jsonResponse(200, user{ID: id, Name: "User " + id, Email: "user" + id + "@example.com", Plan: "free"})
}

func jsonResponse(status int, v any) (events.APIGatewayV2HTTPResponse, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(b) + "\n",
	}, nil
}

func main() { lambda.Start(handle) }
