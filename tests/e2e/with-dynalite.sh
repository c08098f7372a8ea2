#!/usr/bin/env bash
# Runs a command against a private, in-memory dynalite (a DynamoDB-compatible
# server) on a free loopback port, with both tourney-stats tables created.
#
#   tests/e2e/with-dynalite.sh <command> [args...]
#
# Needs TS_TEST_BIN (build/tourney-stats) and TS_TEST_DYNALITE (the dynalite
# executable, installed by scripts/install-test-deps.sh into tests/tools).
# The command inherits the AWS_* variables that point at dynalite, TS_TABLE and
# TS_DEAD_LETTER_TABLE (unique per run), and TS_TEST_DYNALITE_PID/_PORT for
# tests that need to know the shared instance (tests that stop or freeze a
# store start their own with TS_TEST_DYNALITE). dynalite and the command are
# stopped on exit, whatever happens (a watchdog covers a SIGKILL of this
# script); the exit status is the command's.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
mock_name=dynalite
# shellcheck source=tests/e2e/mock-server.sh
. "$here/mock-server.sh"

[ $# -ge 1 ] || die "usage: $0 <command> [args...]"
if [ -z "${TS_TEST_BIN:-}" ] || [ ! -x "${TS_TEST_BIN}" ]; then
  die "TS_TEST_BIN must name the tourney-stats binary"
fi
dynalite="${TS_TEST_DYNALITE:-$here/../tools/node_modules/.bin/dynalite}"
[ -x "$dynalite" ] ||
  die "no dynalite at $dynalite (run scripts/install-test-deps.sh)"

mock_start "$dynalite" --createTableMs 0 --deleteTableMs 0 --updateTableMs 0
port=$mock_port
dyn_pid=$mock_pid

export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
unset AWS_ENDPOINT_URL AWS_PROFILE AWS_SESSION_TOKEN
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=AKIDTESTTOURNEYSTATS
export AWS_SECRET_ACCESS_KEY=test-secret-for-dynalite
export AWS_EC2_METADATA_DISABLED=true
# Never read a developer's real credentials or config.
export AWS_SHARED_CREDENTIALS_FILE="$work/no-credentials"
export AWS_CONFIG_FILE="$work/no-config"
stamp="$(date +%s)-$$"
export TS_TABLE="TsE2eStats-$stamp"
export TS_DEAD_LETTER_TABLE="TsE2eDeadLetters-$stamp"
export TS_TEST_DYNALITE="$dynalite"
export TS_TEST_DYNALITE_PID="$dyn_pid"
export TS_TEST_DYNALITE_PORT="$port"

if ! TS_STORE=dynamodb "$TS_TEST_BIN" create-table >"$work/create-table.log" 2>&1; then
  echo "with-dynalite: '$TS_TEST_BIN create-table' failed:" >&2
  cat "$work/create-table.log" >&2
  exit 1
fi
echo "with-dynalite: dynalite pid $dyn_pid on port $port," \
  "tables $TS_TABLE and $TS_DEAD_LETTER_TABLE" >&2

mock_run "$@"
