# Moreid — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
GO    ?= go

# Code generation tools, pinned; `make tools` installs them into .cache/tools
# so that `make generate` reproduces the committed code byte for byte, offline.
BUF_VERSION                := v1.75.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPC_GATEWAY_VERSION       := v2.33.0
# staticcheck 2026.2.2, the newest release on the module proxy: 2025.1.x
# predates Go 1.26 (2026.1 added new(expr) and the Go 1.25/1.26 deprecated
# APIs). Pinned by module version: the proxy does not resolve release names
# (`@2025.1.1` answers 403).
STATICCHECK_VERSION        := v0.8.2
TOOLS := $(CURDIR)/.cache/tools
export PATH := $(TOOLS):$(PATH)

# Every Go module of the workspace (go.work).
MODULES  := platform proto services/user services/apikey services/auth gateway cmd moreidctl client deploy bench e2e
PACKAGES := $(addprefix ./,$(addsuffix /...,$(MODULES)))

# The server (every role, `moreid serve [ROLE...]`) and the operators' tool.
BINARIES := moreid:./cmd/moreid \
            moreidctl:./moreidctl/cmd/moreidctl

.PHONY: all build run test vet staticcheck lint tools generate check-generate clean

all: build

## build: every binary into bin/
build:
	@mkdir -p bin
	@for b in $(BINARIES); do \
		echo "go build -o bin/$${b%%:*} $${b#*:}"; \
		CGO_ENABLED=0 $(GO) build -trimpath -o bin/$${b%%:*} $${b#*:} || exit 1; \
	done

## run: the whole suite in the foreground on the local Postgres and Redis; Ctrl-C stops it
run: build
	@scripts/run-suite.sh

## test: every test of every module (needs Postgres and Redis, see README),
## the e2e suite in both deploy shapes: a process per role, then every role in one process
# The second shape's e2e run goes alongside the first run: both spend most
# of their time waiting on servers, so together they take about the time of
# the longer one. Each run's status counts.
test:
	@mkdir -p .cache; echo "MOREID_E2E_SHAPE=all $(GO) test -count=1 -timeout 20m ./e2e/... (alongside)"; \
	echo "$(GO) test -count=1 -timeout 20m $(PACKAGES)"; \
	MOREID_E2E_SHAPE=all $(GO) test -count=1 -timeout 20m ./e2e/... > .cache/e2e-all-roles.log 2>&1 & all=$$!; \
	$(GO) test -count=1 -timeout 20m $(PACKAGES); first=$$?; \
	wait $$all; second=$$?; \
	echo "== the e2e suite with every role in one process (MOREID_E2E_SHAPE=all):"; cat .cache/e2e-all-roles.log; \
	exit $$(( first || second ))

vet:
	$(GO) vet $(PACKAGES)

## staticcheck: staticcheck over every module (its default checks, U1000 dead code included); CI fails on any finding
# The workspace (go.work) lets one run load every module's packages.
staticcheck: $(TOOLS)/staticcheck-$(STATICCHECK_VERSION)
	$(TOOLS)/staticcheck-$(STATICCHECK_VERSION) $(PACKAGES)

## tools: the pinned code generators and staticcheck
tools: $(TOOLS)/.versions-$(BUF_VERSION)-$(PROTOC_GEN_GO_VERSION)-$(PROTOC_GEN_GO_GRPC_VERSION)-$(GRPC_GATEWAY_VERSION) \
       $(TOOLS)/staticcheck-$(STATICCHECK_VERSION)

# The binary carries its version in its name, so bumping STATICCHECK_VERSION
# installs the new one, and `make staticcheck` needs no code generator built.
$(TOOLS)/staticcheck-$(STATICCHECK_VERSION):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(TOOLS)/staticcheck $@

$(TOOLS)/.versions-%:
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	GOBIN=$(TOOLS) $(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION)
	GOBIN=$(TOOLS) $(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)
	@touch $@

## lint: buf lint (STANDARD)
lint: tools
	buf lint

## generate: Go, gateway and OpenAPI code from proto/ and gateway/api_config.yaml
generate: tools
	buf generate

## check-generate: fail when the committed generated code is not what `make generate` makes
check-generate: generate
	@git diff --exit-code -- proto/gen gateway/internal/apidocs/spec || { echo "generated code is stale: run make generate and commit" >&2; exit 1; }
	@test -z "$$(git status --porcelain -- proto/gen gateway/internal/apidocs/spec)" || { git status --porcelain -- proto/gen gateway/internal/apidocs/spec; echo "generated code is stale: run make generate and commit" >&2; exit 1; }

clean:
	rm -rf bin

## images, push-images: container images, one per component (needs a Docker engine)
include deploy/images.mk

## bench: the load tool (BENCHMARKS.md); starts its own suite
include bench/bench.mk
