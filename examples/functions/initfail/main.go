// Command initfail fails during init, before lambda.Start. INITFAIL_MODE=exit
// (the default) prints an error and exits 1; INITFAIL_MODE=hang never asks
// the runtime for work, to exercise the init timeout.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	switch os.Getenv("INITFAIL_MODE") {
	case "hang":
		fmt.Println("initfail: hanging in init")
		time.Sleep(time.Hour)
	default:
		fmt.Fprintln(os.Stderr, "initfail: cannot connect to database: connection refused")
		os.Exit(1)
	}
	lambda.Start(func() error { return nil })
}
