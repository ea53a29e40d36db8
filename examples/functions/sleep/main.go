// Command sleep sleeps for the event's "sleep_ms" field, or SLEEP_MS from
// the environment, then answers with its pid (for timeout and concurrency tests).
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	SleepMS int `json:"sleep_ms"`
}

type reply struct {
	PID     int `json:"pid"`
	SleptMS int `json:"slept_ms"`
}

func handle(e event) (reply, error) {
	ms := e.SleepMS
	if ms == 0 {
		ms, _ = strconv.Atoi(os.Getenv("SLEEP_MS"))
	}
	fmt.Printf("sleeping %d ms\n", ms)
	time.Sleep(time.Duration(ms) * time.Millisecond)
	return reply{PID: os.Getpid(), SleptMS: ms}, nil
}

func main() { lambda.Start(handle) }
