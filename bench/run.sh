#!/usr/bin/env bash
# Benchmarks of tourney-stats on this machine. Every figure is reported as a
# ratio against a reference measured in the same run, on the same machine,
# because an absolute rate on a shared 2-core machine says little:
#   HTTP floor  GET /healthz of the same server (routing, no store)
#   dynalite    raw UpdateItem (ADD, no condition, no read) against the same
#               dynalite: the cheapest write an aggregator could make
# After each ingest scenario the totals are checked: the games summed over
# all players must equal the records the server counted as applied.
#
#   bench/run.sh [seconds-per-scenario]      (default 8)
# Needs wrk (installed here with apt-get when missing) and the test tools
# (scripts/install-test-deps.sh) for the DynamoDB part.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
command -v wrk >/dev/null || { [ "$(id -u)" -eq 0 ] && apt-get install -y -qq wrk >/dev/null || sudo apt-get install -y -qq wrk >/dev/null; }
./scripts/build.sh build-bench -DCMAKE_BUILD_TYPE=Release -DTS_TESTS=OFF >/dev/null
bin="$PWD/build-bench/tourney-stats"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

start() { # start <name> [env...] -> sets port
  local name=$1; shift
  env "$@" TS_BIND=127.0.0.1 TS_PORT=0 TS_LOG_LEVEL=warn \
    TS_SQLITE_PATH="$work/$name.db" "$bin" >"$work/$name.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    port=$(grep -o '"msg":"listening".*"port":[0-9]*' "$work/$name.log" 2>/dev/null | grep -o '[0-9]*$' || true)
    [ -n "$port" ] && return 0
    # listening is logged at info; with TS_LOG_LEVEL=warn read it from ss
    port=$(ss -ltnp 2>/dev/null | grep "pid=$pid," | grep -o '127.0.0.1:[0-9]*' | head -1 | cut -d: -f2 || true)
    [ -n "$port" ] && return 0
    sleep 0.05
  done
  echo "server $name did not start" >&2; cat "$work/$name.log" >&2; exit 1
}
stop() { kill -TERM "$pid"; wait "$pid" || true; }

# run_wrk <label> <threads> <connections> <url> [lua] -> prints rps p50 p99
declare -A RPS P50 P99
run_wrk() {
  local label=$1 t=$2 c=$3 url=$4 lua=${5:-}
  local out
  out=$(wrk -t"$t" -c"$c" -d"${secs}s" --latency ${lua:+-s "$lua"} "$url" 2>"$work/wrk.err")
  RPS[$label]=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  P50[$label]=$(awk '$1=="50%" {print $2}' <<<"$out")
  P99[$label]=$(awk '$1=="99%" {print $2}' <<<"$out")
  if grep -q "status" "$work/wrk.err"; then
    echo "non-200 answers in $label:" >&2; head -3 "$work/wrk.err" >&2
  fi
}

# check_totals <port>: sum of games over all players == applied records.
check_totals() { node bench/totals.mjs "$1"; }

echo "== SQLite store (synchronous=FULL, the default)"
start full
run_wrk floor 1 32 "http://127.0.0.1:$port/healthz"
TS_BENCH_CLOSE=0 run_wrk ingest1 1 32 "http://127.0.0.1:$port" bench/ingest.lua
TS_BENCH_CLOSE=1 run_wrk ingest1close 1 32 "http://127.0.0.1:$port" bench/ingest.lua
TS_BENCH_BATCH=100 run_wrk batch100 1 4 "http://127.0.0.1:$port" bench/batch.lua
full_applied=$(check_totals "$port")
stop
echo "== SQLite store (TS_SQLITE_SYNC=normal)"
start normal TS_SQLITE_SYNC=normal
TS_BENCH_CLOSE=0 run_wrk ingest1normal 1 32 "http://127.0.0.1:$port" bench/ingest.lua
normal_applied=$(check_totals "$port")
stop

ddb=""
if [ -x tests/tools/node_modules/.bin/dynalite ]; then
  echo "== DynamoDB store on dynalite"
  TS_TEST_BIN="$bin" TS_TEST_DYNALITE="$PWD/tests/tools/node_modules/.bin/dynalite" \
    tests/e2e/with-dynalite.sh bash -c '
      set -euo pipefail
      TS_BENCH_TABLE=$TS_TABLE wrk -t1 -c8 -d'"$secs"'s --latency -s bench/ddb_raw.lua "$AWS_ENDPOINT_URL_DYNAMODB" > "'"$work"'/ddb_raw.txt"
      TS_STORE=dynamodb TS_BIND=127.0.0.1 TS_PORT=0 "'"$bin"'" > "'"$work"'/ddb.log" 2>&1 & p=$!
      for _ in $(seq 100); do port=$(grep -o "\"port\":[0-9]*" "'"$work"'/ddb.log" | head -1 | grep -o "[0-9]*$" || true); [ -n "$port" ] && break; sleep 0.05; done
      TS_BENCH_CLOSE=0 wrk -t1 -c8 -d'"$secs"'s --latency -s bench/ingest.lua "http://127.0.0.1:$port" > "'"$work"'/ddb_ingest.txt" 2>"'"$work"'/ddb_ingest.err"
      echo "$port" > "'"$work"'/ddb.port"
      kill -TERM $p; wait $p || true
    ' >/dev/null 2>&1 && ddb=yes
  if [ -n "$ddb" ]; then
    for f in ddb_raw ddb_ingest; do
      RPS[$f]=$(awk '/Requests\/sec/ {print $2}' "$work/$f.txt")
      P50[$f]=$(awk '$1=="50%" {print $2}' "$work/$f.txt")
      P99[$f]=$(awk '$1=="99%" {print $2}' "$work/$f.txt")
    done
  fi
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "$(nproc) cores, $secs s per scenario, wrk -t1; figures are medians of one run."
printf '%-46s %10s %12s %9s %9s %8s\n' scenario "req/s" "records/s" p50 p99 ratio
row() { # row <label> <text> <records-per-request> <reference-label> <ref-name>
  local rps=${RPS[$1]:-0}
  printf '%-46s %10s %12s %9s %9s %8s  (vs %s)\n' "$2" "$rps" \
    "$(awk -v r="$rps" -v n="$3" 'BEGIN { printf "%.0f", r * n }')" \
    "${P50[$1]:--}" "${P99[$1]:--}" "$(ratio "$rps" "${RPS[$4]:-0}")" "$5"
}
row floor "GET /healthz, keep-alive, 32 conns (reference)" 1 floor "itself"
row ingest1 "POST 1 record, keep-alive, 32 conns" 1 floor "HTTP floor"
row ingest1close "POST 1 record, Connection: close (a Pipe)" 1 floor "HTTP floor"
row batch100 "POST 100 records, 4 conns" 100 floor "HTTP floor"
row ingest1normal "POST 1 record, TS_SQLITE_SYNC=normal" 1 floor "HTTP floor"
if [ -n "$ddb" ]; then
  row ddb_raw "dynalite raw UpdateItem, 8 conns (reference)" 1 ddb_raw "itself"
  row ddb_ingest "POST 1 record to the DynamoDB store, 8 conns" 1 ddb_raw "raw UpdateItem"
fi
echo "totals exact: SQLite full $full_applied records, normal $normal_applied records"
