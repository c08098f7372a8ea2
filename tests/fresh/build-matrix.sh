#!/usr/bin/env bash
# The builds a user may make, with both of Debian 12's compilers: the
# default, Release and -DTS_TESTS=OFF, each with GCC 12 and clang 14. They
# run here with -DTS_WERROR=ON, so that any warning either compiler gives
# at any of these optimisation levels fails CI, while a user's plain build
# (TS_WERROR off) would still succeed. Build trees go to build-matrix/.
#   tests/fresh/build-matrix.sh [gcc|clang ...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
compilers=("$@")
[ ${#compilers[@]} -gt 0 ] || compilers=(gcc clang)
configs=(default Release tests-off)
failed=0
mkdir -p build-matrix
for cc in "${compilers[@]}"; do
  command -v "$cc" >/dev/null || { echo "build-matrix: no $cc" >&2; exit 1; }
  for cfg in "${configs[@]}"; do
    dir=build-matrix/$cc-$cfg
    args=(-DCMAKE_C_COMPILER="$cc" -DTS_WERROR=ON)
    case $cfg in
      Release) args+=(-DCMAKE_BUILD_TYPE=Release) ;;
      tests-off) args+=(-DTS_TESTS=OFF) ;;
    esac
    t0=$SECONDS
    rm -rf "$dir"
    if cmake -S . -B "$dir" "${args[@]}" >"$dir.log" 2>&1 &&
      cmake --build "$dir" -j "$(nproc)" >>"$dir.log" 2>&1; then
      printf 'build-matrix: %-6s %-9s ok   %3d s\n' "$cc" "$cfg" $((SECONDS - t0))
    else
      printf 'build-matrix: %-6s %-9s FAIL (log: %s)\n' "$cc" "$cfg" "$dir.log"
      grep -E 'warning:|error:' "$dir.log" | head -n 20 >&2
      failed=1
    fi
  done
done
exit $failed
