package invoke

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// invocationsPrefix is the path of the Lambda Invoke API
// (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html):
// POST /2015-03-31/functions/{FunctionName}/invocations.
const invocationsPrefix = "/2015-03-31/functions/"

// Defaults for ServerOptions.
const (
	DefaultMaxRequestBytes     = 6 << 20 // Lambda's synchronous payload quota
	DefaultMaxAsyncInvocations = 64
	// logTailBytes is how much of the log X-Amz-Log-Result carries, as on Lambda.
	logTailBytes = 4 << 10
)

// ServerOptions configure NewServer.
type ServerOptions struct {
	// Invoker runs the invocations. Required.
	Invoker Invoker
	// Functions lists the function names the Invoker knows. When set, an
	// unknown name is answered 404 ResourceNotFoundException before the
	// Invoker is called (which matters for Event and DryRun invocations,
	// where nothing else would notice). When nil every name is passed on and
	// DryRun always succeeds.
	Functions func() []string
	// MaxRequestBytes bounds the request payload; over it the answer is
	// 413 RequestTooLargeException. Default 6 MB (DefaultMaxRequestBytes).
	MaxRequestBytes int64
	// MaxAsyncInvocations bounds the Event invocations running in the
	// background at once; over it an Event invocation is refused with
	// 429 TooManyRequestsException instead of queueing without bound.
	// Default 64.
	MaxAsyncInvocations int
	// Configurations describes the functions for ListFunctions,
	// GetFunction and GetFunctionConfiguration, which the AWS CLI, the
	// SDKs' waiters and IDE plugins call before they invoke. nil lists none.
	Configurations func() []FunctionConfiguration
	// Logger receives the outcome of Event invocations, which have no caller
	// to report to. Default slog.Default().
	Logger *slog.Logger
}

// NewServer returns the AWS Lambda Invoke API over opts.Invoker, so the AWS
// CLI and SDKs (and AWS in this package) can invoke turnout's functions,
// with the read-only operations clients call before they invoke:
// ListFunctions, GetFunction and GetFunctionConfiguration (from
// opts.Configurations).
//
// The server does no authentication: SigV4 Authorization headers from SDKs
// are accepted and ignored, so it must listen on loopback or a network only
// trusted clients reach.
//
// Differences from Lambda: Event invocations are not retried and have no
// dead-letter queue or destinations (their failures are logged); an empty
// payload is passed to the function as "{}". A function has only $LATEST;
// GetFunction's Code is empty (a hosted function is a local executable, with
// nothing to download) and configurations carry no Environment, so that no
// secret is handed to a client of this unauthenticated API.
func NewServer(opts ServerOptions) http.Handler {
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if opts.MaxAsyncInvocations <= 0 {
		opts.MaxAsyncInvocations = DefaultMaxAsyncInvocations
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &server{opts: opts, async: make(chan struct{}, opts.MaxAsyncInvocations)}
}

type server struct {
	opts  ServerOptions
	async chan struct{} // a token per running Event invocation
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := NewRequestID()
	w.Header().Set("X-Amzn-RequestId", reqID)

	// Parse the escaped path: an SDK escapes the ':' of ARNs, and a name
	// never contains '/'.
	path := r.URL.EscapedPath()
	rest, ok := strings.CutPrefix(path, invocationsPrefix)
	if r.Method == http.MethodGet {
		switch name, op, _ := strings.Cut(rest, "/"); {
		case path+"/" == invocationsPrefix || ok && rest == "":
			s.serveListFunctions(w, r)
			return
		case ok && name != "" && !strings.Contains(op, "/") && (op == "" || op == "configuration"):
			s.serveGetFunction(w, r, name, op == "configuration")
			return
		}
	}
	escName, ok2 := strings.CutSuffix(rest, "/invocations")
	if !ok || !ok2 || escName == "" || strings.Contains(escName, "/") {
		writeAPIError(w, http.StatusNotFound, "UnknownOperationException", fmt.Sprintf("unknown operation %s %s: this server has Invoke (POST %s{FunctionName}/invocations), ListFunctions, GetFunction and GetFunctionConfiguration", r.Method, r.URL.Path, invocationsPrefix))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeAPIError(w, http.StatusMethodNotAllowed, "MethodNotAllowedException", fmt.Sprintf("method %s not allowed: invoke with POST", r.Method))
		return
	}
	name, qualifier, ok := functionFromPath(w, r, escName)
	if !ok {
		return
	}

	invType := r.Header.Get("X-Amz-Invocation-Type")
	switch invType {
	case "":
		invType = "RequestResponse"
	case "RequestResponse", "Event", "DryRun":
	default:
		writeAPIError(w, http.StatusBadRequest, "InvalidParameterValueException", fmt.Sprintf("X-Amz-Invocation-Type %q: use RequestResponse, Event or DryRun", invType))
		return
	}
	logType := r.Header.Get("X-Amz-Log-Type")
	if logType != "" && logType != "None" && logType != "Tail" {
		writeAPIError(w, http.StatusBadRequest, "InvalidParameterValueException", fmt.Sprintf("X-Amz-Log-Type %q: use None or Tail", logType))
		return
	}

	if s.opts.Functions != nil && !slices.Contains(s.opts.Functions(), name) {
		writeAPIError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+name)
		return
	}

	payload, err := s.readPayload(r)
	if err != nil {
		var ie *Error
		if errors.As(err, &ie) {
			s.writeInvokeError(w, ie)
		} else {
			writeAPIError(w, http.StatusBadRequest, "InvalidRequestContentException", "read request body: "+err.Error())
		}
		return
	}

	req := Request{
		Function:  name,
		Qualifier: qualifier,
		Payload:   payload,
		// readPayload checked it.
		PayloadChecked: true,
		RequestID:      reqID,
		ClientContext:  r.Header.Get("X-Amz-Client-Context"),
		TraceID:        r.Header.Get("X-Amzn-Trace-Id"),
	}
	switch invType {
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
		return
	case "Event":
		s.invokeAsync(w, r, req)
		return
	}

	req.LogTail = logType == "Tail"
	resp, err := s.opts.Invoker.Invoke(r.Context(), req)
	if err != nil {
		var ie *Error
		if !errors.As(err, &ie) {
			ie = &Error{Kind: KindService, Msg: "invoke " + name, Err: err}
		}
		s.writeInvokeError(w, ie)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if resp.FunctionError != "" {
		h.Set("X-Amz-Function-Error", resp.FunctionError)
	}
	version := resp.ExecutedVersion
	if version == "" {
		version = "$LATEST"
	}
	h.Set("X-Amz-Executed-Version", version)
	if req.LogTail {
		tail := resp.LogTail
		if len(tail) > logTailBytes {
			tail = tail[len(tail)-logTailBytes:]
		}
		h.Set("X-Amz-Log-Result", base64.StdEncoding.EncodeToString([]byte(tail)))
	}
	w.WriteHeader(http.StatusOK)
	w.Write(resp.Payload)
}

// readPayload reads at most MaxRequestBytes+1 bytes of the body and checks
// that it is JSON. The errors are *Error of KindTooLarge or KindInvalidRequest.
// functionFromPath reads the function name and qualifier of an operation on
// one function from the path segment escName and the Qualifier query
// parameter, as Lambda does for Invoke, GetFunction and
// GetFunctionConfiguration. On a bad name it answers 400 and returns false.
func functionFromPath(w http.ResponseWriter, r *http.Request, escName string) (name, qualifier string, ok bool) {
	rawName, err := url.PathUnescape(escName)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "InvalidParameterValueException", "invalid function name encoding: "+err.Error())
		return "", "", false
	}
	name, qualifier, err = ParseFunctionName(rawName)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "InvalidParameterValueException", err.Error())
		return "", "", false
	}
	if q := r.URL.Query().Get("Qualifier"); q != "" {
		if qualifier != "" && qualifier != q {
			writeAPIError(w, http.StatusBadRequest, "InvalidParameterValueException", fmt.Sprintf("the qualifier %q in the function name does not match the Qualifier parameter %q", qualifier, q))
			return "", "", false
		}
		qualifier = q
	}
	return name, qualifier, true
}

func (s *server) readPayload(r *http.Request) ([]byte, error) {
	limit := s.opts.MaxRequestBytes
	tooLarge := &Error{Kind: KindTooLarge, Msg: fmt.Sprintf("Request must be smaller than %d bytes for the Invoke operation", limit)}
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, tooLarge
	}
	if len(bytes.TrimSpace(b)) == 0 {
		// Lambda hands a function invoked without a payload "{}".
		return []byte("{}"), nil
	}
	if !json.Valid(b) {
		return nil, &Error{Kind: KindInvalidRequest, Msg: "Could not parse request body into json: the payload is not valid JSON"}
	}
	return b, nil
}

// invokeAsync runs req in the background and answers 202, or 429 when
// MaxAsyncInvocations are already running.
func (s *server) invokeAsync(w http.ResponseWriter, r *http.Request, req Request) {
	select {
	case s.async <- struct{}{}:
	default:
		s.writeInvokeError(w, &Error{Kind: KindThrottled, Reason: "ConcurrentInvocationLimitExceeded",
			Msg: fmt.Sprintf("Rate Exceeded: %d asynchronous invocations are already running", cap(s.async))})
		return
	}
	// The invocation outlives the HTTP request; the Invoker bounds it by the
	// function's timeout.
	ctx := context.WithoutCancel(r.Context())
	go func() {
		defer func() { <-s.async }()
		log := s.opts.Logger.With("function", req.Function, "request_id", req.RequestID)
		resp, err := s.opts.Invoker.Invoke(ctx, req)
		switch {
		case err != nil:
			log.Warn("asynchronous invocation failed", "kind", KindOf(err).String(), "err", err)
		case resp.FunctionError != "":
			log.Warn("asynchronous invocation returned a function error", "function_error", resp.FunctionError, "payload", truncate(resp.Payload, 1024))
		default:
			log.Debug("asynchronous invocation done")
		}
	}()
	w.WriteHeader(http.StatusAccepted)
}

// An AWS exception: its HTTP status and X-Amzn-ErrorType.
type awsException struct {
	status int
	typ    string
}

// exceptionFor maps an Error kind to the exception Lambda answers with.
//
// KindInitFailed has no exact Lambda counterpart (Lambda reports a failed
// init as a function error); ResourceNotReadyException (502, "the function
// is not ready, try again later") is the closest exception an SDK knows, and
// AWS maps it back to KindInitFailed.
//
// KindResponseTooLarge is not an exception on Lambda either: Lambda answers
// 200 with X-Amz-Function-Error: Unhandled and an error document of
// errorType "Function.ResponseSizeTooLarge". The server does the same, and
// AWS maps that document back to KindResponseTooLarge.
func exceptionFor(k ErrorKind) awsException {
	switch k {
	case KindNotFound:
		return awsException{http.StatusNotFound, "ResourceNotFoundException"}
	case KindThrottled:
		return awsException{http.StatusTooManyRequests, "TooManyRequestsException"}
	case KindTooLarge:
		return awsException{http.StatusRequestEntityTooLarge, "RequestTooLargeException"}
	case KindInvalidRequest:
		return awsException{http.StatusBadRequest, "InvalidRequestContentException"}
	case KindInitFailed:
		return awsException{http.StatusBadGateway, "ResourceNotReadyException"}
	}
	return awsException{http.StatusInternalServerError, "ServiceException"}
}

// responseTooLargeType is the errorType Lambda reports for a response over
// its payload quota.
const responseTooLargeType = "Function.ResponseSizeTooLarge"

func (s *server) writeInvokeError(w http.ResponseWriter, e *Error) {
	if e.Kind == KindResponseTooLarge {
		doc, _ := json.Marshal(map[string]string{"errorType": responseTooLargeType, "errorMessage": e.Error()})
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("X-Amz-Function-Error", "Unhandled")
		h.Set("X-Amz-Executed-Version", "$LATEST")
		w.WriteHeader(http.StatusOK)
		w.Write(doc)
		return
	}
	ex := exceptionFor(e.Kind)
	body := map[string]string{"message": e.Error()}
	if e.Kind == KindThrottled {
		reason := e.Reason
		if reason == "" {
			reason = "ReservedFunctionConcurrentInvocationLimitExceeded"
		}
		body["Reason"] = reason
		w.Header().Set("Retry-After", "1")
	}
	writeAPIErrorBody(w, ex.status, ex.typ, body)
}

// writeAPIError writes an AWS REST-JSON error: the exception's name in
// X-Amzn-ErrorType (which the SDK reads first) and the body
// {"Type": "User"|"Service", "message": ...} with which Lambda answers.
func writeAPIError(w http.ResponseWriter, status int, typ, msg string) {
	writeAPIErrorBody(w, status, typ, map[string]string{"message": msg})
}

func writeAPIErrorBody(w http.ResponseWriter, status int, typ string, body map[string]string) {
	body["Type"] = "User"
	if status >= 500 {
		body["Type"] = "Service"
	}
	b, _ := json.Marshal(body)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	w.Write(b)
}

// ParseFunctionName splits the FunctionName of an Invoke request into the
// function's name and qualifier. It accepts the forms Lambda does:
//
//	NAME, NAME:QUALIFIER
//	ACCOUNT:function:NAME[:QUALIFIER]                          (partial ARN)
//	arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
//
// Region and account are not checked: turnout has one namespace of functions.
func ParseFunctionName(s string) (name, qualifier string, err error) {
	parts := strings.Split(s, ":")
	switch {
	case len(parts) >= 7 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function":
		parts = parts[6:]
	case len(parts) >= 3 && parts[1] == "function":
		parts = parts[2:]
	}
	if len(parts) > 2 {
		return "", "", fmt.Errorf("invalid function name %q: use NAME, NAME:QUALIFIER or a function ARN", s)
	}
	name = parts[0]
	if len(parts) == 2 {
		qualifier = parts[1]
		if !validName(qualifier, true) {
			return "", "", fmt.Errorf("invalid qualifier %q in function name %q", qualifier, s)
		}
	}
	if !validName(name, false) {
		return "", "", fmt.Errorf("invalid function name %q: use letters, digits, '-' and '_'", s)
	}
	return name, qualifier, nil
}

// validName reports whether s is a valid function name (or qualifier):
// Lambda allows [a-zA-Z0-9-_.] and, for qualifiers, "$LATEST".
func validName(s string, qualifier bool) bool {
	if s == "" || len(s) > 140 {
		return false
	}
	if qualifier && s == "$LATEST" {
		return true
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// NewRequestID returns a random UUID (version 4), the form of Lambda's
// request ids: the Invoke API and the function host give one to each
// invocation that arrives without one.
func NewRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
