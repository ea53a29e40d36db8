// Command lastword writes one line to stdout and one to stderr, each naming
// its request id, right before it returns; it answers with the request id.
// The lines are the last thing the function does before the runtime posts
// its response, so a host that closes an invocation's log at the response
// loses or misfiles them unless it reads the output up to that point.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

func handle(ctx context.Context) (string, error) {
	lc, _ := lambdacontext.FromContext(ctx)
	id := ""
	if lc != nil {
		id = lc.AwsRequestID
	}
	fmt.Println("lastword stdout " + id)
	fmt.Fprintln(os.Stderr, "lastword stderr "+id)
	return id, nil
}

func main() {
	lambda.Start(handle)
}
