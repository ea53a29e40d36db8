// Package invoketest gives tests the real AWS SDK Lambda client, pointed at
// a turnout Invoke API, so that tests see the API as AWS's clients do.
package invoketest

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// Client is the aws-sdk-go-v2 Lambda client for the Invoke API at url
// ("http://127.0.0.1:PORT"), in us-east-1 with dummy static credentials and
// no retries, so that every failure reaches the test.
func Client(url string) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		RetryMaxAttempts: 1,
	})
}
