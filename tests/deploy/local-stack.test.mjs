// The production shape on one machine, under a crash: deploy/local-stack.sh
// starts dynalite, two replicas on the DynamoDB store and nginx; four
// senders post single records through nginx the way an EventBridge Pipe
// does (one record, Connection: close), resend some of them, and each
// replica is SIGKILLed and restarted while they send. Checked:
//   - every answer is a 200, or a 503/429 with Retry-After (then resent,
//     as a Pipe would), never anything else;
//   - every record ends acknowledged as applied or duplicate, and every
//     resend of an acknowledged record is a duplicate;
//   - each player's stats equal an independent tally, exactly;
//   - the whole stream resent in batches of 100 applies nothing.
//   node tests/deploy/local-stack.test.mjs     (TS_TEST_BIN: the binary)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const stack = join(root, 'deploy', 'local-stack.sh');
const dir = mkdtempSync(join(tmpdir(), 'ts-stack-'));
const env = { ...process.env, TS_STACK_DIR: dir, TS_STACK_PORT: '0',
  TS_BIN: resolve(process.env.TS_TEST_BIN ?? join(root, 'build', 'tourney-stats')) };
delete env.TS_INGEST_API_KEY;
const PLAYERS = 12, RECORDS = 600, SENDERS = 4, RESEND_EVERY = 7;

let passed = 0, failed = 0;
function check(ok, what) {
  if (ok) passed++; else { failed++; console.log(`FAIL ${what}`); }
  return ok;
}
function sh(...args) {
  const r = spawnSync(stack, args, { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`local-stack.sh ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

// A Pipe's request: one body, Connection: close.
function post(port, body) {
  return new Promise((res) => {
    const data = Buffer.from(JSON.stringify(body));
    const req = http.request({ host: '127.0.0.1', port, path: '/v1/stream-records', method: 'POST',
      agent: false, timeout: 6000,
      headers: { 'Content-Type': 'application/json', 'Content-Length': data.length, Connection: 'close' } },
    (r) => {
      let buf = '';
      r.setEncoding('utf8');
      r.on('data', (d) => { buf += d; });
      r.on('end', () => { let json = null; try { json = JSON.parse(buf); } catch { /* checked below */ }
        res({ status: r.statusCode, retryAfter: r.headers['retry-after'], json, text: buf }); });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 6 s')));
    req.on('error', (e) => res({ status: 0, error: e.message }));
    req.end(data);
  });
}
async function getJSON(port, path) {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: r.status, json: await r.json() };
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Deterministic records: scores in cents, so the tally is exact.
let seed = 20261203;
const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const records = [];
const want = new Map();
const stamp = Date.now();
for (let i = 0; i < RECORDS; i++) {
  const player = `stack-${stamp}-p${i % PLAYERS}`;
  const cents = Math.floor(rand() * 10000);
  const win = rand() < 0.4;
  const score = `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
  records.push({ eventID: `stack-${stamp}-${i}`, eventName: 'INSERT',
    dynamodb: { SequenceNumber: String(1000 + i), StreamViewType: 'NEW_AND_OLD_IMAGES',
      NewImage: { player: { S: player }, score: { N: score }, winner: { BOOL: win } } } });
  const w = want.get(player) ?? { games: 0, wins: 0, cents: 0 };
  w.games++; w.wins += win ? 1 : 0; w.cents += cents;
  want.set(player, w);
}

const stats = { answers: new Map(), retried: 0, resends: 0, badResends: 0 };
const unexpected = [];
// Sends until a 200; a 503/429 must carry Retry-After and is resent.
async function deliver(port, rec) {
  for (let attempt = 0; attempt < 100; attempt++) {
    const r = await post(port, rec);
    stats.answers.set(r.status, (stats.answers.get(r.status) ?? 0) + 1);
    if (r.status === 200 && r.json) return r.json;
    if ((r.status === 503 || r.status === 429) && r.retryAfter) { stats.retried++; await sleep(100); continue; }
    unexpected.push(`${rec.eventID}: ${r.status} ${r.error ?? r.text?.slice(0, 200)}`);
    await sleep(100);
  }
  return null;
}

let port;
try {
  console.log(sh('start').trim());
  port = Number(/LB_PORT=(\d+)/.exec(readFileSync(join(dir, 'stack.env'), 'utf8'))[1]);

  let next = 0, acked = 0;
  const outcome = new Array(RECORDS).fill(null);
  async function sender() {
    while (next < RECORDS) {
      const i = next++;
      const a = await deliver(port, records[i]);
      outcome[i] = a;
      acked++;
      if (i % RESEND_EVERY === 0) { // the sender retries a record it already got a 200 for
        stats.resends++;
        const again = await deliver(port, records[i]);
        if (!again || again.duplicates !== 1 || again.applied !== 0) stats.badResends++;
      }
    }
  }
  // Crashes while the senders run: each replica killed, then restarted.
  async function chaos() {
    for (const [at, n] of [[RECORDS / 4, 1], [RECORDS / 2, 2]]) {
      while (acked < at) await sleep(5);
      sh('kill', String(n));
      console.log(`killed replica ${n} after ${acked} records`);
      await sleep(800);
      sh('replica', String(n));
      console.log(`restarted replica ${n} after ${acked} records`);
    }
  }
  await Promise.all([...Array.from({ length: SENDERS }, sender), chaos()]);

  const answers = Object.fromEntries(stats.answers);
  console.log(`answers by status: ${JSON.stringify(answers)}; ${stats.retried} retried, ${stats.resends} resends`);
  check(unexpected.length === 0, `answers other than 200 or 503/429 with Retry-After: ${unexpected.slice(0, 5).join('; ')}`);
  check(Object.keys(answers).every((s) => ['200', '503', '429'].includes(s)), `statuses ${Object.keys(answers)}`);
  check(outcome.every((a) => a && a.received === 1 && a.applied + a.duplicates === 1 && a.rejected.length === 0),
    'every record acknowledged once as applied or duplicate');
  check(stats.badResends === 0, `${stats.badResends} resends of acknowledged records were not duplicates`);

  for (const [player, w] of want) {
    const { status, json } = await getJSON(port, `/v1/players/${encodeURIComponent(player)}/stats`);
    const total = `${Math.floor(w.cents / 100)}.${String(w.cents % 100).padStart(2, '0')}`;
    check(status === 200 && json.games === w.games && json.wins === w.wins &&
      Math.round(json.total_score * 100) === w.cents,
    `${player}: want games ${w.games} wins ${w.wins} total ${total}, got ${status} ${JSON.stringify(json)}`);
  }

  let reapplied = 0;
  for (let i = 0; i < RECORDS; i += 100) {
    const a = await deliver(port, { Records: records.slice(i, i + 100) });
    reapplied += a ? a.applied : 1;
    check(a && a.duplicates === Math.min(100, RECORDS - i), `batch resend at ${i}: ${JSON.stringify(a)}`);
  }
  check(reapplied === 0, `the whole stream resent applied ${reapplied} records`);
} catch (e) {
  failed++;
  console.log(`FAIL ${e.stack ?? e}`);
} finally {
  try { sh('stop'); } catch (e) { failed++; console.log(`FAIL stop: ${e.message}`); }
  if (failed) console.log(`(stack logs kept in ${dir})`); else rmSync(dir, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
