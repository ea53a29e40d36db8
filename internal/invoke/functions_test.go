package invoke

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/turnout/turnout/internal/invoke/invoketest"
)

// testConfigurations are three functions, listed out of order.
func testConfigurations() []FunctionConfiguration {
	fc := func(name string, timeout, memory int) FunctionConfiguration {
		return FunctionConfiguration{FunctionName: name, FunctionArn: FunctionARN("us-east-1", name),
			Runtime: "provided.al2023", Handler: "bootstrap", Timeout: timeout, MemorySize: memory,
			LastModified: "2026-01-02T03:04:05.000+0000", Version: "$LATEST", State: "Active",
			LastUpdateStatus: "Successful", PackageType: "Zip", Architectures: []string{"x86_64"}}
	}
	return []FunctionConfiguration{fc("gamma", 3, 256), fc("alpha", 29, 128), fc("beta", 10, 512)}
}

// TestFunctionsAPI: ListFunctions, GetFunction and GetFunctionConfiguration
// answer as Lambda does, seen through the real SDK: its paginator, its
// FunctionActiveV2 waiter and its typed errors.
func TestFunctionsAPI(t *testing.T) {
	_, srv := startServer(t, ServerOptions{Configurations: testConfigurations})
	c, ctx := invoketest.Client(srv.URL), testCtx(t)

	var names []string
	pages := 0
	p := lambda.NewListFunctionsPaginator(c, &lambda.ListFunctionsInput{MaxItems: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, f := range page.Functions {
			names = append(names, aws.ToString(f.FunctionName))
		}
	}
	if strings.Join(names, ",") != "alpha,beta,gamma" || pages != 2 {
		t.Errorf("ListFunctions by 2: %v in %d pages", names, pages)
	}
	all, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{})
	if err != nil || len(all.Functions) != 3 || all.NextMarker != nil {
		t.Fatalf("ListFunctions: %+v %v", all, err)
	}

	for _, name := range []string{"beta", FunctionARN("us-east-1", "beta"), "beta:$LATEST"} {
		out, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
		if err != nil {
			t.Fatalf("GetFunction %s: %v", name, err)
		}
		fc := out.Configuration
		if aws.ToString(fc.FunctionName) != "beta" || aws.ToString(fc.FunctionArn) != "arn:aws:lambda:us-east-1:000000000000:function:beta" ||
			fc.Runtime != types.RuntimeProvidedal2023 || aws.ToString(fc.Handler) != "bootstrap" ||
			aws.ToInt32(fc.Timeout) != 10 || aws.ToInt32(fc.MemorySize) != 512 || fc.State != types.StateActive ||
			fc.LastUpdateStatus != types.LastUpdateStatusSuccessful || fc.PackageType != types.PackageTypeZip ||
			aws.ToString(fc.Version) != "$LATEST" || len(fc.Architectures) != 1 || fc.Architectures[0] != types.ArchitectureX8664 {
			t.Errorf("GetFunction %s: %+v", name, fc)
		}
	}
	conf, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("gamma")})
	if err != nil || aws.ToString(conf.FunctionName) != "gamma" || aws.ToInt32(conf.MemorySize) != 256 || conf.State != types.StateActive {
		t.Errorf("GetFunctionConfiguration: %+v %v", conf, err)
	}
	waiter := lambda.NewFunctionActiveV2Waiter(c)
	if err := waiter.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("alpha")}, 5*time.Second); err != nil {
		t.Errorf("FunctionActiveV2 waiter: %v", err)
	}

	for _, in := range []*lambda.GetFunctionInput{
		{FunctionName: aws.String("nope")},
		{FunctionName: aws.String("beta"), Qualifier: aws.String("7")},
	} {
		_, err := c.GetFunction(ctx, in)
		var nf *types.ResourceNotFoundException
		var re *smithyhttp.ResponseError
		if !errors.As(err, &nf) || !errors.As(err, &re) || re.HTTPStatusCode() != 404 {
			t.Errorf("GetFunction %s:%s: %v, want 404 ResourceNotFoundException", aws.ToString(in.FunctionName), aws.ToString(in.Qualifier), err)
		}
	}
	if _, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("nope")}); !isNotFound(err) {
		t.Errorf("GetFunctionConfiguration nope: %v", err)
	}
	// An operation turnout does not have still says so.
	if _, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("alpha")}); err == nil ||
		!strings.Contains(err.Error(), "UnknownOperationException") {
		t.Errorf("DeleteFunction: %v", err)
	}
	if _, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{MaxItems: aws.Int32(0)}); err == nil {
		t.Errorf("ListFunctions MaxItems 0: no error")
	}
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}

// TestFunctionsAWSCLI runs the AWS CLI against the Invoke API:
// list-functions (by pages of 2), get-function and
// get-function-configuration, as a user would.
func TestFunctionsAWSCLI(t *testing.T) {
	awsCLI, err := exec.LookPath("aws")
	if err != nil {
		t.Fatalf("this test drives the AWS CLI, which is not installed: pip install awscli (or apt-get install awscli): %v", err)
	}
	_, srv := startServer(t, ServerOptions{Configurations: testConfigurations})
	home := t.TempDir()
	run := func(args ...string) ([]byte, error) {
		cmd := exec.Command(awsCLI, append([]string{"lambda"}, append(args,
			"--endpoint-url", srv.URL, "--region", "us-east-1", "--output", "json")...)...)
		cmd.Env = append(os.Environ(), "HOME="+home, "AWS_ACCESS_KEY_ID=AKID", "AWS_SECRET_ACCESS_KEY=SECRET",
			"AWS_CONFIG_FILE="+home+"/config", "AWS_SHARED_CREDENTIALS_FILE="+home+"/credentials",
			"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return out, errors.New(err.Error() + ": " + stderr.String())
		}
		return out, nil
	}

	out, err := run("list-functions", "--page-size", "2")
	if err != nil {
		t.Fatalf("aws lambda list-functions: %v", err)
	}
	var list struct {
		Functions []struct{ FunctionName, FunctionArn, State string }
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("list-functions printed %s: %v", out, err)
	}
	var names []string
	for _, f := range list.Functions {
		names = append(names, f.FunctionName)
	}
	if strings.Join(names, ",") != "alpha,beta,gamma" || list.Functions[0].State != "Active" {
		t.Errorf("list-functions: %s", out)
	}

	out, err = run("get-function", "--function-name", "beta")
	var get struct {
		Configuration struct{ FunctionArn, Runtime string }
	}
	if err != nil || json.Unmarshal(out, &get) != nil || get.Configuration.FunctionArn != FunctionARN("us-east-1", "beta") ||
		get.Configuration.Runtime != "provided.al2023" {
		t.Errorf("get-function: %s %v", out, err)
	}
	out, err = run("get-function-configuration", "--function-name", "gamma")
	var conf struct {
		FunctionName string
		MemorySize   int
	}
	if err != nil || json.Unmarshal(out, &conf) != nil || conf.FunctionName != "gamma" || conf.MemorySize != 256 {
		t.Errorf("get-function-configuration: %s %v", out, err)
	}
	if _, err := run("get-function", "--function-name", "nope"); err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Errorf("get-function nope: %v", err)
	}
}
