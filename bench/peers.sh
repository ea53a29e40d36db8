#!/usr/bin/env bash
# peers.sh — turnout against nginx, HAProxy and Caddy on this machine.
#
# Every proxy listens on its own loopback port and proxies to the same
# examples/legacy origin over keep-alive upstream connections, with access
# logs off. wrk drives each in interleaved rounds (A B C D, A B C D, ...) so
# background noise spreads over all of them, and the table reports medians.
#
#   bench/peers.sh                       # 3 rounds of 10 s per proxy, at 64 and 256 connections
#   DURATION=5s ROUNDS=5 bench/peers.sh
#   PROXIES="nginx turnout" CONNS="64" bench/peers.sh
#   PROXIES="nginx turnout turnout-log" bench/peers.sh   # and turnout with its access log on
#
# Environment: DURATION (10s), ROUNDS (3), CONNS ("64 256": a table for
# each), THREADS (1), URLPATH (/bench), BASE_PORT (18400; uses
# BASE_PORT..BASE_PORT+11), PROXIES ("nginx haproxy caddy turnout";
# "turnout-log" adds turnout writing its access log to a file; "core" adds
# bench/cmd/benchproxy, the origin package behind a bare http.Server;
# "core-loop" the same behind benchproxy's bare read-handle-flush loop
# instead of net/http's server, a measurement of that server's cost;
# turnout itself serves plain origin routes on event loops, internal/h1loop),
# KEEP=1 keeps the temp dir, BASELINE=REV also measures turnout as built at
# git revision REV (shown as "before"; uses BASE_PORT+7 and +8), to tell a
# change's cost from noise.
# CPU per request is the proxy's own (its process and children, from
# /proc/PID/stat) over each round, divided by the requests wrk counted; RSS
# is the tree's resident memory (VmRSS) at the end of each round. Ratios
# are to nginx in the same run.
# GOGC/GOMAXPROCS set by the caller reach every Go process (origin too);
# TURNOUT_ENV="GOGC=400" applies only to turnout and core.
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64 256}
THREADS=${THREADS:-1}
URLPATH=${URLPATH:-/bench}
BASE_PORT=${BASE_PORT:-18400}
PROXIES=${PROXIES:-nginx haproxy caddy turnout}

cd "$(dirname "$0")/.."
root=$(pwd)

# --- packages ---------------------------------------------------------------
missing=()
for pair in nginx:nginx-light caddy:caddy haproxy:haproxy wrk:wrk; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
	echo "installing: ${missing[*]}" >&2
	if [[ $(id -u) -eq 0 ]]; then
		apt-get install -y "${missing[@]}" >&2
	else
		sudo apt-get install -y "${missing[@]}" >&2
	fi
fi

# --- temp dir and cleanup ---------------------------------------------------
. bench/lib.sh
bench_tmp peers

port_origin=$BASE_PORT
port_turnout=$((BASE_PORT + 1))
port_admin=$((BASE_PORT + 2))
port_nginx=$((BASE_PORT + 3))
port_caddy=$((BASE_PORT + 4))
port_haproxy=$((BASE_PORT + 5))
port_core=$((BASE_PORT + 6))
port_before=$((BASE_PORT + 7))
port_before_admin=$((BASE_PORT + 8))
port_turnout_log=$((BASE_PORT + 9))
port_turnout_log_admin=$((BASE_PORT + 10))
port_core_loop=$((BASE_PORT + 11))

bench_ports_free "$BASE_PORT" $((BASE_PORT + 12))

# tree_ticks PID: CPU time (user + system, in clock ticks) used so far by
# PID and its living descendants (nginx's and HAProxy's workers).
tree_ticks() {
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v root="$1" '{
		line = $0; sub(/\(.*\)/, "x", line); split(line, f, " ")
		parent[f[1]] = f[4]; ticks[f[1]] = f[14] + f[15]
	} END {
		for (p in ticks) { q = p; while (q != root && q in parent && q > 1) q = parent[q]; if (q == root) sum += ticks[p] }
		print sum + 0
	}'
}
hz=$(getconf CLK_TCK)

# tree_rss_kb PID: resident memory (kB) of PID and its living descendants.
tree_rss_kb() {
	local p sum=0 kids
	for p in $1 $(pgrep -P "$1" 2>/dev/null || true); do
		sum=$((sum + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
	done
	echo "$sum"
}

# --- build --------------------------------------------------------------------
echo "building in $tmp ..." >&2
go build -o "$tmp/legacy" ./examples/legacy
turnout_kind=turnout
if ! go build -o "$tmp/turnout" ./cmd/turnout 2>"$tmp/turnout-build.log"; then
	echo "cmd/turnout does not build yet (see below); measuring bench/cmd/benchproxy as turnout*" >&2
	head -n 5 "$tmp/turnout-build.log" >&2
	turnout_kind=core
fi
go build -o "$tmp/benchproxy" ./bench/cmd/benchproxy
if [[ -n ${BASELINE:-} ]]; then
	mkdir "$tmp/before-src"
	git archive "$BASELINE" | tar -x -C "$tmp/before-src"
	(cd "$tmp/before-src" && go build -o "$tmp/turnout-before" ./cmd/turnout)
	PROXIES+=" before"
fi

# --- origin -------------------------------------------------------------------
start legacy "$tmp/legacy" -listen "127.0.0.1:$port_origin"
wait_http "http://127.0.0.1:$port_origin$URLPATH" legacy

# --- proxies ------------------------------------------------------------------
# All: keep-alive to the client and to the origin, no access log, no request
# count limit on kept-alive connections.

cat >"$tmp/nginx.conf" <<EOF
worker_processes auto;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 1000000;
	client_body_temp_path $tmp/nginx-body;
	proxy_temp_path $tmp/nginx-proxy;
	fastcgi_temp_path $tmp/nginx-fastcgi;
	uwsgi_temp_path $tmp/nginx-uwsgi;
	scgi_temp_path $tmp/nginx-scgi;
	upstream legacy {
		server 127.0.0.1:$port_origin;
		keepalive 128;
		keepalive_requests 1000000;
	}
	server {
		listen 127.0.0.1:$port_nginx;
		location / {
			proxy_pass http://legacy;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$host;
			proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto \$scheme;
		}
	}
}
EOF

cat >"$tmp/Caddyfile" <<EOF
{
	admin off
	auto_https off
	storage file_system $tmp/caddy-data
}
http://127.0.0.1:$port_caddy {
	reverse_proxy 127.0.0.1:$port_origin {
		transport http {
			keepalive 2m
			keepalive_idle_conns 256
			keepalive_idle_conns_per_host 128
		}
	}
}
EOF

cat >"$tmp/haproxy.cfg" <<EOF
global
	maxconn 4000
defaults
	mode http
	no log
	option http-keep-alive
	http-reuse always
	timeout connect 2s
	timeout client 60s
	timeout server 60s
	timeout http-keep-alive 60s
frontend fe
	bind 127.0.0.1:$port_haproxy
	default_backend legacy
backend legacy
	http-reuse always
	server legacy 127.0.0.1:$port_origin
EOF

bench_turnout_config "$port_turnout" "$port_admin" "$port_origin"

declare -A port
names=()
for p in $PROXIES; do
	case $p in
	nginx)
		start nginx nginx -c "$tmp/nginx.conf" -g 'daemon off;'
		port[nginx]=$port_nginx
		;;
	caddy)
		start caddy env HOME="$tmp" XDG_DATA_HOME="$tmp" XDG_CONFIG_HOME="$tmp" \
			caddy run --config "$tmp/Caddyfile" --adapter caddyfile
		port[caddy]=$port_caddy
		;;
	haproxy)
		start haproxy haproxy -db -f "$tmp/haproxy.cfg"
		port[haproxy]=$port_haproxy
		;;
	turnout)
		if [[ $turnout_kind == turnout ]]; then
			start turnout env ${TURNOUT_ENV:-} "$tmp/turnout" serve -c "$tmp/turnout.yaml" -access-log off
			port[turnout]=$port_turnout
		else
			p='turnout*'
			start turnout env ${TURNOUT_ENV:-} "$tmp/benchproxy" -listen "127.0.0.1:$port_turnout" -origin "http://127.0.0.1:$port_origin"
			port[$p]=$port_turnout
		fi
		;;
	turnout-log)
		sed -e "s/:$port_turnout\$/:$port_turnout_log/" -e "s/:$port_admin}/:$port_turnout_log_admin}/" \
			-e "s|turnout.db|turnout-log.db|" "$tmp/turnout.yaml" >"$tmp/turnout-log.yaml"
		start turnout-log env ${TURNOUT_ENV:-} "$tmp/turnout" serve -c "$tmp/turnout-log.yaml" -access-log "$tmp/access.log"
		port[turnout-log]=$port_turnout_log
		;;
	before)
		sed -e "s/:$port_turnout\$/:$port_before/" -e "s/:$port_admin}/:$port_before_admin}/" \
			-e "s|turnout.db|turnout-before.db|" "$tmp/turnout.yaml" >"$tmp/turnout-before.yaml"
		start before env ${TURNOUT_ENV:-} "$tmp/turnout-before" serve -c "$tmp/turnout-before.yaml" -access-log off
		port[before]=$port_before
		;;
	core-loop)
		start core-loop env ${TURNOUT_ENV:-} "$tmp/benchproxy" -server loop -listen "127.0.0.1:$port_core_loop" -origin "http://127.0.0.1:$port_origin"
		port[core-loop]=$port_core_loop
		;;
	core)
		start core env ${TURNOUT_ENV:-} "$tmp/benchproxy" -listen "127.0.0.1:$port_core" -origin "http://127.0.0.1:$port_origin"
		port[core]=$port_core
		;;
	*)
		echo "unknown proxy $p" >&2
		exit 1
		;;
	esac
	names+=("$p")
done
for p in "${names[@]}"; do
	wait_http "http://127.0.0.1:${port[$p]}$URLPATH" "${p%\*}"
done

# --- measure ------------------------------------------------------------------
# to_ms VALUE: wrk latency ("812.00us", "3.21ms", "1.02s") in milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000
		printf "%.2f", n
	}'
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 == 0) print "-"; else printf "%.2f", a / b}'; }

run() { # run NAME CONNS DURATION
	wrk -t"$THREADS" -c"$2" -d"$3" --latency "http://127.0.0.1:${port[$1]}$URLPATH"
}

echo "warming up ..." >&2
for p in "${names[@]}"; do
	run "$p" 64 2s >/dev/null
done

echo
echo "uname:   $(uname -srm)"
echo "nproc:   $(nproc)"
echo "cpu:     $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "go:      $(go version | cut -d' ' -f3)"
echo "nginx:   $(nginx -v 2>&1 | sed 's/.*: //')"
echo "haproxy: $(haproxy -v 2>&1 | head -n 1 | awk '{print $3}')"
echo "caddy:   $(caddy version 2>&1 | awk '{print $1}')"
echo "wrk:     wrk -t$THREADS -cCONNS -d$DURATION --latency http://127.0.0.1:PORT$URLPATH, $ROUNDS interleaved rounds, medians"
echo "turnout: env ${TURNOUT_ENV:-(none)}, default config, access log off (turnout-log: on, to a file)"
[[ $turnout_kind == core ]] && echo "turnout*: bench/cmd/benchproxy (origin.Pool behind http.Server); cmd/turnout did not build"
[[ -n ${BASELINE:-} ]] && echo "before:  turnout built at $BASELINE ($(git rev-parse --short "$BASELINE"))"

for conns in $CONNS; do
	declare -A rps=() p50=() p99=() cpu=() rss=() errs=()
	for r in $(seq "$ROUNDS"); do
		for p in "${names[@]}"; do
			pid=${pid_of[${p%\*}]}
			t0=$(tree_ticks "$pid")
			out=$(run "$p" "$conns" "$DURATION")
			t1=$(tree_ticks "$pid")
			n=$(awk '/requests in/ {print $1}' <<<"$out")
			cpu[$p]+=" $(awk -v d=$((t1 - t0)) -v n="$n" -v hz="$hz" 'BEGIN {printf "%.1f", d / hz * 1e6 / n}')"
			rss[$p]+=" $(awk -v k="$(tree_rss_kb "$pid")" 'BEGIN {printf "%.1f", k / 1024}')"
			rps[$p]+=" $(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
			p50[$p]+=" $(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")"
			p99[$p]+=" $(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
			e=$(awk '/Non-2xx|Socket errors/ {printf "%s%s", sep, $0; sep="; "}' <<<"$out")
			[[ -n $e ]] && errs[$p]+="round $r: $e. "
			printf 'c=%d round %d %-11s %10s req/s  p99 %s  cpu %s µs/req  rss %s MB\n' "$conns" "$r" "$p" \
				"$(awk '/^Requests\/sec/ {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")" "${cpu[$p]##* }" "${rss[$p]##* }" >&2
		done
	done

	declare -A mr=() m50=() m99=() mc=() mm=()
	for p in "${names[@]}"; do
		mc[$p]=$(median <<<"${cpu[$p]}")
		mr[$p]=$(median <<<"${rps[$p]}")
		m50[$p]=$(median <<<"${p50[$p]}")
		m99[$p]=$(median <<<"${p99[$p]}")
		mm[$p]=$(median <<<"${rss[$p]}")
	done
	echo
	echo "c=$conns, load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
	printf '%-11s %10s %8s %8s %10s %8s %8s %8s %8s\n' proxy req/s p50_ms p99_ms "cpu_µs/req" rss_MB "req/s÷ng" "p99÷ng" "cpu÷ng"
	for p in "${names[@]}"; do
		printf '%-11s %10.0f %8s %8s %10s %8s %8s %8s %8s\n' "$p" "${mr[$p]}" "${m50[$p]}" "${m99[$p]}" "${mc[$p]}" "${mm[$p]}" \
			"$(ratio "${mr[$p]}" "${mr[nginx]:-0}")" "$(ratio "${m99[$p]}" "${m99[nginx]:-0}")" "$(ratio "${mc[$p]}" "${mc[nginx]:-0}")"
	done
	for p in "${names[@]}"; do
		[[ -n ${errs[$p]:-} ]] && echo "errors $p: ${errs[$p]}"
	done
	# Issue 20's targets for turnout: at nginx's cost or better.
	t=turnout
	[[ -z ${mr[$t]:-} ]] && t='turnout*'
	if [[ -n ${mr[$t]:-} && -n ${mr[nginx]:-} ]]; then
		awk -v t="${mr[$t]}" -v n="${mr[nginx]}" -v tp="${m99[$t]}" -v np="${m99[nginx]}" -v tc="${mc[$t]}" -v nc="${mc[nginx]}" 'BEGIN {
			printf "targets: req/s >= 1.0x nginx: %s (%.2fx)   p99 <= nginx: %s (%.2fx)   cpu/req <= nginx: %s (%.2fx)\n",
				(t >= n) ? "ok" : "MISS", t / n, (tp <= np) ? "ok" : "MISS", tp / np, (tc <= nc) ? "ok" : "MISS", tc / nc
		}'
	fi
	if [[ -n ${mc[turnout-log]:-} && -n ${mc[turnout]:-} ]]; then
		echo "access log cost: $(awk -v a="${mc[turnout-log]}" -v b="${mc[turnout]}" 'BEGIN {printf "%+.1f µs CPU per request (%.2fx)", a - b, a / b}')"
	fi
done
