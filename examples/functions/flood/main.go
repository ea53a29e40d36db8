// Command flood writes FLOOD_MB (default 50) megabytes of log lines to
// stdout and stderr, then answers: the host must bound its memory and never
// block the function.
package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
)

func handle(event map[string]any) (string, error) {
	mb, err := strconv.Atoi(os.Getenv("FLOOD_MB"))
	if err != nil || mb <= 0 {
		mb = 50
	}
	line := strings.Repeat("x", 1023) + "\n"
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	for i := 0; i < mb*1024; i++ {
		w.WriteString(line)
	}
	w.Flush()
	// One very long line, to be truncated.
	os.Stderr.WriteString(strings.Repeat("y", 100<<10) + "\n")
	return "flooded", nil
}

func main() { lambda.Start(handle) }
