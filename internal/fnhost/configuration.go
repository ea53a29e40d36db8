package fnhost

import (
	"cmp"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/turnout/turnout/internal/invoke"
)

// Configurations describes the hosted functions as Lambda's
// GetFunctionConfiguration does, sorted by name, for the Invoke API's
// ListFunctions and GetFunction.
func (h *Host) Configurations() []invoke.FunctionConfiguration {
	h.mu.RLock()
	fns := make([]*function, 0, len(h.fns))
	for _, fn := range h.fns {
		fns = append(fns, fn)
	}
	h.mu.RUnlock()
	out := make([]invoke.FunctionConfiguration, 0, len(fns))
	for _, fn := range fns {
		out = append(out, fn.configuration())
	}
	slices.SortFunc(out, func(a, b invoke.FunctionConfiguration) int { return strings.Compare(a.FunctionName, b.FunctionName) })
	return out
}

func (fn *function) configuration() invoke.FunctionConfiguration {
	c := &fn.cfg
	var size int64
	if st, err := os.Stat(c.Handler); err == nil {
		size = st.Size()
	}
	return invoke.FunctionConfiguration{
		FunctionName: c.Name,
		FunctionArn:  fn.arn,
		// What the instance is told: AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023
		// and _HANDLER (see environ).
		Runtime:          "provided.al2023",
		Handler:          cmp.Or(c.Env["_HANDLER"], filepath.Base(c.Handler)),
		Description:      "hosted by turnout: " + c.Handler,
		Timeout:          int((c.Timeout.D() + time.Second - 1) / time.Second),
		MemorySize:       c.MemoryMB,
		CodeSize:         size,
		LastModified:     fn.configured.UTC().Format(invoke.LastModifiedLayout),
		Version:          "$LATEST",
		State:            "Active",
		LastUpdateStatus: "Successful",
		PackageType:      "Zip",
		Architectures:    []string{architecture()},
	}
}

// architecture is Lambda's name for the machine's instruction set.
func architecture() string {
	if runtime.GOARCH == "arm64" {
		return "arm64"
	}
	return "x86_64"
}
