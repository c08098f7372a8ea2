#!/usr/bin/env bash
# Fresh Debian 12 machine -> a running tourney-stats on the embedded store.
# Installs the packages it needs, builds, then runs the server in the
# foreground (Ctrl-C or SIGTERM stops it). Settings come from the
# environment (see `build/tourney-stats --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
# A user's build: a newer compiler's warning must not stop the service.
TS_WERROR=OFF TS_BUILD_TARGET=tourney-stats ./scripts/build.sh build
exec ./build/tourney-stats "$@"
