# Container images, one per component, from the one Dockerfile at the root.
# Included from the top-level Makefile:
#
#   make images                      # REGISTRY/<component>:VERSION for every component
#   make images REGISTRY=registry.example.com/moreid VERSION=1.0.0
#   make push-images REGISTRY=... VERSION=...
#
# The tag is what deploy/overlays/prod/kustomization.yaml names in images:.

REGISTRY ?= moreid
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
DOCKER   ?= docker
IMAGE_COMPONENTS := gateway auth user apikey moreidctl

.PHONY: images push-images

## images: a container image per component (docker), tagged $(REGISTRY)/<component>:$(VERSION)
images:
	@for c in $(IMAGE_COMPONENTS); do \
		echo "$(DOCKER) build -f Dockerfile -t $(REGISTRY)/$$c:$(VERSION) --build-arg COMPONENT=$$c ."; \
		$(DOCKER) build -f Dockerfile -t $(REGISTRY)/$$c:$(VERSION) --build-arg COMPONENT=$$c . || exit 1; \
	done

## push-images: push what `make images` built
push-images: images
	@for c in $(IMAGE_COMPONENTS); do \
		echo "$(DOCKER) push $(REGISTRY)/$$c:$(VERSION)"; \
		$(DOCKER) push $(REGISTRY)/$$c:$(VERSION) || exit 1; \
	done
