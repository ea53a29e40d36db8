// Package bench holds turnout's benchmarks that span packages: the control
// plane's apply and switch times measured through the real admin API, store
// and gateway (control_test.go), the peer proxy comparison (peers.sh), and
// new clients at a connection limit held by idle ones (idle.sh).
package bench
