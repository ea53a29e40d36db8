// Command turnout is an edge gateway for moving a monolithic HTTP API to
// functions one route at a time, with instant rollback to the legacy origin.
//
// Usage:
//
//	turnout serve [-c turnout.yaml]       run the gateway
//	turnout validate FILE...              check config files offline
//	turnout analyze FILE...               rank path templates in CloudFront/ALB/nginx logs
//	turnout import cloudfront|apigateway|sam|serverless FILE   a turnout config from what runs on AWS
//	turnout traffic                       the running gateway's path templates by calls
//	turnout apply -f FILE -m MESSAGE      activate a new deployment
//	turnout rollback [--to N]             re-activate an earlier deployment
//	turnout route off|on MATCH            switch one route to its fallback and back
//	turnout rollout status|start|pause|resume|promote|abort [ROUTE]   progressive rollouts
//	turnout shadow [ROUTE] [--since D]    what the routes' shadows answered, compared
//	turnout history | diff A B | status   inspect deployments and the node
//	turnout logs FUNCTION | invoke FUNCTION   hosted functions
//	turnout default-config                print the embedded default config
//	turnout apikey new NAME | hash        make an API key / hash one for api_keys:
//	turnout store copy --from LOC --to LOC   move a store's history, ids kept
//
// The usage text below is the full list, with each verb's main flags.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

const usage = `turnout: an edge gateway that moves an HTTP API to functions one route at a time.

Usage:
  turnout serve [-c FILE]            run the gateway (embedded defaults without -c)
  turnout validate FILE...           report every config error with file:line:column
  turnout analyze FILE...            rank path templates in CloudFront/ALB/nginx access logs
  turnout import cloudfront|apigateway|sam|serverless FILE [-o FILE] [--accept-risk] [--set K=V] [--check URL]
                                     a turnout config from a CloudFront distribution, an API Gateway
                                     export, a SAM template or a serverless.yml, every difference listed
  turnout traffic [--unused-for D] [--risky]  the running gateway's path templates by calls
  turnout apply -f FILE [-m MSG]     validate and activate FILE as a new deployment
  turnout rollback [--to N] [-m MSG] re-activate the previous (or Nth) deployment
  turnout route off|on MATCH         send a route to its fallback / back to its target
  turnout rollout status [ROUTE]     each rollout's step, weight, both sides' figures, last verdict
  turnout rollout start|pause|resume|promote|abort ROUTE [-m MSG]
                                     act on a route's rollout, as a new deployment
                                     (these four take --wait [--wait-timeout D]:
                                     return once every node serves the deployment)
  turnout shadow [ROUTE] [--since D] each shadowed route's comparisons: counts, match rate,
                                     differing paths, learned noise; with ROUTE, examples
  turnout history [--limit N]        list deployments and the audit trail
  turnout diff A B                   what changed between deployments A and B
  turnout status                     active deployment, routes, origin health
  turnout nodes                      the fleet's live nodes and what each serves
  turnout logs FUNCTION [-f] [--request-id ID]  a hosted function's log lines
  turnout invoke FUNCTION [PAYLOAD|-] [--log]   invoke a function through the Invoke API
  turnout default-config             print the embedded default config
  turnout apikey new NAME | hash     a new API key (shown once) and its config line / a key's hash, from stdin
  turnout store copy --from LOC --to LOC   copy a store's history (bolt:PATH, etcd:URL[,URL...])

Client verbs talk to a running gateway's admin API:
  --admin URL   (env TURNOUT_ADMIN, default http://127.0.0.1:8081)
  --token TOK   (env TURNOUT_TOKEN, default: the generated token file turnout.db.token)
  -o text|json

Run 'turnout VERB -h' for a verb's flags.
`

// errUsage makes main exit 2 without printing anything more.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmds := map[string]func([]string, io.Writer, io.Writer) error{
		"serve":          cmdServe,
		"validate":       cmdValidate,
		"default-config": cmdDefaultConfig,
		"apply":          cmdApply,
		"rollback":       cmdRollback,
		"route":          cmdRoute,
		"rollout":        cmdRollout,
		"shadow":         cmdShadow,
		"history":        cmdHistory,
		"diff":           cmdDiff,
		"status":         cmdStatus,
		"nodes":          cmdNodes,
		"logs":           cmdLogs,
		"invoke":         cmdInvoke,
		"analyze":        cmdAnalyze,
		"import":         cmdImport,
		"traffic":        cmdTraffic,
		"store":          cmdStore,
		"apikey":         cmdAPIKey,
	}
	verb := args[0]
	if verb == "-h" || verb == "--help" || verb == "help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, ok := cmds[verb]
	if !ok {
		fmt.Fprintf(stderr, "turnout: unknown command %q\n\n%s", verb, usage)
		return 2
	}
	if err := cmd(args[1:], stdout, stderr); err != nil {
		if errors.Is(err, errUsage) {
			return 2
		}
		fmt.Fprintf(stderr, "turnout %s: %v\n", verb, err)
		return 1
	}
	return 0
}
