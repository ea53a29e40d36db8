package fnhost

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/turnout/turnout/internal/config"
)

// TestConfigurations: the Invoke API lists the hosted functions with their
// defaults applied, and the SDK's FunctionActiveV2 waiter passes on them.
func TestConfigurations(t *testing.T) {
	big := fnConfig("big", "hello-v2")
	big.MemoryMB = 1024
	big.Timeout = config.Duration(1500 * time.Millisecond)
	h := newHost(t, Options{Region: "eu-west-1"}, big, fnConfig("hello", "hello-v2"), nodeConfig("node", "index.handler"))
	c := invokeAPI(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	out, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		arn, handler      string
		timeout, memoryMB int32
	}
	wants := map[string]want{
		"big":   {"arn:aws:lambda:eu-west-1:000000000000:function:big", "hello-v2", 2, 1024},
		"hello": {"arn:aws:lambda:eu-west-1:000000000000:function:hello", "hello-v2", 10, 128},
		"node":  {"arn:aws:lambda:eu-west-1:000000000000:function:node", "index.handler", 10, 128},
	}
	if len(out.Functions) != len(wants) {
		t.Fatalf("ListFunctions: %d functions, want %d", len(out.Functions), len(wants))
	}
	for _, f := range out.Functions {
		w := wants[aws.ToString(f.FunctionName)]
		if aws.ToString(f.FunctionArn) != w.arn || aws.ToString(f.Handler) != w.handler || aws.ToInt32(f.Timeout) != w.timeout ||
			aws.ToInt32(f.MemorySize) != w.memoryMB || f.Runtime != types.RuntimeProvidedal2023 || f.State != types.StateActive ||
			aws.ToInt64(&f.CodeSize) == 0 || aws.ToString(f.LastModified) == "" {
			t.Errorf("%s: %+v, want %+v", aws.ToString(f.FunctionName), f, w)
		}
	}
	if err := lambda.NewFunctionActiveV2Waiter(c).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("node")}, 5*time.Second); err != nil {
		t.Errorf("FunctionActiveV2 waiter: %v", err)
	}
}
