// Command sleep sleeps for the event's "sleep_ms" field, or SLEEP_MS from
// the environment, then answers with its pid (for timeout and concurrency
// tests). With "until_file" it instead waits until that file exists (at most
// a minute): a barrier a test opens once every invocation is in flight, so
// concurrency is shown by counting, not by a clock.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	SleepMS   int    `json:"sleep_ms"`
	UntilFile string `json:"until_file"`
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
	if e.UntilFile != "" {
		fmt.Printf("waiting for %s\n", e.UntilFile)
		start := time.Now()
		for time.Since(start) < time.Minute {
			if _, err := os.Stat(e.UntilFile); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		return reply{PID: os.Getpid(), SleptMS: int(time.Since(start).Milliseconds())}, nil
	}
	fmt.Printf("sleeping %d ms\n", ms)
	time.Sleep(time.Duration(ms) * time.Millisecond)
	return reply{PID: os.Getpid(), SleptMS: ms}, nil
}

func main() { lambda.Start(handle) }
