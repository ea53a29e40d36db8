# lib.sh — what the bench scripts share; source it after cd to the repo root:
# the temp dir and the processes to stop (bench_tmp), free ports, starting a
# process and waiting for it to answer, and turnout's config in front of
# one origin.
#
# bench_tmp NAME makes $tmp, a temp dir removed on exit (kept with KEEP=1),
# and $pids, the background processes killed and waited for on exit: append
# each one you start (pids+=($!)); start does, and records it in
# pid_of[NAME].
bench_tmp() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/turnout-$1.XXXXXX")
	pids=()
	declare -gA pid_of=()
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

bench_cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [[ ${KEEP:-0} == 1 ]]; then
		echo "kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}

# bench_ports_free FIRST LAST exits unless every loopback port from FIRST
# to LAST is free.
bench_ports_free() {
	local p
	for p in $(seq "$1" "$2"); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "port $p is in use; set BASE_PORT" >&2
			exit 1
		fi
	done
}

# start NAME CMD...: run CMD in the background with its output in
# $tmp/NAME.log.
start() {
	local name=$1
	shift
	"$@" >"$tmp/$name.log" 2>&1 &
	pids+=($!)
	pid_of[$name]=$!
}

# wait_http URL NAME: wait until URL answers (10 s), or exit with the end
# of $tmp/NAME.log.
wait_http() {
	local i
	for i in $(seq 100); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "$2 did not come up at $1; logs in $tmp (run with KEEP=1)" >&2
	tail -n 20 "$tmp/$2.log" >&2 || true
	exit 1
}

# bench_turnout_config PUBLIC ADMIN ORIGIN writes $tmp/turnout.yaml: turnout
# on loopback port PUBLIC (admin API on ADMIN, no Invoke API, its store in
# $tmp) sending every request to the origin on port ORIGIN.
bench_turnout_config() {
	cat >"$tmp/turnout.yaml" <<CONF
listen: 127.0.0.1:$1
admin: {listen: 127.0.0.1:$2}
invoke_api: {listen: "off"}
store: {path: $tmp/turnout.db}
origins: {legacy: {urls: [http://127.0.0.1:$3]}}
routes: [{match: /, origin: legacy}]
CONF
}

# bench_legacy_and_turnout ARGS...: builds examples/legacy and cmd/turnout
# into $tmp, checks that ports BASE_PORT..BASE_PORT+2 are free, runs the
# legacy origin on BASE_PORT and `turnout serve` (its config from
# bench_turnout_config, then ARGS) on BASE_PORT+1 with its admin API on
# BASE_PORT+2, and waits until both answer. It sets port_origin,
# port_turnout and port_admin.
bench_legacy_and_turnout() {
	port_origin=$BASE_PORT
	port_turnout=$((BASE_PORT + 1))
	port_admin=$((BASE_PORT + 2))
	bench_ports_free "$BASE_PORT" $((BASE_PORT + 2))
	echo "building in $tmp ..." >&2
	go build -o "$tmp/legacy" ./examples/legacy
	go build -o "$tmp/turnout" ./cmd/turnout
	start legacy "$tmp/legacy" -listen "127.0.0.1:$port_origin"
	wait_http "http://127.0.0.1:$port_origin/bench" legacy
	bench_turnout_config "$port_turnout" "$port_admin" "$port_origin"
	start turnout "$tmp/turnout" serve -c "$tmp/turnout.yaml" "$@"
	wait_http "http://127.0.0.1:$port_turnout/bench" turnout
}
