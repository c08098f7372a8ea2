#!/usr/bin/env bash
# The DynamoDB leaderboard at scale: seeds N players (default 100,000)
# into a private dynalite straight through BatchWriteItem, starts the
# server on it and measures GET /v1/leaderboard with 16 concurrent
# readers, against GET /healthz of the same server at the same
# concurrency in the same run (the HTTP floor). Reports p50/p99, the
# non-200 answers, the first (cold) request, and the server's RSS.
#
#   bench/leaderboard.sh [seconds] [players]        (defaults 20, 100000)
# Runs two scenarios: the default refresh period (10 s), and
# TS_LEADERBOARD_REFRESH_S=1, where a refresh Scan of the whole table is
# nearly always running under the readers. Needs wrk and the test tools
# (scripts/install-test-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
players=${2:-100000}
command -v wrk >/dev/null || { [ "$(id -u)" -eq 0 ] && apt-get install -y -qq wrk >/dev/null || sudo apt-get install -y -qq wrk >/dev/null; }
./scripts/build.sh build-bench -DCMAKE_BUILD_TYPE=Release -DTS_TESTS=OFF >/dev/null
bin="$PWD/build-bench/tourney-stats"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

TS_TEST_BIN="$bin" TS_TEST_DYNALITE="$PWD/tests/tools/node_modules/.bin/dynalite" \
  BENCH_WORK="$work" BENCH_SECS="$secs" BENCH_PLAYERS="$players" BENCH_BIN="$bin" \
  tests/e2e/with-dynalite.sh bash -c '
set -euo pipefail
w=$BENCH_WORK
t0=$(date +%s.%N)
node bench/seed_players.mjs "$AWS_ENDPOINT_URL_DYNAMODB" "$TS_TABLE" "$BENCH_PLAYERS" >/dev/null
echo "seeded $BENCH_PLAYERS players in $(echo "$(date +%s.%N) - $t0" | bc) s" > "$w/seed.txt"
scenario() { # scenario <name> <refresh_s>
  local name=$1 refresh=$2 p port=""
  TS_STORE=dynamodb TS_BIND=127.0.0.1 TS_PORT=0 TS_LEADERBOARD_REFRESH_S=$refresh \
    "$BENCH_BIN" > "$w/$name.log" 2>&1 & p=$!
  for _ in $(seq 200); do
    port=$(grep -o "\"port\":[0-9]*" "$w/$name.log" | head -1 | grep -o "[0-9]*$" || true)
    [ -n "$port" ] && break; sleep 0.05
  done
  [ -n "$port" ] || { cat "$w/$name.log" >&2; exit 1; }
  # The first request waits for the first refresh (up to 3 s, else 503).
  curl -s -o /dev/null -w "%{http_code} %{time_total}\n" \
    "http://127.0.0.1:$port/v1/leaderboard?limit=10" > "$w/$name.cold"
  for _ in $(seq 100); do
    code=$(curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:$port/v1/leaderboard?limit=10")
    [ "$code" = 200 ] && break; sleep 0.2
  done
  wrk -t2 -c16 -d"${BENCH_SECS}s" --latency "http://127.0.0.1:$port/healthz" > "$w/$name.floor.txt"
  wrk -t2 -c16 -d"${BENCH_SECS}s" --latency -s bench/leaderboard.lua "http://127.0.0.1:$port" > "$w/$name.board.txt"
  grep -E "^(VmRSS|VmHWM)" /proc/$p/status > "$w/$name.rss"
  kill -TERM $p; wait $p || true
}
scenario default 10
scenario busy 1
'
fig() { awk -v k="$2" '$1==k {print $2}' "$work/$1"; }
rps() { awk '/Requests\/sec/ {print $2}' "$work/$1"; }
bad() { awk '/Non-2xx/ {print $5}' "$work/$1"; }
echo
cat "$work/seed.txt"
echo "$(nproc) cores, wrk -t2 -c16, $secs s per measurement, $players players"
printf '%-58s %9s %9s %9s %8s\n' measurement req/s p50 p99 non-200
for s in default busy; do
  label="refresh 10 s (default)"; [ "$s" = busy ] && label="TS_LEADERBOARD_REFRESH_S=1"
  printf '%-58s %9s %9s %9s %8s\n' "GET /healthz, $label (reference)" "$(rps $s.floor.txt)" \
    "$(fig $s.floor.txt 50%)" "$(fig $s.floor.txt 99%)" "$(bad $s.floor.txt)"
  printf '%-58s %9s %9s %9s %8s\n' "GET /v1/leaderboard (4 orders, limit 10/100/1000), $label" \
    "$(rps $s.board.txt)" "$(fig $s.board.txt 50%)" "$(fig $s.board.txt 99%)" "$(bad $s.board.txt)"
  echo "  first request (cold, status seconds): $(cat "$work/$s.cold");" \
    "server $(tr '\n' ' ' < "$work/$s.rss")"
done
