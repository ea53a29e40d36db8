#!/usr/bin/env bash
# fleet.sh — a turnout fleet on one machine, for trying it (`make fleet`).
#
# Starts a three-member etcd cluster (Debian's etcd-server package: the etcd
# operators run, not an embedded copy), the example legacy service, and
# three turnout nodes sharing the cluster, all on loopback:
#
#   etcd      127.0.0.1:2379, :22379, :32379 (peers :2380, :22380, :32380)
#   legacy    127.0.0.1:9000
#   edge-1    public :8080, admin :8081
#   edge-2    public :8180, admin :8181
#   edge-3    public :8280, admin :8281
#
# then applies examples/turnout.yaml through edge-1 with --wait, which
# prints when each node served it. Everything lives in ./fleet (wiped at
# start); the admin token is in ./fleet/token. Ctrl-C stops everything.
#
# Try: kill one etcd member (the fleet carries on), kill two (traffic goes
# on, applies fail fast, `turnout nodes` says so), `turnout nodes`,
# `turnout route off 'GET /user/{id}' --wait`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v etcd >/dev/null 2>&1; then
	echo "fleet: etcd is not installed; run scripts/install-test-deps.sh (as root) or apt-get install etcd-server" >&2
	exit 1
fi

dir=fleet
rm -rf "$dir"
mkdir -p "$dir"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- etcd: three members ------------------------------------------------------
cluster=""
endpoints=""
for i in 1 2 3; do
	port=$(( i == 1 ? 2379 : i * 10000 + 2379 ))
	cluster+="${cluster:+,}m$i=http://127.0.0.1:$((port + 1))"
	endpoints+="${endpoints:+, }http://127.0.0.1:$port"
done
for i in 1 2 3; do
	port=$(( i == 1 ? 2379 : i * 10000 + 2379 ))
	etcd --name "m$i" --data-dir "$dir/m$i" \
		--listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
		--listen-peer-urls "http://127.0.0.1:$((port + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" \
		--initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token turnout-fleet \
		>"$dir/m$i.log" 2>&1 &
	pids+=($!)
done
for i in $(seq 100); do
	curl -fsS http://127.0.0.1:2379/health 2>/dev/null | grep -q '"health":"true"' && break
	[[ $i == 100 ]] && { echo "fleet: etcd did not become healthy; see $dir/m1.log" >&2; exit 1; }
	sleep 0.2
done
echo "etcd: three members at $endpoints"

# --- legacy origin and three nodes -------------------------------------------
./bin/legacy -listen 127.0.0.1:9000 >"$dir/legacy.log" 2>&1 &
pids+=($!)

token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token" >"$dir/token"
sum=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
for i in 1 2 3; do
	p=$((8080 + (i - 1) * 100))
	mkdir -p "$dir/edge-$i"
	cat >"$dir/edge-$i/turnout.yaml" <<EOF
listen: 127.0.0.1:$p
node: {name: edge-$i}
admin:
  listen: 127.0.0.1:$((p + 1))
  tokens: [{name: fleet, role: admin, sha256: $sum}]
invoke_api: {listen: "off"}
store:
  path: $dir/edge-$i/turnout.db
  etcd: {endpoints: [$endpoints]}
origins:
  legacy: {url: http://127.0.0.1:9000, health_check: {path: /healthz}}
routes:
  - {match: /, origin: legacy}
EOF
	./bin/turnout serve -c "$dir/edge-$i/turnout.yaml" --access-log off >"$dir/edge-$i/turnout.log" 2>&1 &
	pids+=($!)
done
export TURNOUT_TOKEN=$token
for i in 1 2 3; do
	p=$((8081 + (i - 1) * 100))
	for n in $(seq 100); do
		./bin/turnout status --admin "http://127.0.0.1:$p" >/dev/null 2>&1 && break
		[[ $n == 100 ]] && { echo "fleet: edge-$i did not start; see $dir/edge-$i/turnout.log" >&2; exit 1; }
		sleep 0.1
	done
done
echo "nodes: edge-1 :8080, edge-2 :8180, edge-3 :8280 (admin :8081, :8181, :8281; token in $dir/token)"

# --- one apply, acknowledged by every node -----------------------------------
./bin/turnout apply --admin http://127.0.0.1:8081 -f examples/turnout.yaml --wait \
	-m "fleet: move GET /user/{id} to a function"
./bin/turnout nodes --admin http://127.0.0.1:8081
echo
echo "curl localhost:8180/user/42 (any node); TURNOUT_TOKEN=\$(cat $dir/token) ./bin/turnout nodes --admin http://127.0.0.1:8181"
echo "Ctrl-C stops the fleet."
wait
