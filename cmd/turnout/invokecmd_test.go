package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/turnout/turnout/internal/invoke"
)

// invokeCmdFake echoes "echo" and fails "fail"; it records the last request.
type invokeCmdFake struct {
	mu   sync.Mutex
	last invoke.Request
}

func (f *invokeCmdFake) Invoke(_ context.Context, req invoke.Request) (invoke.Response, error) {
	f.mu.Lock()
	f.last = req
	f.mu.Unlock()
	switch req.Function {
	case "echo":
		return invoke.Response{Payload: req.Payload, LogTail: "START\nechoing\nEND\n", ExecutedVersion: "$LATEST"}, nil
	case "fail":
		return invoke.Response{Payload: []byte(`{"errorType":"Oops","errorMessage":"boom"}`), FunctionError: "Unhandled"}, nil
	}
	return invoke.Response{}, &invoke.Error{Kind: invoke.KindNotFound, Msg: "Function not found: " + req.Function}
}

func TestCmdInvoke(t *testing.T) {
	fake := &invokeCmdFake{}
	srv := httptest.NewServer(invoke.NewServer(invoke.ServerOptions{
		Invoker:   fake,
		Functions: func() []string { return []string{"echo", "fail"} },
		Logger:    slog.New(slog.DiscardHandler),
	}))
	defer srv.Close()
	t.Setenv("TURNOUT_INVOKE_API", "http://127.0.0.1:1") // the flag wins

	run := func(args ...string) (stdout, stderr string, err error) {
		var out, errb bytes.Buffer
		err = cmdInvoke(append(args, "--invoke-api", srv.URL), &out, &errb)
		return out.String(), errb.String(), err
	}

	out, errOut, err := run("echo", `{"a":1}`)
	if err != nil || out != "{\"a\":1}\n" || errOut != "" {
		t.Errorf("echo: out %q stderr %q err %v", out, errOut, err)
	}

	out, errOut, err = run("echo", "--log", "--qualifier", "v2", `[1]`)
	if err != nil || out != "[1]\n" || errOut != "START\nechoing\nEND\n" {
		t.Errorf("echo --log: out %q stderr %q err %v", out, errOut, err)
	}
	fake.mu.Lock()
	if fake.last.Qualifier != "v2" || !fake.last.LogTail {
		t.Errorf("invoker got %+v", fake.last)
	}
	fake.mu.Unlock()

	invokeStdin = strings.NewReader(`{"from":"stdin"}`)
	defer func() { invokeStdin = os.Stdin }()
	if out, _, err = run("echo", "-"); err != nil || out != "{\"from\":\"stdin\"}\n" {
		t.Errorf("stdin payload: out %q err %v", out, err)
	}

	out, _, err = run("fail", "{}")
	if err == nil || !strings.Contains(err.Error(), "Unhandled") || !strings.Contains(err.Error(), "boom") || !strings.Contains(out, `"errorType":"Oops"`) {
		t.Errorf("fail: out %q err %v", out, err)
	}

	if _, _, err = run("ghost"); err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Errorf("ghost: err %v", err)
	}
	if _, _, err = run(); err != errUsage {
		t.Errorf("no function: err %v", err)
	}
}
