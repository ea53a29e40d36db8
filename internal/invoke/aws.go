package invoke

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/turnout/turnout/internal/config"
)

// AWS invokes functions on AWS Lambda through aws-sdk-go-v2 (or on anything
// speaking the Lambda Invoke API, such as another turnout's NewServer, when
// a function's Endpoint is set).
//
// The SDK's retries are turned off: an invocation is not idempotent, and a
// failed one falls back to the legacy origin instead of running the function
// twice.
type AWS struct {
	fns map[string]awsTarget // by turnout function name
}

type awsTarget struct {
	client    *lambda.Client
	function  string // the name or ARN on Lambda, without qualifier
	qualifier string // from the config's "NAME:QUALIFIER", or ""
}

// NewAWS returns an invoker for the functions of fns that have AWS set
// (others are ignored). Functions share a client per (region, endpoint);
// each client uses the default credential chain (environment, shared files,
// SSO, instance role, ...) with the function's region, or the region of its
// ARN, or the chain's default region.
func NewAWS(ctx context.Context, fns []config.Function) (*AWS, error) {
	type clientKey struct{ region, endpoint string }
	clients := map[clientKey]*lambda.Client{}
	a := &AWS{fns: map[string]awsTarget{}}
	for _, f := range fns {
		if f.AWS == nil {
			continue
		}
		function, qualifier := splitQualifier(f.AWS.Function)
		region := f.AWS.Region
		if region == "" {
			region = arnRegion(function)
		}
		key := clientKey{region, f.AWS.Endpoint}
		c := clients[key]
		if c == nil {
			var opts []func(*awsconfig.LoadOptions) error
			if region != "" {
				opts = append(opts, awsconfig.WithRegion(region))
			}
			cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
			if err != nil {
				return nil, fmt.Errorf("function %s: load AWS config: %w", f.Name, err)
			}
			if cfg.Region == "" {
				return nil, fmt.Errorf("function %s: no AWS region: set aws.region, use a function ARN, or set AWS_REGION", f.Name)
			}
			endpoint := f.AWS.Endpoint
			c = lambda.NewFromConfig(cfg, func(o *lambda.Options) {
				if endpoint != "" {
					o.BaseEndpoint = aws.String(endpoint)
				}
				o.RetryMaxAttempts = 1
			})
			clients[key] = c
		}
		a.fns[f.Name] = awsTarget{client: c, function: function, qualifier: qualifier}
	}
	return a, nil
}

// Invoke runs req synchronously (RequestResponse) on Lambda. req.Qualifier,
// when set, takes precedence over a qualifier in the config's function name.
func (a *AWS) Invoke(ctx context.Context, req Request) (Response, error) {
	t, ok := a.fns[req.Function]
	if !ok {
		return Response{}, &Error{Kind: KindNotFound, Msg: fmt.Sprintf("function %s is not an AWS Lambda function in the config", req.Function)}
	}
	in := &lambda.InvokeInput{
		FunctionName:   aws.String(t.function),
		InvocationType: types.InvocationTypeRequestResponse,
		Payload:        req.Payload,
	}
	if q := req.Qualifier; q != "" {
		in.Qualifier = aws.String(q)
	} else if t.qualifier != "" {
		in.Qualifier = aws.String(t.qualifier)
	}
	if req.LogTail {
		in.LogType = types.LogTypeTail
	}
	if req.ClientContext != "" {
		in.ClientContext = aws.String(req.ClientContext)
	}
	var optFns []func(*lambda.Options)
	if req.TraceID != "" {
		optFns = append(optFns, func(o *lambda.Options) {
			o.APIOptions = append(o.APIOptions, smithyhttp.SetHeaderValue("X-Amzn-Trace-Id", req.TraceID))
		})
	}
	out, err := t.client.Invoke(ctx, in, optFns...)
	if err != nil {
		return Response{}, fromAWSError(req.Function, err)
	}
	resp := Response{
		Payload:         out.Payload,
		FunctionError:   aws.ToString(out.FunctionError),
		ExecutedVersion: aws.ToString(out.ExecutedVersion),
	}
	if lr := aws.ToString(out.LogResult); lr != "" {
		tail, err := base64.StdEncoding.DecodeString(lr)
		if err != nil {
			tail = []byte(lr)
		}
		resp.LogTail = string(tail)
	}
	if resp.FunctionError != "" {
		var doc struct{ ErrorType, ErrorMessage string }
		if json.Unmarshal(resp.Payload, &doc) == nil {
			switch {
			case doc.ErrorType == responseTooLargeType:
				return Response{}, &Error{Kind: KindResponseTooLarge, Msg: fmt.Sprintf("invoke %s: %s", req.Function, doc.ErrorMessage)}
			case strings.Contains(doc.ErrorMessage, "Task timed out after"):
				resp.TimedOut = true
			}
		}
	}
	return resp, nil
}

// fromAWSError maps the SDK's exceptions to Error kinds.
func fromAWSError(function string, err error) error {
	msg := "invoke " + function + " on AWS Lambda"
	var (
		notFound *types.ResourceNotFoundException
		throttle *types.TooManyRequestsException
		tooLarge *types.RequestTooLargeException
		invalid  *types.InvalidRequestContentException
		notReady *types.ResourceNotReadyException
	)
	switch {
	case errors.As(err, &notFound):
		return &Error{Kind: KindNotFound, Msg: msg, Err: err}
	case errors.As(err, &throttle):
		return &Error{Kind: KindThrottled, Reason: string(throttle.Reason), Msg: msg, Err: err}
	case errors.As(err, &tooLarge):
		return &Error{Kind: KindTooLarge, Msg: msg, Err: err}
	case errors.As(err, &invalid):
		return &Error{Kind: KindInvalidRequest, Msg: msg, Err: err}
	case errors.As(err, &notReady):
		return &Error{Kind: KindInitFailed, Msg: msg, Err: err}
	}
	return &Error{Kind: KindService, Msg: msg, Err: err}
}

// splitQualifier splits "NAME:QUALIFIER" or "ARN:QUALIFIER" (an ARN has
// seven ':'-separated parts without one).
func splitQualifier(s string) (function, qualifier string) {
	parts := strings.Split(s, ":")
	n := 2 // NAME:QUALIFIER
	switch {
	case len(parts) >= 7 && parts[0] == "arn":
		n = 8
	case len(parts) >= 3 && parts[1] == "function":
		n = 4 // ACCOUNT:function:NAME:QUALIFIER
	}
	if len(parts) == n {
		return strings.Join(parts[:n-1], ":"), parts[n-1]
	}
	return s, ""
}

// arnRegion returns the region of a function ARN, or "".
func arnRegion(s string) string {
	parts := strings.Split(s, ":")
	if len(parts) >= 7 && parts[0] == "arn" && parts[2] == "lambda" {
		return parts[3]
	}
	return ""
}
