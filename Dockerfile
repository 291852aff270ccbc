# syntax=docker/dockerfile:1
# Build: docker build -t eventops-engine .
# Run:   docker run --rm -p 127.0.0.1:8088:8088 -e EVENTOPS_API_LISTEN=0.0.0.0:8088 -e EVENTOPS_API_INSECURE=true \
#          eventops-engine -c /etc/eventops/examples/eventops-flow.yaml
#        (the API has no auth in that example: publish it on the host's loopback only, or add
#        api.auth, docs/security.md)
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/eventops-engine ./cmd/eventops-engine
# The working directory holds relative data paths (the embedded broker's data/broker):
# it must belong to the distroless nonroot user (uid 65532).
RUN mkdir -p /out/var && chown 65532:65532 /out/var

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/eventops-engine /usr/local/bin/eventops-engine
COPY examples /etc/eventops/examples
COPY schemas  /etc/eventops/schemas
COPY --from=build --chown=65532:65532 /out/var /var/lib/eventops
WORKDIR /var/lib/eventops
VOLUME /var/lib/eventops
EXPOSE 8088
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/eventops-engine"]
CMD ["-c", "/etc/eventops/examples/eventops-flow.yaml"]
