# shellcheck shell=bash
# Sourced by with-dynalite.sh and with-kinesalite.sh (not run): starts a
# Node mock AWS server on a free loopback port, runs a command against it,
# and stops both on exit, whatever happens (a watchdog covers a SIGKILL of
# the script).
#
# The sourcing script sets mock_name (dynalite, kinesalite: the name in
# messages, temporary and log files), then calls
#   mock_start <executable> [server args...]
# which sets mock_pid, mock_port and work (a private directory removed on
# exit), exports what it needs, and finally
#   mock_run <command> [args...]
# which runs the command and exits with its status.

: "${mock_name:?set mock_name before sourcing mock-server.sh}"

die() {
  echo "with-$mock_name: $*" >&2
  exit 2
}

mock_pid=""
mock_port=""
watchdog_pid=""
cmd_pid=""
work=""

# shellcheck disable=SC2317  # run by the EXIT trap
mock_cleanup() {
  if [ -n "$cmd_pid" ] && kill -0 "$cmd_pid" 2>/dev/null; then
    kill "$cmd_pid" 2>/dev/null || true
    wait "$cmd_pid" 2>/dev/null || true
  fi
  if [ -n "$watchdog_pid" ]; then
    kill "$watchdog_pid" 2>/dev/null || true
    wait "$watchdog_pid" 2>/dev/null || true
  fi
  if [ -n "$mock_pid" ] && kill -0 "$mock_pid" 2>/dev/null; then
    kill "$mock_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$mock_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$mock_pid" 2>/dev/null || true
    wait "$mock_pid" 2>/dev/null || true
  fi
  [ -z "$work" ] || rm -rf "$work"
}

# A port the kernel just handed out and released; the server may still lose
# a race for it, so starting is retried on a fresh port.
mock_free_port() {
  node -e 'const s=require("net").createServer();
s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
}

# Starts "$@" --host 127.0.0.1 --port $port ($1 is the port); returns 0 once
# it answers HTTP (any status: a bare GET gets 400, no target), 1 when it
# died or stayed silent for 15 s.
mock_try_start() {
  local port="$1"
  shift
  "$1" --host 127.0.0.1 --port "$port" "${@:2}" \
    >"$work/$mock_name.log" 2>&1 &
  mock_pid=$!
  for _ in $(seq 1 150); do
    if ! kill -0 "$mock_pid" 2>/dev/null; then
      wait "$mock_pid" 2>/dev/null || true
      mock_pid=""
      return 1
    fi
    if curl -s -o /dev/null --max-time 1 --noproxy '*' \
      "http://127.0.0.1:$port/"; then
      return 0
    fi
    sleep 0.1
  done
  kill "$mock_pid" 2>/dev/null || true
  wait "$mock_pid" 2>/dev/null || true
  mock_pid=""
  return 1
}

mock_start() {
  command -v node >/dev/null 2>&1 || die "node is not installed"
  command -v curl >/dev/null 2>&1 || die "curl is not installed"
  work="$(mktemp -d "${TMPDIR:-/tmp}/ts-$mock_name-XXXXXX")"
  trap mock_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  local attempt p
  for attempt in 1 2 3; do
    p="$(mock_free_port)"
    if mock_try_start "$p" "$@"; then
      mock_port="$p"
      break
    fi
    echo "with-$mock_name: $mock_name did not come up on port $p (attempt $attempt)" >&2
    cat "$work/$mock_name.log" >&2 || true
  done
  [ -n "$mock_port" ] || die "could not start $mock_name"

  # The EXIT trap does not run when the script is killed with SIGKILL (as a
  # test runner may do on a timeout); the watchdog then stops the server and
  # the command. It learns the command's pid through a file.
  local script_pid=$$
  (
    trap - EXIT INT TERM
    while kill -0 "$script_pid" 2>/dev/null; do sleep 1; done
    kill "$mock_pid" 2>/dev/null || true
    if [ -s "$work/cmd.pid" ]; then kill "$(cat "$work/cmd.pid")" 2>/dev/null || true; fi
    rm -rf "$work"
  ) </dev/null >/dev/null 2>&1 &
  watchdog_pid=$!
}

mock_run() {
  # In the background so that a signal to the script runs the traps at once
  # (bash defers traps while a foreground command runs); stdin is kept.
  local status=0
  "$@" <&0 &
  cmd_pid=$!
  echo "$cmd_pid" >"$work/cmd.pid"
  wait "$cmd_pid" || status=$?
  cmd_pid=""
  exit "$status"
}
