#!/usr/bin/env bash
# The Kinesis consumer's records/s next to kinesalite's own GetRecords rate
# in the same run (bench/kinesis_consume.mjs), on a private kinesalite.
#   bench/kinesis.sh [records] [players]     (TS_STORE=dynamodb: on dynalite)
set -euo pipefail
cd "$(dirname "$0")/.."
TS_BUILD_TARGET=tourney-stats ./scripts/build.sh build >/dev/null
export TS_BIN="$PWD/build/tourney-stats" TS_TEST_BIN="$PWD/build/tourney-stats"
run=(tests/e2e/with-kinesalite.sh node bench/kinesis_consume.mjs "$@")
if [ "${TS_STORE:-sqlite}" = dynamodb ]; then
  exec tests/e2e/with-dynalite.sh "${run[@]}"
fi
exec "${run[@]}"
