# Build with the Swift 6.3 toolchain and the -dev packages; run on slim Debian with runtime libraries only.
FROM swift:6.3-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      pkg-config libproj-dev proj-data libsqlite3-dev libmicrohttpd-dev libssl-dev libpq-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources Sources
COPY Tests Tests
COPY Benchmarks Benchmarks
RUN swift build -c release --product ocss --static-swift-stdlib \
    && cp "$(swift build -c release --show-bin-path)/ocss" /ocss

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      libproj25 proj-data libsqlite3-0 libmicrohttpd12 libssl3 libpq5 libcurl3-gnutls ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /var/lib/ocss ocss
COPY --from=build /ocss /usr/local/bin/ocss
COPY geodata /usr/share/ocss/geodata
COPY docs /usr/share/ocss/docs
USER ocss
WORKDIR /var/lib/ocss
# The database, its WAL and the admin token live here: keep them on a volume, not in the container's layer.
VOLUME ["/var/lib/ocss"]
EXPOSE 8080
# `ocss health` is GET /healthz (the image has no curl): unhealthy while the server does not answer, or answers 503
# because writes are failing (disk full).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/ocss", "health", "--url", "http://127.0.0.1:8080"]
ENTRYPOINT ["/usr/local/bin/ocss"]
# Production by default: no demo stores in a real volume. The first start writes the admin token to
# /var/lib/ocss/admin.token (or set OCSS_ADMIN_TOKEN, 32+ characters); it is printed only that once.
# To try the demo: docker run IMAGE serve --bind 0.0.0.0 --port 8080 --db /var/lib/ocss/ocss.sqlite --demo
CMD ["serve", "--bind", "0.0.0.0", "--port", "8080", "--db", "/var/lib/ocss/ocss.sqlite"]
