# syntax=docker/dockerfile:1
# Hearth's container image: a portable release build of `hearth` on Debian bookworm-slim.
#
#   docker build -t hearth:0.1.0 .
#   docker run --rm -p 127.0.0.1:8080:8080 -v ~/.cache/hearth/models:/models:ro hearth:0.1.0
#
# TARGET_CPU is the CPU baseline of the Rust code and of llama.cpp: llama-cpp-sys-2 passes
# `-C target-cpu=X` on to llama.cpp as -march=X plus the matching GGML_* options, and turns
# GGML_NATIVE off for anything but the build machine's own CPU, which an image must never be
# tied to (so no AMX flags are needed either, unlike scripts/common.sh). `auto` is x86-64-v3
# (AVX2 and FMA: x86 servers since 2013) on amd64 and the crate's armv8-a baseline on arm64.
# `--build-arg TARGET_CPU=x86-64` runs on any x86-64 CPU, several times slower.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
ARG TARGET_CPU=auto
ARG TARGETARCH
# cmake and a C++ compiler build llama.cpp; clang and libclang-dev run bindgen on its headers.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       cmake clang libclang-dev g++ make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
ENV CARGO_TARGET_DIR=/src/target
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    set -eu; \
    cpu="$TARGET_CPU"; \
    if [ "$cpu" = auto ]; then \
      case "${TARGETARCH:-$(dpkg --print-architecture)}" in amd64) cpu=x86-64-v3 ;; *) cpu= ;; esac; \
    fi; \
    case "$cpu" in native) echo "TARGET_CPU=native would tie the image to this CPU" >&2; exit 1 ;; esac; \
    if [ -n "$cpu" ]; then export RUSTFLAGS="-C target-cpu=$cpu"; fi; \
    cargo build --release --locked -p hearth; \
    install -D -m 0755 /src/target/release/hearth /out/hearth

FROM debian:${DEBIAN_RELEASE}-slim
LABEL org.opencontainers.image.title="hearth" \
      org.opencontainers.image.description="GGUF models through llama.cpp behind an OpenAI-compatible API" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
# llama.cpp is built with OpenMP; libstdc++ and libgcc are already in the base image.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 hearth \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin hearth \
    && mkdir -p /data /models \
    && chown 10001:10001 /data
COPY --from=builder /out/hearth /usr/local/bin/hearth
# Listen on every interface of the container (the binary's default is loopback only); models are
# read from the /models volume, anything Hearth writes goes under /data.
ENV HEARTH_HOST=0.0.0.0 \
    HEARTH_PORT=8080 \
    HEARTH_HOME=/data \
    HEARTH_MODELS_DIR=/models
USER 10001:10001
WORKDIR /data
EXPOSE 8080
VOLUME ["/data", "/models"]
# The image has no curl: bash's /dev/tcp sends the request. Healthy once /health/ready is 200.
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${HEARTH_PORT:-8080} && printf 'GET /health/ready HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["hearth"]
CMD ["serve"]
