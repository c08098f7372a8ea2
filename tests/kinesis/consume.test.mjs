// The Kinesis consumer, black box, against a real kinesalite (and, with
// TS_TEST_STORE=dynamodb, dynalite): run under tests/e2e/with-kinesalite.sh
// (and with-dynalite.sh). A stream of 4 shards is filled with a few
// thousand DynamoDB change records in the "Kinesis Data Streams for
// DynamoDB" format (decimal scores, winner false, MODIFY moving games
// between players, REMOVE); two consumers share it: A (`consume`) and B
// (`serve` with TS_KINESIS_STREAM, which also answers the stats). A is
// SIGKILLed mid-stream, shard 0 is split while records keep coming, A is
// restarted and later stopped with SIGTERM. Every player's stats must then
// equal the test's own recomputation, every checkpoint must have reached
// its shard's last record, the split parent must be finished, and the
// consumers' logs must never show a shard held by two at once. B reads
// through a proxy that throttles every third GetRecords, as Kinesis does
// past 5 reads a second per shard; on dynalite its store calls go through
// another, which loses the answer to one of its checkpoints, then refuses
// another shard's lease writes until B gives that shard up.
//
//   TS_TEST_BIN=build/tourney-stats TS_TEST_STORE=sqlite|dynamodb \
//     tests/e2e/with-kinesalite.sh node tests/kinesis/consume.test.mjs
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';

const bin = process.env.TS_TEST_BIN;
const storeKind = process.env.TS_TEST_STORE || 'sqlite';
const kinesisUrl = process.env.AWS_ENDPOINT_URL_KINESIS;
if (!bin || !kinesisUrl) {
  console.error('needs TS_TEST_BIN and AWS_ENDPOINT_URL_KINESIS (run under with-kinesalite.sh)');
  process.exit(2);
}
const LEASE_MS = 3000;
const stream = `games-${process.pid}`;
const work = mkdtempSync(join(tmpdir(), 'ts-kinesis-'));
const children = new Set();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let proxy = null; // the throttling proxy B reads through
let dproxy = null; // on dynalite: the proxy B's store calls go through

// ---- AWS JSON calls (the local servers check the Authorization shape,
// not the signature) ----
async function aws(url, target, contentType, body) {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'Content-Type': contentType,
      'X-Amz-Target': target,
      'X-Amz-Date': '20260101T000000Z',
      Authorization:
        'AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/kinesis/aws4_request, ' +
        'SignedHeaders=host;x-amz-date;x-amz-target, Signature=0000',
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${target}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : {};
}
const kinesis = (op, body) =>
  aws(kinesisUrl, `Kinesis_20131202.${op}`, 'application/x-amz-json-1.1', body);
const dynamodb = (op, body) =>
  aws(process.env.AWS_ENDPOINT_URL_DYNAMODB, `DynamoDB_20120810.${op}`,
    'application/x-amz-json-1.0', body);

// ---- the records, and the stats they must add up to ----
let seed = 20261203;
const rand = (n) => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed % n;
};
const PLAYERS = 40;
const items = new Map(); // game id -> {player, cents, win}
let eventNo = 0;
let createdMs = Date.parse('2026-12-01T00:00:00Z');

function image(g) {
  const img = {
    game_id: { S: g.id },
    player: { S: `p${g.player}` },
    score: { N: (g.cents / 100).toFixed(2) },
  };
  // winner false in every spelling the product lists, or absent
  if (g.win) img.winner = { BOOL: true };
  else if (g.cents % 3 === 0) img.winner = { BOOL: false };
  else if (g.cents % 3 === 1) img.winner = { S: 'false' };
  return img;
}

function change(name, id, oldG, newG) {
  const dynamodb = {
    ApproximateCreationDateTime: (createdMs += 7),
    Keys: { game_id: { S: id } },
    SizeBytes: 100,
  };
  if (newG) dynamodb.NewImage = image(newG);
  if (oldG) dynamodb.OldImage = image(oldG);
  const rec = {
    awsRegion: 'us-east-1',
    eventID: `evt-${process.pid}-${++eventNo}`,
    eventName: name,
    userIdentity: null,
    recordFormat: 'application/json',
    tableName: 'TaTourney',
    dynamodb,
    eventSource: 'aws:dynamodb',
  };
  return { PartitionKey: id, Data: Buffer.from(JSON.stringify(rec)).toString('base64') };
}

// n changes on the current items: mostly INSERTs, some MODIFY (score,
// winner or player), some REMOVE.
function changes(n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const ids = [...items.keys()];
    const r = rand(100);
    if (ids.length > 20 && r < 15) {
      const id = ids[rand(ids.length)];
      const old = items.get(id);
      const g = { id, player: rand(4) === 0 ? rand(PLAYERS) : old.player,
        cents: 1 + rand(10000), win: rand(2) === 0 };
      items.set(id, g);
      out.push(change('MODIFY', id, old, g));
    } else if (ids.length > 20 && r < 22) {
      const id = ids[rand(ids.length)];
      out.push(change('REMOVE', id, items.get(id), null));
      items.delete(id);
    } else {
      const id = `g${out.length}-${eventNo}-${rand(1e6)}`;
      const g = { id, player: rand(PLAYERS), cents: 1 + rand(10000), win: rand(2) === 0 };
      items.set(id, g);
      out.push(change('INSERT', id, null, g));
    }
  }
  return out;
}

function expected() {
  const want = new Map();
  for (let p = 0; p < PLAYERS; p++) want.set(`p${p}`, { games: 0, wins: 0, cents: 0 });
  for (const g of items.values()) {
    const w = want.get(`p${g.player}`);
    w.games++;
    w.wins += g.win ? 1 : 0;
    w.cents += g.cents;
  }
  return want;
}

const lastSeq = new Map(); // shard -> last sequence number put
async function put(records) {
  for (let i = 0; i < records.length; i += 500) {
    const ans = await kinesis('PutRecords', { StreamName: stream, Records: records.slice(i, i + 500) });
    assert.equal(ans.FailedRecordCount || 0, 0, 'PutRecords failed some records');
    for (const r of ans.Records) {
      const prev = lastSeq.get(r.ShardId);
      if (!prev || BigInt(r.SequenceNumber) > BigInt(prev)) lastSeq.set(r.ShardId, r.SequenceNumber);
    }
  }
}

// ---- a throttling proxy in front of kinesalite ----
// Kinesis allows 5 GetRecords calls a second per shard and throttles
// past that (ProvisionedThroughputExceededException); kinesalite never
// does. B reads through this proxy, which answers every third GetRecords
// so, and passes everything else to kinesalite as it came.
let throttled = 0;
async function startThrottlingProxy() {
  let getRecords = 0;
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const target = String(req.headers['x-amz-target'] || '');
      if (target.endsWith('.GetRecords') && ++getRecords % 3 === 0) {
        throttled++;
        const text = JSON.stringify({
          __type: 'ProvisionedThroughputExceededException',
          message: 'Rate exceeded for shard (throttling proxy)',
        });
        res.writeHead(400, { 'Content-Type': 'application/x-amz-json-1.1' });
        res.end(text);
        return;
      }
      try {
        const headers = { ...req.headers };
        delete headers.host;
        delete headers['content-length'];
        const up = await fetch(kinesisUrl + req.url, { method: req.method, headers, body });
        const answer = Buffer.from(await up.arrayBuffer());
        res.writeHead(up.status, { 'Content-Type': up.headers.get('content-type') || 'application/x-amz-json-1.1' });
        res.end(answer);
      } catch (e) {
        res.writeHead(502);
        res.end(String(e));
      }
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

// ---- a proxy in front of dynalite that loses one answer ----
// On dynalite (TS_TEST_STORE=dynamodb) B's store calls go through this
// proxy. It passes every call on as it came, but once, for B's first
// checkpoint of a shard, it lets the write land and closes the connection
// without the answer. The write is sent again and refused by its own
// landed version: B must see that the row is its own and keep the shard,
// not take the refusal for a takeover (which stopped the shard until the
// lease expired).
//
// After that, once, it refuses B's lease writes of another shard (a
// checkpoint, then the release B tries after it), as a store that fails
// for a while would. B stops working on the shard, and the row stays B's
// until it expires: no other consumer may take it before. B must take it
// back at its next look at the leases once the store answers again, not
// wait for the expiry, which stalled the shard for up to a lease.
let lost = null; // {shard, at} once the proxy has lost the answer
let refused = null; // {shard, expires, from, lostAt, againAt} once refusing started
const landed = new Map(); // shard -> B's lease row that last landed
function refuse(res) {
  res.writeHead(400, { 'Content-Type': 'application/x-amz-json-1.0' });
  res.end(JSON.stringify({
    __type: 'com.amazonaws.dynamodb.v20120810#AccessDeniedException',
    message: 'refused by the test proxy',
  }));
}
async function startLosingProxy(upstream) {
  const up = new URL(upstream);
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let lose = false;
      let item = null;
      let shard = '';
      let over = ''; // the lease_version the write is conditioned on
      if (String(req.headers['x-amz-target'] || '').endsWith('.PutItem')) {
        try {
          const put = JSON.parse(body);
          item = put.Item || {};
          over = put.ExpressionAttributeValues?.[':v']?.N || '';
          const id = item.id?.S || '';
          if (id.startsWith(`#kinesis#${stream}#shardId`))
            shard = id.slice(`#kinesis#${stream}#`.length);
        } catch { /* not JSON: pass it on */ }
      }
      if (shard && !lost) {
        // a checkpoint: B holds the shard (its log says so) and the
        // sequence moved past the one it took the shard at
        const taken = logs.findLast((l) => l.proc === 'B' && l.shard === shard &&
          l.msg === 'kinesis shard taken');
        if (item.owner?.S === 'B' && taken && item.checkpoint?.S &&
          item.checkpoint.S !== taken.checkpoint) {
          lose = true;
          lost = { shard, at: Date.now() };
        }
      } else if (shard && !refused && shard !== lost.shard && landed.has(shard) &&
        item.owner?.S === 'B' && item.checkpoint?.S !== landed.get(shard).checkpoint?.S &&
        over === landed.get(shard).lease_version?.N) {
        // a checkpoint of a shard B's worker holds: written over the row B
        // last landed. Not a take: a take after another consumer moved the
        // checkpoint differs from what B last landed too, but is written
        // over that consumer's row, and B has no worker on it to give it
        // up. (B's log was the sign once, and raced with its write: the
        // write could come before the line that B had let the shard go.)
        refused = { shard, expires: Number(landed.get(shard).lease_expires_ms.N), from: logs.length };
      }
      if (shard && refused && !refused.lostAt && shard === refused.shard) {
        const gone = logs.slice(refused.from).find((l) => l.proc === 'B' && l.shard === shard &&
          (l.msg || '').startsWith('kinesis lease lost'));
        // a take (B's name, the checkpoint that landed) once B gave up:
        // the store answers again
        const retake = gone && item.owner?.S === 'B' &&
          item.checkpoint?.S === landed.get(shard).checkpoint?.S;
        if (!retake) {
          refuse(res);
          return;
        }
        refused.lostAt = Date.parse(gone.ts);
      }
      const fwd = httpRequest({
        host: up.hostname, port: up.port, path: req.url, method: req.method, headers: req.headers,
      }, (ans) => {
        const parts = [];
        ans.on('data', (c) => parts.push(c));
        ans.on('end', () => {
          if (lose) {
            req.socket.destroy(); // landed, unanswered
            return;
          }
          if (shard && ans.statusCode === 200 && item.owner?.S === 'B') landed.set(shard, item);
          res.writeHead(ans.statusCode, ans.headers);
          res.end(Buffer.concat(parts));
        });
      });
      fwd.on('error', (e) => {
        res.writeHead(502);
        res.end(String(e));
      });
      fwd.end(body);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

// ---- processes ----
const logs = []; // {proc, line}
function start(name, args, extraEnv) {
  const env = {
    ...process.env,
    TS_STORE: storeKind,
    TS_SQLITE_PATH: join(work, 'stats.db'),
    TS_KINESIS_STREAM: stream,
    TS_KINESIS_LEASE_MS: String(LEASE_MS),
    TS_KINESIS_POLL_MS: '100',
    TS_KINESIS_BATCH: '50',
    TS_KINESIS_OWNER: name,
    TS_PORT: '0',
    TS_BIND: '127.0.0.1',
    ...extraEnv,
  };
  const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.name = name;
  let partial = '';
  const onData = (chunk) => {
    partial += chunk;
    let nl;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      try {
        const j = JSON.parse(line);
        logs.push({ proc: name, ...j });
        if (j.msg === 'listening') child.port = j.port;
      } catch {
        logs.push({ proc: name, msg: line });
      }
    }
  };
  child.stdout.setEncoding('utf8').on('data', onData);
  child.stderr.setEncoding('utf8').on('data', onData);
  child.exited = new Promise((r) => child.on('exit', (code, sig) => {
    children.delete(child);
    logs.push({ proc: name, msg: 'exited', ts: new Date().toISOString(), code, sig });
    r({ code, sig });
  }));
  return child;
}

async function waitFor(what, fn, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function stats(port, player) {
  const res = await fetch(`http://127.0.0.1:${port}/v1/players/${player}/stats`);
  if (res.status === 404) return { games: 0, wins: 0, total_score: 0 };
  assert.equal(res.status, 200);
  return res.json();
}

async function mismatches(port) {
  const bad = [];
  for (const [p, w] of expected()) {
    const got = await stats(port, p);
    if (got.games !== w.games || got.wins !== w.wins || Math.round(got.total_score * 100) !== w.cents)
      bad.push(`${p}: got ${got.games}/${got.wins}/${got.total_score}, want ${w.games}/${w.wins}/${w.cents / 100}`);
  }
  return bad;
}

async function leases() {
  if (storeKind === 'sqlite') {
    const out = execFileSync('sqlite3', ['-json', join(work, 'stats.db'),
      `SELECT shard, owner, checkpoint, finished FROM kinesis_leases WHERE stream = '${stream}'`]);
    return JSON.parse(out.toString() || '[]').map((r) => ({ ...r, finished: !!r.finished }));
  }
  const table = process.env.TS_APPLIED_LOG_TABLE || `${process.env.TS_TABLE}AppliedLog`;
  const prefix = `#kinesis#${stream}#`;
  const ans = await dynamodb('Scan', {
    TableName: table, ConsistentRead: true,
    FilterExpression: 'begins_with(id, :p)', ExpressionAttributeValues: { ':p': { S: prefix } },
  });
  return ans.Items.map((it) => ({
    shard: it.id.S.slice(prefix.length), owner: it.owner.S,
    checkpoint: it.checkpoint.S, finished: it.finished.BOOL,
  }));
}

// No shard is held by two consumers at once: from each consumer's log,
// the intervals between "shard taken" and its end (released, lost, read to
// its end, or the process's exit) never overlap for one shard.
function checkNoDoubleHolding() {
  const open = new Map(); // proc|shard -> start
  const intervals = new Map(); // shard -> [[start, end, proc]]
  const close = (key, t) => {
    const s = open.get(key);
    if (s === undefined) return;
    open.delete(key);
    const [proc, shard] = key.split('|');
    if (!intervals.has(shard)) intervals.set(shard, []);
    intervals.get(shard).push([s, t, proc]);
  };
  for (const l of logs) {
    const t = Date.parse(l.ts);
    if (l.msg === 'kinesis shard taken') open.set(`${l.proc}|${l.shard}`, t);
    else if (l.msg === 'kinesis lease released' || l.msg === 'kinesis shard read to its end' ||
      (l.msg || '').startsWith('kinesis lease lost')) close(`${l.proc}|${l.shard}`, t);
    else if (l.msg === 'exited') for (const key of [...open.keys()]) if (key.startsWith(`${l.proc}|`)) close(key, t);
  }
  for (const key of [...open.keys()]) close(key, Infinity);
  for (const [shard, list] of intervals) {
    list.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < list.length; i++)
      assert.ok(list[i][0] >= list[i - 1][1],
        `shard ${shard} held by ${list[i - 1][2]} and ${list[i][2]} at once`);
  }
  return intervals;
}

async function main() {
  const t0 = Date.now();
  await kinesis('CreateStream', { StreamName: stream, ShardCount: 4 });
  await waitFor('the stream', async () =>
    (await kinesis('DescribeStreamSummary', { StreamName: stream }))
      .StreamDescriptionSummary.StreamStatus === 'ACTIVE', 10000);

  const first = changes(2000);
  await put(first);
  proxy = await startThrottlingProxy();
  if (storeKind === 'dynamodb')
    dproxy = await startLosingProxy(process.env.AWS_ENDPOINT_URL_DYNAMODB);
  const b = start('B', ['serve'], {
    AWS_ENDPOINT_URL_KINESIS: proxy.url,
    ...(dproxy ? { AWS_ENDPOINT_URL_DYNAMODB: dproxy.url } : {}),
  });
  // A names the stream by its ARN (sent as StreamARN and StreamName)
  const a = start('A', ['consume'],
    { TS_KINESIS_STREAM: `arn:aws:kinesis:us-east-1:000000000000:stream/${stream}` });
  await waitFor('B listening', () => b.port, 10000);

  // A and B share the shards; kill A once it has taken some and applied
  await waitFor('A to take shards', () =>
    logs.some((l) => l.proc === 'A' && l.msg === 'kinesis shard taken'), 10000);
  await sleep(600);
  a.kill('SIGKILL');
  await a.exited;

  // split shard 0 at the middle of its hash range while records keep coming
  const shards = (await kinesis('ListShards', { StreamName: stream })).Shards;
  const s0 = shards.find((s) => s.ShardId === 'shardId-000000000000');
  const mid = (BigInt(s0.HashKeyRange.StartingHashKey) + BigInt(s0.HashKeyRange.EndingHashKey)) / 2n;
  await kinesis('SplitShard', { StreamName: stream, ShardToSplit: s0.ShardId, NewStartingHashKey: mid.toString() });
  await waitFor('the split', async () =>
    (await kinesis('DescribeStreamSummary', { StreamName: stream }))
      .StreamDescriptionSummary.StreamStatus === 'ACTIVE', 10000);
  await put(changes(1200));

  // A again; later stopped with SIGTERM: B takes its shards over
  const a2 = start('A2', ['consume']);
  await waitFor('A2 to take shards', () =>
    logs.some((l) => l.proc === 'A2' && l.msg === 'kinesis shard taken'), LEASE_MS * 4);
  await sleep(1500);
  a2.kill('SIGTERM');
  const a2exit = await a2.exited;
  assert.equal(a2exit.code, 0, 'consume exits 0 on SIGTERM');

  let bad = [];
  await waitFor('exact totals', async () => (bad = await mismatches(b.port)).length === 0, 120000)
    .catch((e) => { throw new Error(`${e.message}:\n${bad.slice(0, 10).join('\n')}`); });
  const tDone = Date.now();

  // checkpoints reached every shard's last record; the parent is finished
  const rows = await waitFor('checkpoints', async () => {
    const r = await leases();
    const ok = [...lastSeq].every(([shard, seq]) => {
      const row = r.find((x) => x.shard === shard);
      return row && row.checkpoint && BigInt(row.checkpoint) >= BigInt(seq);
    });
    return ok && r.find((x) => x.shard === 'shardId-000000000000')?.finished ? r : null;
  }, 20000);
  assert.ok(rows.length >= 6, `a lease row per shard (${rows.length})`);

  // B's /metrics shows the consumer
  const metrics = await (await fetch(`http://127.0.0.1:${b.port}/metrics`)).text();
  assert.match(metrics, /ts_kinesis_records_total\{outcome="applied"\} [1-9]/);
  assert.match(metrics, /ts_kinesis_shards_held [0-9]/);
  // B's reads were throttled, sent again, and counted
  assert.ok(throttled > 0, 'the proxy throttled no GetRecords of B');
  assert.match(metrics, /ts_aws_retryable_errors_total\{service="kinesis",reason="throttled"\} [1-9]/);

  // on dynalite: B's checkpoint whose answer was lost kept B its shard
  if (dproxy) {
    assert.ok(lost, 'the proxy lost no checkpoint answer of B');
    const gaveUp = logs.find((l) => l.proc === 'B' && l.shard === lost.shard &&
      (l.msg || '').startsWith('kinesis lease lost') && Date.parse(l.ts) >= lost.at - 1000 &&
      Date.parse(l.ts) <= lost.at + 2000);
    assert.ok(!gaveUp, `B gave up ${lost.shard} when a checkpoint's answer was lost: ${JSON.stringify(gaveUp)}`);
    // the shard whose lease writes were refused was taken again while its
    // row, still B's, had not expired
    assert.ok(refused?.lostAt, `B's lease writes were not refused until it gave a shard up: ${JSON.stringify(refused)}`);
    const again = logs.find((l) => l.shard === refused.shard && l.msg === 'kinesis shard taken' &&
      Date.parse(l.ts) >= refused.lostAt);
    assert.ok(again, `${refused.shard} was never taken again after B gave it up`);
    refused.againAt = Date.parse(again.ts);
    assert.ok(refused.againAt < refused.expires,
      `${refused.shard} given up by B at ${refused.lostAt} was taken again at ${refused.againAt} ` +
      `by ${again.proc}, not before its row expired at ${refused.expires}`);
  }

  const intervals = checkNoDoubleHolding();
  // A's shards at its SIGKILL were taken by another within the lease time
  // (plus a look at the leases and the time to notice)
  const killedAt = Date.parse(logs.find((l) => l.proc === 'A' && l.msg === 'exited').ts);
  let orphaned = 0;
  for (const [shard, list] of intervals) {
    const i = list.findIndex(([, end, proc]) => proc === 'A' && end === killedAt);
    if (i < 0) continue;
    orphaned++;
    assert.ok(list[i + 1], `shard ${shard} of the killed consumer was never taken over`);
    assert.ok(list[i + 1][0] - killedAt <= LEASE_MS + 2500,
      `shard ${shard} taken over ${list[i + 1][0] - killedAt} ms after the kill`);
  }
  assert.ok(orphaned > 0, 'the killed consumer held no shard when killed');
  // A2's shards, released on SIGTERM, were taken at the next look at the
  // leases, without waiting for them to expire
  const releasedBy = logs.filter((l) => l.proc === 'A2' && l.msg === 'kinesis lease released');
  assert.ok(releasedBy.length > 0, 'SIGTERM released no lease');
  for (const l of releasedBy) {
    const t = Date.parse(l.ts);
    const next = intervals.get(l.shard).find(([start, , proc]) => proc !== 'A2' && start >= t);
    assert.ok(next && next[0] - t < LEASE_MS,
      `shard ${l.shard} released by SIGTERM was not taken before its lease would have expired`);
  }
  b.kill('SIGTERM');
  assert.equal((await b.exited).code, 0, 'serve exits 0 on SIGTERM');
  const takes = [...intervals.values()].reduce((n, l) => n + l.length, 0);
  const records = first.length + 1200;
  console.log(`kinesis consume (${storeKind}): ${records} records, ${PLAYERS} players exact in ` +
    `${((tDone - t0) / 1000).toFixed(1)} s; ${rows.length} lease rows, ${takes} holdings, ` +
    `none overlapping; ${orphaned} shards of the SIGKILLed consumer taken over in time; ` +
    `${throttled} of B's GetRecords throttled` +
    (lost ? `; the answer to B's checkpoint of ${lost.shard} lost, the shard kept` : '') +
    (refused?.againAt ? `; ${refused.shard}, given up when its lease writes failed, taken back ` +
      `${refused.expires - refused.againAt} ms before its row expired` : ''));
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  console.error(e.stack || e);
  if (lost) console.error('lost answer:', JSON.stringify(lost));
  if (refused) console.error('refused lease writes:', JSON.stringify(refused));
  for (const l of logs.filter((x) => x.level !== 'debug' && !/^(request|listening)$/.test(x.msg)).slice(-60))
    console.error(JSON.stringify(l));
} finally {
  for (const c of children) c.kill('SIGKILL');
  if (proxy) proxy.server.close();
  if (dproxy) dproxy.server.close();
  rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
