# The commands a new user runs are `make demo` and `make test` (see README.md).
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build demo test test-deps lint bench bench-spool bench-drain bench-idle bench-latency clean package package-check

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o kinship ./cmd/agent

# What the tests run for real: Debian packages (logrotate, lintian, rpm, ...) and the npm
# test peers (kinesalite, aws-kinesis-agg), each installed only when missing.
test-deps:
	./scripts/test-deps.sh

# The demo needs only node and the npm peers, not the Debian test tools.
demo: build
	npm ci --prefix internal/testenv/node --no-audit --no-fund
	./scripts/demo.sh

# Every test: the packaging checks, then unit tests with the race detector, KPL interop,
# end-to-end crash, rotation and reload tests against kinesalite.
test: test-deps
	./packaging/check.sh
	$(GO) test -race -count=1 -timeout 12m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: build
	./bench/pipeline.sh

# Spool append (group fsync, no fsync, dd), compression and drain figures on one disk.
bench-spool:
	./bench/spool.sh

# Whole agent: seconds, MB/s, CPU and RSS of `run --once` draining a spool holding 1 GiB of
# logs into discard, per spool compression (none, s2).
bench-drain: build
	./bench/drain.sh

# Idle cost of `run` watching 10,000 unchanged files (and a trickle of 10 lines/s): CPU ms
# per minute and RSS, per layout and destination. KINSHIP_BASELINE=older-binary adds its rows.
bench-idle: build
	./bench/idle.sh

# Line-to-stream latency p50/p99 at 10 and 50,000 lines/s into kinesalite (reported, not asserted).
bench-latency:
	$(GO) test -run '^$$' -bench Latency -benchtime 1x ./internal/flow

clean:
	rm -rf kinship dist bench/out

# .deb and .rpm for amd64 and arm64 in dist/ (packaging/nfpm.yaml; nfpm is a go tool).
package:
	./packaging/build.sh

# Lint, list, verify and install/upgrade/purge the packages (needs lintian, rpm, rpmlint).
package-check:
	./packaging/check.sh
