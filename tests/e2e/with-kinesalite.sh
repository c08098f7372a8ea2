#!/usr/bin/env bash
# Runs a command against a private, in-memory kinesalite (a Kinesis Data
# Streams-compatible server) on a free loopback port.
#
#   tests/e2e/with-kinesalite.sh <command> [args...]
#
# Needs TS_TEST_KINESALITE (the kinesalite executable; by default the one
# scripts/install-test-deps.sh installs into tests/tools). The command
# inherits AWS_ENDPOINT_URL_KINESIS pointing at kinesalite, test
# credentials and region (unless already set, e.g. by with-dynalite.sh,
# which this composes with: with-dynalite.sh with-kinesalite.sh cmd), and
# TS_TEST_KINESALITE_PID/_PORT. kinesalite keeps no file (no --path, so its
# optional native leveldown is never loaded) and is stopped on exit, as is
# the command; the exit status is the command's.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
mock_name=kinesalite
# shellcheck source=tests/e2e/mock-server.sh
. "$here/mock-server.sh"

[ $# -ge 1 ] || die "usage: $0 <command> [args...]"
kinesalite="${TS_TEST_KINESALITE:-$here/../tools/node_modules/.bin/kinesalite}"
[ -x "$kinesalite" ] ||
  die "no kinesalite at $kinesalite (run scripts/install-test-deps.sh)"

mock_start "$kinesalite" --createStreamMs 0 --deleteStreamMs 0 \
  --updateStreamMs 0
port=$mock_port
kin_pid=$mock_pid

export AWS_ENDPOINT_URL_KINESIS="http://127.0.0.1:$port"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-AKIDTESTTOURNEYSTATS}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test-secret-for-kinesalite}"
export AWS_EC2_METADATA_DISABLED=true
export TS_TEST_KINESALITE="$kinesalite"
export TS_TEST_KINESALITE_PID="$kin_pid"
export TS_TEST_KINESALITE_PORT="$port"
echo "with-kinesalite: kinesalite pid $kin_pid on port $port" >&2

mock_run "$@"
