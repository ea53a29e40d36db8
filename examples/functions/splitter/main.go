// Command splitter answers with a response header (or cookie) whose value
// carries CR, LF or NUL, chosen by the "mode" query parameter, so tests can
// check that turnout never lets a function split a response header.
//
//	header-crlf   X-Split: "a\r\nSet-Cookie: evil=1"
//	header-lf     X-Split: "a\nSet-Cookie: evil=1"
//	header-cr     X-Split: "a\rSet-Cookie: evil=1"
//	header-nul    X-Split: "a\x00b"
//	multi-crlf    multiValueHeaders X-Split: ["ok", "a\r\nSet-Cookie: evil=1"] (payload 1.0)
//	cookie-crlf   cookies: ["a=1\r\nSet-Cookie: evil=1"]
//	name-crlf     a header named "X-A\r\nSet-Cookie: evil"
//	anything else X-Split: "clean"
package main

import (
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	QueryStringParameters map[string]string `json:"queryStringParameters"`
}

func handle(ev event) (json.RawMessage, error) {
	const evil = "Set-Cookie: evil=1"
	resp := map[string]any{"statusCode": 200, "body": "split"}
	switch ev.QueryStringParameters["mode"] {
	case "header-crlf":
		resp["headers"] = map[string]string{"X-Split": "a\r\n" + evil}
	case "header-lf":
		resp["headers"] = map[string]string{"X-Split": "a\n" + evil}
	case "header-cr":
		resp["headers"] = map[string]string{"X-Split": "a\r" + evil}
	case "header-nul":
		resp["headers"] = map[string]string{"X-Split": "a\x00b"}
	case "multi-crlf":
		resp["multiValueHeaders"] = map[string][]string{"X-Split": {"ok", "a\r\n" + evil}}
	case "cookie-crlf":
		resp["cookies"] = []string{"a=1\r\n" + evil}
	case "name-crlf":
		resp["headers"] = map[string]string{"X-A\r\nSet-Cookie": "evil"}
	default:
		resp["headers"] = map[string]string{"X-Split": "clean"}
	}
	return json.Marshal(resp)
}

func main() { lambda.Start(handle) }
