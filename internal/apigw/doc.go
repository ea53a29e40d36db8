// Package apigw translates HTTP requests into API Gateway Lambda proxy events
// (payload format 1.0 and 2.0) and function responses back into HTTP
// responses, exactly where AWS documents the format and correctly where AWS
// is known to lose data.
//
// EventV1 and EventV2 build the event a function receives; ParseV1 and
// ParseV2 check everything a function returned, so that Response.Write never
// starts a response it cannot finish. Every Parse error wraps ErrMalformed,
// which the gateway treats as a reason to fall back to the legacy origin.
//
// The formats are those of
// https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html
// (1.0) and
// https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
// (2.0), and the types of github.com/aws/aws-lambda-go/events.
//
// # Differences from AWS
//
// Where AWS loses data, turnout keeps it:
//
//   - Query strings are split on "&" only. A ";" is data ("?idList=1;2;3"
//     gives idList = "1;2;3"); API Gateway and Go's url.ParseQuery treat it
//     as a separator or reject it. "+" is a space and %XX is decoded as in
//     HTML forms; a malformed escape such as "%zz" is kept literally instead
//     of failing the request. A key without "=" has the value ""; empty
//     pairs ("&&") are skipped.
//   - 1.0 multiValueQueryStringParameters and multiValueHeaders keep every
//     value in order; queryStringParameters and headers keep the last value,
//     as AWS does. 2.0 joins repeated values with "," as AWS does.
//
// Where the gateway has no AWS counterpart, the fields are filled as follows:
//
//   - No stage prefix: turnout serves the original URLs, so Info.Stage
//     defaults to "$default" for both formats (like an HTTP API's $default
//     stage) and path, rawPath and requestContext.path carry no stage. If a
//     Stage is set, 1.0 requestContext.path is "/"+Stage+path, as a REST API
//     reports it; rawPath never gets the stage.
//   - requestContext.accountId is "anonymous", apiId is "turnout",
//     1.0 resourceId is the route key, extendedRequestId equals requestId,
//     stageVariables is null (1.0) or absent (2.0), and there is no
//     authorizer or authentication (mTLS) block.
//   - 1.0 header names are Go's canonical form ("X-Request-Id") rather than
//     the exact bytes the client sent; 2.0 names are lower case, as in AWS.
//     The Host header is included (Go keeps it in Request.Host). Headers AWS
//     adds itself (X-Amzn-Trace-Id, X-Forwarded-Port, CloudFront-*) are not
//     invented, and Content-Length is present only if the client sent it.
//   - The path is the one that matched the route (Info.Path), escaped as
//     the client sent it after the gateway's normalisation (escapes of
//     unreserved characters decoded, others in upper case, bytes above 0x7F
//     escaped, "//" collapsed), so "/v1/user/J%C3%BCrgen%20a+b%2B100%25"
//     arrives as sent, not as "/v1/user/Jürgen a+b+100%". 1.0 path and
//     requestContext.path keep the escapes as REST APIs, Function URLs and
//     ALBs deliver them (HTTP APIs decode 1.0 path). 2.0 rawPath keeps them
//     too, as Function URLs do; HTTP APIs decode rawPath, which then cannot
//     tell "%2B" from "+" and is cut at a decoded "?". 2.0
//     requestContext.http.path is decoded, as both deliver it.
//     pathParameters are decoded in both formats (REST APIs were seen to
//     pass a {proxy+} value still escaped).
//     AWS spells route wildcards "{proxy+}": routeKey and resource do too.
//     A route on "/" (every path) has routeKey "$default".
//   - Bodies are sent as text when the Content-Type is textual (text/*,
//     JSON, XML, form-urlencoded, JavaScript, or none) and the bytes are
//     valid UTF-8, otherwise base64 with isBase64Encoded true. AWS REST APIs
//     instead consult the API's binaryMediaTypes. An empty body is null in
//     1.0 and absent in 2.0.
//   - 2.0 cookies are the Cookie headers split on ";" with surrounding
//     spaces trimmed, so "a=1;b=2" gives two cookies as "a=1; b=2" does.
//   - Header and query values that are not valid UTF-8 reach the function
//     with U+FFFD in place of the bad bytes (JSON strings are UTF-8).
//
// In responses:
//
//   - Keys are matched case-sensitively ("StatusCode" is not statusCode).
//   - statusCode must be an integer from 200 to 599 (AWS accepts 100–599):
//     a 1xx status cannot end an HTTP exchange, so it is malformed here.
//   - headers and multiValueHeaders are merged; for a name in both, only the
//     multiValueHeaders values are sent, as AWS documents for 1.0. 2.0
//     responses may use multiValueHeaders too (aws-lambda-go's
//     APIGatewayV2HTTPResponse has the field); AWS ignores it in 2.0.
//   - Header values may be JSON strings, numbers or booleans (sent as
//     written); null drops the header. Names must be HTTP tokens and values
//     must not contain control characters other than tab.
//   - Hop-by-hop headers set by a function (Connection and the headers it
//     names, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding,
//     Upgrade) and Content-Length are dropped; Content-Length is computed.
//   - No Content-Type is invented (except application/json for a 2.0
//     response without statusCode, as AWS documents) and Go's content
//     sniffing is suppressed, so the client gets exactly what the function
//     said.
//   - A 204 or 304 response has its body dropped, as HTTP requires.
package apigw
