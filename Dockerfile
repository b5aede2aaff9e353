# syntax=docker/dockerfile:1
# Herald's image: the static controller and speaker binaries on distroless.
#   docker buildx build --platform linux/amd64,linux/arm64 -t IMAGE .
# Offline, with no engine and no base image: `make image` writes the same
# binaries, entrypoint and user on an empty base as an OCI archive under bin/
# (hack/image; checked by test/image).
# The manifests pick the binary with `command:`; the image's user is
# distroless' nonroot (65532), which the speaker DaemonSet overrides with root
# and three network capabilities (see deploy/base/speaker.yaml).

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS=linux
ARG TARGETARCH
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static, reproducible binaries: no cgo, no build paths, no VCS stamp (.git is
# not in the build context).
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags="-s -w" -o /out/ ./cmd/controller ./cmd/speaker

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/controller /out/speaker /
USER 65532:65532
ENTRYPOINT ["/controller"]
