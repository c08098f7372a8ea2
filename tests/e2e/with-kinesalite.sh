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

die() {
  echo "with-kinesalite: $*" >&2
  exit 2
}

[ $# -ge 1 ] || die "usage: $0 <command> [args...]"
here="$(cd "$(dirname "$0")" && pwd)"
kinesalite="${TS_TEST_KINESALITE:-$here/../tools/node_modules/.bin/kinesalite}"
[ -x "$kinesalite" ] ||
  die "no kinesalite at $kinesalite (run scripts/install-test-deps.sh)"
command -v node >/dev/null 2>&1 || die "node is not installed"
command -v curl >/dev/null 2>&1 || die "curl is not installed"

work="$(mktemp -d "${TMPDIR:-/tmp}/ts-kinesalite-XXXXXX")"
kin_pid=""
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
  if [ -n "$kin_pid" ] && kill -0 "$kin_pid" 2>/dev/null; then
    kill "$kin_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$kin_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$kin_pid" 2>/dev/null || true
    wait "$kin_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  node -e 'const s=require("net").createServer();
s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
}

# Starts kinesalite on $1; 0 once it answers HTTP (any status), 1 when it
# died or stayed silent for 15 s.
start_kinesalite() {
  local port="$1"
  "$kinesalite" --host 127.0.0.1 --port "$port" --createStreamMs 0 \
    --deleteStreamMs 0 --updateStreamMs 0 >"$work/kinesalite.log" 2>&1 &
  kin_pid=$!
  for _ in $(seq 1 150); do
    if ! kill -0 "$kin_pid" 2>/dev/null; then
      wait "$kin_pid" 2>/dev/null || true
      kin_pid=""
      return 1
    fi
    if curl -s -o /dev/null --max-time 1 --noproxy '*' \
      "http://127.0.0.1:$port/"; then
      return 0
    fi
    sleep 0.1
  done
  kill "$kin_pid" 2>/dev/null || true
  wait "$kin_pid" 2>/dev/null || true
  kin_pid=""
  return 1
}

port=""
for attempt in 1 2 3; do
  p="$(free_port)"
  if start_kinesalite "$p"; then
    port="$p"
    break
  fi
  echo "with-kinesalite: kinesalite did not come up on port $p (attempt $attempt)" >&2
  cat "$work/kinesalite.log" >&2 || true
done
[ -n "$port" ] || die "could not start kinesalite"

# A SIGKILL of this script skips the EXIT trap; the watchdog then stops
# kinesalite and the command.
script_pid=$$
(
  trap - EXIT INT TERM
  while kill -0 "$script_pid" 2>/dev/null; do sleep 1; done
  kill "$kin_pid" 2>/dev/null || true
  if [ -s "$work/cmd.pid" ]; then kill "$(cat "$work/cmd.pid")" 2>/dev/null || true; fi
  rm -rf "$work"
) </dev/null >/dev/null 2>&1 &
watchdog_pid=$!

export AWS_ENDPOINT_URL_KINESIS="http://127.0.0.1:$port"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-AKIDTESTTOURNEYSTATS}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test-secret-for-kinesalite}"
export AWS_EC2_METADATA_DISABLED=true
export TS_TEST_KINESALITE="$kinesalite"
export TS_TEST_KINESALITE_PID="$kin_pid"
export TS_TEST_KINESALITE_PORT="$port"
echo "with-kinesalite: kinesalite pid $kin_pid on port $port" >&2

status=0
"$@" <&0 &
cmd_pid=$!
echo "$cmd_pid" >"$work/cmd.pid"
wait "$cmd_pid" || status=$?
cmd_pid=""
exit "$status"
