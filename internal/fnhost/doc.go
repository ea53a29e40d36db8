// Package fnhost runs functions as local processes that speak the Lambda
// Runtime API (2018-06-01): it serves the API, keeps a pool of instances per
// function (one invocation per instance at a time, concurrency up to the
// function's limit), and captures their logs by request id.
//
// Decisions, and why:
//
//   - One Runtime API listener per instance (127.0.0.1:0). Runtime clients
//     use fixed paths (/2018-06-01/runtime/invocation/next), so the only
//     thing that tells instances apart is AWS_LAMBDA_RUNTIME_API; a
//     listener per instance routes /next to that instance's queue with no
//     shared state, and closing it is part of stopping the instance.
//   - The Runtime API is served by a small HTTP/1.1 loop of the package's
//     own (runtimeAPI), not net/http's server: a /next parks its connection
//     and the invocation's goroutine writes the event on it and reads the
//     result from it, with no goroutine hand-off between the caller and the
//     function either way and no background read per request (issue 20;
//     see runtimeapi.go).
//   - Errors a runtime posts to /invocation/{id}/error are reported as
//     FunctionError "Unhandled", as AWS Lambda does for every runtime on
//     the Runtime API (aws-lambda-go posts a returned error there, and
//     Lambda answers X-Amz-Function-Error: Unhandled). "Handled" is only
//     produced by legacy Node.js callback runtimes, which do not exist here.
//   - The environment is built from scratch: the Lambda variables
//     (AWS_LAMBDA_RUNTIME_API, AWS_LAMBDA_FUNCTION_NAME/VERSION/MEMORY_SIZE,
//     _HANDLER, AWS_REGION, AWS_DEFAULT_REGION, LAMBDA_TASK_ROOT,
//     LAMBDA_RUNTIME_DIR, AWS_LAMBDA_LOG_GROUP_NAME/STREAM_NAME,
//     AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023, AWS_LAMBDA_INITIALIZATION_TYPE=on-demand),
//     TZ=:UTC, LANG, PATH (turnout's own PATH), GOMAXPROCS (one per
//     1,769 MB of memory_mb, the vCPU share Lambda gives), then the
//     function's env.
//     Nothing else of turnout's environment is passed on, so credentials and
//     tokens in the gateway's environment never leak into functions.
//     AWS_LAMBDA_MAX_CONCURRENCY is not set: one invocation per process.
//   - An instance dies whole, as Lambda tears down a sandbox: on a
//     timeout, when its process exits and on Close, every process it
//     started dies with it, including children that left its process
//     group with setsid() or a double fork. Where the machine allows it
//     (cgroup v2 writable, Linux 5.14+) each instance is started inside a
//     cgroup of its own (clone3 with CLONE_INTO_CGROUP) and killed with
//     cgroup.kill; elsewhere it leads its own process group (Setpgid),
//     turnout is a child subreaper, and a tracker follows its descendants
//     in /proc to kill and reap them. Options.Isolation, FunctionStats,
//     `turnout status` and the log at start say which one is in use; see
//     Isolation and sandbox.go for the layout and the trade-offs. Close
//     sends SIGTERM to each process group and SIGKILL after 2 s.
//   - The pool hands out the most recently used idle instance (LIFO) so hot
//     instances stay hot and the others age out after idle_timeout. At the
//     concurrency limit an invocation waits in a bounded FIFO queue
//     (queue_size, by default as many as the limit) for up to
//     queue_timeout (1s by default), then fails with KindThrottled; with
//     the queue full it fails at once. A waiter whose context ends leaves
//     the queue at once. The defaults (config.DefaultConcurrency) absorb
//     an ordinary burst, as the monolith a function replaces did, instead
//     of answering 429 on the 11th concurrent request.
//   - Cancelling the Invoke context (the client went away) returns at once
//     but does not kill the instance: the invocation runs to completion or
//     to its deadline and its result is discarded, as on Lambda. Only the
//     function's timeout kills a running instance.
//   - A failed init is a function error, as on Lambda: the invocation that
//     waited for the instance gets FunctionError "Unhandled" and, as its
//     payload, the document the runtime posted to /runtime/init/error (say
//     Runtime.HandlerNotFound), or Runtime.ExitError when the process just
//     exited, Sandbox.Timedout past init_timeout, Runtime.InvalidEntrypoint
//     when the handler cannot be started. Its LogTail holds that instance's
//     init output, INIT_REPORT and the invocation's own lines.
//   - An instance that exits before it took the invocation (say, it exited
//     right after the previous one) is replaced transparently; one that
//     exits during an invocation yields Runtime.ExitError, like Lambda.
//   - Logs: stdout and stderr are read line by line (lines over 16 KiB are
//     truncated, ending in "…[truncated]"). A line belongs to the invocation the
//     runtime had taken from /next when it wrote the line ("" during init),
//     and an invocation's log (END, REPORT, the LogTail) is closed only
//     once every line written before its result was posted has been read:
//     turnout drains the pipes itself when it hands out an invocation and
//     when the result arrives (see output), not relying on when a reader
//     goroutine got to a line.
//     Lines go to a per-function ring bounded in bytes that overwrites the
//     oldest lines, so a flooding function never blocks and never grows
//     memory past the ring. Followers get lines through a buffered channel;
//     a follower that cannot keep up loses lines (counted in
//     FunctionStats.LogDropped) rather than slowing the function.
//   - A response over MaxResponseBytes gets 413 from the Runtime API (as
//     Lambda does) and the invocation fails with KindResponseTooLarge.
package fnhost
