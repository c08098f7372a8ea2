#!/usr/bin/env bash
# Builds every fuzz target and runs each for a while, seeded from
# fuzz/corpus/<name>/ (plus the malformed-request corpus in
# tests/requests/invalid for the json, batch and http targets). Exits non-zero
# when any target finds a crash, leak, UB or broken invariant, or when the
# build fails.
#
#   fuzz/run.sh [seconds-per-target] [target...]   (default 15 s, all)
#   fuzz/run.sh 0                                  (build only)
#
# Environment:
#   CC               compiler (default clang; libFuzzer needs clang)
#   TS_FUZZ_BUILD    build and work directory (default <repo>/build-fuzz)
#   TS_FUZZ_JOBS     targets run at once (default: the number of CPUs)
#
# In the build directory: corpus/<name>/ keeps what the fuzzer found (reuse
# it between runs, e.g. as a CI cache), artifacts/<name>/ the crashing
# inputs, logs/<name>.log the full output. Reproduce a crash with
#   <build>/fuzz_<name> <build>/artifacts/<name>/crash-...
set -u

secs=${1:-15}
shift $(($# > 0 ? 1 : 0))
case $secs in '' | *[!0-9]*)
  echo "usage: $0 [seconds-per-target] [target...]" >&2
  exit 2
  ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${TS_FUZZ_BUILD:-$root/build-fuzz}
jobs=${TS_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
all_targets="decimal json batch urlcode router config sigv4 creds ddb ddb_http http backfill kinesis"
targets=${*:-$all_targets}

# Longest input per target: enough for its format, small enough to be fast.
max_len() {
  case $1 in
    decimal) echo 256 ;;
    urlcode | router | config) echo 1024 ;;
    sigv4 | creds | ddb | ddb_http) echo 4096 ;;
    *) echo 16384 ;;
  esac
}

echo "== building into $build"
mkdir -p "$build/logs"
if ! cmake -S "$here" -B "$build" -DCMAKE_C_COMPILER="${CC:-clang}" -DTS_WERROR=ON \
  >"$build/logs/cmake.log" 2>&1; then
  cat "$build/logs/cmake.log" >&2
  echo "fuzz: cmake configure failed" >&2
  exit 2
fi
if ! cmake --build "$build" -j "$jobs" >"$build/logs/build.log" 2>&1; then
  grep -E "error:|Error " "$build/logs/build.log" >&2
  echo "fuzz: build failed (log: $build/logs/build.log)" >&2
  exit 2
fi
[ "$secs" -eq 0 ] && exit 0 # libFuzzer reads -max_total_time=0 as forever

# ---- seeds from the malformed-request corpus ----
seeds=$build/seeds
rm -rf "$seeds"
mkdir -p "$seeds/batch" "$seeds/http" "$seeds/json"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for dir in "$root"/tests/requests/invalid/*/; do
  req=$dir/request
  name=$(basename "$dir")
  [ -f "$req" ] || continue
  [ -f "$dir/generate" ] && continue # bodies of MiBs: beyond max_len
  blank=$(grep -n -m1 -E $'^\r?$' "$req" | cut -d: -f1)
  has_body=0
  if [ -n "$blank" ]; then
    head -n $((blank - 1)) "$req" >"$tmp/head"
    tail -n +$((blank + 1)) "$req" >"$tmp/body"
    has_body=1
  else
    cp "$req" "$tmp/head"
  fi
  if [ -f "$dir/body" ]; then
    cp "$dir/body" "$tmp/body"
    has_body=1
  fi
  [ $has_body = 1 ] && cp "$tmp/body" "$seeds/batch/$name" && cp "$tmp/body" "$seeds/json/$name"
  line1=$(head -n 1 "$tmp/head" | tr -d '\r')
  {
    printf '%s %s HTTP/1.1\r\nHost: fuzz\r\n' "${line1%% *}" "${line1#* }"
    tail -n +2 "$tmp/head" | tr -d '\r' | while IFS= read -r h; do
      printf '%s\r\n' "$h"
    done
    [ $has_body = 1 ] && printf 'Content-Length: %s\r\n' "$(wc -c <"$tmp/body")"
    printf '\r\n'
    [ $has_body = 1 ] && cat "$tmp/body"
  } >"$seeds/http/$name"
done

# ---- run, up to $jobs at once ----
declare -A pid_of
failed=()
summary=()
report_pattern='ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)'
report_pattern+='|runtime error|fuzz invariant broken'

finish() { # name: waits for it and records the result
  local name=$1 log=$build/logs/$1.log rc=0 cov execs runs
  wait "${pid_of[$name]}" || rc=$?
  cov=$(grep -aE '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 |
    sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  execs=$(grep -a '^stat::average_exec_per_sec' "$log" | awk '{print $2}')
  runs=$(grep -a '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  if [ $rc -ne 0 ]; then
    failed+=("$name")
    summary+=("$(printf '%-9s FAIL (exit %d)  %s' "$name" "$rc" "$log")")
    echo "---- $name: FAILED (exit $rc); the report:" >&2
    grep -a -m 1 -B 2 -A 30 -E "$report_pattern" "$log" >&2
    grep -a 'Test unit written to' "$log" >&2
  else
    summary+=("$(printf '%-9s ok   cov %-5s exec/s %-7s runs %s' "$name" \
      "${cov:-?}" "${execs:-?}" "${runs:-?}")")
  fi
}

running=()
for name in $targets; do
  bin=$build/fuzz_$name
  if [ ! -x "$bin" ]; then
    echo "fuzz: no target $name" >&2
    failed+=("$name")
    continue
  fi
  mkdir -p "$build/corpus/$name" "$build/artifacts/$name"
  args=(-max_total_time="$secs" -timeout=30 -rss_limit_mb=3072
    -max_len="$(max_len "$name")" -print_final_stats=1
    -artifact_prefix="$build/artifacts/$name/")
  [ -f "$here/dict/$name.dict" ] && args+=(-dict="$here/dict/$name.dict")
  dirs=("$build/corpus/$name" "$here/corpus/$name")
  [ -d "$seeds/$name" ] && dirs+=("$seeds/$name")
  echo "== fuzz_$name for ${secs}s"
  (cd "$build" && exec "$bin" "${args[@]}" "${dirs[@]}") \
    >"$build/logs/$name.log" 2>&1 &
  pid_of[$name]=$!
  running+=("$name")
  while [ ${#running[@]} -ge "$jobs" ]; do
    finish "${running[0]}"
    running=("${running[@]:1}")
  done
done
for name in "${running[@]}"; do
  finish "$name"
done

echo "== summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs under $build/artifacts/)" >&2
  exit 1
fi
echo "fuzz: all targets ran clean"
