#!/usr/bin/env bash
# What a record costs on DynamoDB (issue 12): read and write capacity units
# per record, as DynamoDB itself reports them (ReturnConsumedCapacity, summed
# by the server on /metrics), for an ordinary player (3 games) and a busy
# one (5,000 games within the last 26 hours, seeded through POST), before
# and after the bounded applied log, in the same run against one dynalite
# (which sizes items as DynamoDB does: 1 write unit per KB, 1 strongly
# consistent read unit per 4 KB).
#
#   bench/ddb_cost.sh [N]          N single-record POSTs per figure (200)
#
# "before" is main (TS_BENCH_BEFORE, default /work/main's HEAD, else the
# branch main); one without the capacity counter gets this tree's capacity
# accounting (aws/ddb.c, aws/ddb.h, server/metrics.c) copied in, so that one
# counter measures both; its store code is its own. Prices: DynamoDB on-demand, us-east-1, $0.625 per
# million write request units and $0.125 per million read request units
# (since the halving of November 2024).
# Needs the test tools (scripts/install-test-deps.sh) for dynalite.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
repo=$PWD
dynalite=$repo/tests/tools/node_modules/.bin/dynalite
[ -x "$dynalite" ] || { echo "no dynalite: run scripts/install-test-deps.sh" >&2; exit 2; }

before_rev=${TS_BENCH_BEFORE:-}
if [ -z "$before_rev" ]; then
  before_rev=$(git -C /work/main rev-parse HEAD 2>/dev/null || git rev-parse main)
fi
after_rev=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!tests/tools' || echo "+changes")

echo "building after ($after_rev) and before (${before_rev:0:7})" >&2
./scripts/build.sh build-bench -DCMAKE_BUILD_TYPE=Release -DTS_TESTS=OFF >/dev/null
src=$repo/build-bench-before/src
rm -rf "$src"
mkdir -p "$src"
git archive "$before_rev" | tar -x -C "$src"
# A before without the capacity counter gets this tree's accounting; a
# newer one keeps its own (this tree's metrics.c may name newer functions).
if ! grep -q ts_dynamodb_consumed_capacity_units_total "$src/server/metrics.c"; then
  cp aws/ddb.c aws/ddb.h "$src/aws/"
  cp server/metrics.c "$src/server/"
fi
(cd "$src" && ./scripts/build.sh "$repo/build-bench-before/build" \
  -DCMAKE_BUILD_TYPE=Release -DTS_TESTS=OFF >/dev/null)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TS_BENCH_N=$n TS_BENCH_WORK=$work
export TS_BENCH_BEFORE_BIN=$repo/build-bench-before/build/tourney-stats
export TS_BENCH_AFTER_BIN=$repo/build-bench/tourney-stats
TS_TEST_BIN=$TS_BENCH_AFTER_BIN TS_TEST_DYNALITE=$dynalite \
  tests/e2e/with-dynalite.sh bash -c '
    set -euo pipefail
    for v in before after; do
      bin_var=TS_BENCH_$(echo $v | tr a-z A-Z)_BIN
      bin=${!bin_var}
      export TS_TABLE=Cost-$v-$$ TS_DEAD_LETTER_TABLE=CostDL-$v-$$
      TS_STORE=dynamodb "$bin" create-table >"$TS_BENCH_WORK/$v-create.log" 2>&1
      TS_STORE=dynamodb TS_BIND=127.0.0.1 TS_PORT=0 "$bin" >"$TS_BENCH_WORK/$v.log" 2>&1 &
      pid=$!
      port=""
      for _ in $(seq 200); do
        port=$(grep -o "\"msg\":\"listening\".*\"port\":[0-9]*" "$TS_BENCH_WORK/$v.log" | grep -o "[0-9]*$" || true)
        [ -n "$port" ] && break
        sleep 0.05
      done
      [ -n "$port" ] || { cat "$TS_BENCH_WORK/$v.log" >&2; exit 1; }
      node bench/ddb_cost.mjs "$port" "$v" "$TS_BENCH_N" >"$TS_BENCH_WORK/$v.json"
      kill -TERM "$pid"
      wait "$pid" || true
    done
  ' >&2

node - "$work/before.json" "$work/after.json" "$n" "${before_rev:0:7}" "$after_rev" <<'JS'
const fs = require('fs');
const [b, a, n, brev, arev] = process.argv.slice(2);
const before = JSON.parse(fs.readFileSync(b)), after = JSON.parse(fs.readFileSync(a));
const usd = (x) => (0.625 * x.wcu + 0.125 * x.rcu).toFixed(2);
const f = (v) => v.toFixed(2);
const rows = [
  ['ordinary player (3 games), a new game', 'ordinary'],
  ['busy player (5,000 games in 26 h), a new game', 'busy'],
  ['busy player, a redelivery of a game of ~20 h ago', 'redelivery'],
];
console.log(`| record | build | RCU/record | WCU/record | $ per million records |`);
console.log(`|---|---|---:|---:|---:|`);
for (const [text, key] of rows)
  for (const [label, r] of [[`before (${brev})`, before], [`after (${arev})`, after]])
    console.log(`| ${text} | ${label} | ${f(r[key].rcu)} | ${f(r[key].wcu)} | ${usd(r[key])} |`);
console.log(`\n${n} single-record POSTs per figure; $ = 0.625 x WCU + 0.125 x RCU (on-demand, us-east-1).`);
JS
