// Package authz decides, before a route's backend runs, whether a request
// may go on, as API Gateway's authorizers do: it verifies a JWT against its
// issuer's keys (an HTTP API JWT authorizer) or asks a function (a Lambda
// authorizer), checks a route's scopes, and writes API Gateway's 401, 403
// and 500 answers when it may not.
//
// A JWT Authorizer is built from its Config (issuer, audience, jwks_uri,
// identity source); Config.Validate and New check it all before any
// traffic, and the keys are fetched in the background. Verify reads the token from the identity
// source and checks signature, issuer, audience or client_id, expiry and
// not-before; Scopes.Allow checks a route's scopes; WriteError answers a
// refused request. The semantics, each with its AWS reference and every
// difference from AWS, are in docs/authorizers.md.
//
// Keys come from the issuer's JWKS (OpenID discovery at
// ISSUER/.well-known/openid-configuration, or an explicit jwks_uri). They
// are held in an immutable map swapped atomically, so Verify with a known
// kid takes no lock; they are refreshed in the background and, on a kid
// the cache does not know, at most once per Options.RefetchInterval from
// the request path, with concurrent requests sharing one fetch. A JWKS that cannot be fetched
// or holds no usable key leaves the cached keys in place.
//
// A Lambda authorizer (NewLambda, from a LambdaConfig) sends API Gateway's
// REQUEST (2.0 or 1.0) or TOKEN event to its function through a
// LambdaInvoker the caller supplies, reads a simple or IAM policy answer,
// and caches it by the identity sources' values, bounded; a policy is
// matched against each request's ARN.
//
// A JWT Authorizer caches nothing per token: memory does not grow with
// the number of distinct tokens seen. Signatures are checked by
// github.com/go-jose/go-jose/v4; this package writes no crypto.
package authz
