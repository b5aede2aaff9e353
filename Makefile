# Herald's entry points. `make test` is what CI runs (.ci/run); `make demo`
# runs Herald end to end on a local lab.

SHELL := /usr/bin/env bash
GO ?= go
# Control-plane binaries (kube-apiserver, etcd, kubectl) built from Go modules,
# cached outside the work tree and shared by every checkout on the machine.
HERALD_TEST_BINS ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/herald-test-bins
export HERALD_TEST_BINS
GOTEST_FLAGS ?=
TEST_TIMEOUT ?= 40m

.PHONY: all build test test-unit test-deps envtest-bins lint generate verify-generate \
        bench bench-controller bench-failover fuzz demo demo-down clean help

all: build

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## build bin/controller, bin/speaker and bin/heraldctl
	$(GO) build -o bin/ ./cmd/...

demo: build test-deps ## Herald end to end on a local lab (root); KEEP=1 leaves it running
	$(GO) build -o bin/demo ./test/demo
	bin/demo up $(if $(KEEP),--keep)

demo-down: ## remove everything a demo run left behind
	$(GO) build -o bin/demo ./test/demo
	bin/demo down

test-deps: ## install the lab's Debian packages (root) and build the control-plane binaries (cached)
	@if [[ $$(id -u) == 0 ]]; then hack/install-test-deps.sh; else echo "not root: network-lab tests will skip" >&2; fi
	@BIN_ROOT="$(HERALD_TEST_BINS)" hack/k8s-bins/build-binaries.sh >/dev/null

test: test-deps verify-generate ## all tests: unit, fuzz seeds, real-apiserver integration, network-lab e2e
	KUBEBUILDER_ASSETS="$$(BIN_ROOT="$(HERALD_TEST_BINS)" hack/k8s-bins/build-binaries.sh)" \
	  $(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(GOTEST_FLAGS) ./...

test-unit: ## pure unit tests only (no root, no control plane)
	$(GO) test -short -count=1 ./pkg/... ./api/...

envtest-bins: ## build kube-apiserver, etcd and kubectl into the cache
	BIN_ROOT="$(HERALD_TEST_BINS)" hack/k8s-bins/build-binaries.sh

lint: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

generate: ## regenerate deepcopy and CRD YAML (deploy/crds)
	hack/update-codegen.sh
	$(GO) run ./hack/gendocs .

verify-generate: ## fail when generated code or CRDs are stale
	hack/verify-codegen.sh

bench: ## all Go benchmarks (figures go to docs/performance.md)
	$(GO) test -run='^$$' -bench=. -benchmem ./pkg/...

bench-controller: test-deps ## 2000 Services on the real apiserver: assignment rate, re-verify after restart
	HERALD_MEASURE=1 KUBEBUILDER_ASSETS="$$(BIN_ROOT="$(HERALD_TEST_BINS)" hack/k8s-bins/build-binaries.sh)" \
	  $(GO) test -count=1 -v -run TestMeasureController -timeout 20m ./internal/controller/ | grep -E '2000|restart|PASS|FAIL|ok'

bench-failover: test-deps ## layer-2 failover times (graceful, kill, link cut), 10 runs each, in the lab
	HERALD_MEASURE=1 KUBEBUILDER_ASSETS="$$(BIN_ROOT="$(HERALD_TEST_BINS)" hack/k8s-bins/build-binaries.sh)" \
	  $(GO) test -count=1 -v -run TestFailover -timeout 20m ./test/e2e/ | grep -E 'takeover|PASS|FAIL|ok'

fuzz: ## long fuzz runs (FUZZTIME per target, default 60s)
	@for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' pkg | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$spec/*_test.go | sed 's/func //'); do \
	    echo "== $$spec $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$${FUZZTIME:-60s} ./$$spec || exit 1; \
	  done; \
	done

clean: ## remove build output
	rm -rf bin/
