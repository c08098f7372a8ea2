#!/usr/bin/env bash
# Configures and builds into build/ (or $1 with extra cmake args after it).
# Warnings are errors here (TS_WERROR=ON): our scripts and CI hold the code
# to it, while a user's plain cmake build leaves it off (TS_WERROR=OFF in
# the environment does the same here, as run.sh does).
# TS_BUILD_TARGET=tourney-stats builds the server alone (what run.sh needs).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTS_WERROR="${TS_WERROR:-ON}" "$@" >/dev/null
cmake --build "$dir" -j "$(nproc)" ${TS_BUILD_TARGET:+--target "$TS_BUILD_TARGET"}
