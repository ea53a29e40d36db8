//go:build tools

// Package turnout pins the modules the packages under internal/ use while they
// are being written in parallel; deleted once every import is in place.
package turnout

import (
	_ "github.com/prometheus/client_golang/prometheus"
	_ "go.etcd.io/bbolt"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/net/http2"
	_ "golang.org/x/time/rate"
)
