# tokenhelper — see README.md. Every target works on a fresh Debian machine with Go.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -s -w -X github.com/tokenhelper/tokenhelper/cmd/tokenhelper/cli.Version=$(VERSION) -X main.Version=$(VERSION)
GOLANGCI_LINT := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.6.2
FUZZTIME ?= 30s
# Binaries are static (no cgo): they start ≈ 1 ms faster (docs/benchmarks.md) and run on
# any Linux of the same architecture (EL7…EL9, Debian, Ubuntu worker nodes), whatever its
# glibc. BUILD_CGO=1 links net and os/user through the C library instead. Tests keep cgo
# (the race detector needs it).
BUILD_CGO ?= 0

.PHONY: all build test test-short lint vet fmt-check bench demo fuzz clean install generate

all: build

build:
	@mkdir -p $(BIN)
	CGO_ENABLED=$(BUILD_CGO) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...
	@ln -sf tokenhelper $(BIN)/git-credential-tokenhelper
	@ln -sf tokenhelper $(BIN)/docker-credential-tokenhelper

install:
	CGO_ENABLED=$(BUILD_CGO) $(GO) install -trimpath -ldflags '$(LDFLAGS)' ./cmd/...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Every test, race detector on. With CI=true a test whose tool is missing fails instead of skipping.
test: fmt-check vet
	$(GO) test -race -count=1 -timeout 20m ./...
	@if [ "$(CI)" = true ]; then $(MAKE) --no-print-directory e2e; fi

test-short:
	$(GO) test -short ./...

# End to end against real WLCG storage on loopback (integrations/e2e): XRootD with the SciTokens
# plugin (root:// and https), the test bed over https with its CA in the system trust store for
# the run, and xrdcp, gfal, davix, curl, rclone getting their tokens from tokenhelper. Needs root;
# installs the Debian packages it drives when missing. CI runs it as part of `make test`.
.PHONY: e2e
e2e:
	@integrations/e2e/deps.sh
	$(GO) vet -tags e2e ./integrations/e2e/
	$(GO) test -tags e2e -race -count=1 -timeout 10m -v ./integrations/e2e/

lint: fmt-check vet
	$(GO) run $(GOLANGCI_LINT) run ./...

# Go benchmarks of every package, then tokenhelper against its peers side by side
# (integrations/bench/scripts/peers.sh: needs hyperfine git curl oidc-agent-cli time;
# ~35 minutes, 24 of them the simulated batch day). Results: docs/benchmarks.md.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	integrations/bench/scripts/peers.sh

# Run every fuzz target for FUZZTIME each (seed corpora run in `make test`); with
# FUZZ_MIN_CPU=S a target runs again until it has used S CPU-seconds. The new inputs
# that widened coverage are kept as seeds in testdata/fuzz/ (FUZZ_KEEP per target).
FUZZ_MIN_CPU ?= 0
fuzz:
	FUZZTIME=$(FUZZTIME) FUZZ_MIN_CPU=$(FUZZ_MIN_CPU) integrations/reliability/scripts/fuzz.sh

# The reliability campaign (docs/reliability.md), for people, not CI (hours): fault
# matrix, SIGKILL rounds and the secret-leak scan (integrations/reliability: needs git
# curl strace oidc-agent-cli), then every fuzz target for at least 5 CPU-minutes.
.PHONY: reliability
reliability:
	TOKENHELPER_RELIABILITY=1 TOKENHELPER_LEAKSCAN_E2E=$${TOKENHELPER_LEAKSCAN_E2E-1} $(GO) test -count=1 -timeout 4h -v ./integrations/reliability/
	$(MAKE) --no-print-directory fuzz FUZZTIME=1m FUZZ_MIN_CPU=300

# The guided tour (README's quick start): starts the loopback test bed in-process and
# runs the real bin/tokenhelper through register, device-flow login, inspect, a
# down-scoped token, export, an upload and a download, status and logout. Needs only Go
# (curl is used when installed).
demo:
	@mkdir -p $(BIN)
	CGO_ENABLED=$(BUILD_CGO) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/tokenhelper ./cmd/tokenhelper-demo
	$(BIN)/tokenhelper-demo --tokenhelper $(BIN)/tokenhelper

clean:
	rm -rf $(BIN)

# Regenerate the plugin protocol's Go code (plugins/rpc/pluginpb) from
# plugins/rpc/tokenhelper.proto. Needs protoc (Debian: apt-get install
# protobuf-compiler libprotobuf-dev); the Go generators are pinned here and
# built by the go command. The generated code is committed: CI need not run this.
PROTOC_GEN_GO := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
GENTOOLS := $(BIN)/gentools
generate:
	@command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler libprotobuf-dev"; exit 1; }
	@mkdir -p $(GENTOOLS)
	GOBIN=$(GENTOOLS) GOFLAGS= $(GO) install $(PROTOC_GEN_GO)
	GOBIN=$(GENTOOLS) GOFLAGS= $(GO) install $(PROTOC_GEN_GO_GRPC)
	protoc -I plugins/rpc \
	  --plugin=protoc-gen-go=$(GENTOOLS)/protoc-gen-go --go_out=. --go_opt=module=github.com/tokenhelper/tokenhelper \
	  --plugin=protoc-gen-go-grpc=$(GENTOOLS)/protoc-gen-go-grpc --go-grpc_out=. --go-grpc_opt=module=github.com/tokenhelper/tokenhelper \
	  plugins/rpc/tokenhelper.proto
