# shellcheck shell=bash
# What bench/ab.sh and bench/ddb_calls.sh share; sourced, not run. It
# gives a work folder, one tourney-stats server at a time on a free
# loopback port, and the totals check of bench/totals.mjs; whatever
# happens, the server is stopped and the folder removed on exit. The
# caller sets bench_name (the prefix of its messages) first and runs from
# the repository's root.

bench_work=$(mktemp -d)
bench_pid=
bench_port=
# shellcheck disable=SC2317  # run by the EXIT trap
bench_cleanup() {
  [ -z "$bench_pid" ] || kill "$bench_pid" 2>/dev/null || true
  rm -rf "$bench_work"
}
trap bench_cleanup EXIT

# bench_start <binary> [VAR=value...]: the server with that environment,
# its log in $bench_work/server.log; sets bench_pid and bench_port. Exits
# 1 when /healthz does not answer within 10 s.
bench_start() {
  local bin=$1 up=0
  shift
  bench_port=$(node -e 'const s=require("net").createServer();
s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});')
  env "$@" TS_BIND=127.0.0.1 TS_PORT="$bench_port" TS_LOG_LEVEL=warn "$bin" \
    >"$bench_work/server.log" 2>&1 &
  bench_pid=$!
  for _ in $(seq 200); do
    curl -sf -o /dev/null "http://127.0.0.1:$bench_port/healthz" && up=1 && break
    sleep 0.05
  done
  [ $up = 1 ] && return 0
  echo "${bench_name:-bench}: $bin did not start:" >&2
  tail -5 "$bench_work/server.log" >&2
  exit 1
}

bench_stop() {
  kill "$bench_pid"
  wait "$bench_pid" 2>/dev/null || true
  bench_pid=
}

# bench_totals <run> <t0>: every record of bench/ingest.lua's run <run>
# (created from <t0>; wrk's count in $bench_work/count) sent again until
# answered 200, then every player's games and wins checked; false, with
# the check's last lines on stderr, when a total is wrong.
bench_totals() {
  node bench/totals.mjs "$bench_port" "$(cat "$bench_work/count")" "$1" "$2" 1000 \
    >/dev/null 2>"$bench_work/totals.err" && return 0
  echo "${bench_name:-bench}: run $1: totals wrong" >&2
  tail -3 "$bench_work/totals.err" >&2
  return 1
}
