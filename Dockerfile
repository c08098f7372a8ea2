# Two stages on Debian 12: build with the -dev packages, run with only the
# runtime libraries. (No Docker engine runs on the development machines, so
# this file is checked by reading; the build steps are the same as
# scripts/build.sh.)
FROM debian:12-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libmicrohttpd-dev libjansson-dev \
      libcurl4-openssl-dev libssl-dev libsqlite3-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTS_TESTS=OFF \
 && cmake --build build -j"$(nproc)"

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      libmicrohttpd12 libjansson4 libcurl4 libsqlite3-0 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/tourney-stats --create-home tourney
COPY --from=build /src/build/tourney-stats /usr/local/bin/tourney-stats
USER tourney
WORKDIR /var/lib/tourney-stats
ENV TS_BIND=0.0.0.0 TS_PORT=8080 TS_SQLITE_PATH=/var/lib/tourney-stats/data/tourney-stats.db
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tourney-stats"]
