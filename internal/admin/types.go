package admin

import (
	"strings"
	"time"

	"github.com/turnout/turnout"
	"github.com/turnout/turnout/internal/authz"
	"github.com/turnout/turnout/internal/deploy"
	"github.com/turnout/turnout/internal/fnhost"
)

// Status is what GET /api/v1/status reports: the active deployment and what
// the data plane makes of it.
type Status struct {
	Active  DeploymentSummary      `json:"active"`
	Routes  []turnout.RouteStatus  `json:"routes"`
	Origins []turnout.OriginStatus `json:"origins"`
	// Authorizers are the authorizers the routes use: issuer and keys, or
	// function and cached answers, and the routes naming each.
	Authorizers []authz.Status `json:"authorizers,omitempty"`
	// Functions are the hosted functions' pools and counters.
	Functions []fnhost.FunctionStats `json:"functions,omitempty"`
	// LocalSwitches are the routes switched off on this node only
	// (`turnout route off --local`), whatever the deployment says.
	LocalSwitches []deploy.LocalSwitch `json:"local_switches,omitempty"`
	// Store is "connected" while the deployment store answers, and
	// "disconnected" while a fleet's etcd cannot be reached (the node
	// serves Active from memory; changes fail until it is back). Empty
	// when the admin API runs without a node (tests, tools).
	Store string `json:"store,omitempty"`
}

// DeploymentSummary is a deployment without its config text.
type DeploymentSummary struct {
	ID      uint64    `json:"id"`
	Author  string    `json:"author"`
	Message string    `json:"message,omitempty"`
	Cause   string    `json:"cause"`
	Time    time.Time `json:"time"`
}

// Summarize drops d's config.
func Summarize(d deploy.Deployment) DeploymentSummary {
	return DeploymentSummary{ID: d.ID, Author: d.Author, Message: d.Message, Cause: d.Cause, Time: d.Time}
}

// ApplyRequest is the body of POST /api/v1/deployments.
type ApplyRequest struct {
	// Config is the YAML text of the configuration.
	Config string `json:"config"`
	// File names the config in error positions. Default "config.yaml".
	File    string `json:"file,omitempty"`
	Message string `json:"message,omitempty"`
}

// RollbackRequest is the body of POST /api/v1/rollback.
type RollbackRequest struct {
	// To is the deployment to restore; 0 means the one before the active one.
	To      uint64 `json:"to,omitempty"`
	Message string `json:"message,omitempty"`
}

// RouteRequest is the body of POST /api/v1/routes/off and /routes/on.
type RouteRequest struct {
	Match   string `json:"match"`
	Message string `json:"message,omitempty"`
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string `json:"error"`
	// Errors are the problems of an invalid config, one per position.
	Errors []FieldError `json:"errors,omitempty"`
	// Deployment is set when a deployment was stored but could not be
	// activated on this node: it stays the record.
	Deployment *deploy.Deployment `json:"deployment,omitempty"`
	// Propagation is where the live nodes stand with Deployment when a
	// mutation's wait=1 ended with a node that refused it (502) or did not
	// ack it in time (504).
	Propagation *deploy.Propagation `json:"propagation,omitempty"`
}

// FieldError is one problem in a config, at "file:line:col".
type FieldError struct {
	Pos     string `json:"pos"`
	Message string `json:"message"`
}

func (f FieldError) String() string {
	if f.Pos == "" {
		return f.Message
	}
	return f.Pos + ": " + f.Message
}

// APIError is an error answer from the admin API.
type APIError struct {
	Status  int
	Message string
	Errors  []FieldError
	// Deployment is the stored deployment when activation failed, or when
	// a wait for the nodes' acks failed.
	Deployment *deploy.Deployment
	// Propagation is where the nodes stand when a wait failed.
	Propagation *deploy.Propagation
}

// Error returns the message followed by one "file:line:col: msg" line per
// config problem.
func (e *APIError) Error() string {
	if len(e.Errors) == 0 {
		return e.Message
	}
	lines := make([]string, 0, len(e.Errors)+1)
	lines = append(lines, e.Message)
	for _, f := range e.Errors {
		lines = append(lines, f.String())
	}
	return strings.Join(lines, "\n")
}
