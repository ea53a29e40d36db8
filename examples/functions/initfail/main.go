// Command initfail fails during init, before lambda.Start. INITFAIL_MODE=exit
// (the default) prints an error naming its pid and exits 1; INITFAIL_MODE=hang
// never asks the runtime for work, to exercise the init timeout.
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
		fmt.Fprintf(os.Stderr, "initfail (pid %d): cannot connect to database: connection refused\n", os.Getpid())
		os.Exit(1)
	}
	lambda.Start(func() error { return nil })
}
