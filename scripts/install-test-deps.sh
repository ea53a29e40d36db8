#!/bin/sh
# install-test-deps.sh — install what the tests drive for real, when missing.
#
# The tests run real programs, not stand-ins: Chromium (the dashboard's
# browser test), Pebble and pebble-challtestsrv (the ACME test CA), Node.js
# (functions on AWS's Node runtime client), the AWS CLI (the Invoke API seen
# through AWS's own client), etcd (the fleet store's tests start a
# cluster of Debian's etcd-server), and a C compiler with the C library
# headers (the race detector needs cgo). `make test` and .ci/run call this first.
#
# As root on a machine with apt-get, whatever is missing is installed. Anywhere
# else the script says what to install and exits 1, so a test never fails later
# for want of a tool. With everything present it does nothing.
set -eu

# command:package pairs; a command "a|b" is present when either is.
tools="
chromium|chromium-browser:chromium
pebble:pebble
pebble-challtestsrv:pebble
node:nodejs
aws:awscli
etcd:etcd-server
gcc:gcc
"

have() {
	IFS='|'
	for c in $1; do
		if command -v "$c" >/dev/null 2>&1; then
			unset IFS
			return 0
		fi
	done
	unset IFS
	return 1
}

missing() {
	need=""
	for t in $tools; do
		if ! have "${t%%:*}"; then
			pkg=${t#*:}
			case " $need " in *" $pkg "*) ;; *) need="$need $pkg" ;; esac
		fi
	done
	# cgo compiles against the C library headers.
	if [ ! -e /usr/include/stdio.h ]; then
		case " $need " in *" libc6-dev "*) ;; *) need="$need libc6-dev" ;; esac
	fi
	echo "$need"
}

need=$(missing)
[ -z "$need" ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "install-test-deps: the tests need:$need" >&2
	echo "install-test-deps: on Debian or Ubuntu, as root: apt-get install -y$need" >&2
	echo "install-test-deps: (or run this script as root: sudo scripts/install-test-deps.sh)" >&2
	exit 1
fi

echo "install-test-deps: installing$need" >&2
apt-get update -q
# shellcheck disable=SC2086 # one word per package
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need

need=$(missing)
if [ -n "$need" ]; then
	echo "install-test-deps: still missing after apt-get install:$need" >&2
	exit 1
fi
