# The two commands the README promises: `make quickstart` and `make test`.
.PHONY: quickstart test build

build:
	go build -o bin/turnout ./cmd/turnout
	go build -o bin/legacy ./examples/legacy

# Runs the example legacy service on 127.0.0.1:9000 and turnout in front of it
# on the embedded default config (public :8080, admin 127.0.0.1:8081, store
# ./turnout.db). Ctrl-C stops both.
quickstart: build
	@./bin/legacy -listen 127.0.0.1:9000 & legacy=$$!; \
	trap "kill $$legacy 2>/dev/null" EXIT INT TERM; \
	./bin/turnout serve

test:
	go test -race ./...
