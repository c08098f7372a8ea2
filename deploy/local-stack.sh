#!/usr/bin/env bash
# The production shape on one machine, from the built binary, on loopback:
# dynalite as DynamoDB, `tourney-stats create-table`, two replicas on the
# DynamoDB store, and nginx in front of them as the load balancer (the same
# rules as deploy/compose.yaml: deploy/nginx/). No container engine needed.
#
#   deploy/local-stack.sh start        start everything; prints the URL
#   deploy/local-stack.sh stop         stop everything (SIGTERM, then KILL)
#   deploy/local-stack.sh status       what runs, where
#   deploy/local-stack.sh kill N       SIGKILL replica N (1 or 2), as a crash
#   deploy/local-stack.sh replica N    (re)start replica N
#
# Environment:
#   TS_STACK_DIR   state, logs and the nginx config (default build-stack/)
#   TS_STACK_PORT  nginx's port (default 8090; 0 picks a free one)
#   TS_BIN         the binary (default build/tourney-stats)
#   TS_DYNALITE    dynalite (default tests/tools/node_modules/.bin/dynalite)
#   TS_INGEST_API_KEY and other TS_* settings are passed to the replicas.
# Needs nginx (Debian's), node and curl: scripts/install-test-deps.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
dir=${TS_STACK_DIR:-$repo/build-stack}
bin=${TS_BIN:-$repo/build/tourney-stats}
dynalite=${TS_DYNALITE:-$repo/tests/tools/node_modules/.bin/dynalite}
nginx_bin=${TS_NGINX:-/usr/sbin/nginx}

die() {
  echo "local-stack: $*" >&2
  exit 1
}

# free_ports N [TAKEN...]: N distinct free loopback ports, none of TAKEN.
# The listeners are held until all N are known: a port closed right away
# can come back from the next listen(0), and two parts of the stack on one
# port make the second fail to bind while the first answers in its place.
free_ports() {
  node -e '
const net = require("net");
const want = Number(process.argv[1]), taken = new Set(process.argv.slice(2).map(Number));
const held = [];
(function next() {
  if (held.filter((h) => h.ok).length === want) {
    console.log(held.filter((h) => h.ok).map((h) => h.s.address().port).join(" "));
    held.forEach((h) => h.s.close());
    return;
  }
  const s = net.createServer();
  s.listen(0, "127.0.0.1", () => { held.push({ s, ok: !taken.has(s.address().port) }); next(); });
})();' "$@"
}

# wait_http URL SECONDS PID: until URL answers (any status) or PID dies.
wait_http() {
  local url=$1 secs=$2 pid=$3 i
  for i in $(seq 1 $((secs * 10))); do
    kill -0 "$pid" 2>/dev/null || return 1
    curl -s -o /dev/null --max-time 1 --noproxy '*' "$url" && return 0
    sleep 0.1
  done
  return 1
}

# Started processes keep running after this script exits: detach them.
spawn() { # spawn NAME LOG cmd...: starts cmd in its own session; pid -> dir/NAME.pid
  local name=$1 log=$2
  shift 2
  setsid "$@" </dev/null >>"$log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

pid_of() { cat "$dir/$1.pid" 2>/dev/null || true; }
alive() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

stop_one() { # stop_one NAME: SIGTERM, up to 15 s, then SIGKILL
  local p i
  p=$(pid_of "$1")
  [ -n "$p" ] || return 0
  if kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p" 2>/dev/null || true
    for i in $(seq 1 150); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
  fi
  rm -f "$dir/$1.pid"
}

load_env() {
  [ -f "$dir/stack.env" ] || die "no stack in $dir (run: $0 start)"
  # shellcheck source=/dev/null
  . "$dir/stack.env"
}

replica_env() {
  echo TS_STORE=dynamodb TS_BIND=127.0.0.1 \
    AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$DYNALITE_PORT" AWS_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=AKIDLOCALSTACK AWS_SECRET_ACCESS_KEY=local-stack-secret \
    AWS_EC2_METADATA_DISABLED=true AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null \
    TS_TABLE="$TABLE" TS_DEAD_LETTER_TABLE="$DEAD_LETTER_TABLE" \
    TS_APPLIED_LOG_TABLE="$APPLIED_LOG_TABLE"
}

start_replica() {
  local n=$1 port var
  var=REPLICA${n}_PORT
  port=${!var}
  alive "replica$n" && die "replica $n is running"
  # shellcheck disable=SC2046  # replica_env prints NAME=value words
  spawn "replica$n" "$dir/replica$n.log" env $(replica_env) TS_PORT="$port" "$bin"
  wait_http "http://127.0.0.1:$port/healthz" 15 "$(pid_of "replica$n")" ||
    { tail -n 20 "$dir/replica$n.log" >&2; die "replica $n did not start"; }
}

cmd_start() {
  [ -x "$bin" ] || die "no binary at $bin (run scripts/build.sh)"
  [ -x "$dynalite" ] || die "no dynalite at $dynalite (run scripts/install-test-deps.sh)"
  [ -x "$nginx_bin" ] || die "no nginx at $nginx_bin (run scripts/install-test-deps.sh)"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/stack.env" ]; then
    load_env
    alive nginx && die "a stack already runs from $dir (stop it first)"
  fi
  local lb_port=${TS_STACK_PORT:-8090} dynalite_port replica1_port replica2_port
  if [ "$lb_port" = 0 ]; then
    read -r lb_port dynalite_port replica1_port replica2_port < <(free_ports 4)
  else
    read -r dynalite_port replica1_port replica2_port < <(free_ports 3 "$lb_port")
  fi
  cat >"$dir/stack.env" <<ENV
LB_PORT=$lb_port
DYNALITE_PORT=$dynalite_port
REPLICA1_PORT=$replica1_port
REPLICA2_PORT=$replica2_port
TABLE=TaTourneyStats
DEAD_LETTER_TABLE=TaTourneyStatsDeadLetters
APPLIED_LOG_TABLE=TaTourneyStatsAppliedLog
ENV
  load_env
  spawn dynalite "$dir/dynalite.log" "$dynalite" --host 127.0.0.1 --port "$DYNALITE_PORT" \
    --createTableMs 0 --deleteTableMs 0 --updateTableMs 0
  wait_http "http://127.0.0.1:$DYNALITE_PORT/" 15 "$(pid_of dynalite)" ||
    { cat "$dir/dynalite.log" >&2; die "dynalite did not start"; }
  # The one-shot create-table of compose.yaml.
  # shellcheck disable=SC2046
  env $(replica_env) "$bin" create-table >"$dir/create-table.log" 2>&1 ||
    { cat "$dir/create-table.log" >&2; die "create-table failed"; }
  start_replica 1
  start_replica 2
  mkdir -p "$dir/nginx"
  local user_line="" tmp="$dir/nginx/tmp"
  if [ "$(id -u)" -eq 0 ]; then
    # nginx started by root runs its workers as nobody, who may not reach
    # $dir (under /root, say): their buffers go to a folder of their own.
    user_line="user nobody nogroup;"
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/ts-stack-nginx.XXXXXX")
    chown nobody:nogroup "$tmp"
    echo "NGINX_TMP=$tmp" >>"$dir/stack.env"
  fi
  mkdir -p "$tmp"
  cat >"$dir/nginx/nginx.conf" <<CONF
# Generated by deploy/local-stack.sh; the proxy rules are in deploy/nginx/.
$user_line
worker_processes 1;
daemon off;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log $dir/nginx/access.log;
  client_body_temp_path $tmp/body;
  proxy_temp_path $tmp/proxy;
  fastcgi_temp_path $tmp/fastcgi;
  uwsgi_temp_path $tmp/uwsgi;
  scgi_temp_path $tmp/scgi;
  upstream tourney_stats {
    server 127.0.0.1:$REPLICA1_PORT max_fails=1 fail_timeout=1s;
    server 127.0.0.1:$REPLICA2_PORT max_fails=1 fail_timeout=1s;
    keepalive 16;
  }
  server {
    listen 127.0.0.1:$LB_PORT;
    location / {
      include $here/nginx/tourney-stats-proxy.conf;
    }
    include $here/nginx/tourney-stats-unavailable.conf;
  }
}
CONF
  "$nginx_bin" -t -q -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -e "$dir/nginx/error.log" ||
    die "nginx rejected $dir/nginx/nginx.conf"
  spawn nginx "$dir/nginx/error.log" "$nginx_bin" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" \
    -e "$dir/nginx/error.log"
  wait_http "http://127.0.0.1:$LB_PORT/healthz" 15 "$(pid_of nginx)" ||
    { cat "$dir/nginx/error.log" >&2; die "nginx did not start"; }
  # Whoever answered must be this nginx, not another server on the port.
  curl -sS -o /dev/null -D - --max-time 2 --noproxy '*' "http://127.0.0.1:$LB_PORT/healthz" |
    grep -qi '^server: nginx' && alive nginx ||
    { cat "$dir/nginx/error.log" >&2; die "port $LB_PORT answers, but not this stack's nginx"; }
  echo "local-stack: http://127.0.0.1:$LB_PORT (nginx) -> replicas :$REPLICA1_PORT :$REPLICA2_PORT -> dynalite :$DYNALITE_PORT; state in $dir"
}

cmd_stop() {
  [ -f "$dir/stack.env" ] || return 0
  stop_one nginx
  stop_one replica1
  stop_one replica2
  stop_one dynalite
  # shellcheck source=/dev/null
  . "$dir/stack.env"
  [ -z "${NGINX_TMP:-}" ] || rm -rf "$NGINX_TMP"
  rm -f "$dir/stack.env"
  echo "local-stack: stopped"
}

cmd_status() {
  load_env
  local name
  for name in nginx replica1 replica2 dynalite; do
    if alive "$name"; then echo "$name: running (pid $(pid_of "$name"))"; else echo "$name: stopped"; fi
  done
  echo "url: http://127.0.0.1:$LB_PORT"
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  kill)
    load_env
    [[ ${2:-} =~ ^[12]$ ]] || die "usage: $0 kill 1|2"
    p=$(pid_of "replica$2")
    [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true
    rm -f "$dir/replica$2.pid"
    ;;
  replica)
    load_env
    [[ ${2:-} =~ ^[12]$ ]] || die "usage: $0 replica 1|2"
    start_replica "$2"
    ;;
  *)
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
