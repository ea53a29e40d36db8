package apigw

import (
	"slices"
	"strconv"

	"github.com/turnout/turnout/internal/jsonstr"
)

// The function path's events are appended by hand: encoding/json's
// reflection over the two event structs was about 6% of the gateway's CPU
// on the function route. The bytes are exactly what marshal writes for the
// same struct (TestEncodeMatchesMarshal and FuzzEventEncode hold them to
// it): fields in encoding/json's order, with the aws-lambda-go tags'
// omitempty, nil maps and slices as null, map keys sorted bytewise. Values
// of type any, and blocks turnout never fills (IAM, client certificates),
// go through marshal.

// appendEventV2 appends the JSON of ev, byte for byte marshal(ev).
func appendEventV2(b []byte, ev *eventV2) ([]byte, error) {
	e := &ev.APIGatewayV2HTTPRequest
	b = append(b, `{"version":`...)
	b = appendString(b, e.Version)
	b = append(b, `,"routeKey":`...)
	b = appendString(b, e.RouteKey)
	b = append(b, `,"rawPath":`...)
	b = appendString(b, e.RawPath)
	b = append(b, `,"rawQueryString":`...)
	b = appendString(b, e.RawQueryString)
	if len(e.Cookies) > 0 {
		b = append(b, `,"cookies":`...)
		b = appendStrings(b, e.Cookies)
	}
	b = append(b, `,"headers":`...)
	b = appendStringMap(b, e.Headers)
	if len(e.QueryStringParameters) > 0 {
		b = append(b, `,"queryStringParameters":`...)
		b = appendStringMap(b, e.QueryStringParameters)
	}
	if len(e.PathParameters) > 0 {
		b = append(b, `,"pathParameters":`...)
		b = appendStringMap(b, e.PathParameters)
	}
	if len(e.StageVariables) > 0 {
		b = append(b, `,"stageVariables":`...)
		b = appendStringMap(b, e.StageVariables)
	}
	if e.Body != "" {
		b = append(b, `,"body":`...)
		b = appendString(b, e.Body)
	}
	b = append(b, `,"isBase64Encoded":`...)
	b = strconv.AppendBool(b, e.IsBase64Encoded)

	// eventV2's own requestContext shadows the embedded one and, being
	// outside the embedded struct, comes last; so does contextV2's
	// authentication.
	rc := &ev.RequestContext
	b = append(b, `,"requestContext":{"routeKey":`...)
	b = appendString(b, rc.RouteKey)
	b = append(b, `,"accountId":`...)
	b = appendString(b, rc.AccountID)
	b = append(b, `,"stage":`...)
	b = appendString(b, rc.Stage)
	b = append(b, `,"requestId":`...)
	b = appendString(b, rc.RequestID)
	if a := rc.Authorizer; a != nil {
		b = append(b, `,"authorizer":{`...)
		comma := false
		if a.JWT != nil {
			b = append(b, `"jwt":{"claims":`...)
			b = appendStringMap(b, a.JWT.Claims)
			if len(a.JWT.Scopes) > 0 {
				b = append(b, `,"scopes":`...)
				b = appendStrings(b, a.JWT.Scopes)
			}
			b = append(b, '}')
			comma = true
		}
		if len(a.Lambda) > 0 {
			if comma {
				b = append(b, ',')
			}
			b = append(b, `"lambda":`...)
			var err error
			if b, err = appendAnyMap(b, a.Lambda); err != nil {
				return nil, err
			}
			comma = true
		}
		if a.IAM != nil {
			if comma {
				b = append(b, ',')
			}
			b = append(b, `"iam":`...)
			var err error
			if b, err = appendMarshal(b, a.IAM); err != nil {
				return nil, err
			}
		}
		b = append(b, '}')
	}
	b = append(b, `,"apiId":`...)
	b = appendString(b, rc.APIID)
	b = append(b, `,"domainName":`...)
	b = appendString(b, rc.DomainName)
	b = append(b, `,"domainPrefix":`...)
	b = appendString(b, rc.DomainPrefix)
	b = append(b, `,"time":`...)
	b = appendString(b, rc.Time)
	b = append(b, `,"timeEpoch":`...)
	b = strconv.AppendInt(b, rc.TimeEpoch, 10)
	h := &rc.HTTP
	b = append(b, `,"http":{"method":`...)
	b = appendString(b, h.Method)
	b = append(b, `,"path":`...)
	b = appendString(b, h.Path)
	b = append(b, `,"protocol":`...)
	b = appendString(b, h.Protocol)
	b = append(b, `,"sourceIp":`...)
	b = appendString(b, h.SourceIP)
	b = append(b, `,"userAgent":`...)
	b = appendString(b, h.UserAgent)
	b = append(b, '}')
	if rc.Authentication != nil {
		b = append(b, `,"authentication":`...)
		var err error
		if b, err = appendMarshal(b, rc.Authentication); err != nil {
			return nil, err
		}
	}
	return append(b, `}}`...), nil
}

// appendEventV1 appends the JSON of ev, byte for byte marshal(ev).
func appendEventV1(b []byte, ev *eventV1) ([]byte, error) {
	e := &ev.APIGatewayProxyRequest
	b = append(b, `{"resource":`...)
	b = appendString(b, e.Resource)
	b = append(b, `,"path":`...)
	b = appendString(b, e.Path)
	b = append(b, `,"httpMethod":`...)
	b = appendString(b, e.HTTPMethod)
	b = append(b, `,"headers":`...)
	b = appendStringMap(b, e.Headers)
	b = append(b, `,"multiValueHeaders":`...)
	b = appendStringsMap(b, e.MultiValueHeaders)
	b = append(b, `,"queryStringParameters":`...)
	b = appendStringMap(b, e.QueryStringParameters)
	b = append(b, `,"multiValueQueryStringParameters":`...)
	b = appendStringsMap(b, e.MultiValueQueryStringParameters)
	b = append(b, `,"pathParameters":`...)
	b = appendStringMap(b, e.PathParameters)
	b = append(b, `,"stageVariables":`...)
	b = appendStringMap(b, e.StageVariables)

	rc := &e.RequestContext
	b = append(b, `,"requestContext":{"accountId":`...)
	b = appendString(b, rc.AccountID)
	b = append(b, `,"resourceId":`...)
	b = appendString(b, rc.ResourceID)
	if rc.OperationName != "" {
		b = append(b, `,"operationName":`...)
		b = appendString(b, rc.OperationName)
	}
	b = append(b, `,"stage":`...)
	b = appendString(b, rc.Stage)
	b = append(b, `,"domainName":`...)
	b = appendString(b, rc.DomainName)
	b = append(b, `,"domainPrefix":`...)
	b = appendString(b, rc.DomainPrefix)
	b = append(b, `,"requestId":`...)
	b = appendString(b, rc.RequestID)
	b = append(b, `,"extendedRequestId":`...)
	b = appendString(b, rc.ExtendedRequestID)
	b = append(b, `,"protocol":`...)
	b = appendString(b, rc.Protocol)

	id := &rc.Identity
	b = append(b, `,"identity":{`...)
	mark := len(b)
	b = appendOptional(b, mark, `"cognitoIdentityPoolId":`, id.CognitoIdentityPoolID)
	b = appendOptional(b, mark, `"accountId":`, id.AccountID)
	b = appendOptional(b, mark, `"cognitoIdentityId":`, id.CognitoIdentityID)
	b = appendOptional(b, mark, `"caller":`, id.Caller)
	b = appendOptional(b, mark, `"apiKey":`, id.APIKey)
	b = appendOptional(b, mark, `"apiKeyId":`, id.APIKeyID)
	b = appendOptional(b, mark, `"accessKey":`, id.AccessKey)
	if len(b) > mark {
		b = append(b, ',')
	}
	b = append(b, `"sourceIp":`...)
	b = appendString(b, id.SourceIP)
	b = appendOptional(b, mark, `"cognitoAuthenticationType":`, id.CognitoAuthenticationType)
	b = appendOptional(b, mark, `"cognitoAuthenticationProvider":`, id.CognitoAuthenticationProvider)
	b = appendOptional(b, mark, `"userArn":`, id.UserArn)
	b = append(b, `,"userAgent":`...)
	b = appendString(b, id.UserAgent)
	b = appendOptional(b, mark, `"user":`, id.User)
	if id.ClientCert != nil {
		b = append(b, `,"clientCert":`...)
		var err error
		if b, err = appendMarshal(b, id.ClientCert); err != nil {
			return nil, err
		}
	}
	b = append(b, '}')

	b = append(b, `,"resourcePath":`...)
	b = appendString(b, rc.ResourcePath)
	b = append(b, `,"path":`...)
	b = appendString(b, rc.Path)
	b = append(b, `,"authorizer":`...)
	var err error
	if b, err = appendAnyMap(b, rc.Authorizer); err != nil {
		return nil, err
	}
	b = append(b, `,"httpMethod":`...)
	b = appendString(b, rc.HTTPMethod)
	b = append(b, `,"requestTime":`...)
	b = appendString(b, rc.RequestTime)
	b = append(b, `,"requestTimeEpoch":`...)
	b = strconv.AppendInt(b, rc.RequestTimeEpoch, 10)
	b = append(b, `,"apiId":`...)
	b = appendString(b, rc.APIID)
	b = append(b, '}')

	// eventV1's own body and isBase64Encoded shadow the embedded ones and
	// come last.
	b = append(b, `,"body":`...)
	if ev.Body == nil {
		b = append(b, "null"...)
	} else {
		b = appendString(b, *ev.Body)
	}
	b = append(b, `,"isBase64Encoded":`...)
	b = strconv.AppendBool(b, ev.IsBase64Encoded)
	return append(b, '}'), nil
}

// sizeV2 and sizeV1 guess an event's length so that it is appended into
// one allocation: the fixed fields' ~450 bytes, the variable ones with an
// eighth more for escapes.
func sizeV2(ev *eventV2) int {
	e := &ev.APIGatewayV2HTTPRequest
	n := 512 + len(e.RawPath) + len(e.RawQueryString)*2 + len(e.Body) +
		len(ev.RequestContext.HTTP.UserAgent)
	for k, v := range e.Headers {
		n += len(k) + len(v) + 6
	}
	for _, c := range e.Cookies {
		n += len(c) + 3
	}
	return n + n/8
}

func sizeV1(ev *eventV1) int {
	e := &ev.APIGatewayProxyRequest
	n := 640 + len(e.Path)*2 + len(e.Resource)*2 + len(e.RequestContext.Identity.UserAgent)
	if ev.Body != nil {
		n += len(*ev.Body)
	}
	for k, vs := range e.MultiValueHeaders {
		n += 2*len(k) + 10
		for _, v := range vs {
			n += 2*len(v) + 3
		}
	}
	for k, vs := range e.MultiValueQueryStringParameters {
		n += 2*len(k) + 10
		for _, v := range vs {
			n += 2*len(v) + 3
		}
	}
	return n + n/8
}

// appendOptional appends an omitempty string field: nothing when s is
// empty, else key and value, after a comma unless nothing follows mark
// (the object's opening brace) yet.
func appendOptional(b []byte, mark int, key, s string) []byte {
	if s == "" {
		return b
	}
	if len(b) > mark {
		b = append(b, ',')
	}
	b = append(b, key...)
	return appendString(b, s)
}

// appendMarshal appends marshal(v): the parts turnout does not spell by
// hand. Options are the same at every depth, so a nested value's bytes are
// its own marshal's.
func appendMarshal(b []byte, v any) ([]byte, error) {
	j, err := marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}

// appendAny appends the JSON of an authorizer value: the types turnout's
// own authorizer blocks hold by hand, anything else through marshal.
func appendAny(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case map[string]string:
		return appendStringMap(b, v), nil
	case []string:
		return appendStrings(b, v), nil
	case map[string]any:
		return appendAnyMap(b, v)
	}
	return appendMarshal(b, v)
}

// appendAnyMap appends m with its keys sorted; nil is null.
func appendAnyMap(b []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	var buf [16]string
	b = append(b, '{')
	for i, k := range appendKeys(buf[:0], m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendAny(b, m[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendStringMap appends m with its keys sorted; nil is null.
func appendStringMap(b []byte, m map[string]string) []byte {
	return appendMap(b, m, appendString)
}

// appendStringsMap appends m with its keys sorted; nil is null, and so is
// a nil value.
func appendStringsMap(b []byte, m map[string][]string) []byte {
	return appendMap(b, m, appendStrings)
}

// appendMap appends m as a JSON object, its keys sorted as encoding/json
// sorts them, each value by appendV; nil is null.
func appendMap[V any](b []byte, m map[string]V, appendV func([]byte, V) []byte) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	var buf [16]string
	b = append(b, '{')
	for i, k := range appendKeys(buf[:0], m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendV(b, m[k])
	}
	return append(b, '}')
}

// appendKeys appends m's keys to dst in encoding/json's order: bytewise.
func appendKeys[V any](dst []string, m map[string]V) []string {
	for k := range m {
		dst = append(dst, k)
	}
	slices.Sort(dst)
	return dst
}

// appendStrings appends ss as a JSON array; nil is null.
func appendStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendString appends s quoted as encoding/json quotes it (HTML escaping
// off).
func appendString(b []byte, s string) []byte { return jsonstr.Append(b, s) }
