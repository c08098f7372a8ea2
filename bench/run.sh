#!/usr/bin/env bash
# Benchmarks of tourney-stats on this machine, as ONE table in which every
# figure sits next to a reference measured in the same run, on the same
# machine, and their ratio: an absolute rate on a shared 2-core machine swings
# 20-30% between runs, a ratio within one run much less. The references:
#   nginx        the same stats JSON served as a static file (bench/nginx.conf),
#                keep-alive and Connection: close: the ceiling of an HTTP GET
#   raw SQLite   upserts of the same rows in WAL mode at the same durability,
#                1 and 100 per transaction (bench/sqlite_raw.c)
#   dynalite     raw UpdateItem and GetItem at the same concurrency
#                (bench/ddb_raw.lua, bench/ddb_get.lua)
#   the Lambda   the original Lambda's logic, GetItem then Put/UpdateItem per
#                record with boto3 (bench/lambda_logic.py), on the same dynalite
# Every scenario runs on a fresh server process (its peak RSS is reported);
# every ingest scenario starts on an empty store and ends with a check that
# the games summed over all players equal the records the server applied.
# The measurements are in bench/measure.sh; docs/BENCHMARKS.md has the method.
#
#   bench/run.sh [seconds-per-scenario]      (default 8: about 6 minutes)
# Installs wrk, nginx and python3-boto3 with apt-get when missing; needs the
# test tools (scripts/install-test-deps.sh) for the DynamoDB part.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}

# apt_install <package>: as root directly, else through sudo; the package
# lists may be empty on a fresh machine, so update once and retry.
apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get install -y -qq "$1" >/dev/null 2>&1 ||
    { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq "$1" >/dev/null; }
}
command -v wrk >/dev/null || apt_install wrk
# nginx lives in /usr/sbin, which a user's PATH may lack.
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || { apt_install nginx; nginx=/usr/sbin/nginx; }
# Debian's boto3 is for Debian's python3, whatever python3 is first on PATH.
/usr/bin/python3 -c 'import boto3' 2>/dev/null || apt_install python3-boto3

./scripts/build.sh build-bench -DCMAKE_BUILD_TYPE=Release -DTS_TESTS=OFF >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The SQLite reference is built as the server is: optimised, warnings errors.
# shellcheck disable=SC2046  # pkg-config prints several words on purpose
cc -std=c17 -O2 -Wall -Wextra -Werror -o "$work/sqlite_raw" bench/sqlite_raw.c \
  $(pkg-config --cflags --libs sqlite3)

export BENCH_WORK=$work BENCH_SECS=$secs BENCH_BIN=$PWD/build-bench/tourney-stats
export BENCH_NGINX=$nginx BENCH_SQLITE_RAW=$work/sqlite_raw
dynalite=$PWD/tests/tools/node_modules/.bin/dynalite
started=$(date +%s)
if [ -x "$dynalite" ]; then
  TS_TEST_BIN="$BENCH_BIN" TS_TEST_DYNALITE="$dynalite" \
    tests/e2e/with-dynalite.sh bench/measure.sh 2>"$work/measure.log" ||
    { cat "$work/measure.log" >&2; exit 1; }
else
  echo "no dynalite (scripts/install-test-deps.sh): DynamoDB part skipped" >&2
  BENCH_NO_DDB=1 bench/measure.sh 2>"$work/measure.log" ||
    { cat "$work/measure.log" >&2; exit 1; }
fi
grep -E ': (Non-2xx|Socket|totals|wrk failed|lambda)' "$work/measure.log" >&2 || true

# The table. results: label rate p50 p99 rss note (rate in records/s for
# ingest scenarios, requests/s otherwise).
awk -F'\t' -v secs="$secs" -v took=$(($(date +%s) - started)) \
  -v cpu="$(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" '
function commas(x,   s, neg) {
  if (x == "" || x == "-") return "-"
  x = sprintf("%.0f", x); neg = x < 0; if (neg) x = -x; s = ""
  while (length(x) > 3) { s = "," substr(x, length(x) - 2) s; x = substr(x, 1, length(x) - 3) }
  return (neg ? "-" : "") x s
}
function ms(t) { # wrk latency text (250.00us, 1.32ms, 1.02s) in ms
  if (t ~ /us$/) return substr(t, 1, length(t) - 2) / 1000
  if (t ~ /ms$/) return substr(t, 1, length(t) - 2) + 0
  if (t ~ /s$/) return substr(t, 1, length(t) - 1) * 1000
  return ""
}
function lat(t) { return t == "" || t == "-" ? "-" : sprintf("%.2f ms", ms(t)) }
function ratio(a, b) { return (b > 0 && a != "") ? sprintf("%.2fx", a / b) : "-" }
# row(label, text, records per request, reference label, reference text)
function row(l, text, n, r, rtext,   rps, recs) {
  if (!(l in rate)) return
  rps = n > 1 ? rate[l] / n : rate[l]; recs = n > 0 ? commas(rate[l]) : ""
  printf "| %s | %s | %s | %s | %s | %s | %s %s | %s |\n", text, commas(rps), recs,
    lat(p50[l]), lat(p99[l]), rss[l] == "-" ? "-" : rss[l] " MiB", rtext,
    commas(rate[r]), ratio(rate[l], rate[r])
  if (note[l] != "") notes = notes "\n- " text ": " note[l]
}
function ref(l, text, unit) {
  if (!(l in rate)) return
  printf "| %s | %s | | %s | %s | | (reference) | |\n", text,
    commas(rate[l]) (unit ? " " unit : ""), lat(p50[l]), lat(p99[l])
  if (note[l] != "") notes = notes "\n- " text ": " note[l]
}
{ rate[$1] = $2; p50[$1] = $3; p99[$1] = $4; rss[$1] = $5; note[$1] = $6 }
END {
  printf "%s; %d s per scenario, wrk -t1; whole run %d s\n\n", cpu, secs, took
  print "| scenario | req/s | records/s | p50 | p99 | peak RSS | reference | ratio |"
  print "|---|---:|---:|---:|---:|---:|---|---:|"
  row("f_floor32", "GET /healthz, 32 conns", 0, "nginx_ka32", "nginx static, 32 conns")
  row("f_stats32", "GET stats, 32 conns", 0, "nginx_ka32", "nginx static, 32 conns")
  row("f_stats256", "GET stats, 256 conns", 0, "nginx_ka256", "nginx static, 256 conns")
  row("f_board32", "GET leaderboard (4 orders, limit 10/100/1000), 32 conns", 0, "nginx_ka32", "nginx static, 32 conns")
  row("f_board256", "GET leaderboard (4 orders, limit 10/100/1000), 256 conns", 0, "nginx_ka256", "nginx static, 256 conns")
  row("f_ing1_close32", "POST 1 record, Connection: close, 32 conns (FULL)", 1, "nginx_close32", "nginx static, Connection: close")
  row("f_ing1_ka32", "POST 1 record, keep-alive, 32 conns (FULL)", 1, "f_stats32", "GET stats, 32 conns")
  row("f_ing1_ka1", "POST 1 record, keep-alive, 1 sender (FULL)", 1, "sqlite_full_1", "raw SQLite FULL, 1/tx")
  row("f_b100_ka1", "POST 100 records, 1 sender (FULL)", 100, "sqlite_full_100", "raw SQLite FULL, 100/tx")
  row("f_b100_ka32", "POST 100 records, 32 senders (FULL)", 100, "sqlite_full_100", "raw SQLite FULL, 100/tx")
  row("n_ing1_close32", "POST 1 record, Connection: close, 32 conns (NORMAL)", 1, "nginx_close32", "nginx static, Connection: close")
  row("n_ing1_ka32", "POST 1 record, keep-alive, 32 conns (NORMAL)", 1, "sqlite_normal_1", "raw SQLite NORMAL, 1/tx")
  row("n_b100_ka32", "POST 100 records, 32 senders (NORMAL)", 100, "sqlite_normal_100", "raw SQLite NORMAL, 100/tx")
  row("d_ing1_close32", "DynamoDB: POST 1 record, Connection: close, 32 conns", 1, "ddb_update32", "raw UpdateItem, 32 conns")
  row("d_ing1_ka32", "DynamoDB: POST 1 record, keep-alive, 32 conns", 1, "ddb_update32", "raw UpdateItem, 32 conns")
  row("d_ing1_ka1", "DynamoDB: POST 1 record, keep-alive, 1 sender", 1, "ddb_update1", "raw UpdateItem, 1 conn")
  if ("d_ing1_ka1" in rate && "ddb_get1" in rate)
    printf "| DynamoDB: POST 1 record, 1 sender: p50 | | | %s | | | raw GetItem p50, 1 conn: %s | %s |\n",
      lat(p50["d_ing1_ka1"]), lat(p50["ddb_get1"]), ratio(ms(p50["d_ing1_ka1"]), ms(p50["ddb_get1"]))
  row("d_ing1_ka1", "DynamoDB: POST 1 record, 1 sender, vs the Lambda", 1, "lambda", "the Lambda logic, records/s")
  row("d_b100_ka1", "DynamoDB: POST 100 records, 1 sender", 100, "ddb_update1", "raw UpdateItem, 1 conn")
  row("d_b100_ka32", "DynamoDB: POST 100 records, 32 senders", 100, "ddb_update32", "raw UpdateItem, 32 conns")
  row("d_stats32", "DynamoDB: GET stats, 32 conns", 0, "nginx_ka32", "nginx static, 32 conns")
  row("d_stats256", "DynamoDB: GET stats, 256 conns", 0, "nginx_ka256", "nginx static, 256 conns")
  row("d_board32", "DynamoDB: GET leaderboard, 32 conns", 0, "nginx_ka32", "nginx static, 32 conns")
  row("d_board256", "DynamoDB: GET leaderboard, 256 conns", 0, "nginx_ka256", "nginx static, 256 conns")
  ref("nginx_ka32", "nginx static stats JSON, keep-alive, 32 conns")
  ref("nginx_ka256", "nginx static stats JSON, keep-alive, 256 conns")
  ref("nginx_close32", "nginx static stats JSON, Connection: close, 32 conns")
  ref("sqlite_full_1", "raw SQLite upserts, WAL, FULL, 1 per transaction", "upserts/s")
  ref("sqlite_full_100", "raw SQLite upserts, WAL, FULL, 100 per transaction", "upserts/s")
  ref("sqlite_normal_1", "raw SQLite upserts, WAL, NORMAL, 1 per transaction", "upserts/s")
  ref("sqlite_normal_100", "raw SQLite upserts, WAL, NORMAL, 100 per transaction", "upserts/s")
  ref("ddb_update32", "dynalite raw UpdateItem, 32 conns")
  ref("ddb_update1", "dynalite raw UpdateItem, 1 conn")
  ref("ddb_get32", "dynalite raw GetItem, 32 conns")
  ref("ddb_get1", "dynalite raw GetItem, 1 conn")
  ref("lambda", "the original Lambda logic (python3-boto3), serial", "records/s")
  if (notes != "") print "\nNotes:" notes
}' "$work/results"
echo
echo "Totals exact after every ingest scenario (records applied):" \
  "$(awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }' "$work/totals")"
! grep -q WRONG "$work/totals"
