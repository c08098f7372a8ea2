#!/usr/bin/env bash
# The README's two commands, as written, on pristine Debian 12 roots
# (tests/fresh/lib.sh): once as root, once as a user with sudo.
#
#   tests/fresh/readme-commands.sh [root] [sudo]     (default: both)
#
# root: the test command first (it must install everything by itself), then
#       the run command.
# sudo: the run command first, then the test command, as user `dev`, whose
#       only privilege is sudo.
# The run command must serve /healthz and answer the README's first curl
# example exactly as the README shows, then stop on SIGTERM with exit 0. The
# test command must exit 0 after "all tests passed". Logs go to
# $TS_FRESH_OUT (default build-fresh/); the last lines are a table of what
# each step took. Needs root; see tests/fresh/lib.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=tests/fresh/lib.sh
. "$here/lib.sh"
out=${TS_FRESH_OUT:-$repo/build-fresh}
mkdir -p "$out"
out=$(cd "$out" && pwd)
trap fresh_cleanup EXIT
passes=("$@")
[ ${#passes[@]} -gt 0 ] || passes=(root sudo)
timings=()
failed=0

step_time() { # name seconds result
  timings+=("$(printf '%-40s %5d s  %s' "$1" "$2" "$3")")
}

# The first ```sh block of the README that runs curl, and the ```json block
# after it: the command a new user tries first and the answer it shows.
first_example() {
  awk '
    /^```sh$/ && !done { insh = 1; buf = ""; next }
    /^```json$/ && got && !done { injson = 1; next }
    /^```$/ {
      if (insh) { insh = 0; if (buf ~ /curl/) { cmd = buf; got = 1 } }
      else if (injson) { injson = 0; done = 1 }
      next
    }
    insh { buf = buf $0 "\n" }
    injson { json = json $0 }
    END { printf "%s\x1e%s", cmd, json }
  ' "$repo/README.md"
}

# run_command ROOT USER DIR NAME: the README's run command, checked.
run_command() {
  local root=$1 user=$2 dir=$3 name=$4 port log pid t0 ex cmd want got
  port=$(fresh_free_port) || fresh_die "no free port"
  log=$out/$name-run.log
  ex=$(first_example)
  cmd=${ex%$'\x1e'*}
  want=${ex#*$'\x1e'}
  [ -n "$cmd" ] && [ -n "$want" ] || fresh_die "README: no first curl example"
  cmd=${cmd//localhost:8080/127.0.0.1:$port}
  t0=$SECONDS
  fresh_log "$name: ./scripts/run.sh (TS_PORT=$port)"
  fresh_run "$root" "$user" "$dir" "TS_PORT=$port ./scripts/run.sh" >"$log" 2>&1 &
  pid=$!
  # Packages and a build come first: allow 15 minutes to /healthz.
  local up=0 deadline=$((SECONDS + 900))
  while [ $SECONDS -lt $deadline ] && kill -0 $pid 2>/dev/null; do
    if curl -fsS -m 2 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
      up=1
      break
    fi
    sleep 1
  done
  if [ $up = 0 ]; then
    tail -n 30 "$log" >&2
    step_time "$name: run command" $((SECONDS - t0)) FAILED
    echo "fresh: $name: the run command did not serve /healthz (log: $log)" >&2
    return 1
  fi
  step_time "$name: run command, to /healthz" $((SECONDS - t0)) ok
  # The README's first example, from inside the root, as the user.
  got=$(fresh_run "$root" "$user" "$dir" "curl -sS -m 5 http://127.0.0.1:$port/healthz && echo && $cmd")
  echo "$got" >>"$log"
  if [ "${got%%$'\n'*}" != '{"status":"ok"}' ] || [ "${got#*$'\n'}" != "$want" ]; then
    echo "fresh: $name: README example answered:" >&2
    echo "$got" >&2
    echo "fresh: README shows: $want" >&2
    return 1
  fi
  fresh_log "$name: /healthz and the README's first example answered as shown"
  # SIGTERM, as a container runtime sends it: exit 0.
  local p srv=""
  for p in $(fresh_pids "$root"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = tourney-stats ] && srv=$p
  done
  [ -n "$srv" ] || fresh_die "$name: no tourney-stats process in the root"
  kill -TERM "$srv"
  local rc=0
  wait $pid || rc=$?
  if [ $rc -ne 0 ] || ! grep -q '"msg":"stopped"' "$log"; then
    tail -n 10 "$log" >&2
    echo "fresh: $name: the server did not stop cleanly on SIGTERM (exit $rc)" >&2
    return 1
  fi
  fresh_log "$name: SIGTERM: exit 0"
}

# test_command ROOT USER DIR NAME
test_command() {
  local root=$1 user=$2 dir=$3 name=$4 log t0 rc=0
  log=$out/$name-test.log
  t0=$SECONDS
  fresh_log "$name: ./scripts/test.sh (log: $log)"
  fresh_run "$root" "$user" "$dir" "./scripts/test.sh" >"$log" 2>&1 || rc=$?
  if [ $rc -ne 0 ] || [ "$(tail -n 1 "$log")" != "all tests passed" ]; then
    step_time "$name: test command" $((SECONDS - t0)) "FAILED (exit $rc)"
    grep -E 'Failed|FAIL|Error|error:|\*\*\*' "$log" | tail -n 30 >&2
    tail -n 30 "$log" >&2
    echo "fresh: $name: the test command failed (log: $log)" >&2
    return 1
  fi
  step_time "$name: test command" $((SECONDS - t0)) ok
  grep -E '^[0-9]+% tests passed|^fuzz: ' "$log" | sed "s/^/   $name: /"
}

for pass in "${passes[@]}"; do
  root=$TS_FRESH_CACHE/root-$pass-$$
  t0=$SECONDS
  fresh_root "$root"
  case $pass in
    root)
      fresh_copy_project "$root" /root/tourney-stats root
      step_time "root: pristine root ready" $((SECONDS - t0)) ok
      test_command "$root" root /root/tourney-stats root || failed=1
      [ $failed = 0 ] && { run_command "$root" root /root/tourney-stats root || failed=1; }
      ;;
    sudo)
      fresh_user "$root" dev
      fresh_copy_project "$root" /home/dev/tourney-stats dev
      step_time "sudo: pristine root + sudo user ready" $((SECONDS - t0)) ok
      run_command "$root" dev /home/dev/tourney-stats sudo || failed=1
      [ $failed = 0 ] && { test_command "$root" dev /home/dev/tourney-stats sudo || failed=1; }
      ;;
    *) fresh_die "unknown pass $pass (root or sudo)" ;;
  esac
  fresh_cleanup
  FRESH_ROOTS=()
  [ $failed = 0 ] || break
done

echo "== fresh Debian 12 roots: the README's commands"
printf '%s\n' "${timings[@]}"
if [ $failed -ne 0 ]; then
  echo "fresh: FAILED" >&2
  exit 1
fi
echo "fresh: the README's commands work on pristine Debian 12"
