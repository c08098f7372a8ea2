#!/usr/bin/env bash
# Self-test of the OpenAPI contract and of its validator.
#
#   tests/contract/selftest.sh [path/to/tourney-stats]
#
# Always: lints openapi/openapi.yaml with Redocly (no errors, no warnings),
# checks that every component is referenced, that the problem codes match
# the registry in server/errors.def, and runs tests/contract/validate.mjs on
# fixtures that must pass and on fixtures that must fail (each for its own
# stated reason), so the validator is shown able to fail.
#
# With a binary: also starts it twice on a private SQLite file (once open,
# once with TS_INGEST_API_KEY; with TS_STORE=dynamodb on the DynamoDB the
# AWS_* variables name instead, e.g. under tests/e2e/with-dynalite.sh), records real exchanges with curl for every
# operation and the error answers that can be provoked from outside, and
# validates them against the contract. The recorded exchanges are written
# to $TS_CONTRACT_OUT/exchanges.jsonl when that is set; else to a temporary
# folder that is kept (and named) when a check fails or TS_CONTRACT_KEEP is set.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
spec="$root/openapi/openapi.yaml"
validate="$here/validate.mjs"
fixtures="$here/fixtures"
redocly="$root/tests/tools/node_modules/.bin/redocly"
bin="${1:-}"

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

work="$(mktemp -d /tmp/ts-contract.XXXXXX)"
server_pid=""
lock_pid=""
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  [ -n "$lock_pid" ] && kill "$lock_pid" 2>/dev/null
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  if [ "$failures" -eq 0 ] && [ -z "${TS_CONTRACT_KEEP:-}" ]; then
    rm -rf "$work"
  else
    echo "(kept $work)"
  fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- lint
echo "== redocly lint"
if (cd "$root" && "$redocly" lint --config redocly.yaml openapi/openapi.yaml) \
     >"$work/lint.txt" 2>&1 && ! grep -Eq 'You have [0-9]+ warning' "$work/lint.txt"; then
  ok "redocly lint: no errors, no warnings"
else
  grep -v '[║╔╚]' "$work/lint.txt"
  fail "redocly lint"
fi

# ------------------------------------------------- document consistency
echo "== document consistency"
if SPEC="$spec" ERRORS_DEF="$root/server/errors.def" \
   NODE_PATH="$root/tests/tools/node_modules" node - <<'EOF'
const fs = require('fs');
const YAML = require('yaml');
const doc = YAML.parse(fs.readFileSync(process.env.SPEC, 'utf8'));
let bad = 0;
const say = (m) => { console.log(`  ${m}`); bad++; };

// Every component is referenced from somewhere (the Redocly rule is off
// because it does not follow $refs inside x-unrouted-responses).
const refs = new Set();
(function walk(n) {
  if (Array.isArray(n)) return n.forEach(walk);
  if (!n || typeof n !== 'object') return;
  for (const [k, v] of Object.entries(n)) {
    if (k === '$ref' && typeof v === 'string') refs.add(v.split('/').slice(0, 4).join('/'));
    walk(v);
  }
})(doc);
for (const [kind, set] of Object.entries(doc.components || {}))
  if (kind !== 'securitySchemes')
    for (const name of Object.keys(set))
      if (!refs.has(`#/components/${kind}/${name}`)) say(`components.${kind}.${name} is never referenced`);
for (const name of Object.keys(doc.components.securitySchemes || {})) {
  const used = Object.values(doc.paths).some((item) => Object.values(item).some((op) =>
    Array.isArray(op.security) && op.security.some((req) => name in req)));
  if (!used) say(`securitySchemes.${name} is not used by any operation`);
}

// The problem registry: server/errors.def is the source of truth.
const reg = [];
for (const m of fs.readFileSync(process.env.ERRORS_DEF, 'utf8')
  .matchAll(/^X\(\s*(\w+),\s*"([^"]+)",\s*(\d+),\s*"([^"]*)"\)/gm))
  reg.push({ name: m[1], code: m[2], status: Number(m[3]), title: m[4] });
if (reg.length === 0) say('no entries read from server/errors.def');
const schemas = doc.components.schemas;
const enumCodes = schemas.Problem.properties.code.enum;
const regCodes = reg.map((e) => e.code);
for (const c of regCodes) if (!enumCodes.includes(c)) say(`Problem.code lacks registry code ${c}`);
for (const c of enumCodes) if (!regCodes.includes(c)) say(`Problem.code has ${c}, which is not in the registry`);
const pinned = new Map();
for (const [name, s] of Object.entries(schemas)) {
  const p = s.properties;
  if (!name.startsWith('Problem') || name === 'Problem' || !p) continue;
  pinned.set(p.code.const, { name, p });
}
for (const e of reg) {
  const got = pinned.get(e.code);
  if (!got) { say(`no Problem* schema pins code ${e.code}`); continue; }
  const want = { type: `urn:tourney-stats:problem:${e.code}`, title: e.title, status: e.status, code: e.code };
  for (const [k, v] of Object.entries(want))
    if (got.p[k]?.const !== v) say(`${got.name}.${k} is ${JSON.stringify(got.p[k]?.const)}, the registry says ${JSON.stringify(v)}`);
}
process.exit(bad ? 1 : 0);
EOF
then
  ok "components all referenced; Problem codes, types, titles and statuses match server/errors.def"
else
  fail "document consistency"
fi

# ------------------------------------------------------------ fixtures
echo "== validator on fixtures"
run_validate() { node "$validate" "$@" >"$work/out.txt" 2>&1; echo $?; }

n_pass=$(grep -c . "$fixtures/pass.jsonl")
rc=$(run_validate "$spec" "$fixtures/pass.jsonl")
if [ "$rc" = 0 ] && grep -qx "$n_pass passed, 0 failed" "$work/out.txt"; then
  ok "pass.jsonl: all $n_pass exchanges pass"
else
  cat "$work/out.txt"
  fail "pass.jsonl should pass entirely (rc $rc)"
fi

for f in "$fixtures"/fail/*.jsonl; do
  name="$(basename "$f" .jsonl)"
  expect="$(cat "${f%.jsonl}.expect")"
  rc=$(run_validate "$spec" "$f")
  if [ "$rc" = 1 ] && grep -qx "0 passed, 1 failed" "$work/out.txt" &&
     grep -qF -- "$expect" "$work/out.txt"; then
    ok "fail/$name fails: $expect"
  else
    cat "$work/out.txt"
    fail "fail/$name should fail with \"$expect\" (rc $rc)"
  fi
done

: >"$work/empty.jsonl"
rc=$(run_validate "$spec" "$work/empty.jsonl")
if [ "$rc" = 1 ] && grep -qx "0 passed, 0 failed" "$work/out.txt"; then
  ok "no exchanges is a failure"
else
  fail "an empty exchange file should exit 1 (rc $rc)"
fi

# A misspelt schema keyword would silently loosen a schema; ajv's strict
# mode must refuse such a document.
sed 's/additionalProperties: false/additionalProperty: false/' "$spec" >"$work/typo.yaml"
rc=$(run_validate "$work/typo.yaml" "$fixtures/pass.jsonl")
if [ "$rc" = 2 ] && grep -q 'additionalProperty' "$work/out.txt"; then
  ok "a misspelt schema keyword is refused"
else
  cat "$work/out.txt"
  fail "a document with a misspelt keyword should be refused (rc $rc)"
fi

# ---------------------------------------------------- the real server
if [ -z "$bin" ]; then
  echo "== no binary given: real exchanges not checked"
else
  store="${TS_STORE:-sqlite}"
  echo "== real exchanges from $bin (store: $store)"
  out="${TS_CONTRACT_OUT:-$work}"
  mkdir -p "$out"
  rm -f "$out"/exchanges.jsonl

  start_server() { # env assignments as arguments
    rm -f "$work"/live.db*
    env "$@" TS_PORT=0 TS_BIND=127.0.0.1 TS_SQLITE_PATH="$work/live.db" \
      TS_LOG_LEVEL=info "$bin" >"$work/server.log" 2>&1 &
    server_pid=$!
    port=""
    for _ in $(seq 100); do
      port="$(sed -n 's/.*"msg":"listening".*"port":\([0-9]*\).*/\1/p' "$work/server.log" | head -1)"
      [ -n "$port" ] && break
      sleep 0.05
    done
    if [ -z "$port" ]; then
      cat "$work/server.log"
      fail "the server did not start (no \"listening\" line with a port)"
      stop_server
      return 1
    fi
    base="http://127.0.0.1:$port"
  }
  stop_server() {
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_pid=""
  }

  seq_no=0
  # ex METHOD PATH [curl arguments...]: performs one request and keeps it.
  ex() {
    local method="$1" path="$2"
    shift 2
    seq_no=$((seq_no + 1))
    local n
    n=$(printf '%03d' "$seq_no")
    # curl -I writes the headers where the body would go, and a HEAD
    # answer has no body anyway.
    local how=(-X "$method" -o "$work/x$n.body")
    [ "$method" = HEAD ] && how=(-I -o /dev/null)
    curl -sS --path-as-is --max-time 20 "${how[@]}" -D "$work/x$n.hdr" \
      "$@" "$base$path" >/dev/null 2>"$work/x$n.err"
    printf '%s\n%s\n' "$method" "$path" >"$work/x$n.req"
  }

  post_json() { ex POST /v1/stream-records -H 'Content-Type: application/json' --data-binary "$@"; }
  rec() { # rec EVENT_ID NAME PLAYER SCORE [WINNER_JSON]
    local w=""
    [ -n "${5:-}" ] && w=",\"winner\":$5"
    printf '{"eventID":"%s","eventName":"%s","dynamodb":{"SequenceNumber":"%s","Keys":{"game_id":{"S":"g-%s"}},"NewImage":{"player":{"S":"%s"},"score":{"N":"%s"}%s},"StreamViewType":"NEW_AND_OLD_IMAGES"}}' \
      "$1" "$2" "$(printf '9%020d' "$seq_no")" "$1" "$3" "$4" "$w"
  }

  if start_server; then
    # ingestion: the three envelopes, duplicates, skips, poison records
    post_json "$(rec e1 INSERT alice 12.5 '{"BOOL":true}')"
    post_json "[$(rec e2 INSERT bob 3), $(rec e3 INSERT 'zoë/ü' 7.125 '{"S":"yes"}')]"
    post_json "{\"Records\":[$(rec e4 INSERT alice 3.333), $(rec e1 INSERT alice 12.5 '{"BOOL":true}'), {\"eventID\":\"e5\",\"eventName\":\"REMOVE\",\"dynamodb\":{\"Keys\":{\"game_id\":{\"S\":\"g\"}}}}, $(rec e6 INSERT carol x), {\"eventName\":\"INSERT\"}]}"
    post_json '{"eventID":"e7","eventName":"MODIFY","dynamodb":{"OldImage":{"player":{"S":"bob"},"score":{"N":"3"}},"NewImage":{"player":{"S":"bob"},"score":{"N":"4.5"},"winner":{"N":"1"}}}}'
    post_json '[]'
    post_json '{}'
    ex POST /v1/stream-records -H 'Content-Type: application/json; charset=utf-8' --data-binary "$(rec e8 INSERT dave 1e2)"
    # ingestion errors
    post_json 'x'
    post_json ''
    post_json '"x"'
    post_json '{"Records":5}'
    post_json '[1]'
    post_json '{"a":1} {"b":2}'
    ex POST /v1/stream-records -H 'Content-Type: text/plain' --data-binary '{}'
    ex POST /v1/stream-records --data-binary '{}'
    # The request's own bytes echoed in a detail must still make UTF-8 JSON.
    ex POST /v1/stream-records -H $'Content-Type: text/\xff\xfe' --data-binary '{}'
    ex POST /v1/stream-records -H "Content-Type: text/$(printf 'é%.0s' $(seq 300))" --data-binary '{}'
    ex POST /v1/stream-records -H 'Content-Type: application/json' -H 'Content-Length: 7340032' --data-binary '{}'
    head -c 7340032 /dev/zero | tr '\0' ' ' >"$work/big.json"
    ex POST /v1/stream-records -H 'Content-Type: application/json' --data-binary @"$work/big.json"
    node -e 'process.stdout.write(JSON.stringify(Array.from({length: 10001}, () => ({}))))' >"$work/many.json"
    ex POST /v1/stream-records -H 'Content-Type: application/json' --data-binary @"$work/many.json"

    # stats, with ETag revalidation
    ex GET /v1/players/alice/stats
    etag="$(sed -n 's/^[Ee][Tt][Aa][Gg]: *\(.*\)\r$/\1/p' "$work/x$(printf '%03d' "$seq_no").hdr")"
    ex GET /v1/players/alice/stats -H "If-None-Match: $etag"
    ex GET /v1/players/alice/stats -H "If-None-Match: W/$etag, \"other\""
    ex GET /v1/players/alice/stats -H 'If-None-Match: "nope"'
    ex HEAD /v1/players/alice/stats
    ex HEAD /v1/players/alice/stats -H "If-None-Match: $etag"
    ex GET '/v1/players/zo%C3%AB%2F%C3%BC/stats'
    ex GET /v1/players/bob/stats
    ex GET /v1/players/carol/stats
    ex GET /v1/players/nobody/stats
    ex HEAD /v1/players/nobody/stats
    ex GET /v1/players/%ff/stats
    ex GET /v1/players/a%00b/stats
    ex GET "/v1/players/$(head -c 1025 /dev/zero | tr '\0' a)/stats"

    # players list and paging
    ex GET /v1/players
    ex GET '/v1/players?limit=1'
    cursor="$(sed -n 's/.*"next_cursor":"\([^"]*\)".*/\1/p' "$work/x$(printf '%03d' "$seq_no").body")"
    ex GET "/v1/players?limit=1&cursor=$cursor"
    ex GET '/v1/players?limit=1000&ignored=1'
    ex HEAD '/v1/players?limit=2'
    for bad in limit=0 limit=1001 limit=abc limit=-1 limit=1.5 'limit=' cursor=zz 'cursor=' 'cursor=%ff'; do
      ex GET "/v1/players?$bad"
    done

    # leaderboard
    ex GET /v1/leaderboard
    for by in wins win_percent avg_score games; do ex GET "/v1/leaderboard?by=$by&limit=3"; done
    ex HEAD /v1/leaderboard
    for bad in by=x by= limit=0 limit=1001 limit=x; do ex GET "/v1/leaderboard?$bad"; done

    # dead letters: pages, a reason, replay (the poison records above stay)
    ex GET /v1/dead-letters
    ex GET '/v1/dead-letters?limit=1'
    cursor="$(sed -n 's/.*"next_cursor":"\([^"]*\)".*/\1/p' "$work/x$(printf '%03d' "$seq_no").body")"
    ex GET "/v1/dead-letters?limit=1&cursor=$cursor"
    ex GET '/v1/dead-letters?reason=missing%20eventID'
    ex HEAD /v1/dead-letters
    for bad in limit=0 limit=101 limit=x cursor=zz 'cursor=' 'reason=' 'reason=%ff'; do
      ex GET "/v1/dead-letters?$bad"
    done
    ex POST /v1/dead-letters/replay
    ex POST /v1/dead-letters/replay -H 'Content-Type: application/json' --data-binary '{"limit":1}'
    ex POST /v1/dead-letters/replay -H 'Content-Type: application/json' --data-binary '{"ids":["0123abc"],"reason":"missing eventID"}'
    for bad in '{"limit":0}' '{"limit":501}' '{"ids":[]}' '{"ids":["A B"]}' '{"reason":""}' '{"x":1}' '[]' 'x'; do
      ex POST /v1/dead-letters/replay -H 'Content-Type: application/json' --data-binary "$bad"
    done
    ex POST /v1/dead-letters/replay -H 'Content-Type: text/plain' --data-binary '{}'
    ex POST /v1/dead-letters/replay --data-binary '{}'
    ex GET /v1/dead-letters/replay
    ex DELETE /v1/dead-letters

    # operations
    ex GET /healthz
    ex HEAD /healthz
    ex GET /readyz
    ex GET /metrics
    ex HEAD /metrics
    ex GET /
    etag="$(sed -n 's/^[Ee][Tt][Aa][Gg]: *\(.*\)\r$/\1/p' "$work/x$(printf '%03d' "$seq_no").hdr")"
    ex GET / -H "If-None-Match: $etag"
    ex HEAD /
    ex GET /openapi.yaml
    cp "$work/x$(printf '%03d' "$seq_no").body" "$work/served-openapi.yaml"
    etag="$(sed -n 's/^[Ee][Tt][Aa][Gg]: *\(.*\)\r$/\1/p' "$work/x$(printf '%03d' "$seq_no").hdr")"
    ex GET /openapi.yaml -H "If-None-Match: $etag"
    ex HEAD /openapi.yaml

    # routing
    ex GET /nope
    ex POST /nope -H 'Content-Type: application/json' --data-binary '{}'
    ex GET /v1/players/
    ex GET /v1/players//stats
    ex GET /v1/players/alice
    ex GET /v1/players/alice/stats/x
    ex HEAD /nope
    ex DELETE /v1/players/alice/stats
    ex DELETE /v1/players
    ex GET /v1/stream-records
    ex PUT /v1/stream-records -H 'Content-Type: application/json' --data-binary '{}'
    ex POST /healthz
    ex OPTIONS /v1/leaderboard
    ex $'GE\xffT' /healthz
    ex GET "/v1/players?x=$(head -c 5000 /dev/zero | tr '\0' a)"
    ex GET "/$(head -c 5000 /dev/zero | tr '\0' a)"

    # DynamoDB: an item the original Lambda wrote (no total_score, no
    # updated_at), read before any new game of that player adopts it.
    if [ "$store" = dynamodb ]; then
      curl -sS --max-time 10 "${AWS_ENDPOINT_URL_DYNAMODB:-${AWS_ENDPOINT_URL:-}}" \
        --aws-sigv4 "aws:amz:${AWS_REGION:-us-east-1}:dynamodb" \
        -u "${AWS_ACCESS_KEY_ID:-}:${AWS_SECRET_ACCESS_KEY:-}" \
        -H 'Content-Type: application/x-amz-json-1.0' -H 'X-Amz-Target: DynamoDB_20120810.PutItem' \
        -d "{\"TableName\":\"${TS_TABLE:-TaTourneyStats}\",\"Item\":{\"player\":{\"S\":\"legacy\"},\"games\":{\"N\":\"3\"},\"wins\":{\"N\":\"1\"},\"avg_score\":{\"N\":\"5\"},\"win_percent\":{\"S\":\"33.33%\"}}}" \
        >/dev/null || fail "could not write the legacy item"
      ex GET /v1/players/legacy/stats
      ex GET '/v1/players?limit=1000'
    fi

    # a store held by another process: the write cannot get its lock
    if [ "$store" != sqlite ]; then
      echo "(store $store: 503 not provoked)"
    elif command -v sqlite3 >/dev/null; then
      (echo '.timeout 5000'; echo 'BEGIN EXCLUSIVE; INSERT INTO players SELECT * FROM players WHERE 0;'; sleep 8; echo 'COMMIT;') \
        | sqlite3 "$work/live.db" >/dev/null 2>&1 &
      lock_pid=$!
      sleep 0.5
      post_json "$(rec e9 INSERT erin 1)"
      ex GET /readyz
      kill "$lock_pid" 2>/dev/null
      wait "$lock_pid" 2>/dev/null
      lock_pid=""
    else
      echo "(sqlite3 not installed: 503 not provoked)"
    fi
    stop_server
  fi

  # ingestion with a key
  if start_server TS_INGEST_API_KEY=s3cret; then
    post_json "$(rec k1 INSERT frank 2)"
    post_json "$(rec k2 INSERT frank 2)" -H 'x-api-key: wrong'
    post_json "$(rec k3 INSERT frank 2)" -H 'x-api-key: s3cret'
    post_json "$(rec k4 INSERT frank 2)" -u 'pipe:s3cret'
    post_json "$(rec k5 INSERT frank 2)" -u 'pipe:wrong'
    ex GET /v1/players/frank/stats
    ex GET /v1/dead-letters
    ex GET /v1/dead-letters -H 'x-api-key: wrong'
    ex GET /v1/dead-letters -H 'x-api-key: s3cret'
    ex POST /v1/dead-letters/replay -u 'ops:wrong'
    ex POST /v1/dead-letters/replay -u 'ops:s3cret'
    stop_server
  fi

  # Turn the recorded files into exchanges.jsonl.
  if ! WORK="$work" node - >"$out/exchanges.jsonl" <<'EOF'
const fs = require('fs');
const dir = process.env.WORK;
for (const f of fs.readdirSync(dir).filter((f) => /^x\d+\.req$/.test(f)).sort()) {
  const n = f.slice(0, -4);
  const [method, path] = fs.readFileSync(`${dir}/${f}`, 'utf8').split('\n');
  let head = '';
  try { head = fs.readFileSync(`${dir}/${n}.hdr`, 'latin1'); } catch { }
  // The last header block is the final answer (after any 100 Continue).
  const blocks = head.split(/\r?\n\r?\n/).filter((b) => b.startsWith('HTTP/'));
  if (blocks.length === 0) {
    const err = fs.readFileSync(`${dir}/${n}.err`, 'utf8').trim();
    console.error(`no answer to ${method} ${path.slice(0, 100)}: ${err}`);
    continue;
  }
  const lines = blocks[blocks.length - 1].split(/\r?\n/);
  const status = Number(lines[0].split(' ')[1]);
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let raw = Buffer.alloc(0);
  try { raw = fs.readFileSync(`${dir}/${n}.body`); } catch { }
  // JSON text must be UTF-8 (RFC 8259); the JSONL line can only carry
  // text, so a body that is not UTF-8 is reported here.
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    console.error(`the body of the answer to ${method} ${path.slice(0, 100)} (${status}) is not valid UTF-8: ${JSON.stringify(raw.toString('latin1').slice(0, 300))}`);
    process.exitCode = 3;
  }
  const body = raw.toString('utf8');
  console.log(JSON.stringify({ method, path, status, content_type: headers['content-type'] ?? null, headers, body }));
}
EOF
  then
    fail "a recorded answer is not valid UTF-8 (see above)"
  fi
  n_live=$(grep -c . "$out/exchanges.jsonl")
  node "$validate" "$spec" "$out/exchanges.jsonl" >"$work/live.txt" 2>&1
  rc=$?
  if [ "$rc" = 0 ]; then
    ok "$(tail -1 "$work/live.txt") (real exchanges: $out/exchanges.jsonl)"
  else
    cat "$work/live.txt"
    fail "real exchanges do not match the contract ($n_live recorded in $out/exchanges.jsonl)"
  fi
  # Statuses the recording should have reached: a missing one means the
  # capture above no longer provokes it.
  wants="200 304 400 401 404 405 413 414 415"
  [ "$store" = sqlite ] && wants="$wants 503"
  for want in $wants; do
    grep -q "\"status\":$want," "$out/exchanges.jsonl" || fail "no real exchange answered $want"
  done
  if cmp -s "$work/served-openapi.yaml" "$spec"; then
    ok "GET /openapi.yaml serves openapi/openapi.yaml"
  else
    fail "GET /openapi.yaml differs from openapi/openapi.yaml (rebuild the binary?)"
  fi
fi

echo
if [ "$failures" -eq 0 ]; then
  echo "contract selftest: all checks passed"
  exit 0
fi
echo "contract selftest: $failures check(s) failed"
exit 1
