#!/usr/bin/env bash
# What dynalite itself takes for the one call a single record costs the
# DynamoDB store, set against the GetItem that issue 12's p50 target is a
# ratio of. Each call kind (bench/ddb_calls.lua) runs on one connection,
# with dynalite's raw UpdateItem and GetItem (bench/ddb_raw.lua,
# bench/ddb_get.lua, as in bench/run.sh) and the service's own
# single-record POST on a fresh table (bench/ingest.lua; totals checked with
# bench/totals.mjs) in the same round, against one private dynalite.
#
#   bench/ddb_calls.sh BIN [SECS] [ROUNDS]
#     BIN a release build of tourney-stats; SECS a run (default 3);
#     ROUNDS (default 3).
# Prints each round's p50, req/s and dynalite's CPU a request per kind,
# then each kind's median p50 and CPU and their ratios to GetItem's.
# Needs wrk, node and dynalite (scripts/install-test-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${TS_DDB_CALLS_INNER:-}" ]; then
  if [ $# -lt 1 ] || [ ! -x "$1" ]; then
    sed -n '10,12p' "$0" >&2
    exit 2
  fi
  command -v wrk >/dev/null || {
    echo "ddb_calls: needs wrk (apt-get install wrk)" >&2
    exit 2
  }
  bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
  TS_DDB_CALLS_INNER=1 TS_TEST_BIN=$bin \
    TS_TEST_DYNALITE=${TS_TEST_DYNALITE:-$PWD/tests/tools/node_modules/.bin/dynalite} \
    exec tests/e2e/with-dynalite.sh "$0" "$bin" "${2:-3}" "${3:-3}"
fi

bin=$1 secs=$2 rounds=$3
bench_name=ddb_calls
# shellcheck source=bench/lib.sh
. bench/lib.sh
kinds="get update put put_capacity put_new put_guessed put_new_expected put_guessed_expected service"

table() { # a fresh table named $TS_TABLE-$1
  TS_STORE=dynamodb TS_TABLE="$TS_TABLE-$1" "$bin" create-table >"$bench_work/create.log" 2>&1 ||
    { cat "$bench_work/create.log" >&2; exit 1; }
}

# dynalite's CPU so far (user + system), in clock ticks.
dyn_ticks() { awk '{ print $14 + $15 }' "/proc/$TS_TEST_DYNALITE_PID/stat"; }
hz=$(getconf CLK_TCK)

# run <kind> <round> <url> <lua>: one connection; appends "kind round
# p50_us rate dynalite_cpu_us_per_request".
run() {
  local c0 c1
  c0=$(dyn_ticks)
  wrk -t1 -c1 -d"${secs}s" --latency -s "$4" "$3" >"$bench_work/wrk" 2>"$bench_work/err" || true
  c1=$(dyn_ticks)
  if [ -s "$bench_work/err" ]; then
    echo "ddb_calls: $1: $(head -c 300 "$bench_work/err")" >&2
    exit 1
  fi
  awk -v k="$1" -v r="$2" -v ticks=$((c1 - c0)) -v hz="$hz" '
    $1 == "50%" { v = $2; u = v; sub(/[a-z]+$/, "", v); sub(/^[0-9.]+/, "", u)
                  p = (u == "ms") ? v * 1000 : (u == "s") ? v * 1e6 : v }
    / requests in / { n = $1 }
    /Requests\/sec/ { rate = $2 }
    END { printf "%s %d %.0f %.0f %.0f\n", k, r, p, rate, n ? ticks * 1e6 / hz / n : 0 }' \
    "$bench_work/wrk" | tee -a "$bench_work/all"
}

# median <kind> <column>: the median of that column over the rounds.
median() {
  awk -v k="$1" -v c="$2" '$1 == k { print $c }' "$bench_work/all" | sort -n |
    awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

t0=$(date +%s)
# dynalite's first second runs cold (Node.js compiles as it goes).
table warm
TS_BENCH_TABLE="$TS_TABLE-warm" wrk -t1 -c1 -d1s -s bench/ddb_raw.lua \
  "$AWS_ENDPOINT_URL_DYNAMODB" >/dev/null
for r in $(seq "$rounds"); do
  table "raw$r"
  TS_BENCH_TABLE="$TS_TABLE-raw$r" run update "$r" "$AWS_ENDPOINT_URL_DYNAMODB" bench/ddb_raw.lua
  TS_BENCH_TABLE="$TS_TABLE-raw$r" run get "$r" "$AWS_ENDPOINT_URL_DYNAMODB" bench/ddb_get.lua
  for k in put put_capacity put_new put_guessed put_new_expected put_guessed_expected; do
    table "$k$r"
    TS_BENCH_TABLE="$TS_TABLE-$k$r" TS_BENCH_CALL=$k \
      run "$k" "$r" "$AWS_ENDPOINT_URL_DYNAMODB" bench/ddb_calls.lua
  done
  table "svc$r"
  bench_start "$bin" TS_STORE=dynamodb TS_TABLE="$TS_TABLE-svc$r"
  TS_BENCH_BATCH=1 TS_BENCH_RUN="c$r" TS_BENCH_T0=$t0 TS_BENCH_COUNT_FILE="$bench_work/count" \
    run service "$r" "http://127.0.0.1:$bench_port" bench/ingest.lua
  bench_totals "c$r" "$t0" || exit 1
  bench_stop
done

echo "medians of $rounds rounds, one connection: p50 against GetItem's, and dynalite's CPU a call:"
for k in $kinds; do
  echo "$k $(median "$k" 3) $(median "$k" 5)"
done | awk '{ p[NR] = $2; k[NR] = $1; c[NR] = $3 } $1 == "get" { g = $2; gc = $3 }
  END { for (i = 1; i <= NR; i++)
          printf "%-21s %6.0f us  %5.2fx   cpu %5.0f us  %5.2fx\n", k[i], p[i], p[i] / g, c[i], c[i] / gc }'
