# syntax=docker/dockerfile:1
#
# The one Moreid image (`make images`, see deploy/images.mk):
#
#   docker build -f Dockerfile --build-arg VERSION=1.0.0 -t moreid/moreid:1.0.0 .
#
# /usr/local/bin/moreid is the entrypoint: every role of the server
# (`moreid serve [gateway|auth|user|apikey]...`, none: all four), the
# migrations (`moreid migrate`) and `moreid version`. /usr/local/bin/moreidctl,
# the operator CLI, sits beside it, so that `kubectl exec deploy/moreid-auth
# -- moreidctl ...` works. Both static, on distroless: no shell, no package
# manager, running as uid/gid 65532.

# At least the go line of go.work (the golang images set GOTOOLCHAIN=local).
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
# Stamped into both binaries (`moreid version`, `moreidctl --version`).
ARG VERSION=dev
WORKDIR /src
# go.work names every module of the workspace, and the go command refuses a
# workspace with a module missing: the whole tree goes in (.dockerignore
# keeps bin/, .cache/ and .git out).
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    for b in moreid:./cmd/moreid moreidctl:./moreidctl/cmd/moreidctl; do \
      CGO_ENABLED=0 go build -trimpath \
        -ldflags="-s -w -X github.com/moreline/moreid/platform/buildinfo.version=${VERSION}" \
        -o "/out/${b%%:*}" "${b#*:}" || exit 1; \
    done

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="moreid" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/moreline/moreid"
COPY --from=build /out/moreid /out/moreidctl /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/moreid"]
