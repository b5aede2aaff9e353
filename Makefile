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
        bench bench-controller bench-failover bench-traffic-bgp fuzz demo demo-down clean help

all: build

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## build bin/controller, bin/speaker, bin/heraldctl and bin/kubectl-herald (the kubectl plugin)
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
	@BIN_ROOT="$(HERALD_TEST_BINS)" hack/tools/promtool/build.sh >/dev/null

# Packages whose tests drive the network lab or time failure detection: they
# run one at a time, after the rest, so they never compete for the 2 cores.
LAB_PKGS := ./pkg/layer2 ./pkg/bgp ./pkg/members ./test/netlab ./test/e2e ./test/demo ./test/image
ASSETS = $$(BIN_ROOT="$(HERALD_TEST_BINS)" hack/k8s-bins/build-binaries.sh)

test: test-deps verify-generate ## all tests: unit, fuzz seeds, real-apiserver integration, network-lab e2e
	KUBEBUILDER_ASSETS="$(ASSETS)" $(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(GOTEST_FLAGS) \
	  $$($(GO) list ./... | grep -v -x $(foreach p,$(LAB_PKGS),-e 'github.com/herald-lb/herald/$(patsubst ./%,%,$(p))'))
	KUBEBUILDER_ASSETS="$(ASSETS)" $(GO) test -count=1 -p 1 -timeout $(TEST_TIMEOUT) $(GOTEST_FLAGS) $(LAB_PKGS)

test-unit: ## pure unit tests only (no root, no control plane)
	$(GO) test -short -count=1 ./pkg/... ./api/...

envtest-bins: ## build kube-apiserver, etcd and kubectl into the cache
	BIN_ROOT="$(HERALD_TEST_BINS)" hack/k8s-bins/build-binaries.sh

lint: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

generate: ## regenerate deepcopy, CRD YAML (deploy/crds and its copies) and docs/configuration.md
	hack/update-codegen.sh
	$(MAKE) --no-print-directory sync-crds
	$(GO) run ./hack/gendocs .

verify-generate: ## fail when generated code or CRDs are stale
	hack/verify-codegen.sh

bench: ## all Go benchmarks (figures go to docs/performance.md)
	$(GO) test -run='^$$' -bench=. -benchmem ./pkg/...

bench-controller: test-deps ## 2000 Services on the real apiserver: baseline create rate, assignment rate, per-Service p50-p99, re-verify after restart
	HERALD_MEASURE=1 KUBEBUILDER_ASSETS="$$(BIN_ROOT="$(HERALD_TEST_BINS)" hack/k8s-bins/build-binaries.sh)" \
	  $(GO) test -count=1 -v -run TestMeasureController -timeout 20m ./internal/controller/ | grep -E '2000|restart|PASS|FAIL|ok'

bench-failover: test-deps ## layer-2 failover times (graceful, kill, link cut), 10 runs each, and in requests at 200 conns/s (HERALD_RUNS, default 3)
	HERALD_MEASURE=1 KUBEBUILDER_ASSETS="$$(BIN_ROOT="$(HERALD_TEST_BINS)" hack/k8s-bins/build-binaries.sh)" \
	  $(GO) test -count=1 -v -run 'TestFailover|TestMeasure|TestTrafficMeasureLayer2' -timeout 30m ./test/e2e/ | grep -E 'takeover|backfill|RSS|traffic|PASS|FAIL|ok'

bench-traffic-bgp: test-deps ## requests through BGP/ECMP at 200 new conns/s: node speaker SIGKILL and link cut, with and without BFD (HERALD_RUNS)
	HERALD_MEASURE=1 KUBEBUILDER_ASSETS="$$(BIN_ROOT="$(HERALD_TEST_BINS)" hack/k8s-bins/build-binaries.sh)" \
	  $(GO) test -count=1 -v -run 'TestTrafficMeasureBGP' -timeout 20m ./test/e2e/ | grep -E 'traffic|PASS|FAIL|ok'

fuzz: ## long fuzz runs (FUZZTIME per target, default 60s)
	@for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' pkg | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$spec/*_test.go | sed 's/func //'); do \
	    echo "== $$spec $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$${FUZZTIME:-60s} ./$$spec || exit 1; \
	  done; \
	done

clean: ## remove build output
	rm -rf bin/

# --- container image and deploy manifests (deploy/) ---
IMAGE ?= ghcr.io/herald-lb/herald:dev

.PHONY: image sync-crds manifests-check

IMAGE_ARCH ?= $(shell $(GO) env GOARCH)
IMAGE_BINS := bin/image/linux-$(IMAGE_ARCH)

# No container engine and no base image: static binaries on an empty base,
# written as an OCI archive by go-containerregistry (its own tools module,
# hack/image, so Herald's go.mod stays free of it). `podman load -i` or
# `skopeo copy oci-archive:bin/herald-linux-amd64.oci.tar docker://REGISTRY/...` publish it.
image: ## OCI archive bin/herald-linux-$(IMAGE_ARCH).oci.tar ($(IMAGE)) from static binaries, nothing pulled
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) $(GO) build -trimpath -buildvcs=false -ldflags="-s -w" \
	  -o $(IMAGE_BINS)/ ./cmd/controller ./cmd/speaker
	cd hack/image && $(GO) run . -out ../../bin/herald-linux-$(IMAGE_ARCH).oci.tar -arch $(IMAGE_ARCH) -ref $(IMAGE) \
	  ../../$(IMAGE_BINS)/controller ../../$(IMAGE_BINS)/speaker
	@echo "wrote bin/herald-linux-$(IMAGE_ARCH).oci.tar ($(IMAGE))"

sync-crds: ## copy deploy/crds into the kustomize base and the Helm chart (after make generate)
	rm -f deploy/base/crds/lb.herald.dev_*.yaml deploy/helm/herald/crds/lb.herald.dev_*.yaml
	cp deploy/crds/lb.herald.dev_*.yaml deploy/base/crds/
	cp deploy/crds/lb.herald.dev_*.yaml deploy/helm/herald/crds/
	@{ echo "# Generated by make sync-crds: kustomize loads no file from outside its"; \
	   echo "# directory, so this holds a copy of deploy/crds."; \
	   echo "apiVersion: kustomize.config.k8s.io/v1beta1"; echo "kind: Kustomization"; echo "resources:"; \
	   for f in deploy/crds/lb.herald.dev_*.yaml; do echo "  - $$(basename $$f)"; done; \
	 } > deploy/base/crds/kustomization.yaml

manifests-check: ## render deploy/ (kustomize, Helm) and check it on a real apiserver: dry-run apply, RBAC, Pod Security
	KUBEBUILDER_ASSETS="$$(BIN_ROOT="$(HERALD_TEST_BINS)" hack/k8s-bins/build-binaries.sh)" \
	  $(GO) test -count=1 -run TestDeploy ./test/integration/

bench-bgp-e2e: test-deps ## BGP end to end in the lab: Service -> FRR/BIRD RIB and FIB, withdrawals, SIGTERM, BFD, 250 Services
	HERALD_MEASURE=1 KUBEBUILDER_ASSETS="$$(BIN_ROOT="$(HERALD_TEST_BINS)" hack/k8s-bins/build-binaries.sh)" \
	  $(GO) test -count=1 -v -run TestBGPMeasure -timeout 20m ./test/e2e/ | grep -v '"time":'
