# The commands a new user runs are `make demo` and `make test` (see README.md).
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
NODE_DEPS := test/node/node_modules/.package-lock.json

.PHONY: build demo test test-deps lint bench clean package package-check

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o kinship ./cmd/agent

# kinesalite and aws-kinesis-agg: the independent implementations the tests run against.
$(NODE_DEPS): test/node/package-lock.json
	npm ci --prefix test/node --no-audit --no-fund
	touch $@

test-deps: $(NODE_DEPS)

demo: build test-deps
	./scripts/demo.sh

# Every test: unit tests with the race detector, KPL interop, end-to-end crash tests.
test: test-deps
	$(GO) test -race -timeout 12m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: build
	./bench/pipeline.sh

clean:
	rm -rf kinship dist bench/out

# .deb and .rpm for amd64 and arm64 in dist/ (packaging/nfpm.yaml; nfpm is a go tool).
package:
	./packaging/build.sh

# Lint, list, verify and install/upgrade/purge the packages (needs lintian, rpm, rpmlint).
package-check:
	./packaging/check.sh
