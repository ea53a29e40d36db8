// Command panic panics in its handler (unless the event is {"ok": true}):
// the runtime reports the panic and exits, so the host must replace the
// instance.
package main

import (
	"fmt"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	OK bool `json:"ok"`
}

func handle(e event) (string, error) {
	if e.OK {
		return "ok", nil
	}
	fmt.Println("about to panic")
	panic("boom")
}

func main() { lambda.Start(handle) }
