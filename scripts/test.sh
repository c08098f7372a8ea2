#!/usr/bin/env bash
# Fresh Debian 12 machine -> every test: installs what the tests need,
# builds the service twice (plain, and with AddressSanitizer + UBSan) and
# runs the unit and end-to-end suites against each build.
set -euo pipefail
cd "$(dirname "$0")/.."
# Tests run two at a time at least: most of them wait on a server (the
# DynamoDB suite on dynalite), so two share even one core well. Each uses
# its own temporary directory and free ports.
jobs=$(nproc 2>/dev/null || echo 2)
[ "$jobs" -ge 2 ] || jobs=2
./scripts/install-deps.sh
./scripts/install-test-deps.sh

# run_ctest DIR [ENV...]: runs ctest in DIR; when a test fails, repeats the
# failures' digests (tests/support/failures.h) last, where a log's tail
# shows them.
run_ctest() {
  local dir=$1
  shift
  if ! (cd "$dir" && env "$@" ctest --output-on-failure -j "$jobs"); then
    echo "== failed checks ($dir)"
    grep -h '^FAILED ' "$dir"/Testing/Temporary/LastTest*.log 2>/dev/null || true
    return 1
  fi
}

echo "== lint (formatting, banned calls)"
./scripts/lint.sh

echo "== build (RelWithDebInfo)"
./scripts/build.sh build
echo "== tests (RelWithDebInfo)"
run_ctest build

echo "== build (AddressSanitizer + UndefinedBehaviorSanitizer)"
./scripts/build.sh build-san -DCMAKE_BUILD_TYPE=Debug -DTS_ASAN=ON -DTS_UBSAN=ON
echo "== tests (AddressSanitizer + UndefinedBehaviorSanitizer)"
run_ctest build-san ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "== fuzz targets (libFuzzer + ASan + UBSan, 10 s each, seeded corpus)"
fuzz/run.sh 10
echo "all tests passed"
