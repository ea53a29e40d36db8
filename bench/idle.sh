#!/usr/bin/env bash
# idle.sh — are new clients served while idle keep-alive clients hold
# every connection slot? (issue 13)
#
# Starts examples/legacy and turnout (default limits: max_connections
# 10,000, idle_timeout 120 s) on loopback, then bench/cmd/idleclients opens
# IDLE keep-alive connections with one request each and leaves them idle,
# and sends NEW requests on fresh connections, one after another, each
# with TIMEOUT to be answered.
#
#   bench/idle.sh                           # 10,000 idle, 12 new clients
#   IDLE=10000 NEW=100 bench/idle.sh
#   TURNOUT_BIN=/tmp/turnout-old bench/idle.sh   # measure another build
#
# Environment: IDLE (10000), NEW (12), TIMEOUT (5s), NOFILE (65536: the
# ulimit -n this script sets for itself and its children; raising it needs
# root or a hard limit that high), BASE_PORT (18500; uses 3 ports),
# TURNOUT_BIN (default: build ./cmd/turnout), KEEP=1 keeps the temp dir.
set -euo pipefail

IDLE=${IDLE:-10000}
NEW=${NEW:-12}
TIMEOUT=${TIMEOUT:-5s}
NOFILE=${NOFILE:-65536}
BASE_PORT=${BASE_PORT:-18500}

cd "$(dirname "$0")/.."

# Both turnout and the client hold IDLE sockets, plus their own.
ulimit -n "$NOFILE" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < IDLE + 1024)); then
	echo "ulimit -n is $(ulimit -n): too low for IDLE=$IDLE (run as root, or raise the hard limit)" >&2
	exit 1
fi

. bench/lib.sh
bench_tmp idle

port_origin=$BASE_PORT
port_turnout=$((BASE_PORT + 1))
port_admin=$((BASE_PORT + 2))
bench_ports_free "$BASE_PORT" $((BASE_PORT + 2))

echo "building in $tmp ..." >&2
go build -o "$tmp/legacy" ./examples/legacy
go build -o "$tmp/idleclients" ./bench/cmd/idleclients
turnout=${TURNOUT_BIN:-$tmp/turnout}
[[ -n ${TURNOUT_BIN:-} ]] || go build -o "$turnout" ./cmd/turnout

bench_turnout_config "$port_turnout" "$port_admin" "$port_origin"

start legacy "$tmp/legacy" -listen "127.0.0.1:$port_origin"
wait_http "http://127.0.0.1:$port_origin/bench" legacy
start turnout "$turnout" serve -c "$tmp/turnout.yaml" -access-log off
wait_http "http://127.0.0.1:$port_turnout/bench" turnout

echo "ulimit -n $(ulimit -n); $(nproc) cores; $(uname -sr); $(go version | cut -d' ' -f3)"
echo "turnout: ${TURNOUT_BIN:-./cmd/turnout at $(git rev-parse --short HEAD)}, default limits"
"$tmp/idleclients" -url "http://127.0.0.1:$port_turnout/bench" -idle "$IDLE" -new "$NEW" -timeout "$TIMEOUT" \
	-metrics "http://127.0.0.1:$port_admin/metrics"
