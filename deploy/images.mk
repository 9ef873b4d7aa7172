# The container image, from the one Dockerfile at the root: the moreid binary
# (every role, the migrations) as its entrypoint and moreidctl beside it.
# Included from the top-level Makefile:
#
#   make images                      # $(REGISTRY)/moreid:$(VERSION)
#   make images REGISTRY=registry.example.com/moreid VERSION=1.0.0
#   make push-images REGISTRY=... VERSION=...
#
# The tag is what the overlays name in images: (deploy/overlays/*/kustomization.yaml).

REGISTRY ?= moreid
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
DOCKER   ?= docker
IMAGE    := $(REGISTRY)/moreid:$(VERSION)

.PHONY: images push-images

## images: the container image $(REGISTRY)/moreid:$(VERSION) (docker), the version stamped into both binaries
images:
	$(DOCKER) build -f Dockerfile --build-arg VERSION=$(VERSION) -t $(IMAGE) .

## push-images: push what `make images` built
push-images: images
	$(DOCKER) push $(IMAGE)
