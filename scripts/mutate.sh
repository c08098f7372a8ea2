#!/usr/bin/env bash
# Mutation testing: do the tests catch real bugs? Each patch of
# tests/mutants/*.patch plants one small, realistic bug. For each, in a
# copy of the tree: apply it, rebuild, run the fast suites (unit, then the
# end-to-end suite on the store the patch can affect), note which test
# caught it, take it back. Prints a table and the score; exits 1 when a
# mutant survived or did not build.
#
#   scripts/mutate.sh                 every mutant (about a minute each)
#   scripts/mutate.sh NAME...         some (file names without .patch)
#   scripts/mutate.sh --check         only that every mutant applies to the
#                                     tree as written (a ctest)
# Patches apply with no fuzz: a drifted patch that `patch` placed elsewhere
# would plant another bug than the one named (mutant 02 once did).
#
# Needs what the test command installs (scripts/install-test-deps.sh).
# Environment: TS_MUTATE_DIR  work folder (default build-mutate/); the
# copy of the tree and its build are kept there between runs.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${TS_MUTATE_DIR:-$repo/build-mutate}
src=$work/src
bld=$work/build
logs=$work/logs
dynalite=$repo/tests/tools/node_modules/.bin/dynalite

die() {
  echo "mutate: $*" >&2
  exit 2
}
command -v patch >/dev/null || die "no patch (run scripts/install-test-deps.sh)"

if [ "${1:-}" = --check ]; then
  bad=0
  for m in "$repo"/tests/mutants/*.patch; do
    if ! patch -d "$repo" -p1 -s -F0 --dry-run <"$m" >/dev/null 2>&1; then
      echo "mutate: $(basename "$m") does not apply exactly; regenerate it" >&2
      bad=1
    fi
  done
  [ $bad = 0 ] && echo "mutate: all $(ls "$repo"/tests/mutants/*.patch | wc -l) mutants apply exactly"
  exit $bad
fi
[ -x "$dynalite" ] || die "no dynalite at $dynalite (run scripts/install-test-deps.sh)"

if [ $# -gt 0 ]; then
  mutants=()
  for m in "$@"; do mutants+=("$repo/tests/mutants/${m%.patch}.patch"); done
else
  mutants=("$repo"/tests/mutants/*.patch)
fi
for m in "${mutants[@]}"; do [ -f "$m" ] || die "no mutant $m"; done

# A fresh copy of the sources (no build trees, no node_modules: the tools
# are used from the repository).
rm -rf "$src" "$logs"
mkdir -p "$src" "$bld" "$logs"
tar -C "$repo" -cf - --exclude='./build*' --exclude='./.git' \
  --exclude='node_modules' --exclude='./tests/out' --exclude='./data' . |
  tar -C "$src" -xmf - # -m: fresh mtimes, so the kept build sees every change
cmake -S "$src" -B "$bld" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$logs/configure.log" 2>&1 ||
  die "cmake failed (see $logs/configure.log)"
cmake --build "$bld" -j"$(nproc)" >"$logs/build.log" 2>&1 ||
  die "the unmutated tree does not build (see $logs/build.log)"

# Which CUnit tests failed, from a run's stdout (CUnit's own lines; the
# tests' messages go to stderr): "name, name".
failed_tests() {
  awk '/Test: /{for(i=1;i<=NF;i++) if($i=="Test:") name=$(i+1)}
       /FAILED/ && name!="" {print name; name=""}' "$1" | sort -u | paste -sd, - | sed 's/,/, /g'
}

# run_suite NAME LOG: 0 when the suite passed.
run_suite() {
  local name=$1 log=$2
  case $name in
    unit) (cd "$bld" && timeout 300 ./unit-tests) >"$log" 2>"$log.err" ;;
    e2e-sqlite)
      (cd "$bld" && TS_TEST_BIN="$bld/tourney-stats" TS_TEST_STORE=sqlite \
        TS_TEST_REQUESTS="$src/tests/requests" timeout 600 ./e2e-tests) >"$log" 2>"$log.err"
      ;;
    e2e-dynamodb)
      (cd "$bld" && TS_TEST_BIN="$bld/tourney-stats" TS_TEST_STORE=dynamodb \
        TS_TEST_REQUESTS="$src/tests/requests" TS_TEST_DYNALITE="$dynalite" \
        timeout 900 "$src/tests/e2e/with-dynalite.sh" ./e2e-tests) >"$log" 2>"$log.err"
      ;;
    e2e-source)
      (cd "$bld" && TS_TEST_BIN="$bld/tourney-stats" TS_TEST_DYNALITE="$dynalite" \
        timeout 300 "$src/tests/e2e/with-dynalite.sh" ./source-tests) >"$log" 2>"$log.err"
      ;;
  esac
}

# The suites that can see a patch: a store's own code only shows through
# its end-to-end suite, ops/ (the source-table reader) only through its own.
suites_for() {
  local files
  files=$(grep -E '^\+\+\+ ' "$1" | sed -E 's#^\+\+\+ [^/]*/##; s#[[:space:]].*##')
  if ! grep -qvE '^ops/' <<<"$files"; then
    echo "e2e-source"
  elif ! grep -qvE '^(store/dynamodb\.c|aws/)' <<<"$files"; then
    echo "unit e2e-dynamodb"
  elif ! grep -qvE '^store/sqlite\.c' <<<"$files"; then
    echo "unit e2e-sqlite"
  else
    echo "unit e2e-sqlite e2e-dynamodb"
  fi
}

caught=0
total=0
rows=()
for m in "${mutants[@]}"; do
  name=$(basename "$m" .patch)
  total=$((total + 1))
  t0=$(date +%s)
  verdict="survived"
  by=""
  if ! patch -d "$src" -p1 -s -F0 --dry-run <"$m" >"$logs/$name.patch.log" 2>&1; then
    verdict="does not apply"
  else
    patch -d "$src" -p1 -s -F0 <"$m" >>"$logs/$name.patch.log" 2>&1
    if ! cmake --build "$bld" -j"$(nproc)" >"$logs/$name.build.log" 2>&1; then
      verdict="does not build"
    else
      for suite in $(suites_for "$m"); do
        if ! run_suite "$suite" "$logs/$name.$suite.log"; then
          verdict="caught"
          by="$suite: $(failed_tests "$logs/$name.$suite.log")"
          [ "$by" != "$suite: " ] || by="$suite (exit status; see $logs/$name.$suite.log)"
          break
        fi
      done
    fi
    patch -d "$src" -p1 -s -F0 -R <"$m" >>"$logs/$name.patch.log" 2>&1 ||
      die "could not take $name back (see $logs/$name.patch.log)"
  fi
  [ "$verdict" != caught ] || caught=$((caught + 1))
  rows+=("$(printf '%-48s %-15s %4ss  %s' "$name" "$verdict" $(($(date +%s) - t0)) "$by")")
  printf '%s\n' "${rows[-1]}"
done
# Leave the build as the unmutated tree.
cmake --build "$bld" -j"$(nproc)" >"$logs/build.log" 2>&1

echo
echo "== mutants ($total), logs in $logs"
printf '%s\n' "${rows[@]}"
score=$((total ? 100 * caught / total : 0))
echo "score: $caught of $total caught ($score%)"
[ "$caught" -eq "$total" ]
