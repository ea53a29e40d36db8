package fnhost

import (
	"context"
	"strings"
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

// TestEnvironGOMAXPROCS: an instance's Go scheduler is sized to the vCPU
// share Lambda gives its memory (one per 1,769 MB), unless the function's
// environment sets GOMAXPROCS itself.
func TestEnvironGOMAXPROCS(t *testing.T) {
	for _, c := range []struct {
		memoryMB int
		env      map[string]string
		want     string
	}{
		{128, nil, "1"},
		{1769, nil, "1"},
		{1770, nil, "2"},
		{10240, nil, "6"},
		{128, map[string]string{"GOMAXPROCS": "4"}, "4"},
	} {
		fn := &function{host: &Host{region: "us-east-1"}, cfg: config.Function{Name: "f", Handler: "bin/f", MemoryMB: c.memoryMB, Env: c.env}}
		var got []string
		for _, kv := range fn.environ("127.0.0.1:9001", 1) {
			if v, ok := strings.CutPrefix(kv, "GOMAXPROCS="); ok {
				got = append(got, v)
			}
		}
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("memory_mb %d, environment %v: GOMAXPROCS %q, want %q", c.memoryMB, c.env, got, c.want)
		}
	}
}
