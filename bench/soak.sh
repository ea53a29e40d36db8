#!/usr/bin/env bash
# soak.sh — is turnout's memory flat under a steady load? (issue 20)
#
# Runs examples/legacy and `turnout serve` (the default config: metrics,
# traffic table and live series on; access log off) on loopback, sends
# RATE requests per second for DURATION with hey (CONNS connections, each
# at RATE/CONNS per second, over paths spread across PATHS templates' worth
# of distinct URLs so the traffic table sees variety), and samples turnout's
# RSS and Go heap every INTERVAL. It prints the samples, then the RSS at
# the first minute and at the end, the maximum, and the least-squares slope
# over the samples after the first minute.
#
#   bench/soak.sh                          # 1,000 req/s for 10 minutes
#   RATE=2000 DURATION=5m bench/soak.sh
#
# Environment: RATE (1000), DURATION (10m), CONNS (20), INTERVAL (10),
# BASE_PORT (18520; uses 3 ports), KEEP=1 keeps the temp dir.
set -euo pipefail

RATE=${RATE:-1000}
DURATION=${DURATION:-10m}
CONNS=${CONNS:-20}
INTERVAL=${INTERVAL:-10}
BASE_PORT=${BASE_PORT:-18520}

cd "$(dirname "$0")/.."
. bench/lib.sh
command -v hey >/dev/null || { echo "hey is needed: apt-get install hey" >&2; exit 1; }
bench_tmp soak
bench_legacy_and_turnout -access-log off
pid=${pid_of[turnout]}

# gauge NAME: a value from turnout's /metrics.
gauge() { curl -fsS "http://127.0.0.1:$port_admin/metrics" | awk -v k="$1" '$1 == k {printf "%.0f", $2}'; }

qps=$(awk -v r="$RATE" -v c="$CONNS" 'BEGIN {printf "%g", r / c}')
# Distinct URLs of one template, /user/{id}, so the traffic table works as
# it does on real traffic; hey sends one URL, so run a few.
for i in 1 2 3 4; do
	start "hey$i" hey -z "$DURATION" -c $((CONNS / 4)) -q "$qps" "http://127.0.0.1:$port_turnout/user/$i"
done
echo "turnout pid $pid; $RATE req/s over $CONNS connections for $DURATION; $(nproc) cores; $(go version | cut -d' ' -f3)"
printf '%8s %10s %10s\n' t_s rss_MB heap_MB
t0=$(date +%s)
samples=()
while kill -0 "${pid_of[hey1]}" 2>/dev/null; do
	sleep "$INTERVAL"
	t=$(($(date +%s) - t0))
	rss=$(awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status")
	heap=$(awk -v h="$(gauge go_memstats_heap_inuse_bytes)" 'BEGIN {printf "%.1f", h / 1048576}')
	printf '%8d %10s %10s\n' "$t" "$rss" "$heap"
	samples+=("$t $rss")
done
printf '%s\n' "${samples[@]}" | awk '
	{ t[NR] = $1; r[NR] = $2; if ($2 > max) max = $2 }
	END {
		for (i = 1; i <= NR; i++) if (t[i] >= 60) { if (!first) first = r[i]; n++; sx += t[i]; sy += r[i]; sxx += t[i] * t[i]; sxy += t[i] * r[i] }
		slope = (n > 1) ? (n * sxy - sx * sy) / (n * sxx - sx * sx) : 0
		printf "RSS at 1 min %.1f MB, at the end %.1f MB, max %.1f MB; slope after the first minute %+.3f MB/min\n", first, r[NR], max, slope * 60
	}'
