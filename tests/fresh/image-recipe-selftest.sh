#!/usr/bin/env bash
# Shows that tests/fresh/image-recipe.sh can fail: the Dockerfile with one
# package taken out of a stage must be refused, with the reason.
#   - the build stage without zlib1g-dev: CMake's check fails in a RUN;
#   - the runtime stage without libjansson4: the binary lacks a library.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${TS_FRESH_OUT:-$repo/build-fresh}
mkdir -p "$out"
failed=0
check() { # name package expected-message
  local name=$1 pkg=$2 want=$3 df=$out/Dockerfile.$1 log=$out/selftest-$1.log
  grep -q "[[:space:]]$pkg\b" "$repo/Dockerfile" || {
    echo "selftest: the Dockerfile does not name $pkg" >&2
    failed=1
    return
  }
  sed "s/[[:space:]]$pkg\b/ /" "$repo/Dockerfile" >"$df"
  if TS_FRESH_OUT=$out/selftest-$name "$here/image-recipe.sh" "$df" "$repo" >"$log" 2>&1; then
    echo "selftest: $name: the recipe passed without $pkg" >&2
    failed=1
  elif ! grep -q "$want" "$log"; then
    echo "selftest: $name: refused, but not for the missing $pkg:" >&2
    tail -n 5 "$log" >&2
    failed=1
  else
    echo "selftest: $name: refused without $pkg ($want)"
  fi
}
check build-without-zlib zlib1g-dev "stage 1: RUN failed"
check runtime-without-jansson libjansson4 "lacks shared libraries"
[ $failed = 0 ] && echo "selftest: both mutations refused"
exit $failed
