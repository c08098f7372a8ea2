// The Kinesis consumer's rate next to kinesalite's own GetRecords rate, in
// the same run (run by bench/kinesis.sh under tests/e2e/with-kinesalite.sh).
//
// A stream of 4 shards gets N change records (INSERTs of P players). The
// reference reads every record back with plain GetRecords calls (Limit
// 1000, the shards in parallel), nothing else: the most any consumer of
// this kinesalite could read. Then `tourney-stats serve` with
// TS_KINESIS_STREAM consumes the stream into a fresh embedded store (or
// dynalite with TS_STORE=dynamodb), and the time from its start until
// /metrics counts N records applied gives its rate; the totals are checked
// against the records' own.
//
//   node bench/kinesis_consume.mjs [records] [players]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const N = Number(process.argv[2] ?? 20000);
const P = Number(process.argv[3] ?? 200);
const bin = process.env.TS_BIN ?? 'build/tourney-stats';
const url = process.env.AWS_ENDPOINT_URL_KINESIS;
const stream = `bench-${process.pid}`;
const work = mkdtempSync(join(tmpdir(), 'ts-kbench-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function kinesis(op, body) {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-amz-json-1.1',
      'X-Amz-Target': `Kinesis_20131202.${op}`,
      'X-Amz-Date': '20260101T000000Z',
      Authorization: 'AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${op}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

await kinesis('CreateStream', { StreamName: stream, ShardCount: 4 });
for (;;) {
  const d = await kinesis('DescribeStreamSummary', { StreamName: stream });
  if (d.StreamDescriptionSummary.StreamStatus === 'ACTIVE') break;
  await sleep(50);
}
const games = new Map();
const records = [];
for (let i = 0; i < N; i++) {
  const player = `p${i % P}`;
  const cents = 1 + ((i * 7919) % 10000);
  const win = i % 3 === 0;
  const g = games.get(player) ?? { games: 0, wins: 0 };
  g.games++;
  g.wins += win ? 1 : 0;
  games.set(player, g);
  const rec = {
    eventID: `b-${process.pid}-${i}`, eventName: 'INSERT', eventSource: 'aws:dynamodb',
    dynamodb: {
      ApproximateCreationDateTime: Date.now(), Keys: { game_id: { S: `g${i}` } },
      NewImage: { game_id: { S: `g${i}` }, player: { S: player },
        score: { N: (cents / 100).toFixed(2) }, winner: { BOOL: win } },
    },
  };
  records.push({ PartitionKey: `g${i}`, Data: Buffer.from(JSON.stringify(rec)).toString('base64') });
}
let t = Date.now();
for (let i = 0; i < records.length; i += 500)
  await kinesis('PutRecords', { StreamName: stream, Records: records.slice(i, i + 500) });
const putS = (Date.now() - t) / 1000;

// reference: GetRecords alone, the 4 shards in parallel
const shards = (await kinesis('ListShards', { StreamName: stream })).Shards;
t = Date.now();
const counts = await Promise.all(shards.map(async (s) => {
  let it = (await kinesis('GetShardIterator', { StreamName: stream, ShardId: s.ShardId,
    ShardIteratorType: 'TRIM_HORIZON' })).ShardIterator;
  let n = 0;
  for (;;) {
    const ans = await kinesis('GetRecords', { ShardIterator: it, Limit: 1000 });
    n += ans.Records.length;
    if (ans.Records.length === 0 || !ans.NextShardIterator) break;
    it = ans.NextShardIterator;
  }
  return n;
}));
const refS = (Date.now() - t) / 1000;
const refN = counts.reduce((a, b) => a + b, 0);

// the consumer inside serve
t = Date.now();
const child = spawn(bin, ['serve'], {
  env: { ...process.env, TS_STORE: process.env.TS_STORE ?? 'sqlite',
    TS_SQLITE_PATH: join(work, 'bench.db'), TS_PORT: '0', TS_BIND: '127.0.0.1',
    TS_KINESIS_STREAM: stream, TS_KINESIS_BATCH: '1000', TS_KINESIS_POLL_MS: '100',
    TS_LOG_LEVEL: 'warn' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
let port = null;
child.stdout.setEncoding('utf8').on('data', (d) => {
  const m = d.match(/"msg":"listening".*?"port":(\d+)/);
  if (m) port = Number(m[1]);
});
// TS_LOG_LEVEL=warn hides "listening": ask the kernel which port it holds
const { execFileSync } = await import('node:child_process');
while (!port) {
  await sleep(50);
  try {
    const out = execFileSync('ss', ['-ltnpH']).toString();
    const line = out.split('\n').find((l) => l.includes(`pid=${child.pid},`));
    if (line) port = Number(line.split(/\s+/)[3].split(':').pop());
  } catch { /* not yet */ }
}
let applied = 0;
while (applied < N) {
  await sleep(50);
  const m = (await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())
    .match(/ts_kinesis_records_total\{outcome="applied"\} (\d+)/);
  applied = m ? Number(m[1]) : 0;
  if (Date.now() - t > 600000) throw new Error(`only ${applied} applied after 10 min`);
}
const conS = (Date.now() - t) / 1000;
let bad = 0;
for (const [p, g] of games) {
  const s = await (await fetch(`http://127.0.0.1:${port}/v1/players/${p}/stats`)).json();
  if (s.games !== g.games || s.wins !== g.wins) bad++;
}
child.kill('SIGTERM');
await new Promise((r) => child.on('exit', r));
rmSync(work, { recursive: true, force: true });

const row = (what, n, s) => console.log(`| ${what} | ${n} | ${s.toFixed(2)} | ${Math.round(n / s)} |`);
console.log(`\n${N} records, ${P} players, 4 shards; PutRecords took ${putS.toFixed(1)} s`);
console.log('| reader | records | seconds | records/s |\n|---|---:|---:|---:|');
row('kinesalite GetRecords alone (reference)', refN, refS);
row(`tourney-stats consumer, ${process.env.TS_STORE ?? 'sqlite'} store, totals ${bad ? 'WRONG' : 'exact'}`, N, conS);
process.exit(bad ? 1 : 0);
