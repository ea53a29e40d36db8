package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
)

const defaultInvokeAPI = "http://127.0.0.1:9001"

// invokeStdin is where "turnout invoke FUNCTION -" reads the payload.
var invokeStdin io.Reader = os.Stdin

// cmdInvoke invokes a function through a running gateway's Lambda Invoke API
// with the AWS SDK, exactly as any Lambda client would.
func cmdInvoke(args []string, stdout, stderr io.Writer) error {
	const synopsis = "invoke FUNCTION [PAYLOAD|-] [--invoke-api URL] [--log] [--qualifier Q]"
	fs := flag.NewFlagSet("invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := os.Getenv("TURNOUT_INVOKE_API")
	if api == "" {
		api = defaultInvokeAPI
	}
	fs.StringVar(&api, "invoke-api", api, "Lambda Invoke API `URL` (env TURNOUT_INVOKE_API)")
	showLog := fs.Bool("log", false, "print the last 4 KB of the invocation's log to stderr")
	qualifier := fs.String("qualifier", "", "function version or alias `Q`")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: turnout %s\n\nPAYLOAD is the JSON event ('-' reads it from stdin; default {}).\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		fs.Usage()
		return errUsage
	}
	in := &lambda.InvokeInput{FunctionName: aws.String(pos[0])}
	if len(pos) == 2 {
		payload := []byte(pos[1])
		if pos[1] == "-" {
			if payload, err = io.ReadAll(invokeStdin); err != nil {
				return fmt.Errorf("read payload from stdin: %w", err)
			}
		}
		in.Payload = payload
	}
	if *qualifier != "" {
		in.Qualifier = qualifier
	}
	if *showLog {
		in.LogType = types.LogTypeTail
	}

	// The Invoke API does no authentication, but the SDK signs every
	// request, so it gets dummy static credentials.
	client := lambda.New(lambda.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(api),
		Credentials:      credentials.NewStaticCredentialsProvider("turnout", "turnout", ""),
		RetryMaxAttempts: 1, // an invocation is not idempotent
	})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	out, err := client.Invoke(ctx, in)
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return fmt.Errorf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())
		}
		return fmt.Errorf("%w (is turnout serving the Invoke API at %s? set --invoke-api or TURNOUT_INVOKE_API)", err, api)
	}
	if *showLog && out.LogResult != nil {
		tail, err := base64.StdEncoding.DecodeString(*out.LogResult)
		if err != nil {
			return fmt.Errorf("decode log result: %w", err)
		}
		stderr.Write(tail)
		if len(tail) > 0 && tail[len(tail)-1] != '\n' {
			fmt.Fprintln(stderr)
		}
	}
	stdout.Write(out.Payload)
	if len(out.Payload) > 0 && out.Payload[len(out.Payload)-1] != '\n' {
		fmt.Fprintln(stdout)
	}
	if fe := aws.ToString(out.FunctionError); fe != "" {
		var doc struct{ ErrorType, ErrorMessage string }
		if json.Unmarshal(bytes.TrimSpace(out.Payload), &doc) == nil && doc.ErrorType+doc.ErrorMessage != "" {
			return fmt.Errorf("function error (%s): %s: %s", fe, doc.ErrorType, doc.ErrorMessage)
		}
		return fmt.Errorf("function error (%s)", fe)
	}
	return nil
}
