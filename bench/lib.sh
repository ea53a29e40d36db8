# lib.sh — what the bench scripts share; source it after cd to the repo root.
#
# bench_tmp NAME makes $tmp, a temp dir removed on exit (kept with KEEP=1),
# and $pids, the background processes killed and waited for on exit: append
# each one you start (pids+=($!)).
bench_tmp() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/turnout-$1.XXXXXX")
	pids=()
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
