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
