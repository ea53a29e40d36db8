// Package functions holds sample functions for turnout's hosted runtime
// (internal/fnhost) and its tests. Each directory but node is a `package
// main` built with the unmodified github.com/aws/aws-lambda-go library:
//
//	hello-v2   API Gateway HTTP API (payload 2.0): echoes path params, query, the Lambda env and the authorizer block
//	hello-v1   API Gateway REST API (payload 1.0): the same for the proxy request (no env)
//	user       GET /user/{id}: a user document, like examples/legacy (README quickstart)
//	items      GET /items/{id}: a catalogue item with a fresh timestamp and random id per call;
//	           ITEMS_MODE=rename renames a field and sends a number as a string (shadow tests)
//	panic      panics in the handler (unless the event is {"ok": true})
//	sleep      sleeps SLEEP_MS (env) or the event's "sleep_ms" field, then answers
//	malformed  returns {"statusCode":"abc"}, not a valid proxy response
//	flood      logs FLOOD_MB (default 50) MB of lines, then answers
//	flaky      answers 200, or fails with a handler error while FLAG_FILE exists
//	splitter   answers with a header or cookie holding CR, LF or NUL (?mode=…), for response-splitting tests
//	orphan     starts `sleep 300` children that leave its process group (setsid, double fork)
//	initfail   fails before lambda.Start: INITFAIL_MODE=exit (default) prints and exits 1,
//	           INITFAIL_MODE=hang never starts the runtime loop
//	authorizer a Lambda authorizer (TOKEN, REQUEST 1.0 and 2.0; policy or simple responses) deciding by
//	           its token: allow-USER, get-USER, deny-USER, unauthorized, crash, exit, sleep-MS, garbage;
//	           COUNT_FILE counts its invocations
//	echo       answers any proxy event (1.0 or 2.0) with the event itself as its JSON body
//	lastword   writes a line to stdout and one to stderr naming its request id right before it returns
//
// node is a Node.js function with a small custom runtime (bootstrap runs
// runtime.js, which speaks the Runtime API as AWS's runtime interface client
// does, and runs the handler named by _HANDLER): index.handler does what
// lastword does; a handler that does not exist fails init with
// Runtime.HandlerNotFound.
package functions
