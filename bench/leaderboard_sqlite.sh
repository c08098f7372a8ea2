#!/usr/bin/env bash
# The embedded store's leaderboard at scale (docs/BENCHMARKS.md, change
# 21): fills a fresh SQLite file with about N players (default 100,000)
# through the server itself (batches of 1000 records from 2 connections,
# for 6 s), then measures GET /v1/leaderboard (bench/leaderboard.lua):
# the first request (it builds the top rows by a scan), 16 readers alone,
# and 8 readers while 8 connections POST single records beside them, with
# the ingest rate they leave. Reports req/s, p50/p99, non-200 answers and
# the server's peak RSS.
#
#   bench/leaderboard_sqlite.sh [seconds] [players] [binary]
# seconds per measurement (default 5); binary defaults to a release build
# in build-bench/ (pass another to compare two builds).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
players=${2:-100000}
bin=${3:-}
command -v wrk >/dev/null || { [ "$(id -u)" -eq 0 ] && apt-get install -y -qq wrk >/dev/null || sudo apt-get install -y -qq wrk >/dev/null; }
if [ -z "$bin" ]; then
  ./scripts/build.sh build-bench -DCMAKE_BUILD_TYPE=Release -DTS_TESTS=OFF >/dev/null
  bin="$PWD/build-bench/tourney-stats"
fi
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

# a free port, so that the server may log at warn (as in bench/run.sh)
port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});')
TS_BIND=127.0.0.1 TS_PORT=$port TS_LOG_LEVEL=warn TS_SQLITE_PATH="$work/stats.db" \
  "$bin" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 200); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break
  sleep 0.05
done
curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" || { cat "$work/server.log" >&2; exit 1; }
url=http://127.0.0.1:$port

summary() { # summary <label> <wrk output file>
  awk -v label="$1" '/Requests\/sec/ {r=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
    /Non-2xx/ {bad=$5} END {printf "%-52s %9s %9s %9s %8s\n", label, r, p50, p99, bad + 0}' "$2"
}

TS_BENCH_BATCH=1000 TS_BENCH_PLAYERS=$players TS_BENCH_RUN=seed \
  wrk -t1 -c2 -d6s -s bench/ingest.lua "$url" >"$work/seed.txt"
cold=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' "$url/v1/leaderboard?limit=1000")
wrk -t2 -c16 -d"${secs}s" --latency -s bench/leaderboard.lua "$url" >"$work/alone.txt"
TS_BENCH_BATCH=1 TS_BENCH_PLAYERS=$players TS_BENCH_RUN=beside \
  wrk -t1 -c8 -d"${secs}s" --latency -s bench/ingest.lua "$url" >"$work/ingest.txt" &
ingest=$!
wrk -t1 -c8 -d"${secs}s" --latency -s bench/leaderboard.lua "$url" >"$work/beside.txt"
wait "$ingest"
hwm=$(awk '/^VmHWM/ {print $2, $3}' "/proc/$pid/status")

echo
echo "$(nproc) cores; $(awk '/Requests\/sec/ {printf "%.1f", $2}' "$work/seed.txt") batches of 1000/s while seeding;" \
  "$secs s per measurement"
echo "first GET /v1/leaderboard?limit=1000 (builds the top rows): status, seconds: $cold"
printf '%-52s %9s %9s %9s %8s\n' measurement req/s p50 p99 non-200
summary "GET /v1/leaderboard, 16 conns" "$work/alone.txt"
summary "GET /v1/leaderboard, 8 conns, beside ingest" "$work/beside.txt"
summary "POST 1 record, 8 conns, beside the leaderboards" "$work/ingest.txt"
echo "server peak RSS: $hwm"
