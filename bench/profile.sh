#!/usr/bin/env bash
# Where the time goes in one benchmark scenario: perf samples the server
# (call graphs) while wrk drives it, on the SQLite store, and the top of
# the report is printed. Run as root or with perf_event_paranoid <= 1.
#
#   bench/profile.sh get|post1|post1close|post100 [seconds] [connections]
# The build is RelWithDebInfo-like (-O2 -g, frame pointers) so that the
# call graph is readable; perf.data stays in build-profile/.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:?get|post1|post1close|post100}
secs=${2:-5}
conns=${3:-32}
command -v perf >/dev/null || { echo "needs perf (apt-get install linux-perf)" >&2; exit 1; }
./scripts/build.sh build-profile -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTS_TESTS=OFF \
  -DCMAKE_C_FLAGS="-fno-omit-frame-pointer" >/dev/null
bin=$PWD/build-profile/tourney-stats
out=$PWD/build-profile
rm -f "$out/p.db" "$out/p.db-wal" "$out/p.db-shm"
port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});')
TS_BIND=127.0.0.1 TS_PORT=$port TS_LOG_LEVEL=warn TS_SQLITE_PATH="$out/p.db" \
  "$bin" >"$out/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.05; done
url=http://127.0.0.1:$port
case $what in
get)
  TS_BENCH_BATCH=100 TS_BENCH_RUN=fill wrk -t1 -c4 -d1s -s bench/ingest.lua "$url" >/dev/null
  lua=(); url=$url/v1/players/p1/stats ;;
post1) lua=(-s bench/ingest.lua) ;;
post1close) lua=(-s bench/ingest.lua); export TS_BENCH_CLOSE=1 ;;
post100) lua=(-s bench/ingest.lua); export TS_BENCH_BATCH=100 ;;
*) echo "unknown scenario $what" >&2; exit 2 ;;
esac
perf record -q -g -p "$pid" -o "$out/perf.data" -- sleep "$secs" 2>/dev/null &
ppid=$!
wrk -t1 -c"$conns" -d"${secs}s" "${lua[@]}" "$url" | grep -E 'Requests/sec|Non-2xx'
wait $ppid || true
perf report -i "$out/perf.data" --no-children --percent-limit 1.5 --stdio \
  --sort symbol -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40
