// Command orphan starts processes that leave its process group, as a
// handler that shells out carelessly might, to test that an instance dies
// whole: on a timeout, on shutdown and when it exits.
//
// The event: {"setsid": n, "double_fork": n, "sleep_ms": ms, "exit": bool}.
// It starts n `sleep 300` children that call setsid(), and n more started by
// a shell that exits at once (a double fork, so their parent is gone), all
// keeping the instance's stdout open; it logs "escaped pid N" for each, then
// sleeps sleep_ms, then exits if asked, or answers with the pids.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	Setsid     int  `json:"setsid"`
	DoubleFork int  `json:"double_fork"`
	SleepMS    int  `json:"sleep_ms"`
	Exit       bool `json:"exit"`
}

func handle(e event) ([]int, error) {
	var pids []int
	for range e.Setsid {
		cmd := exec.Command("sleep", "300")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		pids = append(pids, cmd.Process.Pid)
	}
	for range e.DoubleFork {
		// The shell starts setsid sleep in the background, prints its pid
		// and exits, so sleep is orphaned outside the instance's group.
		// Its output goes to the instance's stdout (fd 3), not to the pipe
		// Output reads.
		cmd := exec.Command("sh", "-c", "setsid sleep 300 >&3 2>&3 & echo $!")
		cmd.ExtraFiles = []*os.File{os.Stdout}
		out, err := cmd.Output()
		if err != nil {
			return nil, err
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			return nil, fmt.Errorf("pid %q: %w", out, err)
		}
		pids = append(pids, pid)
	}
	for _, pid := range pids {
		fmt.Printf("escaped pid %d\n", pid)
	}
	time.Sleep(time.Duration(e.SleepMS) * time.Millisecond)
	if e.Exit {
		os.Exit(3)
	}
	return pids, nil
}

func main() { lambda.Start(handle) }
