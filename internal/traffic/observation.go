// Package traffic counts requests by route and by a template inferred from
// each raw path (/user/42/orders → /user/{id}/orders), with the figures a
// team needs to pick what to migrate next and to spot function-readiness
// risks. The live gateway and `turnout analyze` both feed it Observations.
package traffic

import "github.com/turnout/turnout"

// Observation is turnout.Observation, the name this package's callers and
// tests knew it by before it moved to the vocabulary package; new code
// writes turnout.Observation.
type Observation = turnout.Observation
