# tourney-stats as a container image: two stages on Debian 12.
#   docker build -t tourney-stats .
#   docker run -p 8080:8080 -v ts-data:/var/lib/tourney-stats/data tourney-stats
# The build stage installs exactly what CMakeLists.txt checks for (tests
# off: no CUnit); the runtime stage only the shared libraries the binary
# links, and runs it as an unprivileged user. No Docker engine runs on the
# development machines, so tests/fresh/image-recipe.sh runs these steps in
# fresh Debian 12 roots in CI: keep to the instructions it understands.
FROM debian:12-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libmicrohttpd-dev libjansson-dev \
      libcurl4-openssl-dev libssl-dev libsqlite3-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTS_TESTS=OFF \
 && cmake --build build -j"$(nproc)" --target tourney-stats

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libmicrohttpd12 libjansson4 libcurl4 libsqlite3-0 libssl3 zlib1g \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 tourney \
 && useradd --system --uid 10001 --gid tourney --no-create-home \
      --home-dir /var/lib/tourney-stats --shell /usr/sbin/nologin tourney \
 && install -d -o tourney -g tourney -m 0750 \
      /var/lib/tourney-stats /var/lib/tourney-stats/data
COPY --from=build /src/build/tourney-stats /usr/local/bin/tourney-stats
# Numeric, so that a runtime can check runAsNonRoot without /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/tourney-stats
ENV TS_BIND=0.0.0.0 TS_PORT=8080 TS_SQLITE_PATH=/var/lib/tourney-stats/data/tourney-stats.db
# The embedded store's file; with TS_STORE=dynamodb nothing is written here.
VOLUME ["/var/lib/tourney-stats/data"]
EXPOSE 8080
# SIGTERM: readiness off, in-flight requests finish (within 10 s), exit 0.
STOPSIGNAL SIGTERM
# The binary asks its own /healthz (the image has no curl).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/tourney-stats", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/tourney-stats"]
