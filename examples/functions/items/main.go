// Command items serves GET /items/{id} as a function (payload format 2.0),
// answering as a legacy catalogue endpoint would:
//
//	{"id": 7, "name": "Item 7", "price": 7.5, "tags": ["a", "b"],
//	 "generatedAt": "<now>", "requestId": "<random>"}
//
// with a fresh timestamp and random id on every call — the fields a shadow's
// noise cancelling learns to ignore. ITEMS_MODE=rename answers as a port
// that changed the contract: "name" renamed "title", and "price" sent as a
// string. Both are for the shadow-traffic tests and docs/shadow.md.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	id, err := strconv.Atoi(req.PathParameters["id"])
	if err != nil {
		return respond(400, map[string]any{"error": "the item id is a number"})
	}
	random := make([]byte, 8)
	rand.Read(random)
	item := map[string]any{
		"id":          id,
		"name":        "Item " + strconv.Itoa(id),
		"price":       float64(id) + 0.5,
		"tags":        []string{"a", "b"},
		"generatedAt": time.Now().UTC().Format(time.RFC3339Nano),
		"requestId":   hex.EncodeToString(random),
	}
	if os.Getenv("ITEMS_MODE") == "rename" {
		item["title"] = item["name"]
		delete(item, "name")
		item["price"] = strconv.FormatFloat(float64(id)+0.5, 'f', -1, 64)
	}
	return respond(200, item)
}

func respond(status int, v any) (events.APIGatewayV2HTTPResponse, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": "application/json", "Set-Cookie": "sid=fn-secret-cookie; HttpOnly"},
		Body:       string(b),
	}, nil
}

func main() { lambda.Start(handle) }
