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

die() {
  echo "with-dynalite: $*" >&2
  exit 2
}

[ $# -ge 1 ] || die "usage: $0 <command> [args...]"
if [ -z "${TS_TEST_BIN:-}" ] || [ ! -x "${TS_TEST_BIN}" ]; then
  die "TS_TEST_BIN must name the tourney-stats binary"
fi
here="$(cd "$(dirname "$0")" && pwd)"
dynalite="${TS_TEST_DYNALITE:-$here/../tools/node_modules/.bin/dynalite}"
[ -x "$dynalite" ] ||
  die "no dynalite at $dynalite (run scripts/install-test-deps.sh)"
command -v node >/dev/null 2>&1 || die "node is not installed"
command -v curl >/dev/null 2>&1 || die "curl is not installed"

work="$(mktemp -d "${TMPDIR:-/tmp}/ts-dynalite-XXXXXX")"
dyn_pid=""
watchdog_pid=""
cmd_pid=""
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  if [ -n "$cmd_pid" ] && kill -0 "$cmd_pid" 2>/dev/null; then
    kill "$cmd_pid" 2>/dev/null || true
    wait "$cmd_pid" 2>/dev/null || true
  fi
  if [ -n "$watchdog_pid" ]; then
    kill "$watchdog_pid" 2>/dev/null || true
    wait "$watchdog_pid" 2>/dev/null || true
  fi
  if [ -n "$dyn_pid" ] && kill -0 "$dyn_pid" 2>/dev/null; then
    kill "$dyn_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$dyn_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$dyn_pid" 2>/dev/null || true
    wait "$dyn_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A port the kernel just handed out and released; dynalite may still lose a
# race for it, so starting is retried on a fresh port.
free_port() {
  node -e 'const s=require("net").createServer();
s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
}

# Starts dynalite on $1; returns 0 once it answers HTTP (any status), 1 when
# it died or stayed silent for 15 s.
start_dynalite() {
  local port="$1"
  "$dynalite" --host 127.0.0.1 --port "$port" --createTableMs 0 \
    --deleteTableMs 0 --updateTableMs 0 >"$work/dynalite.log" 2>&1 &
  dyn_pid=$!
  for _ in $(seq 1 150); do
    if ! kill -0 "$dyn_pid" 2>/dev/null; then
      wait "$dyn_pid" 2>/dev/null || true
      dyn_pid=""
      return 1
    fi
    # dynalite answers a bare GET with 400 (no target): it is up.
    if curl -s -o /dev/null --max-time 1 --noproxy '*' \
      "http://127.0.0.1:$port/"; then
      return 0
    fi
    sleep 0.1
  done
  kill "$dyn_pid" 2>/dev/null || true
  wait "$dyn_pid" 2>/dev/null || true
  dyn_pid=""
  return 1
}

port=""
for attempt in 1 2 3; do
  p="$(free_port)"
  if start_dynalite "$p"; then
    port="$p"
    break
  fi
  echo "with-dynalite: dynalite did not come up on port $p (attempt $attempt)" >&2
  cat "$work/dynalite.log" >&2 || true
done
[ -n "$port" ] || die "could not start dynalite"

# The EXIT trap does not run when this script is killed with SIGKILL (as a
# test runner may do on a timeout); the watchdog then stops dynalite and
# the command. It learns the command's pid through a file.
script_pid=$$
(
  trap - EXIT INT TERM
  while kill -0 "$script_pid" 2>/dev/null; do sleep 1; done
  kill "$dyn_pid" 2>/dev/null || true
  if [ -s "$work/cmd.pid" ]; then kill "$(cat "$work/cmd.pid")" 2>/dev/null || true; fi
  rm -rf "$work"
) </dev/null >/dev/null 2>&1 &
watchdog_pid=$!

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

# In the background so that a signal to this script runs the traps at once
# (bash defers traps while a foreground command runs); stdin is kept.
status=0
"$@" <&0 &
cmd_pid=$!
echo "$cmd_pid" >"$work/cmd.pid"
wait "$cmd_pid" || status=$?
cmd_pid=""
exit "$status"
