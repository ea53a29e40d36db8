// Package invoke defines how turnout runs a function (the Invoker interface
// and its errors), serves the AWS Lambda Invoke API over any Invoker, and
// invokes functions on AWS Lambda itself through the official SDK.
package invoke

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Invoker runs one invocation of a function. The hosted-function pool
// (internal/fnhost) and AWS Lambda (AWS in this package) implement it.
type Invoker interface {
	Invoke(ctx context.Context, req Request) (Response, error)
}

// Request is one invocation.
type Request struct {
	Function  string // the function's name in turnout's config
	Qualifier string // version or alias; "" or "$LATEST" for the latest
	Payload   []byte // the event, JSON
	// PayloadChecked says the caller built Payload as JSON itself (the
	// gateway's events) or already checked it (the Invoke API): a hosted
	// function then takes it without scanning it again.
	PayloadChecked bool
	// RequestID is the invocation's id (Lambda-Runtime-Aws-Request-Id); the
	// gateway passes the HTTP request's id so logs line up. Generated if "".
	RequestID     string
	ClientContext string // base64 JSON, passed through
	TraceID       string // X-Amzn-Trace-Id, passed through
	// LogTail asks for the last 4 KB of the invocation's log in Response.LogTail.
	LogTail bool
}

// Response is a completed invocation. A function that fails still completes:
// FunctionError is set and Payload holds the error document
// ({"errorMessage", "errorType", ...}), as Lambda reports it.
type Response struct {
	Payload []byte
	// FunctionError is "" on success, else "Unhandled": Lambda reports a
	// crash, a timeout and an error posted to the Runtime API's error
	// endpoint (a handler returning an error) all as "Unhandled".
	FunctionError   string
	LogTail         string // raw text, at most 4 KB (the API base64-encodes it)
	ExecutedVersion string // "$LATEST" for hosted functions
	// TimedOut is set when the invocation ran past the function's timeout
	// (FunctionError is then "Unhandled" with "Task timed out after ...").
	TimedOut bool
	// InitDuration, when above 0, is how long the invocation waited for its
	// instance to start: a cold start. Hosted functions set it; AWS does
	// not say (0).
	InitDuration time.Duration
}

// ErrorKind classifies invocations that could not run (or complete) at all.
type ErrorKind int

const (
	// KindNotFound: no such function (ResourceNotFoundException, 404).
	KindNotFound ErrorKind = iota + 1
	// KindThrottled: the function is at its concurrency limit
	// (TooManyRequestsException, 429, Reason "ReservedFunctionConcurrentInvocationLimitExceeded").
	KindThrottled
	// KindTooLarge: the request payload is over the limit (RequestTooLargeException, 413).
	KindTooLarge
	// KindInvalidRequest: the payload is not valid JSON (InvalidRequestContentException, 400).
	KindInvalidRequest
	// KindResponseTooLarge: the function's response is over the limit (502 on a route).
	KindResponseTooLarge
	// KindInitFailed: the function could not start (ResourceNotReadyException
	// from AWS). Hosted functions report a failed init as Lambda does, as a
	// Response with FunctionError set and the runtime's error document.
	KindInitFailed
	// KindService: anything else (the instance died, AWS failed, ...).
	KindService
)

func (k ErrorKind) String() string {
	switch k {
	case KindNotFound:
		return "not_found"
	case KindThrottled:
		return "throttled"
	case KindTooLarge:
		return "request_too_large"
	case KindInvalidRequest:
		return "invalid_request"
	case KindResponseTooLarge:
		return "response_too_large"
	case KindInitFailed:
		return "init_failed"
	}
	return "service"
}

// Error is an invocation that did not produce a Response.
type Error struct {
	Kind   ErrorKind
	Reason string // AWS's Reason field where it has one
	Msg    string
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Msg, e.Err)
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns err's kind, or KindService for other errors.
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindService
}
