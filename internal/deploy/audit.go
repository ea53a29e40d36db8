package deploy

import "context"

// The audit events turnout records on its own authority, with Actor
// "turnout": the admin API records those of the operations it serves.

// AuditBreaker records a route's circuit breaker going from one state to
// another ("closed", "open", "half-open").
func (s *Service) AuditBreaker(ctx context.Context, route, from, to string) error {
	return s.Store.Audit(ctx, AuditEvent{Actor: "turnout", Action: "breaker." + to, Result: "ok",
		Detail: "route " + route + ": circuit breaker " + from + " → " + to})
}

// autoRollbackEvent is the audit event of an auto-rollback of match for
// reason that made d or failed with err.
func autoRollbackEvent(d Deployment, match, reason string, err error) AuditEvent {
	ev := AuditEvent{Actor: "turnout", Action: "auto-rollback", Result: "ok", Detail: d.Cause, Deployment: d.ID}
	if err != nil {
		ev.Result, ev.Detail = "error", "auto-rollback "+match+": "+reason+": "+err.Error()
	}
	return ev
}
