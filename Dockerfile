# syntax=docker/dockerfile:1
#
# One image per component, from this one file:
#
#   docker build -f Dockerfile --build-arg COMPONENT=user -t moreid/user:TAG .
#
# COMPONENT is gateway, auth, user, apikey, moreidctl, or moreid (the whole
# suite in one process) (`make images` builds
# them all, see deploy/images.mk). The image holds that one static binary as
# /usr/local/bin/moreid, its entrypoint, on distroless: no shell, no package
# manager, running as uid/gid 65532.

# At least the go line of go.work (the golang images set GOTOOLCHAIN=local).
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
ARG COMPONENT
WORKDIR /src
# go.work names every module of the workspace, and the go command refuses a
# workspace with a module missing: the whole tree goes in (.dockerignore
# keeps bin/, .cache/ and .git out).
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    case "${COMPONENT}" in \
      gateway)          pkg=./gateway/cmd/gateway ;; \
      auth|user|apikey) pkg=./services/${COMPONENT}/cmd/${COMPONENT} ;; \
      moreidctl)        pkg=./moreidctl/cmd/moreidctl ;; \
      moreid)           pkg=./suite/cmd/moreid ;; \
      *) echo "--build-arg COMPONENT must be gateway, auth, user, apikey, moreid or moreidctl (got '${COMPONENT}')" >&2; exit 1 ;; \
    esac && \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/moreid "${pkg}"

FROM gcr.io/distroless/static-debian12:nonroot
ARG COMPONENT
LABEL org.opencontainers.image.title="moreid-${COMPONENT}" \
      org.opencontainers.image.source="https://github.com/moreline/moreid"
COPY --from=build /out/moreid /usr/local/bin/moreid
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/moreid"]
