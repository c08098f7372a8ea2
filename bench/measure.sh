#!/usr/bin/env bash
# The measurements of bench/run.sh (run that, not this): every scenario of
# the service and every reference, each on a fresh server process, one line
# per measurement appended to $BENCH_WORK/results:
#   label <TAB> rate <TAB> p50 <TAB> p99 <TAB> peak RSS MiB <TAB> note
# Ingest scenarios start on an empty store (a fresh SQLite file or a fresh
# DynamoDB table) so that their totals can be checked exactly against the
# server's own count; their rate is records/s. run.sh starts this inside
# tests/e2e/with-dynalite.sh when dynalite is installed (the AWS_* and
# TS_TABLE variables then point at it), else with BENCH_NO_DDB=1.
set -euo pipefail
cd "$(dirname "$0")/.."
w=$BENCH_WORK
secs=$BENCH_SECS
bin=$BENCH_BIN
res=$w/results
# The creation time of every generated record (bench/ingest.lua).
BENCH_T0=$(date +%s)
: >"$res"

# Children started here (servers, nginx) are stopped whatever happens.
children=()
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local p
  for p in "${children[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# BENCH_ONLY (an extended regex) limits the run to the labels it matches,
# e.g. BENCH_ONLY='^d_b100' to look at one scenario again.
want() { [ -z "${BENCH_ONLY:-}" ] || [[ $1 =~ $BENCH_ONLY ]]; }
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$res"; }
log() { echo "bench: $*" >&2; }

free_port() {
  node -e 'const s=require("net").createServer();
s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
}

# wrk_run <label> <connections> <url> <lua or -> [wrk args...]: sets RATE,
# P50, P99 and NOTE (non-2xx answers and socket errors, which a figure must
# not hide). One wrk thread everywhere, so that client cost is equal.
wrk_run() {
  local label=$1 c=$2 url=$3 lua=$4
  shift 4
  local args=(-t1 -c"$c" -d"${secs}s" --latency)
  [ "$lua" != - ] && args+=(-s "$lua")
  wrk "${args[@]}" "$@" "$url" >"$w/$label.wrk" 2>"$w/$label.err" || true
  RATE=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$w/$label.wrk")
  P50=$(awk '$1=="50%" {print $2}' "$w/$label.wrk")
  P99=$(awk '$1=="99%" {print $2}' "$w/$label.wrk")
  # bench/ingest.lua measures each request itself (wrk's distribution is a
  # sample per interval, see there): its figures replace wrk's.
  if grep -q '^Per-request latency' "$w/$label.wrk"; then
    P50=$(awk '/^Per-request latency/ {print $4 "us"}' "$w/$label.wrk")
    P99=$(awk '/^Per-request latency/ {print $7 "us"}' "$w/$label.wrk")
  fi
  NOTE=$(grep -hE 'Non-2xx|Socket errors' "$w/$label.wrk" | tr -s ' ' | paste -sd ';' || true)
  # What the non-2xx answers were (bench/*.lua write "status N: body").
  [ -z "$NOTE" ] || NOTE="$NOTE; $(grep -o '^status [0-9]*' "$w/$label.err" | sort | uniq -c |
    awk '{ printf "%s%s x %s", (NR > 1 ? ", " : ""), $1, $3 }')"
  [ -n "$RATE" ] || { NOTE="wrk failed: $(head -c 200 "$w/$label.err")"; RATE=0; }
  [ -z "$NOTE" ] || log "$label: $NOTE"
}

# start_server <name> [env...]: a server on a free port with the given
# environment (the store is chosen by it); sets SPID and SPORT. The port is
# read with ss, as the listening line is logged at info, and info would log
# every batch.
start_server() {
  local name=$1
  shift
  env "$@" TS_BIND=127.0.0.1 TS_PORT=0 TS_LOG_LEVEL=warn "$bin" \
    >"$w/$name.log" 2>&1 &
  SPID=$!
  children+=("$SPID")
  SPORT=""
  for _ in $(seq 200); do
    SPORT=$(ss -ltnp 2>/dev/null | grep "pid=$SPID," |
      grep -o '127.0.0.1:[0-9]*' | head -1 | cut -d: -f2 || true)
    [ -n "$SPORT" ] && return 0
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.05
  done
  log "server $name did not start"
  cat "$w/$name.log" >&2
  exit 1
}

# stop_server: the peak RSS (VmHWM) at the end of the server's life, in
# MiB, into RSS; then SIGTERM and wait.
stop_server() {
  RSS=$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$SPID/status")
  kill -TERM "$SPID"
  wait "$SPID" || true
}

# store_env <kind> <name>: the environment of a server on store <kind>
# (full, normal, ddb) named <name>: a SQLite file or a DynamoDB table of
# that name (created here when missing).
store_env() {
  case $1 in
  full) ENV=(TS_SQLITE_PATH="$w/$2.db") ;;
  normal) ENV=(TS_SQLITE_PATH="$w/$2.db" TS_SQLITE_SYNC=normal) ;;
  ddb)
    ENV=(TS_STORE=dynamodb TS_TABLE="$TS_TABLE-$2")
    env "${ENV[@]}" "$bin" create-table >"$w/$2.create.log" 2>&1 ||
      { cat "$w/$2.create.log" >&2; exit 1; }
    ;;
  esac
}

# ingest <label> <kind> <connections> <records-per-request> <close 0|1>:
# on an empty store; records/s are the records the server acknowledged as
# applied (its own count) per second. Then bench/totals.mjs sends every
# generated record again until answered 200 and requires every player's
# games and wins to be exactly what the generated records give.
ingest() {
  local label=$1 kind=$2 c=$3 n=$4 close=$5 applied generated
  want "$label" || return 0
  store_env "$kind" "$label"
  start_server "$label" "${ENV[@]}"
  TS_BENCH_CLOSE=$close TS_BENCH_BATCH=$n TS_BENCH_RUN=$label \
    TS_BENCH_T0=$BENCH_T0 TS_BENCH_COUNT_FILE="$w/$label.count" \
    wrk_run "$label" "$c" "http://127.0.0.1:$SPORT" bench/ingest.lua --timeout 30s
  # Peak RSS of the scenario, not of the check's resend below.
  RSS=$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$SPID/status")
  local rss=$RSS
  generated=$(cat "$w/$label.count" 2>/dev/null || echo 0)
  if applied=$(node bench/totals.mjs "$SPORT" "$generated" "$label" "$BENCH_T0" 1000 \
    2>>"$w/$label.err"); then
    echo "$label $generated" >>"$w/totals"
  else
    applied=0
    echo "$label WRONG" >>"$w/totals"
    NOTE="TOTALS WRONG: $(grep -m1 'TOTALS WRONG' "$w/$label.err") $NOTE"
    log "$label: totals wrong"
  fi
  stop_server
  record "$label" "$(awk -v a="$applied" -v s="$secs" 'BEGIN { printf "%.0f", a / s }')" \
    "$P50" "$P99" "$rss" "$NOTE"
  LAST_STORE=$label
  LAST_KIND=$kind
}

# read_scenario <label> <kind> <store-name> <connections> <path or lua>: GETs
# on the store an ingest scenario left.
read_scenario() {
  local label=$1 kind=$2 name=$3 c=$4 what=$5
  want "$label" || return 0
  store_env "$kind" "$name"
  start_server "$label" "${ENV[@]}"
  # The DynamoDB leaderboard answers 503 until its first refresh.
  for _ in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' \
      "http://127.0.0.1:$SPORT/v1/leaderboard?limit=10")" = 200 ] && break
    sleep 0.1
  done
  if [ "${what%.lua}" != "$what" ]; then
    wrk_run "$label" "$c" "http://127.0.0.1:$SPORT" "$what"
  else
    wrk_run "$label" "$c" "http://127.0.0.1:$SPORT$what" -
  fi
  stop_server
  record "$label" "$RATE" "$P50" "$P99" "$RSS" "$NOTE"
}

# The player whose stats every GET asks for (nginx serves the same body).
first_player() {
  curl -sf "http://127.0.0.1:$SPORT/v1/players?limit=1" |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).players[0].player))'
}

log "SQLite store, synchronous=FULL (the default)"
ingest f_ing1_ka32 full 32 1 0
ingest f_ing1_ka1 full 1 1 0
ingest f_ing1_close32 full 32 1 1
ingest f_b100_ka1 full 1 100 0
ingest f_b100_ka32 full 32 100 0
LAST_STORE=${LAST_STORE:-}
# BENCH_ONLY skipped the batches: fill a store for the GETs anyway.
[ -n "$LAST_STORE" ] || BENCH_ONLY= ingest f_fill full 8 100 0
store_env full "$LAST_STORE"
start_server probe "${ENV[@]}"
player=$(first_player)
mkdir -p "$w/nginx/www/v1/players/$player"
curl -sf "http://127.0.0.1:$SPORT/v1/players/$player/stats" \
  >"$w/nginx/www/v1/players/$player/stats"
stop_server
stats_path=/v1/players/$player/stats
read_scenario f_floor32 full "$LAST_STORE" 32 /healthz
read_scenario f_stats32 full "$LAST_STORE" 32 "$stats_path"
read_scenario f_stats256 full "$LAST_STORE" 256 "$stats_path"
read_scenario f_board32 full "$LAST_STORE" 32 bench/leaderboard.lua
read_scenario f_board256 full "$LAST_STORE" 256 bench/leaderboard.lua

log "SQLite store, TS_SQLITE_SYNC=normal"
ingest n_ing1_ka32 normal 32 1 0
ingest n_ing1_close32 normal 32 1 1
ingest n_b100_ka32 normal 32 100 0

log "nginx serving the same stats JSON ($(wc -c <"$w/nginx/www$stats_path") bytes)"
nd=$w/nginx
nport=$(free_port)
nuser=""
# As root nginx hands requests to workers running as nobody, who cannot
# enter a mktemp dir; root workers are fine for a loopback benchmark.
[ "$(id -u)" -eq 0 ] && nuser="user root;"
sed -e "s|@DIR@|$nd|g" -e "s|@PORT@|$nport|g" -e "s|@USER@|$nuser|" \
  bench/nginx.conf >"$nd/nginx.conf"
"$BENCH_NGINX" -p "$nd" -c "$nd/nginx.conf" -e "$nd/error.log" \
  >"$nd/stdout.log" 2>&1 &
npid=$!
children+=("$npid")
for _ in $(seq 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$nport$stats_path" && break
  sleep 0.05
done
curl -sf -o /dev/null "http://127.0.0.1:$nport$stats_path" ||
  { log "nginx did not start"; cat "$nd/error.log" "$nd/stdout.log" >&2; exit 1; }
for c in 32 256; do
  wrk_run "nginx_ka$c" "$c" "http://127.0.0.1:$nport$stats_path" -
  record "nginx_ka$c" "$RATE" "$P50" "$P99" - "$NOTE"
done
wrk_run nginx_close32 32 "http://127.0.0.1:$nport$stats_path" - -H "Connection: close"
record nginx_close32 "$RATE" "$P50" "$P99" - "$NOTE"
kill -TERM "$npid"
wait "$npid" || true

log "raw SQLite upserts (bench/sqlite_raw.c)"
for sync in full normal; do
  for n in 1 100; do
    rate=$("$BENCH_SQLITE_RAW" "$w/raw.db" "$sync" "$n" "$secs" | cut -d' ' -f1)
    record "sqlite_${sync}_$n" "$rate" - - - ""
  done
done

if [ -z "${BENCH_NO_DDB:-}" ]; then
  log "dynalite raw UpdateItem and GetItem"
  raw_table="$TS_TABLE-raw"
  TS_STORE=dynamodb TS_TABLE=$raw_table "$bin" create-table >"$w/raw.create.log" 2>&1 ||
    { cat "$w/raw.create.log" >&2; exit 1; }
  for c in 32 1; do
    TS_BENCH_TABLE=$raw_table wrk_run "ddb_update$c" "$c" "$AWS_ENDPOINT_URL_DYNAMODB" bench/ddb_raw.lua
    record "ddb_update$c" "$RATE" "$P50" "$P99" - "$NOTE"
  done
  for c in 32 1; do
    TS_BENCH_TABLE=$raw_table wrk_run "ddb_get$c" "$c" "$AWS_ENDPOINT_URL_DYNAMODB" bench/ddb_get.lua
    record "ddb_get$c" "$RATE" "$P50" "$P99" - "$NOTE"
  done

  log "DynamoDB store on dynalite"
  ingest d_ing1_ka32 ddb 32 1 0
  ingest d_ing1_ka1 ddb 1 1 0
  ingest d_ing1_close32 ddb 32 1 1
  ingest d_b100_ka1 ddb 1 100 0
  ingest d_b100_ka32 ddb 32 100 0
  [ "${LAST_KIND:-}" = ddb ] || BENCH_ONLY= ingest d_fill ddb 8 100 0
  # The same player when it is there (nearly always); else this store's first.
  store_env ddb "$LAST_STORE"
  start_server probe "${ENV[@]}"
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SPORT$stats_path")" = 200 ] ||
    stats_path=/v1/players/$(first_player)/stats
  stop_server
  read_scenario d_stats32 ddb "$LAST_STORE" 32 "$stats_path"
  read_scenario d_stats256 ddb "$LAST_STORE" 256 "$stats_path"
  read_scenario d_board32 ddb "$LAST_STORE" 32 bench/leaderboard.lua
  read_scenario d_board256 ddb "$LAST_STORE" 256 bench/leaderboard.lua

  log "the original Lambda's logic (bench/lambda_logic.py, python3-boto3)"
  if out=$(/usr/bin/python3 bench/lambda_logic.py "$secs" 2>"$w/lambda.err"); then
    read -r rate p50 _ <<<"$out"
    record lambda "$rate" "${p50}ms" - - ""
  else
    record lambda 0 - - - "failed: $(tail -1 "$w/lambda.err")"
    log "lambda_logic.py failed: $(tail -3 "$w/lambda.err")"
  fi
fi
