# s3seal gateway image: a static binary on distroless, running as a non-root user.
#
#   docker build -t s3seal:local .
#   docker run --rm -p 8080:8080 -v s3seal-data:/data s3seal:local          # embedded mode
#   docker compose up --build                                               # with MinIO + local-kms
#
# Configuration is by GATEWAY_* environment variables (config.example.yaml names them all) or a
# file passed with -config (mount it and add `command: ["-config", "/etc/s3seal/config.yaml"]`).

# ---- build ----------------------------------------------------------------------------------
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/gateway ./cmd/gateway
# Directories the non-root user must own: the data dir (embedded mode) and the audit log dir.
# Named volumes mounted there start with this ownership.
RUN mkdir -p /out/root/data /out/root/var/log/s3seal

# ---- run ------------------------------------------------------------------------------------
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gateway /usr/local/bin/gateway
COPY --from=build --chown=65532:65532 /out/root/ /
USER 65532:65532
# Listen on every interface inside the container (the default 127.0.0.1 would be unreachable);
# the metrics listener stays off unless GATEWAY_METRICS_LISTEN is set (e.g. 0.0.0.0:9090).
ENV GATEWAY_LISTEN=0.0.0.0:8080 \
    GATEWAY_DATA_DIR=/data
EXPOSE 8080 9090
VOLUME ["/data"]
# SIGTERM (docker stop) drains in-flight requests for GATEWAY_SHUTDOWN_TIMEOUT (30s); give
# `docker stop -t` / terminationGracePeriodSeconds a little more than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/gateway"]
