// Package turnout holds the words every part of turnout speaks: how a
// request was answered (Outcome), the names of what serves a route
// (OriginTarget, FunctionTarget), and what a node reports about the
// table it serves (RouteStatus, OriginStatus, InstanceStatus).
//
// It sits at the module root, as litestream keeps DB and Replica there,
// because these are the domain's own nouns rather than one concern among
// others: the gateway produces them, metrics, traffic and the dashboard
// count them, and the admin API sends them. Before, each of those spelled
// them again (an enum in one place, string literals in another, three
// status types mapped by hand). It imports only the standard library, so
// any package may import it without an upward or cyclic dependency, and it
// holds definitions and their names, not behaviour.
package turnout
