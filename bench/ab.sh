#!/usr/bin/env bash
# Paired rounds: one ingest scenario on the embedded store against two or
# more builds, alternating build by build within each round, each run on a
# fresh database, so that the machine's drift over minutes falls on every
# build alike. This is how docs/BENCHMARKS.md measures a change's before
# and after ("paired rounds"); bench/run.sh gives the ratios to references.
#
#   bench/ab.sh SECS CONNS BATCH CLOSE BIN_A BIN_B [BIN...]
#     SECS seconds a run (from the server's start, as in bench/run.sh),
#     CONNS connections (senders), BATCH records a request, CLOSE 1 for
#     `Connection: close` on every request (a Pipe), 0 for keep-alive;
#     ROUNDS (environment, default 3) rounds; TS_AB_STORE=dynamodb runs
#     on the DynamoDB store against one private dynalite (a fresh table a
#     run) instead of a fresh SQLite file.
#
# Prints a line per run: req/s, the server's CPU (user + system, from
# /proc) per request over the measured seconds, the p50, the p99 and the
# slowest request as bench/ingest.lua measures them, each request timed (on
# dynalite also dynalite's CPU per request); then each build's means.
# Every run ends with bench/totals.mjs (every generated record sent again
# until answered 200, every player's games and wins exact); the script exits
# non-zero when a total is wrong. Needs wrk and node (bench/run.sh installs
# wrk). Build the binaries with -DCMAKE_BUILD_TYPE=Release.
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 6 ] || {
  sed -n '8,14p' "$0" >&2
  exit 2
}
secs=$1 conns=$2 batch=$3 close=$4
bins=("${@:5}")
rounds=${ROUNDS:-3}
for b in "${bins[@]}"; do
  [ -x "$b" ] || {
    echo "ab: not an executable: $b" >&2
    exit 2
  }
done
command -v wrk >/dev/null || {
  echo "ab: needs wrk (apt-get install wrk)" >&2
  exit 2
}
store=${TS_AB_STORE:-sqlite}
case $store in
sqlite) ;;
dynamodb)
  if [ -z "${TS_AB_INNER:-}" ]; then
    TS_AB_INNER=1 TS_TEST_BIN=$(cd "$(dirname "${bins[0]}")" && pwd)/$(basename "${bins[0]}") \
      TS_TEST_DYNALITE=${TS_TEST_DYNALITE:-$PWD/tests/tools/node_modules/.bin/dynalite} \
      exec tests/e2e/with-dynalite.sh "$0" "$@"
  fi
  ;;
*)
  echo "ab: TS_AB_STORE is sqlite or dynamodb, not $store" >&2
  exit 2
  ;;
esac

bench_name=ab
# shellcheck source=bench/lib.sh
. bench/lib.sh
ticks=$(getconf CLK_TCK)
t0=$(date +%s)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# per_request <ticks> <requests>: microseconds of CPU a request.
per_request() {
  awk -v t="$1" -v n="$2" -v hz="$ticks" 'BEGIN { printf "%.1f", n ? t * 1e6 / hz / n : 0 }'
}

# load <run> <seconds> <count file>: wrk's output on stdout.
load() {
  TS_BENCH_BATCH=$batch TS_BENCH_CLOSE=$close TS_BENCH_RUN=$1 TS_BENCH_T0=$t0 \
    TS_BENCH_COUNT_FILE=$3 wrk -t1 -c"$conns" -d"$2s" --timeout 30s --latency \
    -s bench/ingest.lua "http://127.0.0.1:$bench_port" 2>>"$bench_work/wrk.err"
}

wrong=0
for r in $(seq "$rounds"); do
  for i in "${!bins[@]}"; do
    if [ "$store" = sqlite ]; then
      rm -rf "$bench_work/db"
      mkdir "$bench_work/db"
      bench_start "${bins[$i]}" TS_SQLITE_PATH="$bench_work/db/ab.db"
    else
      store_vars=(TS_STORE=dynamodb TS_TABLE="$TS_TABLE-r$r-$i")
      env "${store_vars[@]}" "${bins[$i]}" create-table >"$bench_work/create.log" 2>&1 ||
        { cat "$bench_work/create.log" >&2; exit 1; }
      bench_start "${bins[$i]}" "${store_vars[@]}"
    fi
    before=$(cpu_ticks "$bench_pid")
    [ "$store" = dynamodb ] && dyn_before=$(cpu_ticks "$TS_TEST_DYNALITE_PID")
    out=$(load "r$r-$i" "$secs" "$bench_work/count")
    after=$(cpu_ticks "$bench_pid")
    [ "$store" = dynamodb ] && dyn_after=$(cpu_ticks "$TS_TEST_DYNALITE_PID")
    if [ "$store" = dynamodb ]; then
      # Calls sent again (connection failed, timed out), player writes
      # lost to another writer, players that waited for their turn, capacity
      # units consumed (read, write; failed conditional writes are not in it).
      out="$out
$(curl -sf "http://127.0.0.1:$bench_port/metrics" | awk '
        /^ts_aws_retryable_errors_total\{service="dynamodb",reason="transport"\}/ { printf "transport retries %s\n", $2 }
        /^ts_dynamodb_lost_writes_total / { printf "lost writes %s\n", $2 }
        /^ts_dynamodb_turn_waits_total / { printf "turn waits %s\n", $2 }
        /^ts_dynamodb_consumed_capacity_units_total\{.*kind="read"/ { r += $2 }
        /^ts_dynamodb_consumed_capacity_units_total\{.*kind="write"/ { w += $2 }
        END { printf "units read %.0f write %.0f\n", r, w }')"
    fi
    bench_totals "r$r-$i" "$t0" || wrong=1
    bench_stop
    # A run with answers other than 200: what the server logged about
    # them (it logs at warn and above here), so that one is traced, not
    # guessed at.
    if grep -q 'Non-2xx' <<<"$out"; then
      echo "round $r build $i: the server's log:" >&2
      tail -20 "$bench_work/server.log" >&2
    fi
    rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
    n=$(awk '/requests in/ { print $1 }' <<<"$out")
    non=$(grep -E 'Non-2xx|Socket errors|transport retries|lost writes|turn waits|units read' <<<"$out" | tr -s ' ' | paste -sd ';' || true)
    cpu=$(per_request $((after - before)) "$n")
    # p99 and the slowest request: where a request waits long (a turn, a
    # lock), the mean rate hides it. bench/ingest.lua's own per-request
    # figures, not wrk's sample (see there).
    tail_ms=$(awk '/^Per-request latency/ {
        printf "p50 %.2f ms p99 %.1f ms max %.1f ms", $4 / 1000, $7 / 1000, $10 / 1000 }' <<<"$out")
    if [ "$store" = dynamodb ]; then
      # dynalite's own CPU (one Node.js thread) per request: the store's
      # side of the cost, which the server's CPU leaves out.
      non="dynalite cpu $(per_request $((dyn_after - dyn_before)) "$n") us/request;$non"
    fi
    printf 'round %d build %d: %9.1f req/s  cpu %7.1f us/request  %s  %s\n' \
      "$r" "$i" "$rps" "$cpu" "$tail_ms" "$non"
    echo "$i $rps $cpu" >>"$bench_work/all"
  done
done
awk -v nb=${#bins[@]} '{ s[$1] += $2; c[$1] += $3; k[$1]++ }
  END { for (i = 0; i < nb; i++)
          printf "build %d: mean %.1f req/s, cpu %.1f us/request (%d rounds)\n",
                 i, s[i] / k[i], c[i] / k[i], k[i] }' "$bench_work/all"
for i in "${!bins[@]}"; do echo "build $i: ${bins[$i]}"; done
exit "$wrong"
