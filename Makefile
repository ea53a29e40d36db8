# The two commands the README promises: `make quickstart` and `make test`.
.PHONY: quickstart test test-deps build fleet

build:
	go build -o bin/turnout ./cmd/turnout
	go build -o bin/legacy ./examples/legacy
	go build -o bin/user ./examples/functions/user

# Runs the example legacy service on 127.0.0.1:9000 and turnout in front of it
# on the embedded default config (public :8080, admin 127.0.0.1:8081, store
# ./turnout.db, access log ./turnout-access.log), then applies
# examples/turnout.yaml, which moves GET /user/{id} to the example function.
# Ctrl-C stops everything. The store is kept: run again, it serves the same
# deployments, and the apply says "no change" unless the active deployment
# differs from examples/turnout.yaml. rm turnout.db* to start afresh.
quickstart: build
	@echo "quickstart: access log in ./turnout-access.log, admin token in ./turnout.db.token; Ctrl-C stops"
	@./bin/legacy -listen 127.0.0.1:9000 & legacy=$$!; \
	./bin/turnout serve --access-log turnout-access.log & turnout=$$!; \
	trap "kill $$turnout $$legacy 2>/dev/null; wait" EXIT INT TERM; \
	for i in $$(seq 50); do ./bin/turnout status >/dev/null 2>&1 && break; sleep 0.2; done; \
	./bin/turnout apply -f examples/turnout.yaml -m "quickstart: move GET /user/{id} to a function"; \
	wait $$turnout

# A fleet on one machine, for trying it: a three-member etcd cluster
# (Debian's etcd-server), the legacy service and three turnout nodes on
# loopback; applies examples/turnout.yaml with --wait and prints when each
# node served it. See scripts/fleet.sh and the README's "Running a fleet".
fleet: build
	@./scripts/fleet.sh

# What the tests drive for real (Chromium, Pebble, Node.js, the AWS CLI, a C
# compiler for -race): installed when missing as root with apt-get, otherwise
# named with the command to install them.
test-deps:
	@./scripts/install-test-deps.sh

test: test-deps
	go test -race ./...
