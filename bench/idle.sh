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
for p in $port_origin $port_turnout $port_admin; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		echo "port $p is in use; set BASE_PORT" >&2
		exit 1
	fi
done

wait_http() { # wait_http URL NAME
	local i
	for i in $(seq 100); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "$2 did not come up at $1; logs in $tmp (run with KEEP=1)" >&2
	tail -n 20 "$tmp/$2.log" >&2 || true
	exit 1
}

echo "building in $tmp ..." >&2
go build -o "$tmp/legacy" ./examples/legacy
go build -o "$tmp/idleclients" ./bench/cmd/idleclients
turnout=${TURNOUT_BIN:-$tmp/turnout}
[[ -n ${TURNOUT_BIN:-} ]] || go build -o "$turnout" ./cmd/turnout

cat >"$tmp/turnout.yaml" <<CONF
listen: 127.0.0.1:$port_turnout
admin: {listen: 127.0.0.1:$port_admin}
invoke_api: {listen: "off"}
store: {path: $tmp/turnout.db}
origins: {legacy: {urls: [http://127.0.0.1:$port_origin]}}
routes: [{match: /, origin: legacy}]
CONF

"$tmp/legacy" -listen "127.0.0.1:$port_origin" >"$tmp/legacy.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$port_origin/bench" legacy
"$turnout" serve -c "$tmp/turnout.yaml" -access-log off >"$tmp/turnout.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$port_turnout/bench" turnout

echo "ulimit -n $(ulimit -n); $(nproc) cores; $(uname -sr); $(go version | cut -d' ' -f3)"
echo "turnout: ${TURNOUT_BIN:-./cmd/turnout at $(git rev-parse --short HEAD)}, default limits"
"$tmp/idleclients" -url "http://127.0.0.1:$port_turnout/bench" -idle "$IDLE" -new "$NEW" -timeout "$TIMEOUT" \
	-metrics "http://127.0.0.1:$port_admin/metrics"
