# syntax=docker/dockerfile:1
# Multi-stage build of the API server: a Rust toolchain builds the release binary, a slim Debian
# runs it as an unprivileged user. BuildKit cache mounts keep the crates and the target directory
# between builds, so a change to the code does not rebuild every dependency.
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin social \
    && cp target/release/social /usr/local/bin/social

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /app social
COPY --from=build /usr/local/bin/social /usr/local/bin/social
USER social
WORKDIR /app
ENV BIND_ADDR=0.0.0.0:8080 RUST_LOG=info
EXPOSE 8080
# SIGTERM (docker stop) lets in-flight requests finish, for up to 10 seconds.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/health/ready || exit 1
CMD ["social"]
