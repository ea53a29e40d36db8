package turnout

// A target is what serves a route, named the same way wherever it is
// counted or shown. Metrics, the access log and traffic observations name
// an origin "origin:NAME"; route status (`turnout status`, the admin API,
// the dashboard) names it by its bare name ("legacy"), since a route's
// switch moves it between origins. Both name a hosted function
// "function:NAME".

// OriginTarget names origin name as metrics, the access log and traffic
// observations do: "origin:NAME".
func OriginTarget(name string) string { return "origin:" + name }

// FunctionTarget names function name as a target: "function:NAME".
func FunctionTarget(name string) string { return "function:" + name }
