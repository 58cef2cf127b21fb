# syntax=docker/dockerfile:1

# patrol, production image: `docker build -t patrol .` (BuildKit, the default builder
# since Docker Engine 23, is required for the cache mounts). See "Running in a container"
# in README.md.

# ---- build -----------------------------------------------------------------------------
# The crate needs Rust 1.85 or later (edition 2024); the toolchain here is pinned so that
# builds are repeatable. Bookworm on both stages, so the binary and the runtime agree on
# glibc.
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /build

# Only what `cargo build --bin patrol` reads (.dockerignore lets nothing else in):
# - the manifests and the lockfile. `benches` is a workspace member, so cargo needs its
#   manifest and its targets to load the workspace, though this build never compiles it;
# - build.rs, src/ and crates/ (the catalog and the engine);
# - permissions/, the catalog, which crates/catalog/src/load.rs embeds into the binary
#   with include_dir!, and migrations/, which src/store/mod.rs embeds with sqlx::migrate!.
#   The runtime stage therefore needs neither directory.
# The build needs the image's gcc (SQLite is compiled in, from sqlx's bundled
# libsqlite3) and no system libraries, so no -dev packages.
COPY Cargo.toml Cargo.lock build.rs ./
COPY benches ./benches
COPY src ./src
COPY crates ./crates
COPY permissions ./permissions
COPY migrations ./migrations

# The registry and target directories are build caches, kept between builds; the binary
# is copied out of the cache in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/build/target,sharing=locked \
    cargo build --release --locked --bin patrol \
    && install -m 0755 target/release/patrol /usr/local/bin/patrol

# ---- runtime ---------------------------------------------------------------------------
FROM debian:bookworm-slim

LABEL org.opencontainers.image.title="patrol" \
      org.opencontainers.image.description="A policy decision point for fine-grained and legacy personal access tokens and CI/CD job tokens" \
      org.opencontainers.image.licenses="MIT"

# curl is there for the HEALTHCHECK only: patrol has no health-check subcommand and the
# slim image has no HTTP client. ca-certificates gives outbound HTTPS (webhooks) the
# system's trust roots. Versions are not pinned because Debian drops superseded versions
# from the archive, which would break the build at the next security update; bookworm's
# stable updates are what we want.
# The user has a fixed, unprivileged UID/GID (10001), and /data, the SQLite store's
# directory, belongs to it (the WAL and shared-memory files are created beside the
# database, so the directory itself must be writable).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 patrol \
    && useradd --no-log-init --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin patrol \
    && install -d -o 10001 -g 10001 -m 0750 /data

# The binary is the whole application: the permission catalog and both backends'
# migrations are compiled into it (PATROL_CATALOG_DIR points it at another catalog).
COPY --from=builder /usr/local/bin/patrol /usr/local/bin/patrol

# patrol's defaults are 127.0.0.1:8080, unreachable from outside a container, and
# sqlite://patrol.db in the working directory; here it listens on every interface and
# keeps SQLite in the /data volume. For Postgres, set PATROL_DATABASE_URL=postgres://...
ENV PATROL_LISTEN=0.0.0.0:8080 \
    PATROL_DATABASE_URL=sqlite:///data/patrol.db

WORKDIR /data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8080

# /healthz answers 200 while the process is up. The port follows PATROL_LISTEN.
HEALTHCHECK --interval=30s --timeout=3s --start-period=15s --retries=3 \
    CMD ["/bin/sh", "-c", "curl -fsS -o /dev/null http://127.0.0.1:${PATROL_LISTEN##*:}/healthz || exit 1"]

# patrol shuts down gracefully on SIGTERM (docker stop) and on SIGINT. `serve` applies
# pending migrations first unless given --no-migrate.
ENTRYPOINT ["/usr/local/bin/patrol"]
CMD ["serve"]
