#!/usr/bin/env bash
# Configures and builds into build/ (or $1 with extra cmake args after it).
# TS_BUILD_TARGET=tourney-stats builds the server alone (what run.sh needs).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$dir" -j "$(nproc)" ${TS_BUILD_TARGET:+--target "$TS_BUILD_TARGET"}
