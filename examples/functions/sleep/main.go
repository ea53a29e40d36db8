// Command sleep sleeps for the event's "sleep_ms" field, or SLEEP_MS from
// the environment, then answers with its pid (for timeout and concurrency
// tests). With "until_file" it instead waits until that file exists (at most
// a minute), after leaving a file named by its pid in "arrive_dir": a
// barrier a test opens once every invocation has arrived, so concurrency is
// shown by counting, not by a clock.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	SleepMS   int    `json:"sleep_ms"`
	UntilFile string `json:"until_file"`
	ArriveDir string `json:"arrive_dir"`
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
		if e.ArriveDir != "" {
			if err := os.WriteFile(filepath.Join(e.ArriveDir, strconv.Itoa(os.Getpid())), nil, 0o644); err != nil {
				return reply{}, err
			}
		}
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
