#!/usr/bin/env bash
# profile.sh — where turnout's CPU and allocations go per proxied request.
#
# Runs examples/legacy and `turnout serve` (the default config: metrics,
# traffic table and live series on; access log off unless ACCESS_LOG=1) on
# loopback, drives GET URLPATH through turnout with wrk for DURATION, stops
# turnout with SIGTERM so it writes its CPU and allocation profiles
# (`serve -cpuprofile/-memprofile`), and prints the top functions by CPU
# (flat and cumulative) and by allocations, with the allocations and CPU
# per request.
#
#   bench/profile.sh                    # 64 connections, 15 s
#   CONNS=256 DURATION=30s bench/profile.sh
#   KEEP=1 bench/profile.sh             # keep the profiles: go tool pprof -http=: $tmp/turnout $tmp/cpu.pprof
#
# Environment: DURATION (15s), CONNS (64), THREADS (1), URLPATH (/bench),
# BASE_PORT (18500; uses BASE_PORT..BASE_PORT+2), NODES (25: rows per
# table), ACCESS_LOG (0), TURNOUT_ENV (e.g. "GOGC=800").
set -euo pipefail

DURATION=${DURATION:-15s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
URLPATH=${URLPATH:-/bench}
BASE_PORT=${BASE_PORT:-18500}
NODES=${NODES:-25}

cd "$(dirname "$0")/.."
. bench/lib.sh
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
bench_tmp profile
log=off
[[ ${ACCESS_LOG:-0} == 1 ]] && log="$tmp/access.log"
bench_legacy_and_turnout -access-log "$log" -cpuprofile "$tmp/cpu.pprof" -memprofile "$tmp/mem.pprof"

out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "http://127.0.0.1:$port_turnout$URLPATH")
kill -TERM "${pid_of[turnout]}"
wait "${pid_of[turnout]}" 2>/dev/null || true
n=$(awk '/requests in/ {print $1}' <<<"$out")

echo "wrk -t$THREADS -c$CONNS -d$DURATION: $(awk '/^Requests\/sec/ {print $2}' <<<"$out") req/s, p99 $(awk '$1 == "99%" {print $2}' <<<"$out"), $n requests"
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(go version | cut -d' ' -f3)"
echo

# total reads the total out of a pprof -top header ("… of 13.86s total").
total() { awk '/of [0-9.]+[A-Za-zµ]* total/ {for (i = 1; i <= NF; i++) if ($i == "total" || $i == "total)") print $(i - 1)}' | head -n 1; }
cpu_total=$(go tool pprof -top -nodecount=1 "$tmp/turnout" "$tmp/cpu.pprof" 2>/dev/null | total)
alloc_total=$(go tool pprof -top -nodecount=1 -sample_index=alloc_objects "$tmp/turnout" "$tmp/mem.pprof" 2>/dev/null | total)
bytes_total=$(go tool pprof -top -nodecount=1 -sample_index=alloc_space "$tmp/turnout" "$tmp/mem.pprof" 2>/dev/null | total)
awk -v c="$cpu_total" -v a="$alloc_total" -v b="$bytes_total" -v n="$n" 'BEGIN {
	cv = c + 0; if (c ~ /ms$/) cv /= 1000; if (c ~ /mins$/) cv *= 60
	av = a + 0; if (a ~ /k$/) av *= 1e3; if (a ~ /M$/) av *= 1e6
	bv = b + 0; if (b ~ /kB$/) bv *= 1e3; if (b ~ /MB$/) bv *= 1e6; if (b ~ /GB$/) bv *= 1e9
	printf "per request (whole process, start to stop, warm-up included): %.1f µs CPU sampled, %.1f allocations, %.0f bytes\n\n", cv * 1e6 / n, av / n, bv / n
}'

echo "== CPU, flat (where the time is spent)"
go tool pprof -top -nodecount="$NODES" "$tmp/turnout" "$tmp/cpu.pprof" 2>/dev/null | sed -n '/flat%/,$p'
echo
echo "== CPU, cumulative, turnout's own code"
go tool pprof -top -cum -nodecount="$NODES" -focus='turnout/' "$tmp/turnout" "$tmp/cpu.pprof" 2>/dev/null | sed -n '/flat%/,$p'
echo
echo "== allocations (objects) by function"
go tool pprof -top -nodecount="$NODES" -sample_index=alloc_objects "$tmp/turnout" "$tmp/mem.pprof" 2>/dev/null | sed -n '/flat%/,$p'
[[ ${KEEP:-0} == 1 ]] && echo "profiles: $tmp/cpu.pprof $tmp/mem.pprof (binary $tmp/turnout)"
